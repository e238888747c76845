#!/usr/bin/env bash
# Large-budget property search, not part of CI (issue 10): the simulators' invariant tests with
# GENET_HYPOTHESIS_EXAMPLES examples each (default 5000) from a fresh random seed, unless
# GENET_HYPOTHESIS_SEED is given (replay a failure with the seed this prints). Runs nice'd; prints the
# examples, the seed, the wall time and the result. Extra arguments go to pytest, e.g. -x.
#   bash scripts/hypothesis_soak.sh
#   GENET_HYPOTHESIS_SEED=123 GENET_HYPOTHESIS_EXAMPLES=200 bash scripts/hypothesis_soak.sh -x
set -euo pipefail
cd "$(dirname "$0")/.."
export GENET_HYPOTHESIS_EXAMPLES="${GENET_HYPOTHESIS_EXAMPLES:-5000}"
export GENET_HYPOTHESIS_SEED="${GENET_HYPOTHESIS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
# every test that sizes its budget with conftest.hypothesis_examples()
tests=(tests/test_cc_invariants.py tests/test_abr_sim_bounds.py::test_any_playable_trace_ends_the_video)
start=$(date +%s)
set +e
nice -n 10 .venv/bin/python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics "${tests[@]}" "$@"
status=$?
set -e
echo "hypothesis soak: ${GENET_HYPOTHESIS_EXAMPLES} examples per test, seed ${GENET_HYPOTHESIS_SEED}," \
     "$(( $(date +%s) - start )) s wall, pytest exit ${status} ($([ "$status" = 0 ] && echo passed || echo FAILED))"
exit "$status"
