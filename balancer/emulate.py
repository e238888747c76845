"""``genet emulate lb``: LB policies dispatching real jobs to real servers, beside the simulator.

Each (policy, workload, repeat) is one run with fresh processes (:func:`run_one`):

* N workers (``genet balancer worker``, rates ``--rates``, default Genet's [0.5, 1, 2]), each on the emulated
  side of its own link (a network namespace; one-way delay ``--worker-delay-ms`` per worker path, or
  ``--delay-ms`` for all, bandwidth ``--bandwidth-mbps`` both ways);
* the balancer (``genet balancer serve --policy P``) on the links' host side (the root namespace, where every
  worker link and the client link end);
* the client (``genet balancer replay``) on the emulated side of a link of its own (``--client-delay-ms``),
  replaying the workload open-loop.

``--backend loopback`` runs the same processes on 127.0.0.1 without links (no delay; no root needed).
``--kill-worker I:MS`` kills worker I (SIGKILL) MS ms (workload time) after the client's workload clock starts
(it connected to the balancer and is about to send its first job): its jobs are
failed with the reason, the others go on, and the row says so (``dead_workers``).

Workloads: ``--workloads DIR`` (every ``*.workload`` file) or ``-n N --seed S`` (N generated with seeds S, S+1, ...,
from ``--num-jobs``, ``--job-interval-ms``, ``--job-size-max-work`` — Genet's generator, traces/workload.py).
Every policy runs on the same workloads. A run lasts its workload's wall-clock length (x ``--time-unit-ms``)
plus the time to drain the queues.

Rows (``results.csv``/``results.json``; ``results.jsonl`` the journal, so a rerun with the same settings
reuses finished runs): the LB columns (:data:`genet.lb.metrics.COLUMNS`, by :func:`genet.lb.metrics.metrics_from_jobs`
as in the simulator), the accounting (``jobs`` = ``jobs_finished`` + ``jobs_failed``, ``failure_reasons``,
``dead_workers``, ``jobs_per_worker``; :mod:`balancer.summary`), and the simulator's figures for the same policy,
workload and rates (``sim_*``; the simulator's queues FIFO, like the workers': ``queue_shuffle_prob`` 0).
``summary.txt`` holds each policy's mean emulated vs simulated figures and the gap; ``runs/<run>/`` the client's
and the balancer's records and the processes' output. Loop over the runs: :mod:`foundation.experiment`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from balancer.wire import TIME_UNIT_MS
from foundation.atomic import atomic_write_text
from foundation.errors import BadInputError, GenetRuntimeError
from foundation.experiment import Cell, Experiment, Tier, matrix

BACKENDS = ("netns", "loopback")
#: Genet's LB service rates (param.py ``--service_rates``).
DEFAULT_RATES = (0.5, 1.0, 2.0)
#: The links' rate both ways (Mbit/s): the messages are small; the delay is what matters.
DEFAULT_BANDWIDTH_MBPS = 100.0
WORKER_PORT = 7000
BALANCER_PORT = 7100
#: How long the processes may take to start (s).
START_TIMEOUT_S = 30.0
#: Beyond a run's expected length, how long it may take before it is ended (s).
RUN_MARGIN_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LbRunSettings:
    """What a run is made of besides its policy and workload (units in names)."""

    rates: tuple[float, ...] = DEFAULT_RATES
    worker_delay_ms: tuple[float, ...] = (0.0, 0.0, 0.0)
    client_delay_ms: float = 0.0
    bandwidth_mbps: float = DEFAULT_BANDWIDTH_MBPS
    backend: str = "netns"
    enforce: str = "pacing"
    time_unit_ms: float = TIME_UNIT_MS
    kill_worker: tuple[int, float] | None = None   # (worker index, workload ms after the client's start)
    seed: int = 0

    def tag(self) -> str:
        """A short hash of the settings: a journaled row is reused only by a run with the same settings."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _genet(*args: str) -> list[str]:
    """``genet balancer ARGS`` as ``python -m balancer ARGS`` (the balancer's commands alone)."""
    assert args[0] == "balancer"
    return [sys.executable, "-m", "balancer", *args[1:]]


def _env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT)] + ([path] if path else []))}


def _wait_ready(proc: subprocess.Popen, ready: Path, what: str, err: Path, timeout_s: float = START_TIMEOUT_S,
                parse: bool = True) -> int:
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            tail = err.read_text(errors="replace").strip().splitlines()[-1:] if err.exists() else []
            raise GenetRuntimeError(f"{what} exited ({proc.returncode}) before it was ready: "
                                    f"{tail[0] if tail else 'no output'}")
        if time.monotonic() > deadline:
            raise GenetRuntimeError(f"{what} was not ready within {timeout_s:g} s")
        time.sleep(0.005)
    return int(ready.read_text().strip()) if parse else 0


def _expected_length_s(workload, s: LbRunSettings) -> float:
    """An upper bound on a run's length: the last arrival, then all the work on the slowest worker."""
    ms = workload.duration_ms + workload.total_work / min(s.rates) + 4 * (max(s.worker_delay_ms) + s.client_delay_ms)
    return ms * s.time_unit_ms / 1000.0


def _answer_timeout_s(workload, s: LbRunSettings) -> float:
    """The balancer's answer timeout for a run: the default, or longer when the workload's largest job on the
    slowest worker takes longer (no event for that long is then normal)."""
    from balancer.server import ANSWER_TIMEOUT_S
    longest_s = float(workload.job_sizes_work.max()) / min(s.rates) * s.time_unit_ms / 1000.0
    return max(ANSWER_TIMEOUT_S, 1.5 * longest_s + 10.0)


def run_one(policy: str, workload, workload_path: Path, s: LbRunSettings, run_dir: Path) -> dict:
    """One run (see the module docstring); returns the row's measured part (no sim_*)."""
    from balancer.client import read_jobs
    from balancer.summary import accounting_problems, summarize
    run_dir.mkdir(parents=True, exist_ok=True)
    for f in run_dir.glob("*"):
        if f.is_file():
            f.unlink()
    n = len(s.rates)
    tu = f"{s.time_unit_ms:g}"
    env = _env()
    t0 = time.monotonic()
    with ExitStack() as stack:
        popen_worker, popen_client = [], None
        if s.backend == "netns":
            from emulation import LinkEmulator
            links = []
            for i in range(n):
                link = LinkEmulator(s.bandwidth_mbps, s.bandwidth_mbps, delay_ms=s.worker_delay_ms[i], backend="netns")
                links.append(stack.enter_context(link))
            client_link = stack.enter_context(LinkEmulator(s.bandwidth_mbps, s.bandwidth_mbps,
                                                           delay_ms=s.client_delay_ms, backend="netns"))
            worker_hosts = [link.emulated.address for link in links]
            popen_worker = [link.emulated.popen for link in links]
            listen_host = client_link.host.address
            popen_client = client_link.emulated.popen
        else:
            worker_hosts = ["127.0.0.1"] * n
            listen_host = "127.0.0.1"
        procs: list[subprocess.Popen] = []

        def start(cmd, popen, name):
            out = open(run_dir / f"{name}.err", "w")
            if popen is None:
                p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out, env=env, start_new_session=True)
                procs.append(p)
            else:
                p = popen(cmd, stdout=subprocess.DEVNULL, stderr=out, env=env)
            out.close()
            return p

        def stop_all():
            for p in procs:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            for p in procs:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        stack.callback(stop_all)
        workers = []
        for i in range(n):
            ready = run_dir / f"worker{i}.port"
            port = WORKER_PORT if s.backend == "netns" else 0
            p = start(_genet("balancer", "worker", "--rate", f"{s.rates[i]!r}", "--bind", worker_hosts[i],
                             "--port", str(port), "--enforce", s.enforce, "--name", f"w{i}", "--time-unit-ms", tu,
                             "--ready-file", str(ready)), popen_worker[i] if popen_worker else None, f"worker{i}")
            workers.append((p, ready))
        ports = [_wait_ready(p, ready, f"worker {i}", run_dir / f"worker{i}.err") for i, (p, ready) in enumerate(workers)]
        ready = run_dir / "balancer.port"
        worker_args = [a for i in range(n) for a in ("--worker", f"{worker_hosts[i]}:{ports[i]}:{s.rates[i]!r}")]
        bal = start(_genet("balancer", "serve", *worker_args, "--policy", policy, "--listen",
                           f"{listen_host}:{BALANCER_PORT if s.backend == 'netns' else 0}",
                           "--record", str(run_dir / "balancer.json"), "--seed", str(s.seed),
                           "--answer-timeout-s", f"{_answer_timeout_s(workload, s):.3f}",
                           "--time-unit-ms", tu, "--ready-file", str(ready)), None, "balancer")
        bal_port = _wait_ready(bal, ready, "the balancer", run_dir / "balancer.err")
        t_ready = time.monotonic()
        client = start(_genet("balancer", "replay", "--workload", str(workload_path), "--to",
                              f"{listen_host}:{bal_port}", "--record", str(run_dir / "client.jsonl"),
                              "--time-unit-ms", tu, "--start-file", str(run_dir / "client.start"),
                              "--answer-timeout-s", f"{_answer_timeout_s(workload, s):.3f}"),
                       popen_client, "client")
        killed = None
        limit_s = _expected_length_s(workload, s) + RUN_MARGIN_S
        if s.kill_worker is not None:
            k, at_ms = s.kill_worker
            _wait_ready(client, run_dir / "client.start", "the client", run_dir / "client.err", parse=False)
            time.sleep(max(0.0, at_ms * s.time_unit_ms / 1000.0))
            wp = workers[k][0]
            try:
                os.killpg(wp.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            killed = k
        try:
            client.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            raise GenetRuntimeError(f"{policy} on {workload.name}: the client did not finish within {limit_s:.0f} s "
                                    f"(see {run_dir}/client.err)") from None
        try:
            bal.wait(timeout=RUN_MARGIN_S)
        except subprocess.TimeoutExpired:
            pass
        t_done = time.monotonic()
    if not (run_dir / "client.jsonl").is_file():
        err = (run_dir / "client.err").read_text(errors="replace").strip().splitlines()[-1:]
        raise GenetRuntimeError(f"{policy} on {workload.name}: the client wrote no record "
                                f"({err[0] if err else 'no output'})")
    jobs = read_jobs(run_dir / "client.jsonl")
    record = json.loads((run_dir / "balancer.json").read_text()) if (run_dir / "balancer.json").is_file() else None
    problems = accounting_problems(jobs, workload.n_jobs)
    if problems:
        raise GenetRuntimeError(f"{policy} on {workload.name}: " + "; ".join(problems))
    row = summarize(jobs, record, len(s.rates), s.time_unit_ms)
    row.update({"killed_worker": killed, "setup_s": round(t_ready - t0, 3), "run_wall_s": round(t_done - t_ready, 3)})
    return row


def sim_row(policy: str, workload, s: LbRunSettings) -> dict:
    """The simulator's figures for the same policy, workload and rates, as ``sim_*``: Genet's simulator with
    FIFO queues (``queue_shuffle_prob`` 0, as the workers serve), the policy seeded as on the balancer."""
    from genet.lb.metrics import COLUMN_NAMES, PER_WORKER_FIELD, summarize
    from genet.lb.registry import make_policy
    from genet.lb.simulator import LbSetting, simulate
    pol = make_policy(policy, n_workers=len(s.rates), seed=s.seed)
    setting = LbSetting(name="emulated", service_rates=s.rates, queue_shuffle_prob=0.0)
    m = summarize(simulate(pol, [workload], setting, seeds=s.seed)[0])
    return {f"sim_{k}": m[k] for k in (*COLUMN_NAMES, PER_WORKER_FIELD)}


#: fields every row of this version has (a reused row must have them)
ROW_KEYS = ("jobs", "jobs_failed", "mean_completion_time_s", "p95_slowdown", "mean_utilisation", "reward")


class LbEmulated(Tier):
    """Runs of ``genet emulate lb``: one cell = (policy, workload, repeat), its data the workload and its file."""

    environment_field = "workload"
    repetition_field = "repeat"

    def __init__(self, settings: LbRunSettings, out: Path, with_sim: bool = True) -> None:
        self.s, self.out, self.with_sim = settings, out, with_sim
        self.name = "emulated links" if settings.backend == "netns" else "loopback"
        self._sims: dict = {}

    def reuse(self, cell: Cell, records: list[dict]) -> dict | None:
        # the same settings, and a row of this layout (a journal an older version wrote is run again)
        mine = [r for r in records if r.get("settings") == self.s.tag() and all(k in r for k in ROW_KEYS)]
        return mine[-1] if mine else None

    def run_one(self, cell: Cell) -> dict:
        workload, path = cell.data
        safe = "".join(c if c.isalnum() or c in "-_." else "_"
                       for c in f"{Path(cell.policy).stem}__{cell.environment}__r{cell.repetition}")
        row = {"policy": cell.policy, "workload": cell.environment, "repeat": cell.repetition,
               "backend": self.s.backend}
        row.update(run_one(cell.policy, workload, path, self.s, self.out / "runs" / safe))
        if self.with_sim:
            key = (cell.policy, cell.environment)
            if key not in self._sims:
                self._sims[key] = sim_row(cell.policy, workload, self.s)
            row.update(self._sims[key])
        row["run_dir"] = f"runs/{safe}"
        row["settings"] = self.s.tag()
        sim = row.get("sim_mean_completion_time_s")
        print(f"  {cell.policy} on {cell.environment} (repeat {cell.repetition}): {row['jobs_finished']}/"
              f"{row['jobs']} finished, mean completion {1000 * row['mean_completion_time_s']:.1f} ms"
              + (f" (simulator {1000 * sim:.1f})" if sim is not None else ""), file=sys.stderr, flush=True)
        return row


# ------------------------------------------------------------------------------------------- the command
def add_arguments(p) -> None:
    p.add_argument("--policy", action="append", default=None, metavar="POLICY",
                   help="least_work, sed, jsq, power_of_two, round_robin, random, PATH.onnx; repeat or comma-separate")
    p.add_argument("--workloads", default=None, metavar="DIR", help="a directory of *.workload files")
    p.add_argument("-n", "--n-workloads", type=int, default=None, help="generate this many workloads (seeds "
                                                                        "--seed, --seed+1, ...)")
    p.add_argument("--seed", type=int, default=0, help="first workload seed (and the policies' seed)")
    p.add_argument("--num-jobs", type=int, default=None, help="jobs per generated workload (Genet: 2000)")
    p.add_argument("--job-interval-ms", type=float, default=None, help="mean inter-arrival time (Genet: 100)")
    p.add_argument("--job-size-max-work", type=float, default=None, help="largest job size (Genet: 10000)")
    p.add_argument("--rates", default=",".join(f"{r:g}" for r in DEFAULT_RATES),
                   help="the workers' service rates, comma-separated (work units per ms; default 0.5,1,2)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay of every worker's path (ms)")
    p.add_argument("--worker-delay-ms", default=None, metavar="D0,D1,...",
                   help="one-way delay of each worker's path (ms; overrides --delay-ms)")
    p.add_argument("--client-delay-ms", type=float, default=0.0, help="one-way delay of the client's path (ms)")
    p.add_argument("--bandwidth-mbps", type=float, default=DEFAULT_BANDWIDTH_MBPS, help="every link's rate")
    p.add_argument("--backend", default="netns", choices=BACKENDS,
                   help="netns (emulated links in network namespaces; root) or loopback (127.0.0.1, no links)")
    p.add_argument("--enforce", default="pacing", choices=("pacing", "cgroup"),
                   help="how workers enforce their rate (cgroup: a cgroup v1 cpu quota; root)")
    p.add_argument("--time-unit-ms", type=float, default=TIME_UNIT_MS,
                   help="wall-clock ms per workload ms (0.5: twice as fast as real time)")
    p.add_argument("--kill-worker", default=None, metavar="I:MS",
                   help="kill worker I (SIGKILL) MS workload-ms after the client starts (fault injection)")
    p.add_argument("--repeats", type=int, default=1, help="runs per (policy, workload)")
    p.add_argument("--no-sim", action="store_true", help="skip the simulator's sim_* columns")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (resumable)")


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BadInputError(f"{what} {text!r}: expected comma-separated numbers") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise BadInputError(f"{what} {text!r}: expected comma-separated finite numbers")
    return vals


def settings_from_args(args) -> LbRunSettings:
    rates = _floats(args.rates, "--rates")
    if any(r <= 0 for r in rates):
        raise BadInputError(f"--rates {args.rates!r}: every rate must be > 0")
    if args.worker_delay_ms is not None:
        delays = _floats(args.worker_delay_ms, "--worker-delay-ms")
        if len(delays) != len(rates):
            raise BadInputError(f"--worker-delay-ms has {len(delays)} values for {len(rates)} workers (--rates)")
    else:
        delays = (float(args.delay_ms),) * len(rates)
    if any(d < 0 for d in delays) or args.client_delay_ms < 0:
        raise BadInputError("delays must be >= 0 ms")
    if not args.bandwidth_mbps > 0:
        raise BadInputError("--bandwidth-mbps must be > 0")
    if not (args.time_unit_ms > 0 and math.isfinite(args.time_unit_ms)):
        raise BadInputError("--time-unit-ms must be a positive number")
    kill = None
    if args.kill_worker:
        i, sep, at = args.kill_worker.partition(":")
        try:
            kill = (int(i), float(at))
        except ValueError:
            raise BadInputError(f"--kill-worker {args.kill_worker!r}: expected I:MS, e.g. 1:500") from None
        if not sep or not 0 <= kill[0] < len(rates) or not kill[1] >= 0:
            raise BadInputError(f"--kill-worker {args.kill_worker!r}: I must be a worker index 0..{len(rates) - 1} "
                                "and MS >= 0")
    return LbRunSettings(rates, delays, float(args.client_delay_ms), float(args.bandwidth_mbps), args.backend,
                         args.enforce, float(args.time_unit_ms), kill, int(args.seed))


def workloads_from_args(args, out: Path):
    """(workloads, their files): read from --workloads, or generated into OUT/workloads/."""
    from balancer.client import generated_workload
    from traces.workload import list_workload_files, read_workload, write_workload
    if args.workloads and args.n_workloads:
        raise BadInputError("give --workloads DIR or -n N, not both")
    if args.workloads:
        files = list_workload_files(args.workloads)
        return [read_workload(f) for f in files], files
    if not args.n_workloads or args.n_workloads < 1:
        raise BadInputError("give --workloads DIR or -n N (>= 1) workloads to generate")
    wls, files = [], []
    for k in range(args.n_workloads):
        wl = generated_workload(args.seed + k, args.num_jobs, args.job_interval_ms, args.job_size_max_work)
        files.append(write_workload(wl, out / "workloads" / f"{wl.name}.workload"))
        wls.append(wl)
    return wls, files


def parse_policies(args) -> list[str]:
    from genet.lb.registry import make_policy
    names = [p.strip() for item in args.policy for p in item.split(",") if p.strip()]
    if not names:
        raise BadInputError("--policy: no policy given")
    for name in names:
        make_policy(name, n_workers=len(_floats(args.rates, "--rates")), where="--policy")  # a bad name fails now
    return list(dict.fromkeys(names))


def run_emulate_lb(args) -> int:
    s = settings_from_args(args)
    policies = parse_policies(args)
    if args.repeats < 1:
        raise BadInputError(f"--repeats must be >= 1, got {args.repeats}")
    if s.backend == "netns" and os.geteuid() != 0:
        raise GenetRuntimeError("genet emulate lb --backend netns needs root (network namespaces, TUN devices); "
                                "--backend loopback runs without")
    if s.enforce == "cgroup" and os.geteuid() != 0:
        raise GenetRuntimeError("--enforce cgroup needs root (a cgroup v1 cpu quota)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workloads, files = workloads_from_args(args, out)
    names = [w.name for w in workloads]
    if len(set(names)) != len(names):
        raise BadInputError("two workloads have the same name: " + ", ".join(sorted({n for n in names
                                                                                     if names.count(n) > 1})))
    est = sum(_expected_length_s(w, s) for w in workloads) * len(policies) * args.repeats
    print(f"genet emulate lb: {len(policies)} policies x {len(workloads)} workloads x {args.repeats} repeats on "
          f"{s.backend}; at most ~{est:.0f} s of runs", file=sys.stderr, flush=True)
    run_meta = None
    try:
        from foundation.runmeta import write_run_metadata
        run_meta = write_run_metadata(out, seed=args.seed, extra={
            "use_case": "lb", "backend": s.backend, "policies": policies, "workloads": names,
            "settings": asdict(s)})
    except ImportError:
        pass
    from foundation.journal import Journal
    data = {name: (w, f) for name, w, f in zip(names, workloads, files)}
    cells = matrix(policies, names, args.repeats, data=lambda p, i, r: data[names[i]])
    tier = LbEmulated(s, out, with_sim=not args.no_sim)
    outcome = Experiment(tier, Journal(out / "results.jsonl")).run(cells)
    rows = outcome.rows
    write_outputs(rows, out)
    print(format_summary(rows))
    print(f"results: {out}/results.csv, results.json, summary.txt")
    status = 1 if any(r.get("jobs_failed") for r in rows) and s.kill_worker is None else 0
    if run_meta is not None:
        run_meta.finish(out, status=status)
    return status


# ------------------------------------------------------------------------------------------------ outputs
HEADLINE = ("mean_completion_time_s", "p95_slowdown", "mean_utilisation", "reward")


def summary_rows(rows: list[dict]) -> list[dict]:
    import numpy as np
    out = []
    for policy in dict.fromkeys(r["policy"] for r in rows):
        mine = [r for r in rows if r["policy"] == policy]
        g = {"policy": policy, "runs": len(mine), "jobs": sum(r["jobs"] for r in mine),
             "failed": sum(r["jobs_failed"] for r in mine)}
        for k in HEADLINE:
            emu = float(np.nanmean([r[k] for r in mine]))
            sims = [r.get(f"sim_{k}", math.nan) for r in mine]
            sim = float(np.nanmean(sims)) if not all(math.isnan(v) for v in sims) else math.nan
            g[k], g[f"sim_{k}"] = emu, sim
            g[f"gap_{k}_pct"] = 100.0 * (emu - sim) / abs(sim) if sim and not math.isnan(sim) else math.nan
        out.append(g)
    return out


def format_summary(rows: list[dict]) -> str:
    head = (f"{'policy':<22} {'runs':>4} {'jobs':>6} {'failed':>6} " +
            " ".join(f"{k + ' emu/sim (gap %)':>40}" for k in HEADLINE))
    lines = ["real servers vs the simulator (means over runs; gap = (emulated - simulated) / simulated)", head,
             "-" * len(head)]
    for g in summary_rows(rows):
        cells = " ".join(f"{g[k]:>14.4g}/{g['sim_' + k]:<14.4g}({g['gap_' + k + '_pct']:+6.1f})" for k in HEADLINE)
        lines.append(f"{Path(g['policy']).name:<22} {g['runs']:>4} {g['jobs']:>6} {g['failed']:>6} {cells}")
    return "\n".join(lines)


def write_outputs(rows: list[dict], out: Path) -> None:
    import csv
    import io
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(out / "results.json", json.dumps(rows, indent=1))
    atomic_write_text(out / "summary.txt", format_summary(rows) + "\n")


__all__ = ["LbRunSettings", "LbEmulated", "run_one", "sim_row", "run_emulate_lb", "add_arguments",
           "settings_from_args", "write_outputs", "format_summary", "summary_rows", "BACKENDS", "DEFAULT_RATES"]
