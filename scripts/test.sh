#!/usr/bin/env bash
# Runs the whole test suite (what CI runs). Provisions first (system packages when root, .venv always).
# `--fast`: the fast tier, every test that needs no root, browser, real time or long computation (goal: under 3 min
# on 2 cores; tests/tiers.py says which tests are slow and why), on every core (GENET_TEST_WORKERS, below). Arguments go to pytest (`--fast` is an option
# of tests/conftest.py), e.g. `bash scripts/test.sh --fast -k traces -x`. The 25 slowest tests are listed at
# the end (the whole suite must stay under 25 min in CI). GENET_TEST_PARTS=1 runs the suite as two pytest
# processes side by side (tests/tiers.py PARTS): `--part clock` (root, browser, real time: mostly waiting) in the
# foreground and `--part compute` (the fast tier and the long computations) beside it at nice 10, its output
# printed after; faster, but on 2 cores a timed test (the Mininet capture log's busy-loop pacer) failed beside
# the compute part, so CI keeps one process. The linter (ruff: pyflakes' checks and syntax
# errors, [tool.ruff] in pyproject.toml) runs first, in both tiers; GENET_SKIP_LINT=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
if [ "${GENET_SKIP_LINT:-0}" != 1 ]; then
  .venv/bin/ruff check --quiet . || { echo "ruff found problems (above); fix them or run .venv/bin/ruff check --fix ." >&2; exit 1; }
  echo "[lint] ruff: no problems"
fi
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider)
# The fast tier holds no test that needs root, a clock or a link (tests/tiers.py), so it runs on every core:
# GENET_TEST_WORKERS pytest-xdist workers (default: the CPU count, at most 4; 1 = one process), each taking whole
# test modules (--dist loadfile: a module's fixtures and order as in one process).
workers=()
if [[ " $* " == *" --fast "* ]] && [[ " $* " != *" -n "* ]]; then
  nworkers=${GENET_TEST_WORKERS:-$(n=$(nproc 2>/dev/null || echo 1); echo $(( n > 4 ? 4 : n )))}
  if [ "$nworkers" -gt 1 ] && .venv/bin/python -c "import xdist" 2>/dev/null; then
    workers=(-n "$nworkers" --dist loadfile)
  fi
fi
set +e
if [ "${GENET_TEST_PARTS:-0}" != 1 ] || [[ " $* " == *" --fast "* || " $* " == *" --part"* ]]; then
  "${pytest[@]}" --durations=25 "${workers[@]}" "$@"
  status=$?
else
  compute_log=$(mktemp -t genet-tests-compute.XXXXXX)
  # nice: when both parts want the CPU the clock part's tests (pacers, links, players timed by the clock) get it
  nice -n 10 "${pytest[@]}" --durations=15 --part compute "$@" > "$compute_log" 2>&1 &
  compute_pid=$!
  trap 'kill "$compute_pid" 2>/dev/null' EXIT INT TERM
  echo "[tests] two parts side by side: clock (root, browser, real time) here; compute (fast tier, long" \
       "computations) beside it, printed when both are done (its log meanwhile: $compute_log)"
  "${pytest[@]}" --durations=15 --part clock "$@"
  clock_status=$?
  wait "$compute_pid"
  compute_status=$?
  trap - EXIT INT TERM
  echo
  echo "=============================== the compute part ==============================="
  cat "$compute_log"
  rm -f "$compute_log"
  echo "[tests] clock part: exit $clock_status; compute part: exit $compute_status (5: no test of it selected)"
  if [ "$clock_status" = 5 ] && [ "$compute_status" = 5 ]; then
    status=5
  elif [ "$clock_status" != 0 ] && [ "$clock_status" != 5 ]; then
    status=$clock_status
  elif [ "$compute_status" != 0 ] && [ "$compute_status" != 5 ]; then
    status=$compute_status
  else
    status=0
  fi
fi
set -e
if [ "$status" = 5 ]; then
  echo "no tests were collected" >&2
fi
exit "$status"
