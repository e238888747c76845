"""Start-up of ``genet eval lb`` (issue 27, whole-process speed): the LB path runs its compiled kernel without
importing scipy.linalg (numba's BLAS probe, genet/abr/jit.py), torch, matplotlib or gymnasium, and BLAS stays
available to kernels and to scipy afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import REPO


def _probe(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_genet_eval_lb_runs_compiled_without_scipy_linalg_torch_matplotlib_or_gymnasium():
    got = _probe("""
        import json, sys
        from app.cli import main
        rc = main(["eval", "lb", "--policy", "least_work,round_robin", "-n", "2", "--seed", "1", "--no-progress"])
        from genet.lb import simulator
        import numba.np.arraymath
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "matplotlib", "gymnasium", "onnxruntime"}
                       or m == "scipy.linalg" or m.startswith("scipy.linalg."))
        print(json.dumps({"rc": rc, "heavy": heavy, "compiled": "numba" in sys.modules,
                          "blas": numba.np.arraymath._HAVE_BLAS}))
    """)
    assert got == {"rc": 0, "heavy": [], "compiled": True, "blas": True}


def test_blas_still_works_in_kernels_and_scipy_linalg_imports_as_usual_after_an_lb_kernel_loads():
    got = _probe("""
        import json, sys
        import numpy as np
        from genet.lb.registry import make_policy
        from genet.lb.simulator import GENET, simulate
        simulate(make_policy("least_work"), [GENET.workload_for(0).head(30)], GENET)
        before = "scipy.linalg" in sys.modules
        import numba
        a = np.arange(6.0).reshape(2, 3)
        dot = numba.njit(lambda x, y: np.dot(x, y))(a, a.T).tolist()
        import scipy.linalg
        from scipy.linalg import cython_blas
        same = scipy.linalg.cython_blas is cython_blas is sys.modules["scipy.linalg.cython_blas"]
        solved = scipy.linalg.solve(np.eye(2) * 2.0, np.ones(2)).tolist()
        print(json.dumps({"before": before, "dot": dot, "same": same, "solved": solved}))
    """)
    assert got == {"before": False, "dot": [[5.0, 14.0], [14.0, 50.0]], "same": True, "solved": [0.5, 0.5]}


def test_the_genet_program_freezes_the_gc_before_it_exits_and_calls_from_python_do_not(tmp_path):
    # the interpreter's last collections would walk numba's ~10^5 objects (app/cli.py _before_exit); a caller
    # that goes on after main(argv) keeps its collector as it was
    got = _probe(f"""
        import gc, json, sys
        from app.cli import main
        args = ["eval", "lb", "--policy", "least_work", "-n", "1", "--no-progress"]
        rc_call = main(args + ["--out", {str(tmp_path / "call")!r}])
        after_call = gc.get_freeze_count()
        sys.argv = ["genet", *args, "--out", {str(tmp_path / "program")!r}]
        rc_program = main()
        print(json.dumps({{"rc": [rc_call, rc_program], "after_call": after_call,
                          "after_program": gc.get_freeze_count() > 0}}))
    """)
    assert got == {"rc": [0, 0], "after_call": 0, "after_program": True}
    call, program = (tmp_path / "call" / "results.csv").read_text(), (tmp_path / "program" / "results.csv").read_text()
    assert call == program and call.count("\nleast_work,") == 1
