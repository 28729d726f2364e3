#!/usr/bin/env bash
# Run one benchmark (or all): bash bench/run.sh relay|classroom|media|browser|joins|all [options]
#   bash bench/run.sh classroom                  one process, SQLite
#   bash bench/run.sh classroom --processes 2    two processes, PostgreSQL + Redis (127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in relay|classroom|all) [ -d bench/peer/node_modules/socket.io ] || bash bench/setup.sh ;; esac
name="${1:-all}"; shift || true
case "$name" in
  relay) exec .venv/bin/python -m bench.relay "$@" ;;
  classroom) exec .venv/bin/python -m bench.classroom "$@" ;;
  media) exec .venv/bin/python -m bench.media "$@" ;;
  browser) exec .venv/bin/python -m bench.browser "$@" ;;
  joins) exec .venv/bin/python -m bench.joins "$@" ;;
  all)
    .venv/bin/python -m bench.relay "$@"
    .venv/bin/python -m bench.classroom
    ;;
  *) echo "usage: bash bench/run.sh relay|classroom|media|browser|joins|all [options]" >&2; exit 2 ;;
esac
