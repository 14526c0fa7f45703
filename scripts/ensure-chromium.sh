#!/usr/bin/env bash
# Make sure a Chromium exists for the dashboard's browser tests (tests/api/test_dashboard.py
# drives Debian's chromium through Playwright; Playwright's own browser download is not used).
# Quiet and idempotent: nothing happens when /usr/bin/chromium (or GREENAI_CHROMIUM) is there.
set -euo pipefail
if [ -x "${GREENAI_CHROMIUM:-/usr/bin/chromium}" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Chromium (Debian packages) for the dashboard tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
else
  echo "Chromium missing (apt-get install chromium); the dashboard tests will fail" >&2
fi
