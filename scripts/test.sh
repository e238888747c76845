#!/usr/bin/env bash
# Runs the whole test suite (what CI runs). Provisions first (system packages when root, .venv always).
# `--fast`: the fast tier, every test that needs no root, browser, real time or long computation (under 3 min
# on 2 cores; tests/tiers.py says which tests are slow and why). Arguments go to pytest (`--fast` is an option
# of tests/conftest.py), e.g. `bash scripts/test.sh --fast -k traces -x`. The 25 slowest tests are listed at
# the end (the whole suite must stay under 25 min in CI). The linter (ruff: pyflakes' checks and syntax errors,
# [tool.ruff] in pyproject.toml) runs first, in both tiers; GENET_SKIP_LINT=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
if [ "${GENET_SKIP_LINT:-0}" != 1 ]; then
  .venv/bin/ruff check --quiet . || { echo "ruff found problems (above); fix them or run .venv/bin/ruff check --fix ." >&2; exit 1; }
  echo "[lint] ruff: no problems"
fi
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "no tests were collected" >&2
fi
exit "$status"
