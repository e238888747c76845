"""Evaluate ABR policies over a trace set: one video per trace, all traces stepped as one batch.

Each trace is one environment of :class:`~genet.abr.core.BatchedAbrSim`
(trace pointer 1, no delay noise); every environment plays one video and
stops. Per trace (:class:`TraceResult`, the paper's Table 6 quantities):

:class:`genet.abr.qoe.VideoQoe`'s fields, summed by
:class:`genet.abr.qoe.QoeAccumulator` (the one QoE definition):

* ``qoe``: the per-trace total, the sum of the per-chunk rewards over all
  chunks (as Genet ABR-A's ``test()``; §1.6);
* ``bitrate_mbps``: mean bitrate per chunk; ``rebuffer_s``: total stall time;
  ``bitrate_change_mbps``: mean |change| per chunk (the first chunk's change
  is against the first quality, i.e. 0); ``qoe_per_chunk`` = qoe / chunks.

Policies: any name or path of the ABR registry (:data:`genet.abr.registry.POLICIES`: "bba", "mpc",
"optimal" — the offline optimum, planned by genet/abr/optimal.py and replayed here — or an ``.onnx``
path) or a :class:`genet.policy.Policy` object. :func:`evaluate` is the one entry point: one policy,
every trace, one :class:`TraceResult` per trace.
"""

from __future__ import annotations

from foundation.errors import BadInputError

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from genet.abr import registry
from genet.abr.core import BatchedAbrSim
from genet.abr.observations import RAW, StateBuilder, get_layout, raw_observation, to_quality
from genet.abr.params import PENSIEVE, EnvParams, SimConventions
from genet.abr.qoe import QoeAccumulator, TraceResult  # TraceResult: one policy on one trace
from genet.abr.video import SessionVideos, Video
from traces.trace import Trace


def make_policy(policy: Any, conv: SimConventions, deterministic: bool = True, seed: int | None = None,
                offline: registry.OfflineSessions | None = None):
    """A policy from a name / path / object through the registry (genet/abr/registry.py), planning with
    the mode's QoE weights."""
    return registry.make_policy(policy, rebuffer_penalty=conv.rebuffer_penalty, smooth_penalty=conv.smooth_penalty,
                                deterministic=deterministic, seed=seed, offline=offline)


policy_label = registry.policy_label


def evaluate(policy: Any, traces: Sequence[Trace], video: Video, conv: SimConventions = PENSIEVE,
             params: EnvParams | Sequence[EnvParams] | None = None, label: str | None = None,
             deterministic: bool = True, seed: int | None = None,
             progress: Callable[[int], None] | None = None, record_chunks: bool = False,
             on_step: Callable[[BatchedAbrSim, Any, np.ndarray], None] | None = None):
    """Play one video per trace with ``policy`` (all traces stepped as one batch); returns a list of
    TraceResult, one per trace (and per-chunk logs as a list of dicts of arrays when ``record_chunks``).

    policy: a registry name ("bba", "mpc", "optimal"), an ``.onnx`` path, or a
        :class:`genet.policy.Policy`; ``optimal`` plans every trace first (genet/abr/optimal.py, which
        reports ``progress`` while planning) and is then replayed like any policy
    label: the results' policy name (None: :func:`policy_label`)
    deterministic / seed: ONNX action choice (argmax, or Pensieve's sampling rule with this seed)
    progress: called with the number of sessions finished since the last call
    on_step: called after every step with the simulator, its step record and the next chunk's quality of every
        session (the experience pool's writer, genet/abr/pool.py, records the sessions through it)
    """
    label = label or policy_label(policy)
    causal = registry.is_causal(policy)
    offline = None if causal else registry.OfflineSessions(traces, video, conv, params, progress)
    pol = make_policy(policy, conv, deterministic=deterministic, seed=seed, offline=offline)
    if not causal:
        progress = None  # reported while planning
    sim = BatchedAbrSim(traces, video, conv, params=params, autoreset=False)
    sim.reset()
    n = sim.n_envs
    layout = get_layout(pol.spec.observation_layout)
    pol.bind(SessionVideos(sim.bitrates_kbps, sim.sizes, sim.n_chunks, sim.chunk_ms / 1000.0,
                           video.chunk_sizes_bytes))
    pol.reset()
    builder = None if layout.name == RAW.name else StateBuilder(layout, n, float(np.max(sim.bitrates_kbps)))
    q = np.full(n, conv.first_quality, dtype=np.int64)
    acc = QoeAccumulator(conv.rebuffer_penalty, conv.smooth_penalty, n)
    logs: list[dict[str, np.ndarray]] = []
    reported = 0
    while not sim.done.all():
        last_bitrate_kbps = sim.bitrates_kbps[sim.last_quality]
        r = sim.step(q)
        act = r.active
        acc.add(sim.bitrates_kbps[r.quality], last_bitrate_kbps, r.rebuffer_s, act)
        if record_chunks:
            logs.append({"quality": r.quality.copy(), "buffer_s": r.buffer_s.copy(), "reward": r.reward.copy(),
                         "rebuffer_s": r.rebuffer_s.copy(), "delay_ms": r.delay_ms.copy(), "active": act.copy()})
        if builder is None:
            obs = raw_observation(r)
            a = pol.act(obs, act)
        else:
            obs = builder.update(r, sim.bitrates_kbps)
            a = pol.act(obs)
        nq = to_quality(np.where(act, a, 0), r.quality, pol.spec.action_semantics, sim.n_levels)
        q = np.where(act, nq, q)
        if on_step is not None:
            on_step(sim, r, q)
        if progress is not None:
            finished = int(sim.done.sum())
            if finished > reported:
                progress(finished - reported)
                reported = finished
    results = [TraceResult(label, tr.name or f"trace{i}", **acc.result(i).as_dict()) for i, tr in enumerate(traces)]
    return (results, logs) if record_chunks else results


@dataclass
class Summary:
    """Mean over traces, the paper's Table 6 form.

    policy: label; traces: count
    bitrate_mbps, rebuffer_s, bitrate_change_mbps: means over traces of the per-trace values
    qoe: mean per-trace total QoE; qoe_per_chunk: mean per-chunk QoE
    """

    policy: str
    traces: int
    bitrate_mbps: float
    rebuffer_s: float
    bitrate_change_mbps: float
    qoe: float
    qoe_per_chunk: float


def summarize(results: Sequence[TraceResult]) -> Summary:
    if not results:
        raise BadInputError("no results to summarise")

    def mean(key: str) -> float:
        return float(np.mean([getattr(r, key) for r in results]))

    return Summary(results[0].policy, len(results), mean("bitrate_mbps"), mean("rebuffer_s"),
                   mean("bitrate_change_mbps"), mean("qoe"), mean("qoe_per_chunk"))


def format_table(summaries: Sequence[Summary]) -> str:
    """Plain-text table: policy, bitrate (Mbps), rebuffering (s), bitrate change (Mbps), reward."""
    head = f"{'policy':<24} {'traces':>6} {'bitrate_mbps':>12} {'rebuffer_s':>10} {'change_mbps':>11} " \
           f"{'qoe(total)':>11} {'qoe/chunk':>9}"
    rows = [head, "-" * len(head)]
    for s in summaries:
        rows.append(f"{s.policy[:24]:<24} {s.traces:>6d} {s.bitrate_mbps:>12.4f} {s.rebuffer_s:>10.4f} "
                    f"{s.bitrate_change_mbps:>11.4f} {s.qoe:>11.4f} {s.qoe_per_chunk:>9.4f}")
    return "\n".join(rows)


def plot_cdf(results_by_policy: dict[str, Sequence[TraceResult]], path: str | Path, title: str = "") -> Path:
    """PNG with the per-trace QoE CDF of every policy (labelled with its mean; Pillow, no matplotlib:
    :mod:`foundation.cdfplot`)."""
    from foundation.cdfplot import write_cdf_png
    series = {f"{name} (mean {np.mean([r.qoe for r in res]):.2f})": [r.qoe for r in res]
              for name, res in results_by_policy.items()}
    return write_cdf_png(path, series, xlabel="per-trace total QoE", title=title)
