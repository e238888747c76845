"""``genet emulate cc``: CC policies and kernel TCP over trace-driven emulated links, beside the simulator.

Each (policy, trace, repeat) runs over its own :class:`emulation.LinkEmulator` (:mod:`sender.runs`: the
link, the receiver and sender processes; netns by default; its
host side in a namespace of its own, so ``--jobs`` links run at once without clashing) for the run's
duration in real time (:meth:`traces.Trace.run_duration_s`, as ``genet eval cc``: ``--duration-s``, over
which the trace loops, else the trace's length, 30 s for a Mahimahi file; at least 1 s):

* uplink (emulated -> host side) = the trace, with its one-way delay (both directions), a droptail
  queue of its ``queue_packets`` and its random loss (each overridable; defaults as the simulator:
  25 ms, 10 packets, 0); downlink (ACKs) = :data:`sender.runs.ACK_LINK_MBPS` constant, as Pantheon's 12 Mbit/s
  acklink but wide enough for one ACK per packet at any rate (the simulator's ACK path has no
  bandwidth limit), so an ACK's one-way delay is the propagation delay: that link is not logged
  (its log would hold 83 opportunity lines per ms);
* our sender (``genet sender send``) runs on the emulated side, the receiver on the host side;
  kernel schemes run ``iperf3 -C NAME`` the same way with a fresh one-shot server
  (:mod:`sender.kernel`).

Every scheme's headline figures come from the link's own logs
(:func:`genet.cc.metrics.from_link_logs`), so they are defined alike for all of them; each row also
carries the scheme's own view (our sender's RTT/loss, iperf3's throughput/RTT/retransmits) and the
simulator's figures for the same policy and trace (``sim_*``). With ``--backend mininet`` (htb on a
bridge; this kernel has no netem, so it needs ``--delay-ms 0`` and no random loss) that log is built
from packet captures on the bridge's ports (:mod:`emulation.bridge_capture`): arrival before the htb
queue, departure after it — the same log format and metric code.

Outputs in ``--out``: ``results.csv``/``results.json`` (genet eval cc's columns + ``repeat``,
``backend``, own-view and ``sim_*`` columns), ``results.jsonl`` (journal: a rerun skips finished
runs), ``summary.txt`` (Table-7 form), ``gap.csv``/``gap.txt`` (per policy: emulation, simulator and
the gap of each column of :data:`genet.cc.metrics.COLUMNS`), ``timeseries.png``, ``reward_cdf.png``,
``gap_scatter.png``, ``runs/<run>/`` (sender log, receiver/iperf3 output), ``run-metadata.json``.
With ``--flows P1,P2``: the policies run at once through one bottleneck (netns backend; per-flow
figures from the link's packet captures); ``flows.csv`` holds each flow's throughput share and
Jain's fairness index.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from foundation.atomic import atomic_write_text
from genet.cc.metrics import COLUMN_NAMES, from_link_logs, summarize
from foundation.errors import BadInputError, GenetRuntimeError
from foundation.experiment import Experiment, Tier, in_parallel, matrix
from emulation.cluster import cluster_executor, one_line, run_in_node_folder, write_node_files
from sender.runs import (RECEIVER_PORT, LinkSettings, csv_text, cut_trace, link_settings, make_link, sender_cmd,
                         set_priority_for_jobs, start_receiver, union_columns)


def _own_view_sender(run_dir: Path, name: str = "sender") -> dict:
    from sender.udp_sender import read_log
    recs = [r for r in read_log(run_dir / f"{name}.jsonl") if r.get("type") == "summary"]
    if not recs:
        return {}
    r = recs[-1]
    return {"sender_throughput_mbps": r.get("throughput_mbps"), "sender_mean_rtt_ms": r.get("mean_rtt_ms"),
            "sender_min_rtt_ms": r.get("min_rtt_ms"), "sender_loss_rate": r.get("loss_rate"),
            "sender_send_rate_mbps": r.get("send_rate_mbps"), "receiver_throughput_mbps": r.get("receiver_throughput_mbps"),
            "sender_decision_p99_us": r.get("decision_p99_us"), "sender_exit_status": r.get("exit_status")}


def run_one(policy, trace, s: LinkSettings, backend: str, run_dir: Path, repeat: int, keep_logs: bool = False,
            port_offset: int = 0) -> dict:
    """One (policy, trace, repeat) over its own link; returns the result row (without sim_*)."""
    from emulation.logstats import read_link_log_arrays
    from sender.iperf3 import run_over_link
    run_dir.mkdir(parents=True, exist_ok=True)
    own: dict = {}
    t_start = time.monotonic()
    with make_link(trace, s, backend, run_dir) as link:
        t_link = time.monotonic()
        if policy.is_kernel_tcp:
            own = run_over_link(link, policy.tcp_name, s.duration_s, port=5201 + port_offset,
                                json_path=str(run_dir / "iperf3.json")).to_row("iperf3_")
        else:
            recv = start_receiver(link, run_dir, RECEIVER_PORT + port_offset)
            res = link.emulated.run(sender_cmd(policy, link, s, run_dir, RECEIVER_PORT + port_offset),
                                    timeout_s=s.duration_s + 60)
            (run_dir / "sender.out").write_text(res.stdout + res.stderr)
            try:
                recv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            own = _own_view_sender(run_dir)
            if res.returncode != 0:
                own["sender_error"] = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1][:300]
    t_done = time.monotonic()
    up = read_link_log_arrays(run_dir / "uplink.log")
    m = from_link_logs(up, None, s.delay_ms, policy.label, trace.name, s.mean_bandwidth_mbps, s.queue_packets,
                       s.loss_rate, s.duration_s, seed=repeat)
    from foundation.packets import TUN_HEADER_BYTES
    n_bins = int(up.departure_ms.max() // 500) + 1 if up.departure_ms.size else 0
    bits = np.bincount(np.maximum(up.departure_ms, 0) // 500, weights=(up.departure_bytes - TUN_HEADER_BYTES) * 8.0,
                       minlength=n_bins) if n_bins else np.zeros(0)
    atomic_write_text(run_dir / "series.json", json.dumps({"start_s": [0.5 * k for k in range(n_bins)],
                                                           "throughput_mbps": (bits / 0.5e6).tolist()}))
    if not keep_logs:
        (run_dir / "uplink.log").unlink(missing_ok=True)
    timing = {"link_setup_s": t_link - t_start, "run_wall_s": t_done - t_start,
              "analysis_s": time.monotonic() - t_done}
    return {**m.to_dict(), "repeat": repeat, "backend": backend, "clock": s.clock,
            "run_duration_s": round(float(s.duration_s), 6),
            **own, **timing}


def sim_row(policy, trace, s: LinkSettings, loaded) -> dict:
    """The simulator's Table-7 figures for the same policy and link (NaN for kernel-only schemes)."""
    if policy.kind == "tcp":
        return {f"sim_{k}": math.nan for k in COLUMN_NAMES}
    from genet.cc.link import LinkConfig
    from genet.cc.policies import run_policy
    tr = cut_trace(trace, s.duration_s)
    link = LinkConfig.from_trace(tr, delay_ms=s.delay_ms, queue_packets=s.queue_packets, loss_rate=s.loss_rate)
    log = run_policy(policy, tr, link, seed=0, loaded=loaded)
    m = summarize(log, link, policy.label, tr.name)
    return {f"sim_{k}": getattr(m, k) for k in COLUMN_NAMES}


def _run_key(row) -> tuple:
    """What identifies a run (for resuming): policy, trace, repetition, backend and its clock, link settings and
    the run's length (rows of older versions have no ``run_duration_s``: they are rerun; no ``clock``: "ms")."""
    run_s = row.get("run_duration_s")
    return (row["policy"], row["trace"], int(row["repeat"]), row["backend"], row.get("clock") or "ms",
            round(float(row["min_rtt_ms"]), 6), float(row["queue_packets"]), float(row["link_loss_rate"]),
            None if run_s is None else round(float(run_s), 6))


def validate(args):
    """Everything that can be wrong with the input, checked before any link is made."""
    from genet.cc.aurora import AuroraConfig
    from genet.cc.registry import load_aurora_policy, parse_policies
    from sender.kernel import check_iperf3, check_kernel_algorithm
    from traces import load_traces
    policies = parse_policies(args.policy or [], real_packets=True)
    flows = parse_policies([args.flows], real_packets=True) if args.flows else []
    if args.flows and len(flows) < 2:
        raise BadInputError("--flows needs at least two policies, e.g. --flows models/cc/genet.onnx,cubic")
    loaded = {}
    for p in policies + flows:
        if p.kind == "onnx" and p.label not in loaded:
            loaded[p.label] = load_aurora_policy(p.path, AuroraConfig())
        if p.is_kernel_tcp:
            check_iperf3()
            check_kernel_algorithm(p.tcp_name)
    if args.repeats < 1:
        raise BadInputError(f"--repeats must be >= 1, got {args.repeats}")
    if args.jobs < 1:
        raise BadInputError(f"--jobs must be >= 1, got {args.jobs}")
    if args.duration_s is not None:
        from traces.trace import check_run_duration_s
        check_run_duration_s(args.duration_s, "--duration-s")
    if args.flows and args.backend != "netns":
        raise BadInputError("--flows needs the netns backend (per-flow figures come from its packet captures)")
    traces = load_traces(args.traces)
    if not traces:
        raise BadInputError(f"--traces {args.traces}: no traces found")
    settings = [link_settings(t, args.delay_ms, args.queue_packets, args.loss_rate, args.duration_s,
                              getattr(args, "clock", "ms")) for t in traces]
    for t, s in zip(traces, settings):  # the backend's own checks
        make_link(t, s, args.backend, None)
    if args.backend == "mininet" and any(s.delay_ms > 0 or s.loss_rate > 0 for s in settings):
        from emulation.mininet_backend import require_netem
        require_netem()  # no netem here: delay/loss fail now, with the backend's clear error (--delay-ms 0 runs)
    if os.geteuid() != 0:
        raise GenetRuntimeError("genet emulate cc needs root (network namespaces, TUN devices)")
    return policies, flows, traces, settings, loaded


def _unique(names):
    out, seen = [], {}
    for n in names:
        seen[n] = seen.get(n, -1) + 1
        out.append(n if seen[n] == 0 else f"{n}#{seen[n]}")
    return out


def run_emulate_cc(args) -> int:
    from foundation.extras import require
    require("sim", "genet emulate cc")  # the sim_* columns and LinkConfig defaults
    policies, flows, traces, settings, loaded = validate(args)
    set_priority_for_jobs(args.jobs if policies else len(flows))
    from traces import Trace
    names = _unique([t.name or f"trace-{i:04d}" for i, t in enumerate(traces)])
    traces = [t if t.name == n else Trace(t.timestamps_s, t.bandwidth_mbps, name=n, delay_ms=t.delay_ms,
                                          loss_rate=t.loss_rate, queue_packets=t.queue_packets, meta=t.meta)
              for t, n in zip(traces, names)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_meta = None
    try:
        from foundation.runmeta import write_run_metadata
        run_meta = write_run_metadata(out, seed=list(range(args.repeats)), extra={
            "use_case": "cc", "emulation_backend": args.backend, "policies": [p.label for p in policies],
            "flows": [p.label for p in flows], "traces": str(args.traces),
            "reward_normaliser": "link capacity measured from the uplink log (# opportunities)"})
    except ImportError:
        pass
    status = 0
    if policies:
        rows = run_matrix(policies, traces, settings, args, out, loaded)
        write_outputs(rows, out, plots=not args.no_plots)
        from genet.cc.evaluate import format_summary, summary_rows
        from types import SimpleNamespace
        print(format_summary(summary_rows([SimpleNamespace(**r) for r in rows])))
        print(format_gap(gap_rows(rows), rows))
        print(f"results: {out}/results.csv, results.json, summary.txt, gap.txt")
        status = 1 if any(r.get("sender_error") for r in rows) or getattr(args, "runs_failed", 0) else 0
    if flows:
        from sender.flows import run_flows
        status = max(status, run_flows(flows, traces, settings, args, out, loaded))
    if run_meta is not None:
        run_meta.finish(out, status=status)
    return status


class EmulatedCc(Tier):
    """The emulated-link tier of ``genet emulate cc`` (a :class:`foundation.experiment.Tier`): a cell is a policy
    on one trace, one repetition (``cell.data``: the policy, the trace, its :class:`LinkSettings`); ``jobs``
    cells run at once, each over its own link (:func:`run_one`), and each row gets the simulator's figures for
    the same policy and trace (``sim_*``, unless ``no_sim``). A journaled row stands for a cell with the same
    policy, trace, repetition, backend, link settings and run length."""

    name = "emulated link"

    def __init__(self, args, out: Path, loaded, planned: int) -> None:
        self.args, self.out, self.loaded, self.planned = args, out, loaded, planned
        self.failed: list[str] = []  # runs lost with their node (Ray): reported, rerun next time
        self.sims: dict[tuple, dict] = {}
        self.slots = list(range(args.jobs))  # port offsets: on mahimahi every host side is the root namespace
        self.lock = threading.Lock()

    def key(self, cell):
        p, t, s = cell.data
        return (p.label, t.name, cell.repetition, self.args.backend, s.clock, round(2 * s.delay_ms, 6),
                float(s.queue_packets), float(s.loss_rate), round(float(s.duration_s), 6))

    def record_key(self, record):
        try:
            return _run_key(record)
        except (KeyError, TypeError, ValueError):
            return None

    def run_one(self, cell) -> dict:
        p, t, s = cell.data
        safe = _safe_name(p.label, t.name, cell.repetition)
        with self.lock:
            slot = self.slots.pop()
        try:
            row = run_one(p, t, s, self.args.backend, self.out / "runs" / safe, cell.repetition, port_offset=slot)
        finally:
            with self.lock:
                self.slots.append(slot)
        row["run_dir"] = f"runs/{safe}"
        return row

    def run(self, cells):
        ray_address = getattr(self.args, "ray_address", None)
        at_once = self.args.jobs
        if ray_address and cells:
            executor = cluster_executor(ray_address, "genet emulate cc --ray-address", self.args.backend)
            at_once = executor.workers
            pairs = self._on_nodes(executor, cells)
        else:
            pairs = in_parallel(cells, self.run_one, self.args.jobs)
        if cells:
            print(f"genet emulate cc: {len(cells)} runs ({self.planned - len(cells)} already done), "
                  f"{at_once} at a time{' on ' + ray_address if ray_address else ''}, "
                  f"~{sum(c.data[2].duration_s for c in cells) / at_once:.0f} s", file=sys.stderr)
        for cell, row in pairs:
            p, t, s = cell.data
            if not self.args.no_sim:
                sk = (p.label, t.name)
                if sk not in self.sims:
                    self.sims[sk] = sim_row(p, t, s, self.loaded.get(p.label))
                row.update(self.sims[sk])
            print(f"  {p.label} on {t.name} (repeat {cell.repetition}): {row['throughput_mbps']:.2f} Mbit/s, "
                  f"p95 RTT {row['p95_rtt_ms']:.1f} ms, loss {row['loss_rate']:.3f}", file=sys.stderr)
            yield cell, row


    def _on_nodes(self, executor, cells):
        """The cells as Ray tasks on the cluster's nodes (:func:`emulate_cell`): each run in a node-local folder,
        its row and files sent back and written under ``out/runs``; a run whose node fails (or dies) is reported
        and left out (a rerun tries it again)."""
        specs = {}
        for c in cells:
            p, t, s = c.data
            model = Path(p.path).read_bytes() if p.kind == "onnx" else None
            specs[id(c)] = (p, t, s, self.args.backend, c.repetition, _safe_name(p.label, t.name, c.repetition), model)
        by_spec = {id(spec): c for c, spec in ((c, specs[id(c)]) for c in cells)}
        for spec, got in executor.map_unordered(emulate_cell, list(specs.values()), errors="return"):
            cell = by_spec[id(spec)]
            if isinstance(got, BaseException):
                self.failed.append(f"{cell.policy} on {cell.environment} (repeat {cell.repetition}): {one_line(got)}")
                print(f"  failed: {self.failed[-1]}", file=sys.stderr)
                continue
            row, files = got
            safe = spec[5]
            write_node_files(self.out / "runs" / safe, files)
            row["run_dir"] = f"runs/{safe}"
            yield cell, row


def _safe_name(label: str, trace: str, repeat: int) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{label}__{trace}__r{repeat}")


def emulate_cell(spec: tuple) -> tuple[dict, dict[str, bytes]]:
    """One emulated run on whichever node runs it (a Ray task of ``genet emulate cc --ray-address``): in a
    node-local temporary folder (:func:`emulation.cluster.run_in_node_folder`), the model (if any) written there
    from the bytes the head sent; returns the row and the run's files (sender log, receiver summary, series...),
    which the head writes under ``out/runs``."""
    import dataclasses
    policy, trace, settings, backend, repeat, safe, model = spec

    def body(tmp: Path):
        p = policy
        if model is not None:
            (tmp / "model.onnx").write_bytes(model)
            p = dataclasses.replace(policy, path=str(tmp / "model.onnx"))
        run_dir = tmp / safe
        return run_one(p, trace, settings, backend, run_dir, repeat), run_dir

    return run_in_node_folder(body)


def run_matrix(policies, traces, settings, args, out: Path, loaded) -> list[dict]:
    """Every policy on every trace, ``args.repeats`` rounds (a round of all policies x traces per repetition, in
    an order shuffled afresh each round; the files list them round by round), through the one experiment runner (:class:`foundation.experiment.Experiment`) and ``out/results.jsonl``."""
    from foundation.journal import Journal
    by_label = {p.label: p for p in policies}
    labels, names = [p.label for p in policies], [t.name for t in traces]
    cells = matrix(labels, names, args.repeats, order="shuffled",  # policies interleaved in time
                   data=lambda label, i, rep: (by_label[label], traces[i], settings[i]))
    place = {c.key: k for k, c in enumerate(matrix(labels, names, args.repeats, order="repetition"))}
    journal = Journal(out / "results.jsonl")  # a row per finished run: a rerun skips them
    tier = EmulatedCc(args, out, loaded, len(cells))
    rows = Experiment(tier, journal).run(cells).rows
    rows.sort(key=lambda r: place.get((r["policy"], r["trace"], int(r["repeat"])), len(place)))  # files: by round
    if tier.failed:
        print(f"genet emulate cc: {len(tier.failed)} runs failed (rerun the same command to retry them): "
              + "; ".join(tier.failed[:5]), file=sys.stderr)
        args.runs_failed = len(tier.failed)
    return rows


def gap_rows(rows) -> list[dict]:
    out = []
    for policy in dict.fromkeys(r["policy"] for r in rows):
        mine = [r for r in rows if r["policy"] == policy]
        g = {"policy": policy, "runs": len(mine)}
        for k in COLUMN_NAMES:
            emu = float(np.nanmean([r[k] for r in mine]))
            sim_vals = [r.get(f"sim_{k}", math.nan) for r in mine]
            sim = float(np.nanmean(sim_vals)) if not all(math.isnan(v) for v in sim_vals) else math.nan
            g[f"emu_{k}"], g[f"sim_{k}"], g[f"gap_{k}"] = emu, sim, emu - sim
        out.append(g)
    return out


def format_gap(gaps, rows=None) -> str:
    head = f"{'policy':<20} " + " ".join(f"{k + ' emu/sim':>26}" for k in COLUMN_NAMES)
    lines = ["sim-vs-emulation gap (means over runs; gap = emulation - simulator)", head, "-" * len(head)]
    for g in gaps:
        cells = " ".join(f"{g['emu_' + k]:>12.3f}/{g['sim_' + k]:<13.3f}" for k in COLUMN_NAMES)
        lines.append(f"{g['policy']:<20} {cells}")
    if rows:
        from foundation.stats import format_gap_verdicts, gap_verdicts
        lines += ["", format_gap_verdicts(gap_verdicts(rows, COLUMN_NAMES))]
    return "\n".join(lines)


def write_outputs(rows, out: Path, plots: bool = True) -> None:
    from types import SimpleNamespace

    from genet.cc.evaluate import format_summary, summary_rows
    atomic_write_text(out / "results.csv", csv_text(rows, union_columns(rows)))
    atomic_write_text(out / "results.json", json.dumps(rows, indent=1))
    summary = summary_rows([SimpleNamespace(**r) for r in rows])
    atomic_write_text(out / "summary.txt", format_summary(summary) + "\n")
    gaps = gap_rows(rows)
    atomic_write_text(out / "gap.csv", csv_text(gaps, union_columns(gaps)))
    atomic_write_text(out / "gap.txt", format_gap(gaps, rows) + "\n")
    from foundation.stats import gap_verdicts
    verdicts = gap_verdicts(rows, COLUMN_NAMES)
    atomic_write_text(out / "gap_verdicts.csv", csv_text(verdicts, union_columns(verdicts)))
    if plots:
        try:
            plot_outputs(rows, out)
        except ImportError:
            print("genet emulate cc: matplotlib is not installed ('plots' extra): no PNGs", file=sys.stderr)


def plot_outputs(rows, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    first = rows[0]["trace"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for r in rows:
        if r["trace"] == first and int(r["repeat"]) == 0 and (out / r.get("run_dir", "") / "series.json").is_file():
            s = json.loads((out / r["run_dir"] / "series.json").read_text())
            ax.step(s["start_s"], s["throughput_mbps"], where="post", label=r["policy"])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("throughput at the link (Mbit/s, 500 ms bins)")
    ax.set_title(f"trace {first} (emulated)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "timeseries.png", dpi=100)
    plt.close(fig)
    from genet.cc.evaluate import plot_reward_cdf
    plot_reward_cdf({p: [r["reward"] for r in rows if r["policy"] == p] for p in policies}, out / "reward_cdf.png",
                    "reward (emulation)", "CDF across runs")
    fig, axes = plt.subplots(1, len(policies), figsize=(4 * len(policies), 4), squeeze=False)
    for ax, p in zip(axes[0], policies):
        mine = [r for r in rows if r["policy"] == p]
        x = [r.get("sim_throughput_mbps", math.nan) for r in mine]
        y = [r["throughput_mbps"] for r in mine]
        ax.scatter(x, y, s=12)
        lim = max([v for v in x + y if np.isfinite(v)] + [1.0]) * 1.05
        ax.plot([0, lim], [0, lim], "k--", lw=0.8)
        ax.set_title(p)
        ax.set_xlabel("simulator throughput (Mbit/s)")
        ax.set_ylabel("emulation throughput (Mbit/s)")
    fig.tight_layout()
    fig.savefig(out / "gap_scatter.png", dpi=100)
    plt.close(fig)


__all__ = ["run_emulate_cc", "run_one", "sim_row", "validate", "gap_rows", "format_gap", "write_outputs"]
