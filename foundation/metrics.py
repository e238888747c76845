"""The one metric vocabulary and the one percentile rule of genet-testbed.

Used by the simulator's results (:mod:`genet.cc.metrics`), the emulated links'
logs and captures (:mod:`emulation.logstats`, :mod:`emulation.pcap`) and the
real-path sender (:mod:`sender`). Imports only numpy. :class:`Column` is how a
use case declares its result columns (:data:`genet.cc.metrics.COLUMNS`,
:data:`genet.abr.qoe.COLUMNS`); statistics over them are in :mod:`foundation.stats`.

**Percentile rule** (:func:`percentile`): numpy's ``method="nearest"`` over
all samples — Pantheon's ``tunnel_graph`` rule (testbeds.md §4.3): the sample
of rank ``round(q/100 x (N-1))`` (ties to even) in sorted order; NaN for no
samples. mm-throughput-graph's ``floor(0.95 N)`` differs by at most one rank.

**Names say what was measured** (units in the suffix):

* ``*_rtt_ms``: round-trip time of a data packet and its ACK (the simulator's
  and our sender's "latency"; Genet's reward uses its mean);
* ``*_one_way_delay_ms``: data packet from sender to receiver, propagation +
  queueing (Pantheon's "per-packet one-way delay");
* ``*_queueing_delay_ms``: the time inside the bottleneck queue alone
  (mm-link's log delay);
* ``throughput_mbps``: delivered bits of 1500-byte packets (:mod:`foundation.packets`)
  over the delivery span; ``loss_rate``: 1 - delivered / sent (0-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

PERCENTILE_METHOD = "nearest"


@dataclass(frozen=True)
class Column:
    """One column of a use case's results (its Table-6 / Table-7 figures): ``name`` as in every results file
    (units in the suffix), ``unit`` as printed ("" for a plain number), ``label`` as the report tables name it,
    ``meaning`` one line, ``table``: in the paper's table (False: carried in results and summaries only)."""

    name: str
    unit: str
    label: str
    meaning: str
    table: bool = True

    @property
    def heading(self) -> str:
        """``label (unit)``, or the label alone for a plain number."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


def column_names(columns: Sequence[Column]) -> tuple[str, ...]:
    """The names of ``columns``, in order."""
    return tuple(c.name for c in columns)


def percentile(values: Sequence[float] | np.ndarray | Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by the one rule; NaN when empty."""
    x = np.asarray(values if isinstance(values, (np.ndarray, list, tuple)) else list(values), dtype=np.float64)
    if x.size == 0:
        return math.nan
    return float(np.percentile(x, q, method=PERCENTILE_METHOD))
