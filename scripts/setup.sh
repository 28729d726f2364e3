#!/usr/bin/env bash
# Set up a fresh machine for classroom: Python virtualenv with pinned dependencies, the web
# client's npm packages, and (with --browser) Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
  esac
done

find_python() {
  for candidate in python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python" python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  for dir in "$HOME"/.pyenv/versions/3.1[2-9]*; do
    [ -x "$dir/bin/python" ] && { echo "$dir/bin/python"; return 0; }
  done
  echo "classroom: Python 3.12 or newer is required" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(find_python)
  echo "setup: creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
echo "setup: installing Python dependencies (pinned by requirements.lock)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]' 2> >(grep -v "^WARNING: Location" >&2)

if command -v npm >/dev/null 2>&1; then
  echo "setup: installing the web client's npm packages"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "classroom: npm is required for the web client (apt-get install npm)" >&2
  exit 1
fi

if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
