#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run lint, types and the whole suite
# (SQLite and PostgreSQL, real Redis, real Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --browser
bash scripts/services.sh

echo "test: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "test: mypy --strict classroom bench"
.venv/bin/mypy classroom
.venv/bin/mypy bench
echo "test: pytest"
.venv/bin/pytest -p no:cacheprovider "$@"
