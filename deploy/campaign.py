"""``genet deploy run``: a campaign in rounds, back to back, with a journal that makes reruns resume.

Plan: round r = 1..repetitions runs every scheme once on every path, in an order shuffled afresh for
each round (``random.Random(f"{seed}/{r}")``, so a rerun plans the same order). Runs follow each other
with no pause (back to back, as Pensieve's and Pantheon's real-world procedures).

One run (``r03-p1-cubic``, attempt ``a1``): connect (sessions are kept across runs; a dead one is
reopened), start the server side in the background once its port is free and wait until it listens
(one exec), start the client side and wait for it until the campaign's ``timeout_s`` (one exec), stop
what still runs by PID (a server that ends by itself gets a grace period first), fetch the logs over
SFTP (each file appears locally only complete), check them (:mod:`deploy.schemes`) and append one record to
``OUT/journal.jsonl`` (flushed and fsynced): status ``ok`` with the metrics, or ``failed`` with the
reason; plus the hosts, their clock offsets (NTP-style over SSH, re-measured every
:data:`CLOCK_MAX_AGE_S`), software versions, start time, wall time and orchestration overhead.

Pipelining: a run's end (stop, fetch, check) runs in a worker thread while the next run starts (its
server waits for the port to be free), and is journaled before the next run's record.

Faults: a host that is unreachable or dies fails the runs that need it (with the reason) and the
campaign goes on with the other paths. Ctrl-C / SIGTERM stops the remote processes of the current
run, records it as ``interrupted`` and exits. A rerun with the same ``--out`` skips finished runs and
retries failed ones up to ``retry_limit`` more times; processes a killed controller left on a host are
stopped first (their PID files are in the work directory).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from foundation.errors import BadInputError
from foundation.experiment import Tier
from foundation.journal import Journal, run_folder_lock

from deploy.config import USE_CASES, Campaign, Inventory, Scheme
from deploy.schemes import LogCheckError, RunContext, log_metrics, runner_for, scheme_context, unavailable_reason
from deploy.ssh import ClockOffset, RemoteError, Session

JOURNAL = "journal.jsonl"
CAMPAIGN_FILE = "campaign.json"
CLOCK_MAX_AGE_S = 300.0
READY_TIMEOUT_S = 30.0  # a video server may first write its sized content
PORT_FREE_TIMEOUT_S = 15.0  # the previous run's server (stopped meanwhile by its run's end) releases the port
SERVER_GRACE_S = 3.0  # a server that ends by itself (iperf3 -s -1) gets this long to write its report


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    round: int
    order: int  # position in its round (1-based)
    path: str
    scheme: Scheme


def plan_runs(campaign: Campaign) -> list[PlannedRun]:
    out = []
    for r in range(1, campaign.repetitions + 1):
        pairs = [(p, s) for p in campaign.paths for s in campaign.schemes]
        random.Random(f"{campaign.seed}/{r}").shuffle(pairs)
        for i, (p, s) in enumerate(pairs, 1):
            out.append(PlannedRun(f"r{r:02d}-{p}-{s.slug}", r, i, p, s))
    return out


def open_journal(out: Path) -> Journal:
    """The campaign's journal, ``OUT/journal.jsonl``: one record per run attempt (``run_id``, ``attempt``,
    ``status`` ``ok`` / ``failed`` / ``interrupted``, ...). Used by the campaign and its reports."""
    return Journal(Path(out) / JOURNAL, json_default=str)


def _failures(records: list[dict]) -> int:
    return sum(1 for r in records if r.get("status") == "failed")


def _next_attempt(records: list[dict], out: Path, run_id: str) -> int:
    """The attempt number of a run's next try: after its journaled attempts (``records``), and past any attempt
    folder a killed controller left unrecorded (its files are kept, not overwritten)."""
    attempt = len(records) + 1
    while (out / "runs" / run_id / f"a{attempt}").exists():
        attempt += 1
    return attempt


@dataclass
class CampaignSummary:
    planned: int = 0
    already_done: int = 0
    ok: int = 0
    failed: int = 0
    exhausted: list[str] = field(default_factory=list)
    overhead_s: list[float] = field(default_factory=list)
    out_dir: str = ""
    wall_s: float = 0.0  # from the first run's start to the last record
    own_s: float = 0.0  # the runs' own time (CC: duration_s each; ABR: the client's time)
    lanes: int = 1  # runs at once (parallel = "disjoint-paths": one per group of paths sharing hosts)

    @property
    def complete(self) -> bool:
        return self.already_done + self.ok == self.planned

    def describe(self) -> str:
        s = (f"campaign: {self.planned} runs planned; {self.already_done} already done, {self.ok} ok now, "
             f"{self.failed} failed now")
        if self.exhausted:
            s += f"; {len(self.exhausted)} gave up after the retry limit: {', '.join(self.exhausted[:8])}"
            s += "..." if len(self.exhausted) > 8 else ""
        if self.overhead_s and self.lanes > 1:
            o = sorted(self.overhead_s)
            s += (f"\n{self.lanes} lanes of disjoint paths at once: campaign wall {self.wall_s:.1f} s for the runs' own "
                  f"{self.own_s:.1f} s ({self.own_s / max(self.wall_s, 1e-9):.2f}x); each run's own span - duration: "
                  f"mean {sum(o) / len(o):.2f} s, max {o[-1]:.2f} s over {len(o)} runs")
        elif self.overhead_s:
            o = sorted(self.overhead_s)
            s += (f"\norchestration overhead per run: campaign wall {self.wall_s:.1f} s - the runs' own "
                  f"{self.own_s:.1f} s = {(self.wall_s - self.own_s) / len(o):.2f} s per run (ends overlap the next "
                  f"start); each run's own span - duration: mean {sum(o) / len(o):.2f} s, max {o[-1]:.2f} s over "
                  f"{len(o)} runs")
        if not self.complete:
            s += f"\nrerun the same command to retry the failed runs (journal: {self.out_dir}/{JOURNAL})"
        return s


class HostPool:
    """Open sessions, clock offsets and probe results per host for one campaign invocation."""

    def __init__(self, inventory: Inventory, accept_new: bool):
        self.inventory = inventory
        self.accept_new = accept_new
        self.sessions: dict[str, Session] = {}
        self.clocks: dict[str, tuple[float, ClockOffset]] = {}
        self.info: dict[str, dict] = {}

    def get(self, name: str) -> Session:
        s = self.sessions.get(name)
        if s is None:
            s = self.sessions[name] = Session(self.inventory.hosts[name], accept_new=self.accept_new)
        if not s.alive:
            s.connect()
        if name not in self.info:
            # one round trip: the host's facts, and stop what a killed controller left running there
            self.info[name] = s.helper("probe", s.work_dir, "--stop-stale")
        return s

    def clock(self, name: str) -> ClockOffset:
        t, off = self.clocks.get(name, (0.0, None))
        if off is None or time.monotonic() - t > CLOCK_MAX_AGE_S:
            off = self.get(name).clock_offset(samples=16)
            self.clocks[name] = (time.monotonic(), off)
        return off

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()


def _utc() -> str:
    from foundation.runmeta import utc_now
    return utc_now()


class _Interrupted(BaseException):
    pass


def read_campaign_file(out: Path) -> dict:
    """``OUT/campaign.json`` (what ``genet deploy run`` ran: the campaign and its hosts and paths), checked:
    a damaged file is a one-line :class:`BadInputError` naming it (FileNotFoundError if it is missing)."""
    cf = Path(out) / CAMPAIGN_FILE
    raw = cf.read_bytes()
    why = ""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        why = "not UTF-8"
    except (ValueError, RecursionError) as exc:
        why = f"not JSON: {str(exc)[:80]}" if raw.strip() else "empty"
    else:
        c = data.get("campaign") if isinstance(data, dict) else None
        if not isinstance(c, dict):
            why = "no \"campaign\" object"
        elif not (isinstance(c.get("name"), str) and c.get("use_case") in USE_CASES
                  and isinstance(c.get("repetitions"), int)
                  and all(isinstance(c.get(k), list) and all(isinstance(x, str) for x in c[k])
                          for k in ("schemes", "paths"))):
            why = "its campaign lacks name / use_case / repetitions / schemes / paths"
        elif not isinstance(data.get("inventory", {}), dict):
            why = "its inventory is not an object"
    if why:
        raise BadInputError(f"{cf} is damaged ({why}); it is what `genet deploy run` ran: restore it, or delete it "
                            f"and rerun `genet deploy run` to write it again")
    return data


def run_campaign(campaign: Campaign, inventory: Inventory, out_dir: str | os.PathLike, accept_new: bool = False,
                 progress: TextIO | None = None, stop_after: int | None = None) -> CampaignSummary:
    """Run (or resume) ``campaign``; returns what happened. ``stop_after``: end after that many runs (tests).
    Holds ``out_dir``'s run-folder lock (:func:`foundation.journal.run_folder_lock`): a second campaign controller on
    the same folder is refused at once, before it can stop the first one's runs as stale."""
    with run_folder_lock(out_dir, "genet deploy run"):
        return _run_campaign(campaign, inventory, Path(out_dir), accept_new, progress, stop_after)


def _run_campaign(campaign: Campaign, inventory: Inventory, out: Path, accept_new: bool, progress: TextIO | None,
                  stop_after: int | None) -> CampaignSummary:
    from foundation.runmeta import write_run_metadata
    out.mkdir(parents=True, exist_ok=True)
    _write_campaign_file(campaign, inventory, out)
    meta = write_run_metadata(out, seed=campaign.seed, extra={"campaign": campaign.name})
    from foundation.experiment import Cell, Experiment
    tier = CampaignTier(campaign, inventory, out, accept_new, progress, stop_after)
    cells = [Cell(pr.scheme.name, pr.path, pr.round, pr) for pr in plan_runs(campaign)]
    experiment = Experiment(tier, open_journal(out), on_row=tier.account)
    old_term = signal.getsignal(signal.SIGTERM)
    in_main = _in_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupted)
    status = 0
    try:
        outcome = experiment.run(cells)
        tier.summary.exhausted[:0] = [k for k, why in outcome.skipped.items()]
    except (KeyboardInterrupt, _Interrupted):
        status = 130
        try:
            for done in tier.settle():  # the previous run ended normally: keep its record
                experiment.settle([done])
        except BaseException:  # noqa: BLE001
            pass
        raise KeyboardInterrupt from None
    finally:
        tier.close()
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
        summary = tier.summary
        meta.finish(out, status=status if status else (0 if summary.complete else 1),
                    runs_ok=summary.ok, runs_failed=summary.failed)
    return tier.summary


def _write_campaign_file(campaign: Campaign, inventory: Inventory, out: Path) -> None:
    """``OUT/campaign.json``: the campaign and its hosts and paths; refused when ``out`` holds another campaign
    (other name, use case, schemes or paths)."""
    from foundation.atomic import atomic_write_text
    ident = {"name": campaign.name, "use_case": campaign.use_case, "schemes": [s.name for s in campaign.schemes],
             "paths": list(campaign.paths)}
    cf = out / CAMPAIGN_FILE
    if cf.exists():
        prev = read_campaign_file(out)
        old = {k: prev["campaign"].get(k) for k in ident}
        if old != ident:
            raise BadInputError(f"{out} holds another campaign ({old}); this one is {ident}: use another --out")
    atomic_write_text(cf, json.dumps({"campaign": campaign.to_json(),
                                      "inventory": {"file": str(inventory.file),
                                                    "hosts": {n: h.to_json() for n, h in inventory.hosts.items()},
                                                    "paths": {n: p.to_json() for n, p in inventory.paths.items()
                                                              if n in campaign.paths}}}, indent=1))


def _raise_interrupted(signum, frame):
    """SIGTERM stops a campaign like Ctrl-C."""
    raise _Interrupted()


class CampaignTier(Tier):
    """The SSH-host tier of ``genet deploy run`` (a :class:`foundation.experiment.Tier`): a cell is a planned run
    (``cell.data``: its :class:`PlannedRun`; key: its ``run_id``), run in plan order. A run with an ``ok`` record
    is done; one whose failures passed ``retry_limit`` is skipped; any other is tried once more (its next attempt
    number) and its record journaled (ok, failed). Pipelined unless ``stop_after`` is given: a run's back half
    (stop, fetch, check) runs in a worker thread while the next run's front half starts, and is journaled first."""

    name = "ssh host"

    def __init__(self, campaign: Campaign, inventory: Inventory, out: Path, accept_new: bool,
                 progress: TextIO | None, stop_after: int | None) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self.campaign, self.inventory, self.out = campaign, inventory, out
        self.progress, self.stop_after = progress, stop_after
        self.summary = CampaignSummary(planned=len(plan_runs(campaign)), out_dir=str(out))
        self.pool = HostPool(inventory, accept_new)
        self.executed = 0
        self.pending: list = []  # the previous run's cell, run and the future of its back half (pipelined)
        self.tails = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-tail")
        self.pipeline = stop_after is None
        self.t_start = time.monotonic()
        self.journaled: dict = {}

    def key(self, cell):
        return cell.data.run_id

    def record_key(self, record):
        return record.get("run_id")

    def reuse(self, cell, records):
        ok = [r for r in records if r.get("status") == "ok"]
        return ok[-1] if ok else None

    def skip(self, cell, records):
        if _failures(records) > self.campaign.retry_limit:
            return f"gave up after {_failures(records)} failures (retry_limit {self.campaign.retry_limit})"
        return None

    def _new_run(self, cell) -> "_Run":
        pr = cell.data
        return _Run(pr, _next_attempt(self.journaled.get(pr.run_id, []), self.out, pr.run_id), self.campaign,
                    self.inventory, self.pool, self.out)

    def lanes(self, cells) -> list[list]:
        """``cells`` split by paths that share a host (server or client): each lane's paths are linked through
        their hosts, lanes share none; each lane keeps the plan's order."""
        paths = self.inventory.paths
        parent = {p: p for p in dict.fromkeys(c.data.path for c in cells)}

        def root(p):
            while parent[p] != p:
                p = parent[p]
            return p

        by_host: dict[str, str] = {}
        for p in parent:
            for host in (paths[p].server, paths[p].client):
                if host in by_host:
                    parent[root(p)] = root(by_host[host])
                else:
                    by_host[host] = p
        lanes: dict[str, list] = {}
        for c in cells:
            lanes.setdefault(root(c.data.path), []).append(c)
        return list(lanes.values())

    def run(self, cells):
        if self.campaign.parallel == "disjoint-paths" and self.stop_after is None:
            yield from self._run_lanes(cells)
            return
        for cell in cells:
            run = self._new_run(cell)
            good = run.guarded(run.front)
            yield from self.settle()  # the previous run's end overlapped this run's start and client
            if good and self.pipeline:
                self.pending.append((cell, run, self.tails.submit(run.guarded, run.back)))
                continue
            if good:
                run.guarded(run.back)
            yield cell, run.rec
            if self.stop_after is not None and self.executed >= self.stop_after:
                break
        yield from self.settle()

    def _run_lanes(self, cells):
        """``parallel = "disjoint-paths"``: one thread per lane (:meth:`lanes`), each running its runs back to back
        (a run's end before the next one's start), at most ``max_lanes`` runs at once (every host opened first:
        :meth:`_open_hosts`); records are yielded (and journaled) as runs end. Ctrl-C: the
        lanes start no new run; the runs under way end and are journaled (:meth:`settle`)."""
        import queue
        import threading
        self.queue: queue.Queue = queue.Queue()
        self.stop_lanes = threading.Event()

        slots = threading.BoundedSemaphore(self.campaign.max_lanes or len(cells) or 1)  # runs at once

        def lane(lane_cells):
            try:
                for cell in lane_cells:
                    with slots:
                        if self.stop_lanes.is_set():
                            break
                        run = self._new_run(cell)
                        if run.guarded(run.front):
                            run.guarded(run.back)
                    self.queue.put((cell, run.rec))
            except BaseException as exc:  # noqa: BLE001 - a bug: raised in the controller's thread
                self.queue.put(exc)
            finally:
                self.queue.put(None)

        lanes = self.lanes(cells)
        self._open_hosts(lanes)
        self.lanes_open = len(lanes)
        self.summary.lanes = min(len(lanes), self.campaign.max_lanes or len(lanes))
        for i, lane_cells in enumerate(lanes):
            threading.Thread(target=lane, args=(lane_cells,), name=f"campaign-lane-{i}", daemon=True).start()
        yield from self._drain()

    def _open_hosts(self, lanes) -> None:
        """Before any lane sends: open every lane's hosts at once (session, probe, clock offset), so that no
        host's set-up competes with other paths' traffic (12 paths on 2 cores: set-ups during the flows took
        9.3 s on average, up to 17.9, and some sessions failed; with idle links ~5.5 s). A host that cannot be
        opened here is left to its runs, which retry and fail with the reason."""
        from concurrent.futures import ThreadPoolExecutor
        paths = self.inventory.paths
        hosts = sorted({name for lane_cells in lanes for cell in lane_cells
                        for name in (paths[cell.data.path].server, paths[cell.data.path].client)})

        def open_one(name):
            try:
                self.pool.get(name)
                self.pool.clock(name)
            except Exception:  # noqa: BLE001 - the run on this host reports it
                pass

        with ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="campaign-open") as ex:
            list(ex.map(open_one, hosts))

    def _drain(self):
        while getattr(self, "lanes_open", 0):
            item = self.queue.get()
            if item is None:
                self.lanes_open -= 1
            elif isinstance(item, BaseException):
                self.stop_lanes.set()
                raise item
            else:
                yield item

    def settle(self):
        """Wait for the runs under way (the previous run's back half; in parallel mode every lane's current
        run); yield each cell and record."""
        if getattr(self, "lanes_open", 0):
            self.stop_lanes.set()
            yield from self._drain()
        while self.pending:
            cell, run, fut = self.pending[0]
            fut.result()  # a bug in the back half is raised here
            self.pending.pop(0)
            yield cell, run.rec

    def account(self, cell, rec: dict, reused: bool) -> None:
        """Count a run in the summary and print its line (after its record is journaled)."""
        summary, pr = self.summary, cell.data
        if reused:
            summary.already_done += 1
            return
        self.executed += 1
        if rec["status"] == "ok":
            summary.ok += 1
            summary.overhead_s.append(rec["overhead_s"])
            summary.own_s += rec["wall_s"] - rec["overhead_s"]
        else:
            summary.failed += 1
            if _failures(self.journaled.get(pr.run_id, [])) + 1 > self.campaign.retry_limit:
                summary.exhausted.append(pr.run_id)
        summary.wall_s = time.monotonic() - self.t_start
        if self.progress is not None:
            tail = f"{rec['wall_s']:.1f} s" if rec["status"] == "ok" else rec.get("reason", "")
            print(f"[{rec['status']:>6}] {pr.run_id} (round {pr.round}, #{pr.order}): {tail}", file=self.progress,
                  flush=True)

    def close(self) -> None:
        self.tails.shutdown(wait=True)
        self.pool.close()


def _in_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def execute_run(pr: PlannedRun, attempt: int, campaign: Campaign, inventory: Inventory, pool: HostPool,
                out: Path) -> dict:
    """One run, start to end; always returns its journal record (``ok`` / ``failed``); Ctrl-C records
    ``interrupted`` and re-raises after stopping the remote processes."""
    run = _Run(pr, attempt, campaign, inventory, pool, out)
    if run.guarded(run.front):
        run.guarded(run.back)
    return run.rec


class _Run:
    """One run in two halves, so that a campaign can overlap one run's end with the next one's start.

    ``front``: hosts, clock offsets, checks; the server side started (after the port is free: the previous
    run's server may still be ending) and ready, in one exec; the client side started and waited for, in
    one exec. ``back``: the server side ended (a grace period first if it ends by itself), the logs
    fetched atomically over SFTP and checked, the metrics. :meth:`guarded` gives both halves the run's
    fault handling; the record is final once it returns False or after ``back``."""

    def __init__(self, pr: PlannedRun, attempt: int, campaign: Campaign, inventory: Inventory, pool: HostPool,
                 out: Path):
        self.pr, self.campaign, self.pool = pr, campaign, pool
        self.path = path = inventory.paths[pr.path]
        self.t0 = time.monotonic()
        self.rec: dict = {"run_id": pr.run_id, "attempt": attempt, "round": pr.round, "order": pr.order,
                          "path": pr.path, "scheme": pr.scheme.name, "scheme_kind": pr.scheme.kind,
                          "use_case": campaign.use_case, "duration_s": campaign.duration_s, "started_utc": _utc(),
                          "server": path.server, "client": path.client, "server_address": path.server_address}
        self.out = out
        self.local = out / "runs" / pr.run_id / f"a{attempt}"
        self.rec["dir"] = str(self.local.relative_to(out))
        self.runner = runner_for(pr.scheme, campaign.use_case)
        self.started: list[tuple[Session, int]] = []
        self.touched: list[Session] = []  # hosts this run may have started something on
        self.phases = self.rec["phases_s"] = {}
        self.mark = time.monotonic()
        self.attempt = attempt

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self.mark, 3)
        self.mark = now

    def guarded(self, half) -> bool:
        """Run ``half``; True if the run is still good. A RemoteError / LogCheckError fails the run (its
        processes stopped); Ctrl-C / SIGTERM stops them, records ``interrupted`` and re-raises."""
        try:
            half()
            return self.rec.get("status") != "failed"
        except (KeyboardInterrupt, BaseException) as exc:
            if not isinstance(exc, Exception):  # Ctrl-C / SIGTERM: stop what we started, record, re-raise
                _stop_all(self.started)
                for s in self.touched:  # also a process whose PID had not come back yet (interrupted while starting)
                    try:
                        s.helper("stop-stale", s.work_dir)
                    except BaseException:  # noqa: BLE001 - a dead host: its watchdog ends the process
                        pass
                self.rec.update(status="interrupted", reason="interrupted (Ctrl-C or SIGTERM)")
                _finish(self.rec, self.t0, self.campaign)
                _append_interrupted(self.out, self.rec)
                raise
            _stop_all(self.started)
            if not isinstance(exc, (RemoteError, LogCheckError)):
                raise
            self.rec.update(status="failed", reason=str(exc))
            _finish(self.rec, self.t0, self.campaign)
            return False

    def front(self) -> None:
        pr, campaign, pool, path, rec, runner = self.pr, self.campaign, self.pool, self.path, self.rec, self.runner
        if unavailable_reason(runner):
            raise LogCheckError(unavailable_reason(runner))
        self.srv, self.cli = srv, cli = pool.get(path.server), pool.get(path.client)
        self.touched += [srv, cli]
        self.lap("connect")
        hosts = {}
        for role, name, s in (("server", path.server, srv), ("client", path.client, cli)):
            off = pool.clock(name)
            info = pool.info[name]
            hosts[role] = {**s.host.to_json(), "host_key": s.host_key_fingerprint, "clock_offset_ms": off.offset_ms,
                           "clock_rtt_ms": off.rtt_ms, "python": info["python"], "kernel": info["uname"],
                           "iperf3": info.get("iperf3_version"), "genet": info.get("genet")}
        rec["hosts"] = hosts
        self.lap("clock")
        if pr.scheme.kind == "kernel" and pr.scheme.value not in pool.info[path.client]["allowed_cc"]:
            raise LogCheckError(f"{path.client}: congestion control {pr.scheme.value} is not allowed there "
                                f"(net.ipv4.tcp_allowed_congestion_control = "
                                f"{' '.join(pool.info[path.client]['allowed_cc'])})")
        self.remote_dirs = remote_dirs = {}
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for role, s in (("server", srv), ("client", cli)):
            # (the time suffix keeps an attempt a killed controller never recorded apart from its rerun)
            remote_dirs[role] = s.remote_path("runs", campaign.name, f"{pr.run_id}-a{self.attempt}-{stamp}")
        self.ctx = ctx = RunContext(campaign, path, pr.scheme, srv.host.python,
                                    client_genet=cli.remote_path("venv", "bin", "genet"),
                                    server_genet=srv.remote_path("venv", "bin", "genet"),
                                    remote_models=cli.remote_path("models"), server_videos=srv.remote_path("videos"),
                                    server_models=srv.remote_path("models"), round=pr.round)
        if runner.genet_command:
            for name, s in ((path.server, srv), (path.client, cli)):
                if not pool.info[name].get("genet"):
                    raise LogCheckError(f"{name}: genet is not installed in {s.remote_path('venv')} "
                                        f"(genet deploy push INVENTORY)")
        limit_s = campaign.timeout_s + 5
        sides = scheme_context(ctx)
        self.server, self.client = server, client = runner.server(sides), runner.client(sides)
        rec["server_command"], rec["client_command"] = server.argv, client.argv
        port = (runner.proto, campaign.port)
        ans = srv.launch(server.argv, remote_dirs["server"], server.name, limit_s,
                         port_free=(*port, PORT_FREE_TIMEOUT_S), ready=(*port, READY_TIMEOUT_S))
        if ans.port_free is False:
            raise RemoteError(srv.host.label, f"{runner.proto} port {campaign.port} is still in use after "
                                              f"{PORT_FREE_TIMEOUT_S:g} s (the previous run's server, or another "
                                              f"program); nothing started")
        self.started.append((srv, ans.pid))
        self.lap("start_server")
        if not ans.listening:
            err = srv.run(["tail", "-n", "2", f"{remote_dirs['server']}/{server.name}.err"], check=False,
                          timeout_s=15).stdout.strip().replace("\n", " | ")
            raise RemoteError(srv.host.label, f"the server side did not listen on {runner.proto} port "
                                              f"{campaign.port} within {READY_TIMEOUT_S:g} s"
                                              + (f": {err}" if err else ""))
        t_client = time.monotonic()
        rec["client_started_utc"] = _utc()
        remaining = campaign.timeout_s - (time.monotonic() - self.t0)
        ans = cli.launch(client.argv, remote_dirs["client"], client.name, limit_s, wait_exit_s=max(1.0, remaining))
        rec["client_s"] = round(time.monotonic() - t_client, 3)
        self.lap("client")
        if not ans.exited:
            self.started.append((cli, ans.pid))
            raise RemoteError(cli.host.label, f"the client side did not finish within the timeout "
                                              f"({campaign.timeout_s:g} s); stopped")

    def back(self) -> None:
        rec, runner, local, srv, cli = self.rec, self.runner, self.local, self.srv, self.cli
        self.mark = time.monotonic()
        grace = SERVER_GRACE_S if runner.server_exits_itself else 0.0
        for s, pid in self.started:
            s.stop(pid, grace_s=grace)
        self.started.clear()
        self.lap("stop")
        local.mkdir(parents=True, exist_ok=True)
        fetched = {}
        for role, s, side, extra in (("server", srv, self.server, runner.server_files),
                                     ("client", cli, self.client, runner.client_files)):
            for fname in [f"{side.name}.out", f"{side.name}.err", f"{side.name}.rc", *extra]:
                try:
                    fetched[fname] = s.fetch(f"{self.remote_dirs[role]}/{fname}", local / fname)
                except RemoteError as exc:
                    if fname.endswith(".rc"):
                        continue  # killed by its watchdog: no status; reported below
                    raise LogCheckError(f"log {fname} not collected: {exc}") from None
        rec["files"] = fetched
        self.lap("fetch")
        rc = _read_rc(local / f"{self.client.name}.rc")
        if rc != 0:
            err = (local / f"{self.client.name}.err").read_text(errors="replace").strip().splitlines()
            raise LogCheckError(f"the client side exited with status {rc}: {err[-1] if err else 'no stderr'}")
        rec["metrics"] = log_metrics(self.pr.scheme.kind, self.pr.scheme.value, self.campaign.duration_s, local)
        rec["status"] = "ok"
        _finish(rec, self.t0, self.campaign)


def _append_interrupted(out: Path, rec: dict) -> None:
    try:
        open_journal(out).append(rec)
    except OSError:
        pass


def _finish(rec: dict, t0: float, campaign: Campaign) -> None:
    rec["finished_utc"] = _utc()
    rec["wall_s"] = round(time.monotonic() - t0, 3)
    # CC runs last duration_s; an ABR session lasts as long as its video (the client's own time)
    own = campaign.duration_s if campaign.use_case == "cc" else rec.get("client_s", 0.0)
    rec["overhead_s"] = round(rec["wall_s"] - own, 3)


def _stop_all(started: list[tuple[Session, int]], raise_errors: bool = False) -> None:
    """Stop the started process groups, one thread per host (hosts answer in parallel)."""
    from concurrent.futures import ThreadPoolExecutor
    by_host: dict[int, tuple[Session, list[int]]] = {}
    for s, pid in started:
        by_host.setdefault(id(s), (s, []))[1].append(pid)
    started.clear()

    def stop(item):
        s, pids = item
        try:
            s.stop(*pids)
        except RemoteError:
            if raise_errors:
                raise
        except BaseException:  # noqa: BLE001 - interrupted or dead host: the remote watchdog ends them
            if raise_errors:
                raise

    with ThreadPoolExecutor(max_workers=max(1, len(by_host))) as ex:
        list(ex.map(stop, by_host.values()))


def _read_rc(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
