#!/usr/bin/env bash
# Benchmark set-up: the Node peer's packages (socket.io 4.8 server and client, pinned by
# bench/peer/package-lock.json) and py-spy for profiles (the `dev` extra, scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
(cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
