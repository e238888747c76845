"""``genet eval cc``: several CC policies side by side over a set of traces.

Outputs in ``--out DIR``:

* ``results.csv`` and ``results.json``: one row per (policy, trace) with the
  :class:`~genet.cc.metrics.RunMetrics` columns (``trace``,
  ``throughput_mbps``, ``p90_rtt_ms``, ``p95_rtt_ms``, ``loss_rate``,
  ``reward``, ... — :data:`genet.cc.metrics.COLUMNS` among them);
* ``results.jsonl``: the same rows appended as each run finishes, so results
  survive a crash and a rerun with the same arguments resumes (rows already
  there for the same policy, trace and seed are reused);
* ``summary.csv`` / ``summary.txt``: the per-policy means in the form of the
  Genet paper's CC table (throughput, tail latency, loss, reward);
* ``timeseries.png``: throughput and delay over time of every policy on the
  first trace; ``reward_cdf.png``: the CDF of the reward across traces.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from genet.cc.aurora import AuroraConfig
from genet.cc.link import LinkConfig
from genet.cc.metrics import COLUMN_NAMES, RunMetrics, summarize, time_series
from genet.cc.policies import CcPolicy, load_aurora_policy, run_policy
from foundation.atomic import atomic_write_text
from foundation.experiment import Tier
from traces import Trace

SUMMARY_COLUMNS = ("policy", "traces", *COLUMN_NAMES, "reward_std")


def summary_rows(rows: Sequence[RunMetrics]) -> list[dict]:
    out = []
    for policy in dict.fromkeys(r.policy for r in rows):
        mine = [r for r in rows if r.policy == policy]
        col = {k: np.array([getattr(r, k) for r in mine], float) for k in COLUMN_NAMES}
        out.append({"policy": policy, "traces": len(mine),
                    **{k: float(np.nanmean(v)) for k, v in col.items()},
                    "reward_std": float(np.std(col["reward"]))})
    return out


def format_summary(summary: list[dict], reward_form: str = "genet") -> str:
    head = (f"{'policy':<24} {'traces':>6} {'tput (Mbps)':>12} {'p90 RTT (ms)':>15} {'p95 RTT (ms)':>15} "
            f"{'loss':>7} {'reward (' + reward_form + ')':>16}")
    lines = [head, "-" * len(head)]
    for s in summary:
        lines.append(f"{s['policy']:<24} {s['traces']:>6d} {s['throughput_mbps']:>12.2f} {s['p90_rtt_ms']:>15.1f} "
                     f"{s['p95_rtt_ms']:>15.1f} {s['loss_rate']:>7.3f} "
                     f"{s['reward']:>9.2f} ± {s['reward_std']:<6.2f}")
    return "\n".join(lines)


def compare_policies(policies: Sequence[CcPolicy], traces: Sequence[Trace],
                     out_dir: str | os.PathLike | None = None, seed: int = 0, reward_form: str = "genet",
                     aurora: AuroraConfig | None = None, queue_packets: float | None = None,
                     loss_rate: float | None = None, delay_ms: float | None = None, progress: bool = True,
                     plots: bool = True, duration_s: float | None = None, jobs: int = 1,
                     ray_address: str | None = None) -> list[RunMetrics]:
    """``genet eval cc``: run every policy on every trace (:func:`genet.cc.policies.run_policy`, one run
    each); write the outputs when ``out_dir`` is given (holding its run-folder lock:
    :func:`foundation.journal.run_folder_lock`). Each run lasts ``trace.run_duration_s(duration_s)`` (the trace
    looped or cut to it; ``genet emulate cc`` uses the same definition). ``jobs`` > 1: the runs go to that many
    worker processes; ``ray_address``: to Ray tasks on that cluster (:mod:`foundation.executor`); the rows are
    the same either way. (Not named ``evaluate``: that is ABR's one policy over a trace set,
    :func:`genet.abr.evaluate.evaluate`.)"""
    import contextlib

    traces = [t.looped_to(t.run_duration_s(duration_s)) for t in traces]

    from foundation.journal import run_folder_lock
    with run_folder_lock(out_dir, "genet eval cc") if out_dir is not None else contextlib.nullcontext():
        return _evaluate(policies, traces, out_dir, seed, reward_form, aurora, queue_packets, loss_rate, delay_ms,
                         progress, plots, jobs, ray_address)


class SimulatedCc(Tier):
    """The simulator tier of ``genet eval cc`` (a :class:`foundation.experiment.Tier`): a cell is a policy on
    one trace (``cell.data``: the trace and its :class:`LinkConfig`); its row is the run's :class:`RunMetrics`.
    A journaled row stands for a cell with the same policy, trace, seed, link settings and run length. The
    first trace of each policy is simulated again when plots are drawn (its time series is not journaled)."""

    name = "simulator"

    def __init__(self, seed, reward_form, aurora, loaded, plots, executor=None):
        self.seed, self.reward_form, self.aurora, self.loaded, self.plots = seed, reward_form, aurora, loaded, plots
        self.executor = executor
        self.series: dict = {}
        self.policies: dict = {}
        self.first: set = set()

    def key(self, cell):
        link = cell.data[1]
        # what identifies a run: RunMetrics.run_key and the run's length (the trace looped or cut to it)
        return (cell.policy, cell.environment, self.seed, link.queue_packets, round(2 * link.delay_ms, 9),
                link.loss_rate, round(link.duration_s, 6))

    def record_key(self, record):
        rec = dict(record)
        run_s = rec.pop("run_duration_s", None)  # rows of older versions have none: rerun
        try:
            return RunMetrics(**rec).run_key + (run_s,)
        except (TypeError, ValueError):
            return None  # not a row of this layout

    def reuse(self, cell, records):
        if not records or (self.plots and (cell.policy, cell.environment) in self.first):
            return None
        old = dict(records[-1])
        old.pop("run_duration_s", None)
        m = RunMetrics(**old)
        return replace(m, reward=m.reward_genet if self.reward_form == "genet" else m.reward_aurora)

    def record(self, cell, row):
        if self.key(cell) in self.journaled:  # a first-trace run redone for its plot is journaled once
            return None
        return {**row.to_dict(), "run_duration_s": round(cell.data[1].duration_s, 6)}

    def run(self, cells):
        if self.executor is None:
            for cell in cells:
                trace, link = cell.data
                policy = self.policies[cell.policy]
                row, series = simulate_cell((policy, trace, link, cell.environment, self.seed, self.aurora,
                                             self.reward_form, (cell.policy, cell.environment) in self.first),
                                            self.loaded.get(policy.label))
                if series is not None:
                    self.series[policy.label] = series
                yield cell, row
            return
        # worker processes or Ray tasks: each cell carries everything it needs (its seed included), so the
        # rows are those of the serial run
        specs = {id(c): (self.policies[c.policy], *c.data, c.environment, self.seed, self.aurora, self.reward_form,
                         (c.policy, c.environment) in self.first) for c in cells}
        by_spec = {id(spec): c for c, spec in ((c, specs[id(c)]) for c in cells)}
        from foundation.executor import chunks_for
        # the costliest runs first (a run's events grow with the packets its link carries: mean rate x length),
        # small chunks last: the workers finish together instead of one waiting on a late 100-Mbit/s link
        order = sorted(specs.values(), key=lambda sp: -sp[2].mean_bandwidth_mbps * sp[2].duration_s)
        chunk = chunks_for(len(specs), self.executor.workers, per_worker=16)
        for spec, (row, series) in self.executor.map_unordered(simulate_cell, order, chunk=chunk):
            cell = by_spec[id(spec)]
            if series is not None:
                self.series[cell.policy] = series
            yield cell, row


_LOADED: dict = {}  # a worker process's loaded ONNX policies, by (path, Aurora config)


def simulate_cell(spec: tuple, loaded=None) -> tuple[RunMetrics, tuple | None]:
    """One policy on one trace in the simulator: (its row, its time series when asked). ``spec``: (policy,
    trace, link, trace name, seed, Aurora config, reward form, want the series). A module-level function of
    picklable arguments: the cells of ``genet eval cc --jobs N`` / ``--ray-address`` run it in worker
    processes, where an ONNX policy is loaded once per process."""
    policy, trace, link, name, seed, aurora, reward_form, want_series = spec
    if loaded is None and policy.kind == "onnx":
        key = (policy.path, repr(aurora))
        if key not in _LOADED:
            _LOADED[key] = load_aurora_policy(policy.path, aurora)
        loaded = _LOADED[key]
    log = run_policy(policy, trace, link, seed=seed, aurora=aurora, loaded=loaded)
    row = summarize(log, link, policy.label, name, reward_form, seed)
    return row, (time_series(log, 0.5, link.duration_s) if want_series else None)


def _evaluate(policies, traces, out_dir, seed, reward_form, aurora, queue_packets, loss_rate, delay_ms, progress,
              plots, jobs=1, ray_address=None) -> list[RunMetrics]:
    from tqdm import tqdm

    from foundation.experiment import Cell, Experiment
    from foundation.journal import Journal
    aurora = aurora or AuroraConfig(reward_form=reward_form)
    links = [LinkConfig.from_trace(t, delay_ms=delay_ms, queue_packets=queue_packets, loss_rate=loss_rate)
             for t in traces]
    names = _unique_names(traces)
    out = Path(out_dir) if out_dir is not None else None
    journal = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        journal = Journal(out / "results.jsonl")  # a row per finished run: a rerun reuses them
    loaded = {p.label: load_aurora_policy(p.path, aurora) for p in policies if p.kind == "onnx"}
    from foundation.executor import SerialExecutor, make_executor
    executor = make_executor(jobs, ray_address, kind="process", preload=("genet.cc.evaluate",))
    tier = SimulatedCc(seed, reward_form, aurora, loaded, plots,
                       None if isinstance(executor, SerialExecutor) else executor)
    tier.policies = {p.label: p for p in policies}
    tier.first = {(p.label, names[0]) for p in policies} if names else set()
    cells = [Cell(p.label, name, 0, (trace, link)) for p in policies
             for trace, link, name in zip(traces, links, names)]
    bar = tqdm(total=len(cells), desc="genet eval cc", unit="run", disable=not progress)
    experiment = Experiment(tier, journal, on_row=lambda cell, row, reused: bar.update())
    try:
        rows = experiment.run(cells).rows
    finally:
        bar.close()
        executor.close()
    if out is not None:
        write_results(rows, out, reward_form)
        if plots:
            plot_results(rows, tier.series, names[0], out)
    return rows


def _unique_names(traces: Sequence[Trace]) -> list[str]:
    names, seen = [], {}
    for i, t in enumerate(traces):
        n = t.name or f"trace-{i:04d}"
        if n in seen:
            seen[n] += 1
            n = f"{n}#{seen[n]}"
        else:
            seen[n] = 0
        names.append(n)
    return names


def write_results(rows: Sequence[RunMetrics], out: Path, reward_form: str = "genet") -> None:
    import io
    cols = [f.name for f in fields(RunMetrics)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r.to_dict())
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(out / "results.json", json.dumps([r.to_dict() for r in rows], indent=1))
    summary = summary_rows(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
    w.writeheader()
    for s in summary:
        w.writerow(s)
    atomic_write_text(out / "summary.csv", buf.getvalue())
    atomic_write_text(out / "summary.txt", format_summary(summary, reward_form) + "\n")


def plot_results(rows: Sequence[RunMetrics], series: dict, first_trace: str, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if series:
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        for label, (t, tput, delay) in series.items():
            ax1.plot(t, tput, label=label)
            ax2.plot(t, delay, label=label)
        ax1.set_ylabel("throughput (Mbps)")
        ax2.set_ylabel("RTT (ms)")
        ax2.set_xlabel("time (s)")
        ax1.set_title(f"trace {first_trace}")
        ax1.legend()
        fig.tight_layout()
        fig.savefig(out / "timeseries.png", dpi=100)
        plt.close(fig)
    plot_reward_cdf({p: [r.reward for r in rows if r.policy == p] for p in dict.fromkeys(r.policy for r in rows)},
                    out / "reward_cdf.png", "reward", "CDF across traces")


def plot_reward_cdf(rewards: dict, png_path, xlabel: str = "reward", ylabel: str = "CDF across traces") -> None:
    """One step CDF per policy (``rewards``: policy -> values) in one PNG (eval cc and emulate cc)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for policy, values in rewards.items():
        vals = np.sort(np.asarray(values, float))
        ax.step(vals, np.arange(1, vals.size + 1) / vals.size, where="post", label=policy)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
