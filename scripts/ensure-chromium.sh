#!/usr/bin/env bash
# The HTML report tests drive Debian's chromium with Playwright (never `playwright install`).
# Idempotent: does nothing when /usr/bin/chromium is there; installs it with apt when we are root.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium (for the HTML report tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "warning: /usr/bin/chromium is missing and this is not root: run 'sudo apt-get install chromium'" >&2
  echo "         or the HTML report tests will fail" >&2
fi
