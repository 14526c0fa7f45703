#!/usr/bin/env bash
# The main job: the greenai daemon (durable queue, REST API on http://127.0.0.1:8787 by
# default, re-planning loop, local GPU executor). It prints its URL once it listens; stop it
# with Ctrl-C or SIGTERM (running jobs get GREENAI_GRACE_SECONDS to finish).
# Settings come from GREENAI_* variables or greenai.toml; extra arguments go to `greenai serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/greenai serve "$@"
