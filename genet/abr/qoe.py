"""ABR quality of experience: the one definition, for the simulator, the player and the emulated runs.

Per chunk (linear QoE, genet-simulators.md §1.6; Pensieve's and Genet's ``linear_reward``)::

    qoe = bitrate_kbps / 1000 - rebuffer_penalty * rebuffer_s
          - smooth_penalty * |bitrate_kbps - last_bitrate_kbps| / 1000

computed in exactly this operation order (the simulator's numba kernel compiles
:func:`chunk_qoe` itself, so both produce the same bits). ``last_bitrate_kbps``
of a video's first chunk is the bitrate of the mode's *first quality*
(:class:`genet.abr.params.SimConventions.first_quality`): the first chunk's
change is against that level, not against zero.

Per video, :class:`VideoQoe` holds the paper's Table-6 fields (what ``genet eval
abr``, ``genet player play`` and ``genet emulate abr`` all report):

* ``qoe``: the per-video total (sum of per-chunk QoE; Genet ABR-A's ``test()``);
* ``bitrate_mbps``: mean bitrate per chunk, Mbps;
* ``rebuffer_s``: total stall time, s;
* ``bitrate_change_mbps``: mean |bitrate change| per chunk, Mbps;
* ``qoe_per_chunk`` = qoe / chunks; ``chunks``: chunks played.

:class:`QoeAccumulator` sums them for a batch of sessions (one entry per
session; a player uses ``n_sessions=1``).

Imports only numpy (and :mod:`foundation.metrics`, :mod:`genet.abr.jit`, which loads no numba).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from foundation.metrics import Column, column_names
from genet.abr.jit import jitable

#: The ABR result columns (the paper's Table 6 and the QoE per chunk), the one list: every ABR results file
#: has them (``genet eval abr``: :class:`TraceResult`, in :class:`VideoQoe`'s field order; ``genet emulate
#: abr`` in this order, and as its ``sim_*`` columns; ``genet deploy run``: the player's summary); the
#: reports print :data:`TABLE6`.
COLUMNS = (
    Column("bitrate_mbps", "Mbit/s", "bitrate", "mean bitrate of the chunks played"),
    Column("rebuffer_s", "s", "rebuffering", "total stall time"),
    Column("bitrate_change_mbps", "Mbit/s", "bitrate change", "mean |bitrate change| between consecutive chunks"),
    Column("qoe", "", "QoE", "per-video total linear QoE (sum of chunk_qoe)"),
    Column("qoe_per_chunk", "", "QoE per chunk", "qoe / chunks played", table=False),
)
#: The paper's Table 6: the :data:`COLUMNS` the reports print per environment, in order.
TABLE6 = tuple(c for c in COLUMNS if c.table)
#: The names of :data:`COLUMNS`, in order.
COLUMN_NAMES = column_names(COLUMNS)

#: Rebuffer penalty (QoE lost per second of stall) of the Pensieve convention (Pensieve, Pensieve-PPO).
REBUFFER_PENALTY_PENSIEVE = 4.3
#: Rebuffer penalty of the reference Genet ABR-A simulator (``constants.py`` REBUF_PENALTY).
REBUFFER_PENALTY_GENET = 10.0
#: QoE lost per Mbps of bitrate change between consecutive chunks (all references).
SMOOTH_PENALTY = 1.0


@jitable
def chunk_qoe(bitrate_kbps, last_bitrate_kbps, rebuffer_s, rebuffer_penalty, smooth_penalty):
    """Linear QoE of one chunk (scalars or numpy arrays), in Genet's operation order.

    bitrate_kbps: the chunk's bitrate, kbps; last_bitrate_kbps: the previous chunk's (see module
    docstring for the first chunk), kbps; rebuffer_s: stall caused by this chunk, s;
    rebuffer_penalty: QoE per s of stall (4.3 or 10); smooth_penalty: QoE per Mbps of change (1.0).

    Plain Python arithmetic: the simulator's kernels (:mod:`genet.abr.core`) compile this very function
    with numba (:func:`genet.abr.jit.jitable`).
    """
    return bitrate_kbps / 1000.0 - rebuffer_penalty * rebuffer_s - smooth_penalty * abs(
        bitrate_kbps - last_bitrate_kbps) / 1000.0


@dataclass
class VideoQoe:
    """The Table-6 fields of one played video (see the module docstring).

    qoe: per-video total QoE; qoe_per_chunk: qoe / chunks
    bitrate_mbps: mean chunk bitrate, Mbps; rebuffer_s: total stall, s
    bitrate_change_mbps: mean |bitrate change| per chunk, Mbps; chunks: chunks played
    """

    qoe: float
    qoe_per_chunk: float
    bitrate_mbps: float
    rebuffer_s: float
    bitrate_change_mbps: float
    chunks: int

    def as_dict(self) -> dict[str, Any]:
        """The fields in order (scalars: what dataclasses.asdict gives, without its deep copy)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Labels:
    policy: str
    trace: str


@dataclass
class TraceResult(VideoQoe, _Labels):
    """One policy on one trace: ``policy`` (label, e.g. "mpc"), ``trace`` (name), then the
    :class:`VideoQoe` fields. The row of ``genet eval abr``, ``genet player play`` and ``genet emulate abr``."""


class QoeAccumulator:
    """Sums per-chunk QoE terms for ``n_sessions`` videos at once.

    rebuffer_penalty: QoE per s of stall (4.3 Pensieve convention, 10 Genet)
    smooth_penalty: QoE per Mbps of bitrate change (1.0)
    n_sessions: batch size (1)
    """

    def __init__(self, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE, smooth_penalty: float = SMOOTH_PENALTY,
                 n_sessions: int = 1) -> None:
        self.rebuffer_penalty = float(rebuffer_penalty)
        self.smooth_penalty = float(smooth_penalty)
        n = int(n_sessions)
        self.qoe = np.zeros(n)
        self.bitrate_mbps = np.zeros(n)
        self.rebuffer_s = np.zeros(n)
        self.bitrate_change_mbps = np.zeros(n)
        self.chunks = np.zeros(n, dtype=np.int64)

    def add(self, bitrate_kbps, last_bitrate_kbps, rebuffer_s, active=None) -> np.ndarray:
        """Add one chunk per (active) session; returns the chunk QoE (0 where inactive)."""
        n = self.qoe.shape[0]
        b = np.broadcast_to(np.asarray(bitrate_kbps, dtype=np.float64), (n,))
        bl = np.broadcast_to(np.asarray(last_bitrate_kbps, dtype=np.float64), (n,))
        rb = np.broadcast_to(np.asarray(rebuffer_s, dtype=np.float64), (n,))
        act = np.ones(n, dtype=bool) if active is None else np.broadcast_to(np.asarray(active, dtype=bool), (n,))
        q = np.where(act, chunk_qoe(b, bl, rb, self.rebuffer_penalty, self.smooth_penalty), 0.0)
        self.qoe += q
        self.bitrate_mbps += np.where(act, b / 1000.0, 0.0)
        self.rebuffer_s += np.where(act, rb, 0.0)
        self.bitrate_change_mbps += np.where(act, np.abs(b - bl) / 1000.0, 0.0)
        self.chunks += act
        return q

    def result(self, i: int = 0) -> VideoQoe:
        """The Table-6 fields of session ``i``."""
        c = max(int(self.chunks[i]), 1)
        return VideoQoe(qoe=float(self.qoe[i]), qoe_per_chunk=float(self.qoe[i] / c),
                        bitrate_mbps=float(self.bitrate_mbps[i] / c), rebuffer_s=float(self.rebuffer_s[i]),
                        bitrate_change_mbps=float(self.bitrate_change_mbps[i] / c), chunks=int(self.chunks[i]))


def video_qoe(bitrates_kbps, rebuffers_s, first_bitrate_kbps: float, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE,
              smooth_penalty: float = SMOOTH_PENALTY) -> VideoQoe:
    """The Table-6 fields of one video from its per-chunk bitrates (kbps) and stalls (s), in play order.

    first_bitrate_kbps: the "previous" bitrate of the first chunk (the mode's first quality's bitrate)."""
    acc = QoeAccumulator(rebuffer_penalty, smooth_penalty, 1)
    last = float(first_bitrate_kbps)
    for b, r in zip(bitrates_kbps, rebuffers_s):
        acc.add(float(b), last, float(r))
        last = float(b)
    return acc.result(0)


__all__ = ["COLUMNS", "TABLE6", "COLUMN_NAMES", "chunk_qoe", "VideoQoe", "TraceResult", "QoeAccumulator", "video_qoe",
           "REBUFFER_PENALTY_PENSIEVE", "REBUFFER_PENALTY_GENET", "SMOOTH_PENALTY"]
