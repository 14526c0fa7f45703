#!/usr/bin/env bash
# ./run.sh demo-daemon: the real daemon with no internet. It replays the 2023 GB trace that
# ships in the package at 600x (a trace hour every 6 s), submits a few example jobs, and runs
# until Ctrl-C. State goes to artifacts/demo-daemon (GREENAI_HOME overrides it); extra
# arguments go to `greenai serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
greenai=.venv/bin/greenai
trace=$(.venv/bin/python -c 'import greenai, pathlib; print(pathlib.Path(greenai.__file__).parent / "data" / "gb-2023-hourly.csv")')
export GREENAI_HOME="${GREENAI_HOME:-artifacts/demo-daemon}"
export GREENAI_API_PORT="${GREENAI_API_PORT:-8787}"
export GREENAI_API_URL="http://127.0.0.1:$GREENAI_API_PORT"
export GREENAI_API_TOKEN="${GREENAI_API_TOKEN:-demo-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(8))')}"
export GREENAI_METERS="${GREENAI_METERS:-estimate}"

"$greenai" serve --provider "trace:$trace" --trace-start 2023-05-04T12:00:00Z \
  --trace-speed 600 --tick 300 "$@" &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" || true' INT TERM EXIT

for _ in $(seq 150); do  # until the API answers (or the daemon died)
  kill -0 "$daemon" 2>/dev/null || { echo "the daemon did not start" >&2; exit 1; }
  "$greenai" jobs --json >/dev/null 2>&1 && break
  sleep 0.2
done

"$greenai" submit --name train-overnight --duration 2h --max-delay 18h -- sleep 2
"$greenai" submit --name eval-under-120 --duration 30m --max-delay 8h \
  --policy threshold --threshold 120 -- sleep 1
"$greenai" submit --name urgent-rigid --duration 1h --no-flexible -- sleep 1
cat <<TEXT

Demo daemon on trace time (2023-05-04 onwards, 600x). Try, in another terminal:
  export GREENAI_API_URL=$GREENAI_API_URL GREENAI_API_TOKEN=$GREENAI_API_TOKEN
  $greenai jobs                  # planned starts move as the trace's forecast changes
  $greenai status                # queue, running jobs, CO2 saved and the provider
  $greenai audit --home $GREENAI_HOME
The dashboard is at $GREENAI_API_URL/ (token above). Ctrl-C stops the daemon.
TEXT
wait "$daemon"
