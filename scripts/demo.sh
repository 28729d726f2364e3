#!/usr/bin/env bash
# Set up, then run the server with demo data on the embedded defaults (SQLite, in-process presence).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/classroom serve --demo "$@"
