"""The test tiers (tests/tiers.py): every module is classified, every name the lists give exists, the fast tier
(``--fast``) selects no test marked root or slow, and the rules find root, browser and listed tests in a module
that nobody listed test by test."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import tiers

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HANG_GUARD_S = 600  # a hang guard only (collecting the suite on a loaded machine is slow)

# A pytest plugin that writes what a run selected and what it left out (with their root/slow/timeout marks).
PROBE = '''
import json, os
_out = {"selected": [], "left_out": []}
def _rec(item):
    return [item.nodeid, sorted({m.name for m in item.iter_markers()} & {"root", "slow", "timeout"})]
def pytest_deselected(items):
    _out["left_out"].extend(_rec(i) for i in items)
def pytest_collection_finish(session):
    _out["selected"] = [_rec(i) for i in session.items]
    with open(os.environ["GENET_TIER_PROBE_OUT"], "w") as fh:
        json.dump(_out, fh)
'''


def collect(tmp_path: Path, cwd: Path, *args: str) -> dict[str, dict[str, list[str]]]:
    """{"selected"|"left_out": {nodeid: marks}} of ``pytest --collect-only ARGS`` run in ``cwd``."""
    probe = tmp_path / "probe"
    probe.mkdir(exist_ok=True)
    (probe / "genet_tier_probe.py").write_text(PROBE)
    out = tmp_path / f"collected-{len(list(tmp_path.glob('collected-*')))}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(probe), os.environ.get("PYTHONPATH", "")]),
           "GENET_TIER_PROBE_OUT": str(out)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "genet_tier_probe",
                        "--collect-only", "-q", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=HANG_GUARD_S)
    report = "\n".join(line for line in r.stdout.splitlines() if "::" not in line)  # without the test list
    assert r.returncode in (0, 5) and out.is_file(), report[-4000:] + r.stderr[-4000:]
    got = json.loads(out.read_text())
    return {k: dict(v) for k, v in got.items()}


def test_every_test_module_is_in_exactly_one_tier_list():
    modules = {p.stem for p in TESTS.glob("test_*.py")}
    missing = sorted(modules - tiers.FAST_MODULES - set(tiers.SLOW_MODULES))
    assert not missing, (f"test modules in no tier: {missing}; add each to FAST_MODULES or SLOW_MODULES (with the "
                         f"reason) in tests/tiers.py")
    assert not tiers.FAST_MODULES & set(tiers.SLOW_MODULES), tiers.FAST_MODULES & set(tiers.SLOW_MODULES)
    gone = sorted((tiers.FAST_MODULES | set(tiers.SLOW_MODULES)) - modules)
    assert not gone, f"tests/tiers.py names modules that tests/ no longer has: {gone}"


def test_every_test_and_fixture_the_lists_name_exists():
    for name, reason in tiers.SLOW_TESTS.items():
        module, function = name.split("::")
        assert module in tiers.FAST_MODULES, f"SLOW_TESTS names {name} of a module that is not in FAST_MODULES"
        text = (TESTS / f"{module}.py").read_text()
        assert re.search(rf"^\s*(async\s+)?def {re.escape(function)}\(", text, re.M), (
            f"tests/tiers.py SLOW_TESTS names {name}, which tests/{module}.py no longer has")
        assert reason.split(":")[0].split(",")[0] in (tiers.ROOT, tiers.BROWSER, tiers.REAL_TIME, tiers.LONG)
    sources = "\n".join(p.read_text() for p in TESTS.glob("*.py"))
    for fixture in tiers.SLOW_FIXTURES:
        assert re.search(rf"^def {re.escape(fixture)}\(", sources, re.M), (
            f"tests/tiers.py SLOW_FIXTURES names {fixture}, which no file of tests/ defines")


def test_the_fast_tier_selects_no_test_marked_root_or_slow(tmp_path):
    got = collect(tmp_path, REPO, "--fast")
    selected, left_out = got["selected"], got["left_out"]
    assert selected and left_out
    marked = {n: m for n, m in selected.items() if {"root", "slow"} & set(m)}
    assert not marked, f"--fast selected tests marked root or slow: {sorted(marked)[:10]}"
    assert any("root" in m for m in left_out.values())  # the suite has root tests, and --fast left them out
    assert all("slow" in m for m in left_out.values())  # so `-m "not slow"` is the same selection
    assert all("timeout" in m for m in selected.values())  # each has its hang guard


SYNTHETIC = '''
import os
import pytest


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


@pytest.fixture
def tiny_run():
    return 1


@pytest.mark.parametrize("n", [1, 2])
def test_plain(n):
    assert n


def test_sigkill_leaves_a_readable_log_prefix():  # a name SLOW_TESTS gives for test_sender
    pass


def test_checks_root_itself():
    if os.geteuid() != 0:
        pytest.skip("emulation needs root")


def test_uses_a_fixture_that_checks_root(as_root):
    pass


@pytest.mark.skipif(False, reason="the testbed needs root (network namespaces)")
def test_skip_reason_says_root():
    pass


def test_drives_a_browser():
    if False:
        from selenium import webdriver
        webdriver.Chrome()


def test_uses_a_slow_fixture(tiny_run):
    pass


@pytest.mark.slow
def test_marked_slow():
    pass
'''


def test_the_rules_classify_a_module_nobody_listed_test_by_test(tmp_path):
    """A copy of tests/conftest.py and tests/tiers.py beside a module named as a listed fast one (test_sender) and
    one named as a slow one (test_emulation_netns): --fast keeps exactly the plain tests, marks the root ones
    root, and `-m "not slow"` keeps the same tests."""
    suite = tmp_path / "suite"
    (suite / "tests").mkdir(parents=True)
    for name in ("conftest.py", "tiers.py"):
        shutil.copy(TESTS / name, suite / "tests" / name)
    (suite / "tests" / "test_sender.py").write_text(textwrap.dedent(SYNTHETIC))
    (suite / "tests" / "test_emulation_netns.py").write_text("def test_anything():\n    pass\n")
    fast = collect(tmp_path, suite, "--fast", "tests")
    assert sorted(fast["selected"]) == ["tests/test_sender.py::test_plain[1]", "tests/test_sender.py::test_plain[2]"]
    left_out = fast["left_out"]
    assert sorted(n.split("::")[1] for n in left_out) == sorted([
        "test_anything", "test_sigkill_leaves_a_readable_log_prefix", "test_checks_root_itself",
        "test_uses_a_fixture_that_checks_root", "test_skip_reason_says_root", "test_drives_a_browser",
        "test_uses_a_slow_fixture", "test_marked_slow"])
    root = sorted(n.split("::")[1] for n, m in left_out.items() if "root" in m)
    assert root == ["test_checks_root_itself", "test_skip_reason_says_root", "test_uses_a_fixture_that_checks_root"]
    not_slow = collect(tmp_path, suite, "-m", "not slow", "tests")
    assert sorted(not_slow["selected"]) == sorted(fast["selected"])
    assert not any("timeout" in m for m in not_slow["selected"].values())  # the hang guard is --fast's only
    # the two parts scripts/test.sh runs side by side: compute = fast + long only; clock = the rest; together all
    compute = collect(tmp_path, suite, "--part", "compute", "tests")["selected"]
    clock = collect(tmp_path, suite, "--part", "clock", "tests")["selected"]
    assert sorted(n.split("::")[1] for n in compute) == ["test_plain[1]", "test_plain[2]", "test_uses_a_slow_fixture"]
    assert sorted(clock) == sorted(n for n in left_out if not n.endswith("test_uses_a_slow_fixture"))


def test_each_slow_reason_names_known_kinds_and_its_part():
    kinds = {tiers.ROOT, tiers.BROWSER, tiers.REAL_TIME, tiers.LONG}
    for reason in [*tiers.SLOW_MODULES.values(), *tiers.SLOW_TESTS.values(), *tiers.SLOW_FIXTURES.values()]:
        named = {k.strip() for k in reason.split(":")[0].split(",")}
        assert named <= kinds, f"{reason!r}: kinds before the colon must be among {sorted(kinds)}"
    assert tiers.part_of(None) == "compute"
    assert tiers.part_of(f"{tiers.LONG}: a training run") == "compute"
    assert tiers.part_of(f"{tiers.LONG}: a training run (fixture tiny_run)") == "compute"
    assert tiers.part_of(f"{tiers.LONG}, {tiers.REAL_TIME}: a player too") == "clock"
    assert tiers.part_of(f"{tiers.ROOT} (marked, or it checks os.geteuid())") == "clock"
    assert tiers.part_of(f"{tiers.BROWSER} (it drives one)") == "clock"
    assert tiers.part_of("marked slow") == "clock"
    assert tiers.part_of(f"{tiers.LONG}: a training run", root=True) == "clock"  # namespaces: one at a time
    assert tiers.part_of(f"{tiers.LONG}: starts a Ray cluster", "test_ray_workers") == "clock"
    assert set(tiers.CLOCK_PART_MODULES) <= set(tiers.SLOW_MODULES) | tiers.FAST_MODULES


RECORDER = '''
import json, os, pytest


@pytest.fixture(autouse=True)
def record(request):
    with open(os.environ["GENET_TIER_RECORD"], "a") as fh:
        fh.write(json.dumps([request.node.name, os.environ.get("PYTEST_XDIST_WORKER", "main"),
                             os.getpriority(os.PRIO_PROCESS, 0)]) + "\\n")
    yield

'''


def _xdist_run(tmp_path: Path, suite: Path, *args: str) -> dict[str, tuple[str, int]]:
    """{test name: (worker, nice while it ran)} of a pytest-xdist run of ``suite`` with ``args``."""
    record = tmp_path / f"record-{len(list(tmp_path.glob('record-*')))}.jsonl"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist",
                        "loadgroup", *args, "tests"], cwd=suite, env={**os.environ, "GENET_TIER_RECORD": str(record)},
                       capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    return {name: (worker, nice) for name, worker, nice in rows}


def test_on_several_workers_the_clock_part_runs_on_one_and_the_compute_part_steps_aside(tmp_path):
    """scripts/test.sh's workers (tiers.CLOCK_GROUP): every clock test on one worker, one after another; as root,
    the compute tests run at tiers.COMPUTE_NICE beside them (and their priority comes back after); in the fast
    tier, where no clock test runs, at the priority they started with."""
    suite = tmp_path / "suite"
    (suite / "tests").mkdir(parents=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    for name in ("conftest.py", "tiers.py"):
        shutil.copy(TESTS / name, suite / "tests" / name)
    (suite / "tests" / "conftest.py").write_text((TESTS / "conftest.py").read_text() + RECORDER)
    plain = "\n".join(f"def test_plain_{m}_{k}():\n    pass\n" for m in "ab" for k in range(3))
    (suite / "tests" / "test_sender.py").write_text(plain.replace("_b_", "_s_"))    # a fast module
    (suite / "tests" / "test_agents.py").write_text(plain.replace("_a_", "_g_"))    # another fast one
    clock = "\n".join(f"def test_clock_{k}():\n    pass\n" for k in range(6))
    (suite / "tests" / "test_emulation_netns.py").write_text(clock)                 # a root (clock) module
    start_nice = os.getpriority(os.PRIO_PROCESS, 0)
    whole = _xdist_run(tmp_path, suite)
    clock_workers = {w for name, (w, _) in whole.items() if name.startswith("test_clock")}
    assert len(whole) == 18 and len(clock_workers) == 1, whole
    compute = {name: nice for name, (_, nice) in whole.items() if not name.startswith("test_clock")}
    expected = tiers.COMPUTE_NICE if os.geteuid() == 0 else start_nice
    assert set(compute.values()) == {expected}, compute
    assert {nice for name, (_, nice) in whole.items() if name.startswith("test_clock")} == {start_nice}, whole
    fast = _xdist_run(tmp_path, suite, "--fast")
    assert sorted(fast) == sorted(compute) and {nice for _, nice in fast.values()} == {start_nice}, fast
    by_module = {}
    for name, (worker, _) in fast.items():
        by_module.setdefault(name.split("_")[2], set()).add(worker)
    assert all(len(workers) == 1 for workers in by_module.values()), by_module  # whole modules per worker
