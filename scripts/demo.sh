#!/usr/bin/env bash
# The demo behind `make demo`: compare sample uploads with the pictures a user already has.
set -euo pipefail
BIN=${1:-.venv/bin}
cd "$(dirname "$0")/.."
echo "== lookalike compare: each upload against the library picture it may copy"
for pair in "library/coffee.jpg uploads/coffee_small.webp" \
            "library/chelsea.jpg uploads/chelsea_mirrored.jpg" \
            "library/motorcycle.jpg uploads/motorcycle_gray.jpg" \
            "library/motorcycle.jpg uploads/motorcycle_other_side.jpg"; do
  set -- $pair
  echo "-- $1  vs  $2"
  "$BIN/lookalike" compare "examples/$1" "examples/$2"
done

DB=$(mktemp -d)/demo.db
trap 'rm -rf "$(dirname "$DB")"' EXIT
echo
echo "== lookalike index: the pictures the user already has"
"$BIN/lookalike" index examples/library --db "$DB" --scope demo-user
echo
echo "== lookalike check: which uploads are already there?"
"$BIN/lookalike" check examples/uploads --db "$DB" --scope demo-user --top 3
echo
echo "== lookalike index the uploads: copies are left out (as the HTTP service refuses them by default)"
"$BIN/lookalike" index examples/uploads --db "$DB" --scope demo-user
echo
echo "== ... or stored and put on the review list for a person (--on-duplicate review)"
"$BIN/lookalike" index examples/uploads --db "$DB" --scope demo-user --on-duplicate review > /dev/null
"$BIN/lookalike" review --db "$DB"
