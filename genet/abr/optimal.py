"""Offline optimum: dynamic programming with the whole future bandwidth known (the paper's "gap-to-optimum").

DP over (chunk, quality of that chunk, discretised buffer): after each chunk
the sessions reaching the same (quality, buffer bin) are merged and only the
one with the highest QoE so far is kept, together with its *exact* simulator
state (trace pointer, trace clock, buffer), from which all next qualities are
expanded with the simulator's own arithmetic (``core.download_chunk``). The
best final state is traced back into a plan (:class:`PlanPolicy`), which
:func:`genet.abr.evaluate.evaluate` replays through
:class:`~genet.abr.core.BatchedAbrSim` like any policy, so the reported numbers
are exactly what the simulator gives for that quality sequence. (This module
plans and never runs the evaluation loop: ``evaluate`` imports it, not the
reverse.)

Like Pensieve's ``dp.cc`` (which discretises time and buffer), the merge makes
this a very good plan rather than a proven optimum; with the default 100 ms
buffer bins (coarser above a 100 s buffer: at most 1000 bins) it beats BBA and RobustMPC on (nearly) every real trace — tests
check the means and per-trace dominance on the validation sets. The first
chunk uses the conventions' first quality, as for every causal policy.
"""

from __future__ import annotations

from foundation.errors import BadInputError

from typing import Any, Callable, Sequence

import numpy as np

from genet.abr.core import BatchedAbrSim, download_chunk
from genet.abr.jit import lazy_njit
from genet.abr.params import PENSIEVE, EnvParams, SimConventions
from genet.abr.qoe import chunk_qoe
from genet.abr.video import Video
from genet.policy import PolicyBase
from traces.trace import Trace

DEFAULT_BUFFER_BIN_MS = 100.0
#: at most this many buffer bins (very large buffers get proportionally coarser bins)
MAX_BUFFER_BINS = 1000


@lazy_njit
def _dp(t, bw, sizes, n_chunks, bitrates, first_q, rtt_ms, chunk_ms, max_buffer_ms, mu, smooth, payload_frac,
        drain_ms, wrap_t, bin_ms):
    n_levels = sizes.shape[0]
    n_bins = int(np.ceil((max_buffer_ms + chunk_ms) / bin_ms)) + 2
    ln = t.shape[0]
    neg = -1e300
    val = np.full((n_levels, n_bins), neg)
    ptr = np.zeros((n_levels, n_bins), dtype=np.int64)
    lt = np.zeros((n_levels, n_bins))
    buf = np.zeros((n_levels, n_bins))
    back_q = np.full((n_chunks, n_levels, n_bins), -1, dtype=np.int16)
    back_b = np.full((n_chunks, n_levels, n_bins), -1, dtype=np.int32)
    # chunk 0 at the first quality from an empty buffer at ptr 1
    p, l, b, delay, rebuf, sleep = download_chunk(t, bw, 0, ln, 1, t[0], sizes[first_q, 0], rtt_ms, 1.0, 0.0,
                                                  chunk_ms, max_buffer_ms, payload_frac, drain_ms, wrap_t)
    k = min(int(b / bin_ms), n_bins - 1)
    val[first_q, k] = chunk_qoe(bitrates[first_q], bitrates[first_q], rebuf / 1000.0, mu, smooth)
    ptr[first_q, k] = p
    lt[first_q, k] = l
    buf[first_q, k] = b
    for c in range(1, n_chunks):
        nval = np.full((n_levels, n_bins), neg)
        nptr = np.zeros((n_levels, n_bins), dtype=np.int64)
        nlt = np.zeros((n_levels, n_bins))
        nbuf = np.zeros((n_levels, n_bins))
        for q in range(n_levels):
            for kb in range(n_bins):
                v = val[q, kb]
                if v == neg:
                    continue
                for q2 in range(n_levels):
                    p, l, b, delay, rebuf, sleep = download_chunk(
                        t, bw, 0, ln, ptr[q, kb], lt[q, kb], sizes[q2, c], rtt_ms, 1.0, buf[q, kb], chunk_ms,
                        max_buffer_ms, payload_frac, drain_ms, wrap_t)
                    nv = v + chunk_qoe(bitrates[q2], bitrates[q], rebuf / 1000.0, mu, smooth)
                    k2 = min(int(b / bin_ms), n_bins - 1)
                    if nv > nval[q2, k2]:
                        nval[q2, k2] = nv
                        nptr[q2, k2] = p
                        nlt[q2, k2] = l
                        nbuf[q2, k2] = b
                        back_q[c, q2, k2] = q
                        back_b[c, q2, k2] = kb
        val, ptr, lt, buf = nval, nptr, nlt, nbuf
    best_q, best_b, best = 0, 0, neg
    for q in range(n_levels):
        for kb in range(n_bins):
            if val[q, kb] > best:
                best, best_q, best_b = val[q, kb], q, kb
    plan = np.zeros(n_chunks, dtype=np.int64)
    q, kb = best_q, best_b
    for c in range(n_chunks - 1, 0, -1):
        plan[c] = q
        q, kb = back_q[c, q, kb], back_b[c, q, kb]
    plan[0] = first_q
    return plan, best


def optimal_plan(trace: Trace, video: Video, conv: SimConventions = PENSIEVE, params: EnvParams | None = None,
                 buffer_bin_ms: float = DEFAULT_BUFFER_BIN_MS) -> tuple[np.ndarray, float]:
    """(qualities of every chunk, total QoE) of the offline plan for one trace."""
    if buffer_bin_ms <= 0:
        raise BadInputError(f"buffer_bin_ms must be positive, got {buffer_bin_ms}")
    sim = BatchedAbrSim([trace], video, conv, params=params)  # validates the trace
    p = sim.trace_params[0]
    sizes = video.chunk_sizes_for(p.n_chunks, p.chunk_length_s)
    wrap_t = 0.0 if conv.wrap_time_zero else float(trace.timestamps_s[0])
    bin_ms = max(float(buffer_bin_ms), (p.max_buffer_s + p.chunk_length_s) * 1000.0 / MAX_BUFFER_BINS)
    plan, best = _dp(trace.timestamps_s, trace.bandwidth_mbps, sizes, p.n_chunks,
                     np.asarray(video.bitrates_kbps, dtype=np.float64), conv.first_quality, p.min_rtt_ms,
                     p.chunk_length_s * 1000.0, p.max_buffer_s * 1000.0, conv.rebuffer_penalty,
                     conv.smooth_penalty, conv.payload_fraction, conv.drain_quantum_ms, wrap_t, bin_ms)
    return plan, float(best)


class PlanPolicy(PolicyBase):
    """Replays fixed per-environment quality plans (abr.raw layout) — used to replay the optimum."""

    name = "optimal"

    def __init__(self, plans: Sequence[np.ndarray]) -> None:
        from genet.abr.observations import RAW
        self.spec = RAW.policy_spec()
        width = max(len(p) for p in plans) + 1
        self.plans = np.zeros((len(plans), width), dtype=np.int64)
        for i, p in enumerate(plans):
            self.plans[i, : len(p)] = p

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        nxt = np.asarray(observations)[:, 5].astype(np.int64)
        return self.plans[np.arange(len(nxt)), np.minimum(nxt, self.plans.shape[1] - 1)]


def optimal_plans(traces: Sequence[Trace], video: Video, conv: SimConventions = PENSIEVE,
                  params: EnvParams | Sequence[EnvParams] | None = None,
                  progress: Callable[[int], None] | None = None,
                  buffer_bin_ms: float = DEFAULT_BUFFER_BIN_MS) -> PlanPolicy:
    """The offline optimum of every trace as one :class:`PlanPolicy` (session i replays trace i's plan);
    ``progress(1)`` after each trace is planned."""
    if params is None or isinstance(params, EnvParams):
        plist = [params] * len(traces)
    else:
        plist = list(params)
    plans = []
    for tr, p in zip(traces, plist):
        plans.append(optimal_plan(tr, video, conv, p, buffer_bin_ms)[0])
        if progress is not None:
            progress(1)
    return PlanPolicy(plans)


def plan_policy(*, offline: Any = None, **_: Any) -> PlanPolicy:
    """The registry's factory of ``optimal`` (genet/abr/registry.py): plans the sessions of ``offline``
    (a :class:`genet.abr.registry.OfflineSessions`); :func:`genet.abr.evaluate.evaluate` replays them."""
    if offline is None:
        raise BadInputError("the offline optimum plans over known traces: only the simulator can run it")
    return optimal_plans(offline.traces, offline.video, offline.conv, offline.params, offline.progress)
