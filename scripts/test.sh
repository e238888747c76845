#!/usr/bin/env bash
# Runs the whole test suite. Provisions first (system packages when root, .venv always).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k traces -x`. The 25 slowest tests are listed at
# the end (the suite must stay under 15 min in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "no tests were collected" >&2
fi
exit "$status"
