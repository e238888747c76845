#!/usr/bin/env bash
# Runs the whole test suite (what CI runs). Provisions first (system packages when root, .venv always).
# `--fast`: the fast tier, every test that needs no root, browser, real time or long computation (goal: under 3 min
# on 2 cores; tests/tiers.py says which tests are slow and why). Arguments go to pytest (`--fast` is an option of
# tests/conftest.py), e.g. `bash scripts/test.sh --fast -k traces -x`. Both tiers run on every core:
# GENET_TEST_WORKERS pytest-xdist workers (default: the CPU count, at most 4; 1 = one process, as do -s, --pdb
# and -n given here). The whole suite's clock part (root, browser, real time: tests/tiers.py CLOCK_GROUP) runs on
# one worker, one test after another as in one process; the compute part's modules run on the others at the
# lowest priority while the clock part runs beside them. The 25 slowest tests are listed at the end (the whole
# suite must stay under 25 min in CI). The linter (ruff: pyflakes' checks and syntax errors, [tool.ruff] in
# pyproject.toml) runs first, in both tiers; GENET_SKIP_LINT=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
if [ "${GENET_SKIP_LINT:-0}" != 1 ]; then
  .venv/bin/ruff check --quiet . || { echo "ruff found problems (above); fix them or run .venv/bin/ruff check --fix ." >&2; exit 1; }
  echo "[lint] ruff: no problems"
fi
# Bytecode caches (gitignored) are written even where PYTHONDONTWRITEBYTECODE is set: without them every Python
# process of the suite compiles the project again, and pytest rewrites every test module's asserts on each run
# (about 11 s of each worker's 18 s collection on 2 cores).
unset PYTHONDONTWRITEBYTECODE
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider)
workers=()
if [[ " $* " != *" -n "* && " $* " != *" -s "* && " $* " != *" --pdb"* && " $* " != *"--capture=no"* ]]; then
  nworkers=${GENET_TEST_WORKERS:-$(n=$(nproc 2>/dev/null || echo 1); echo $(( n > 4 ? 4 : n )))}
  if [ "$nworkers" -gt 1 ] && .venv/bin/python -c "import xdist" 2>/dev/null; then
    workers=(-n "$nworkers" --dist loadgroup)
  fi
fi
set +e
"${pytest[@]}" --durations=25 "${workers[@]}" "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "no tests were collected" >&2
fi
exit "$status"
