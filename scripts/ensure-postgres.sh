#!/usr/bin/env bash
# The tests start a throwaway PostgreSQL server of their own (tests/pg.py); this makes sure the
# server binaries are installed: Debian's `postgresql` package, when we are root and apt-get exists.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL for the tests (apt-get install postgresql)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
    echo "PostgreSQL server binaries not found: install PostgreSQL (Debian: apt-get install postgresql)" >&2
    exit 1
fi
