"""Shared fixtures and suite-wide settings.

* ``shared_dir`` is ``../shared`` beside the repository (CI puts it there).
* **Hypothesis is deterministic per commit and still searches.** Every property test runs from
  one seed, printed in pytest's header: ``GENET_HYPOTHESIS_SEED`` when set, else derived from the
  checked-out commit (so a CI run and its rerun draw the same examples, and each new commit draws
  new ones), else 0. No example database is read or written, so a run does not depend on what
  earlier runs on the machine found. Replay a failure with the printed line, e.g.
  ``GENET_HYPOTHESIS_SEED=123 bash scripts/test.sh tests/test_cc_invariants.py`` (or pytest's own
  ``--hypothesis-seed=123``, which wins). ``GENET_HYPOTHESIS_EXAMPLES`` raises the budget of the
  tests that size it with :func:`hypothesis_examples` (``scripts/hypothesis_soak.sh``).
* **Runaway memory fails one test, not the machine.** At session start the test process's data
  limit (``RLIMIT_DATA``: heap and writable private mappings, what a runaway allocates) is set to
  ``GENET_TEST_MEMORY_LIMIT_GB`` (10 GB; at most 80% of the machine's memory; ``0`` turns it off),
  so an allocation past it raises ``MemoryError`` in the test that made it. We do not use
  ``RLIMIT_AS``: children inherit the limit, and Chromium (the player tests) reserves tens of GB
  of address space it never touches and dies with SIGTRAP under any address-space limit, even
  10 GB, while under ``RLIMIT_DATA`` only memory really written counts: Chromium, iperf3 and the
  emulator processes run unchanged (they inherit the same per-process limit, which at 10 GB only
  stops a runaway). Only the soft limit is lowered.
* **Tiers.** ``--fast`` (``bash scripts/test.sh --fast``) leaves out the tests that need root, a browser, real
  time or a long computation; tests/tiers.py says which and why (it also marks them ``slow``, so
  ``-m "not slow"`` selects the same tests), and gives each remaining test a hang guard of
  ``tiers.FAST_TEST_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

import tiers

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENET_SHARED", REPO.parent / "shared"))

HYPOTHESIS_SEED_ENV = "GENET_HYPOTHESIS_SEED"
HYPOTHESIS_EXAMPLES_ENV = "GENET_HYPOTHESIS_EXAMPLES"
MEMORY_LIMIT_ENV = "GENET_TEST_MEMORY_LIMIT_GB"
DEFAULT_MEMORY_LIMIT_GB = 10.0
_state: dict = {}
_COMPUTE_PART = pytest.StashKey[bool]()


def shared_path(*parts: str) -> Path:
    """Path under ../shared, skipping the calling test (with the reason) when absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared material {p} not present (CI provides ../shared beside the repository)")
    return p


def envivio_video():
    """The EnvivioDash3 chunk-size table: ../shared's copy when present, else the one shipped with the package
    (identical: tests/test_abr_runtime.py checks), so ABR tests run from a clone alone."""
    from genet.abr.video import default_video, load_video
    folder = SHARED / "video" / "envivio"
    return load_video(folder) if folder.is_dir() else default_video()


def envivio_arg() -> str:
    """``--video`` for the EnvivioDash3 table: ../shared's folder when present, else the shipped table's name."""
    folder = SHARED / "video" / "envivio"
    return str(folder) if folder.is_dir() else "envivio"


def require_ssh_testbed() -> None:
    """Skip the calling module (at import) unless the local SSH testbed can run here: root (network namespaces),
    sshd and iperf3."""
    import shutil
    if os.geteuid() != 0:
        pytest.skip("the SSH testbed needs root (network namespaces)", allow_module_level=True)
    if not os.path.exists("/usr/sbin/sshd"):
        pytest.skip("sshd (openssh-server) is not installed", allow_module_level=True)
    if not shutil.which("iperf3"):
        pytest.skip("iperf3 is not installed (the testbed needs it)", allow_module_level=True)


def hypothesis_examples(default: int) -> int:
    """``max_examples`` of a property test: its suite budget, or ``GENET_HYPOTHESIS_EXAMPLES``."""
    value = os.environ.get(HYPOTHESIS_EXAMPLES_ENV, "").strip()
    if not value:
        return default
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"{HYPOTHESIS_EXAMPLES_ENV}={value!r}: expected a positive integer")
    return n


# --------------------------------------------------------------- Hypothesis seed
def _commit_seed() -> tuple[int, str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip()
        if out.returncode == 0 and len(sha) >= 8:
            return int(sha[:8], 16), f"from commit {sha[:12]}"
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return 0, "no git commit found"


def _hypothesis_seed(config: pytest.Config) -> tuple[str, str]:
    given = config.getoption("hypothesis_seed", None)
    if given is not None:
        return str(given), "from --hypothesis-seed"
    env = os.environ.get(HYPOTHESIS_SEED_ENV, "").strip()
    if env:
        try:
            return str(int(env)), f"from {HYPOTHESIS_SEED_ENV}"
        except ValueError:
            raise pytest.UsageError(f"{HYPOTHESIS_SEED_ENV}={env!r}: expected an integer seed") from None
    seed, why = _commit_seed()
    return str(seed), why


# --------------------------------------------------------------- memory limit
def _memory_limit_bytes() -> int | None:
    value = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    try:
        gb = float(value) if value else DEFAULT_MEMORY_LIMIT_GB
    except ValueError:
        raise pytest.UsageError(f"{MEMORY_LIMIT_ENV}={value!r}: expected a size in GB (0 = no limit)") from None
    if gb <= 0:
        return None
    limit = int(gb * 2**30)
    if not value:  # the default never exceeds 80% of the machine
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            limit = min(limit, int(0.8 * total))
        except (ValueError, OSError):
            pass
    return limit


def _set_memory_limit() -> str:
    limit = _memory_limit_bytes()
    if limit is None:
        return f"off ({MEMORY_LIMIT_ENV}=0)"
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        _state["memory_limit"] = limit
    else:
        _state["memory_limit"] = soft
    return f"{_state['memory_limit'] / 2**30:.1f} GB of data per test process (RLIMIT_DATA; {MEMORY_LIMIT_ENV})"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    settings.register_profile("genet", database=None, print_blob=True)
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("genet")
    seed, why = _hypothesis_seed(config)
    config.option.hypothesis_seed = seed  # the Hypothesis plugin's own pytest_configure applies it
    _state["seed"] = (seed, why)
    _state["memory"] = _set_memory_limit()
    _restore_default_signals()


def _restore_default_signals() -> None:
    """Tests send SIGINT/SIGHUP to the programs they start and check how those stop. A suite started in the
    background of a script (SIGINT and SIGQUIT ignored, bash without job control) or under nohup (SIGHUP
    ignored) would pass the ignore on to every child (an ignored signal survives exec): Python would then
    never raise KeyboardInterrupt, and Mahimahi's shells could not hang up their commands. Restore the
    defaults here (the children inherit them)."""
    import signal
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGHUP, signal.SIGQUIT):
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed, why = _state.get("seed", ("?", ""))
    lines = [f"hypothesis seed: {seed} ({why}); replay: {HYPOTHESIS_SEED_ENV}={seed} bash scripts/test.sh ...",
             f"memory limit: {_state.get('memory', 'not set')}"]
    if config.getoption("fast"):
        lines.append(f"tier: fast (--fast: no root, browser, real time or long runs, tests/tiers.py; each test "
                     f"at most {tiers.FAST_TEST_TIMEOUT_S} s)")
    return lines


# --------------------------------------------------------------- tiers
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true", default=False,
                     help="the fast tier: leave out the tests that need root, a browser, real time or a long "
                          "computation (tests/tiers.py says which and why)")
    parser.addoption("--part", choices=tiers.PARTS, default=None,
                     help="run one of the suite's two parts, which bash scripts/test.sh runs side by side: compute (the "
                          "fast tier and the tests slow only for their computation) or clock (root, browser, real "
                          "time); tests/tiers.py PARTS")


@pytest.hookimpl(tryfirst=True)  # before -m, which then sees the slow/root marks added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = tiers.classify(items)
    part = config.getoption("part")
    if part is not None:
        mine = {i.nodeid for i in items if tiers.part_of(slow.get(i.nodeid), i.path.stem,
                                                          i.get_closest_marker("root") is not None) == part}
        other = [i for i in items if i.nodeid not in mine]
        items[:] = [i for i in items if i.nodeid in mine]
        if other:
            config.hook.pytest_deselected(items=other)
    if config.getoption("fast"):
        left_out = [i for i in items if i.nodeid in slow]
        _state["fast_left_out"] = [slow[i.nodeid] for i in left_out]
        if hasattr(config, "workeroutput"):  # a pytest-xdist worker: the controller prints the summary
            config.workeroutput["fast_left_out"] = _state["fast_left_out"]
        items[:] = [i for i in items if i.nodeid not in slow]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
        if config.pluginmanager.hasplugin("timeout") and config.getoption("timeout", None) is None:
            for item in items:
                if item.get_closest_marker("timeout") is None:
                    item.add_marker(pytest.mark.timeout(tiers.FAST_TEST_TIMEOUT_S))
    groups_dir = getattr(config, "workerinput", {}).get(_GROUPS_DIR)
    if groups_dir:  # a pytest-xdist worker under TierScheduling: each test's group, for the controller
        groups, has_clock = {}, False
        for item in items:
            part = tiers.part_of(slow.get(item.nodeid), item.path.stem, item.get_closest_marker("root") is not None)
            groups[item.nodeid] = tiers.xdist_group(part, item.path.stem)
            item.stash[_COMPUTE_PART] = part == "compute"
            has_clock = has_clock or part == "clock"
        out = Path(groups_dir) / f"{config.workerinput['workerid']}.json"
        out.with_suffix(".tmp").write_text(json.dumps(groups))
        out.with_suffix(".tmp").replace(out)
        # the compute tests step aside while they run only where a clock test can run beside them, and only
        # as root (lowering a priority back needs it)
        _state["compute_nice"] = tiers.COMPUTE_NICE if has_clock and os.geteuid() == 0 else None


# --------------------------------------------------------------- several workers (pytest-xdist)
_GROUPS_DIR = "genet_test_groups_dir"


def _tier_scheduling_wanted(config: pytest.Config) -> bool:
    return config.getvalue("dist") == "loadgroup" and not hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (scripts/test.sh): groups from tests/tiers.py (:func:`tiers.xdist_group`: the clock
    part in one group, the compute part by module) instead of ``xdist_group`` marks (which pytest-xdist 3.8
    passes by rewriting node ids, a rewrite pytest 9.2 no longer takes: pytest-xdist issue #1386)."""
    if not _tier_scheduling_wanted(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):
        """pytest-xdist's scope scheduling (largest group first, a worker takes a new group when it has
        two tests or fewer left) with each test's scope read from the groups its workers wrote."""
        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:
                self._groups = {}
                for f in sorted(Path(_state["groups_dir"]).glob("*.json")):
                    self._groups.update(json.loads(f.read_text()))
            return self._groups.get(nodeid, nodeid)

    return TierScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    if _tier_scheduling_wanted(node.config):
        if "groups_dir" not in _state:
            import tempfile
            _state["groups_dir"] = tempfile.mkdtemp(prefix="genet-test-groups-")
        node.workerinput[_GROUPS_DIR] = _state["groups_dir"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if "groups_dir" in _state:
        import shutil
        shutil.rmtree(_state.pop("groups_dir"), ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """On pytest-xdist workers beside the clock part: a compute test (and what it starts) runs at
    ``tiers.COMPUTE_NICE``, so the timed test on the other worker gets the CPU first (tests/tiers.py)."""
    nice = _state.get("compute_nice")
    lower = nice is not None and item.stash.get(_COMPUTE_PART, False)
    if lower:
        before = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    try:
        yield
    finally:
        if lower:
            os.setpriority(os.PRIO_PROCESS, 0, before)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist's controller (``--fast`` on several workers): the fast tier's left-out tests, as a worker
    collected them, for the summary line."""
    left_out = getattr(node, "workeroutput", {}).get("fast_left_out")
    if left_out is not None:
        _state["fast_left_out"] = left_out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(MemoryError) and _state.get("memory_limit"):
        report.sections.append(("memory limit", (
            f"this test process may use {_state['memory_limit'] / 2**30:.1f} GB of data (RLIMIT_DATA, set by "
            f"tests/conftest.py from {MEMORY_LIMIT_ENV}); the MemoryError above means the test tried to use more")))
    if (call.excinfo is not None and "fast_left_out" in _state
            and "from pytest-timeout" in str(call.excinfo.value)):
        report.sections.append(("fast tier", (
            f"in the fast tier (--fast) each test has {tiers.FAST_TEST_TIMEOUT_S} s (tests/tiers.py "
            f"FAST_TEST_TIMEOUT_S); a test that needs longer is slow: name it in tests/tiers.py")))


def _peak_address_space_gb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def pytest_terminal_summary(terminalreporter) -> None:
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    vm_gb = _peak_address_space_gb()
    seed, why = _state.get("seed", ("?", ""))
    terminalreporter.write_line(
        f"hypothesis seed {seed} ({why}); test process peak: {rss_gb:.2f} GB resident"
        + (f", {vm_gb:.2f} GB address space" if vm_gb is not None else ""))
    if "fast_left_out" in _state:
        kinds: dict[str, int] = {}
        for reason in _state["fast_left_out"]:
            kind = reason.split(":")[0].split(",")[0].split(" (")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        why = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        terminalreporter.write_line(
            f"fast tier: {len(_state['fast_left_out'])} slow tests left out" + (f" ({why})" if why else "")
            + "; tests/tiers.py says why; `bash scripts/test.sh` runs the whole suite")


# --------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO
