#!/usr/bin/env bash
# Run one benchmark (or all): bash bench/run.sh relay|classroom|media|all [options]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d bench/peer/node_modules/socket.io ] || bash bench/setup.sh
name="${1:-all}"; shift || true
case "$name" in
  relay) exec .venv/bin/python -m bench.relay "$@" ;;
  classroom) exec .venv/bin/python -m bench.classroom "$@" ;;
  media) echo "bench: the media benchmark is not written yet (see docs/performance.md)" >&2; exit 2 ;;
  all)
    .venv/bin/python -m bench.relay "$@"
    .venv/bin/python -m bench.classroom
    ;;
  *) echo "usage: bash bench/run.sh relay|classroom|media|all [options]" >&2; exit 2 ;;
esac
