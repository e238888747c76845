"""Start-up of the ABR simulator (issue 26): the interpreted and compiled kernels give the same bits, a short
evaluation loads no numba and no matplotlib, the on-disk kernel cache follows changes of the functions a
kernel calls in other files, and the CDF figure is drawn without matplotlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO
from foundation.errors import BadInputError
from genet.abr import core
from genet.abr.core import BatchedAbrSim
from genet.abr.params import GENET_COMPAT, PENSIEVE, EnvParams
from genet.abr.video import default_video
from traces.trace import Trace

SAMPLES = REPO / "traces" / "samples"


def _traces(n=5, seed=4):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        t = np.cumsum(rng.uniform(0.2, 2.0, 150 + 40 * k))
        out.append(Trace(t, rng.uniform(0.05, 6.0, t.size), name=f"t{k}"))
    out.append(Trace(np.arange(0.0, 8.0, 0.5), np.full(16, 30.0), name="short-fast"))  # wraps, drains the buffer
    return out


def _run(engine, conv, params=None, n_envs=None, steps=130):
    sim = BatchedAbrSim(_traces(), default_video(), conv, params=params, n_envs=n_envs, seed=7,
                       autoreset=n_envs is not None, engine=engine)
    sim.reset()
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        if sim.done.all():
            break
        r = sim.step(rng.integers(0, sim.n_levels, sim.n_envs))
        out.append(r)
    return out, sim.current_state()


@pytest.mark.parametrize("conv", [PENSIEVE, GENET_COMPAT, PENSIEVE.replace(delay_noise=True, random_start=True)],
                         ids=["pensieve", "genet", "training"])
@pytest.mark.parametrize("autoreset", [False, True])
def test_interpreted_and_compiled_kernels_give_the_same_bits(conv, autoreset):
    params = EnvParams(max_buffer_s=12.0) if conv is GENET_COMPAT else None  # sleeps every few chunks
    n_envs = 9 if autoreset else None
    a, state_a = _run("python", conv, params, n_envs)
    b, state_b = _run("numba", conv, params, n_envs)
    assert len(a) == len(b) > 40
    for ra, rb in zip(a, b):
        for name in ra.__dataclass_fields__:
            assert np.array_equal(getattr(ra, name), getattr(rb, name)), name
    for key in state_a:
        assert np.array_equal(state_a[key], state_b[key]), key


def test_an_unknown_engine_is_a_clear_error():
    with pytest.raises(BadInputError, match="engine must be one of auto, numba, python, got 'jit'"):
        BatchedAbrSim(_traces(), default_video(), engine="jit")


def _probe(code: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_short_evaluation_runs_interpreted_and_a_long_one_switches_to_the_compiled_kernels():
    code = textwrap.dedent(f"""
        import json, sys
        from genet.abr import core
        from genet.abr.evaluate import evaluate
        from genet.abr.params import GENET_COMPAT
        from genet.abr.video import default_video
        from traces.io import load_traces
        traces = load_traces({str(SAMPLES / "norway-val")!r})
        video = default_video()
        first = evaluate("bba", traces, video, GENET_COMPAT)
        loaded_after_first = "numba" in sys.modules
        core._interpreted_left = 100  # the budget runs out in the middle of the next evaluation
        second = evaluate("bba", traces, video, GENET_COMPAT)
        print(json.dumps({{"after_first": loaded_after_first, "after_second": "numba" in sys.modules,
                          "same": first == second, "n": len(first)}}))
    """)
    got = _probe(code)
    assert got["n"] > 0 and got["same"]
    assert got["after_first"] is False  # the short one never loaded numba
    assert got["after_second"] is True  # the budget spent, the rest ran compiled (with the same results)


def test_genet_eval_abr_with_bba_loads_no_numba_matplotlib_or_scipy(tmp_path):
    code = textwrap.dedent(f"""
        import json, sys
        from app.cli import main
        rc = main(["eval", "abr", "--compat", "genet", "--policy", "bba", "--no-progress",
                   "--traces", {str(SAMPLES / "fcc-val")!r}, "--out", {str(tmp_path / "out")!r}])
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"numba", "matplotlib", "scipy", "torch",
                                                                  "gymnasium", "llvmlite"}})
        print(json.dumps({{"rc": rc, "heavy": heavy}}))
    """)
    got = _probe(code)
    assert got == {"rc": 0, "heavy": []}
    assert (tmp_path / "out" / "qoe_cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "results.csv").read_text().count("\nbba,") >= 1


def test_a_cached_kernel_is_recompiled_when_a_function_it_calls_in_another_file_changes(tmp_path):
    # numba's own cache checks only the kernel's file: without the dependency digest in the cache name
    # the second run would load the stale kernel and print 1.0 again
    pkg = tmp_path / "kpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    dep = pkg / "dep.py"
    (pkg / "kern.py").write_text(textwrap.dedent("""
        from genet.abr.jit import lazy_njit
        from kpkg.dep import value

        @lazy_njit
        def kernel(x):
            return value(x)
    """))
    code = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom kpkg.kern import kernel\n"
            "print(json.dumps({'out': kernel(1.0), 'compiled': hasattr(kernel, 'py_func') and 'numba' in sys.modules}))")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    results = []
    for body in ("return x", "return x + 1.0"):
        dep.write_text(f"from genet.abr.jit import jitable\n\n\n@jitable\ndef value(x):\n    {body}\n")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [r["out"] for r in results] == [1.0, 2.0]
    assert all(r["compiled"] for r in results)
    assert list((tmp_path / "cache").rglob("*.nbi")) or list(pkg.rglob("__pycache__/*.nbi"))


def test_the_foreign_dependencies_of_the_step_kernel_are_the_qoe_module():
    from genet.abr import jit, qoe
    fn = core._step_kernel.py_func
    assert jit._foreign_dependencies(fn) == [qoe.__file__]
    named = jit._cacheable(fn)
    assert named.__code__ is fn.__code__ and named.__qualname__.startswith("_step_kernel__deps_")
    assert jit._cacheable(core.download_chunk) is core.download_chunk  # no foreign calls: numba's own name


def test_the_cdf_figure_is_a_png_with_one_colour_per_series(tmp_path):
    from PIL import Image

    from foundation.cdfplot import COLORS, HEIGHT_PX, WIDTH_PX, nice_ticks, write_cdf_png
    rng = np.random.default_rng(0)
    path = write_cdf_png(tmp_path / "cdf.png", {"a": rng.normal(0, 50, 200), "b": rng.normal(30, 40, 150), "c": []},
                         xlabel="per-trace total QoE", title="t")
    img = Image.open(path).convert("RGB")
    assert img.size == (WIDTH_PX, HEIGHT_PX)
    colours = {c for _, c in img.getcolors(maxcolors=1 << 16)}
    for hex_colour in COLORS[:2]:
        assert tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)) in colours
    ticks, decimals = nice_ticks(-163.0, 160.0, target=8)
    assert list(ticks) == [-150, -100, -50, 0, 50, 100, 150] and decimals == 0
    ticks, decimals = nice_ticks(0.0, 1.0, target=4)
    assert list(ticks) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0]) and decimals == 2
