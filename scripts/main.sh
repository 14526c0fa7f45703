#!/usr/bin/env bash
# The main job: until the daemon lands, the demo of `greenai run` on the real GB 2023 trace.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m greenai.demo
