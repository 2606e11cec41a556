#!/usr/bin/env bash
# A long fuzz run of the decoder (tests/hostile/test_fuzz_decode.py): every allowed format, mutated
# files must decode or raise a typed InputError. The test suite runs 25 examples per format; this
# runs EXAMPLES (default 20000) with a fresh random seed each time.
#   bash scripts/fuzz-decode.sh [EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
LOOKALIKE_FUZZ_EXAMPLES="${1:-20000}" exec "${PYTHON:-.venv/bin/python}" -m pytest -q -p no:cacheprovider \
    tests/hostile/test_fuzz_decode.py
