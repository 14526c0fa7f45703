#!/usr/bin/env bash
# Airflow 3 in its own virtualenv (.venv-airflow, or $GREENAI_AIRFLOW_VENV) for tests/airflow:
# Airflow pins many packages that the main .venv must not get. It holds apache-airflow and
# greenai itself (editable, with the `airflow` extra). Idempotent: the stamp names the pin and
# pyproject.toml's hash, so a change of either reinstalls (about a minute here).
set -euo pipefail
cd "$(dirname "$0")/.."
AIRFLOW_VERSION=3.3.2  # the latest 3.x on PyPI when pinned; resolves with greenai's own pins
VENV="${GREENAI_AIRFLOW_VENV:-$PWD/.venv-airflow}"
STAMP="$VENV/.greenai-stamp"
WANT="airflow=$AIRFLOW_VERSION pyproject=$(sha256sum pyproject.toml | cut -c1-16)"
if [ -x "$VENV/bin/airflow" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
  exit 0
fi
echo "installing Airflow $AIRFLOW_VERSION into $VENV"
start=$(date +%s)
LOG="$(mktemp)"
if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install --upgrade pip &&
  "$VENV/bin/pip" install "apache-airflow==$AIRFLOW_VERSION" -e ".[airflow]"; } >"$LOG" 2>&1; then
  tail -n 40 "$LOG" >&2
  echo "Airflow install failed (log: $LOG)" >&2
  exit 1
fi
rm -f "$LOG"
echo "$WANT" >"$STAMP"
echo "Airflow $AIRFLOW_VERSION ready in $(($(date +%s) - start)) s"
