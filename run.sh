#!/usr/bin/env bash
# The two set-up commands of greenai:
#   ./run.sh        install into .venv and run the main job (the daemon, or the demo)
#   ./run.sh test   install into .venv and run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
stamp="$venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"

install() {
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if [ ! -f "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e '.[test]'
    rm -f "$venv"/.installed-*
    touch "$stamp"
  fi
}

case "${1:-main}" in
  test)
    install
    shift || true
    exec bash scripts/test.sh "$@"
    ;;
  demo)
    install
    exec "$venv/bin/python" -m greenai.demo
    ;;
  demo-daemon)
    install
    shift
    exec bash scripts/demo-daemon.sh "$@"
    ;;
  main)
    install
    shift || true
    exec bash scripts/main.sh "$@"
    ;;
  -*)  # ./run.sh --port 9000: flags for the daemon (`greenai serve --help`)
    install
    exec bash scripts/main.sh "$@"
    ;;
  *)
    echo "usage: ./run.sh [test|demo|demo-daemon|main] [greenai serve flags]" >&2
    exit 2
    ;;
esac
