"""Aurora's reward, in its two forms (genet-simulators.md §4.6,
``G:src/common/utils.py::pcc_aurora_reward``).

With throughput and bandwidth in 1500-byte packets/s, latency in seconds and
loss as a fraction:

* ``"aurora"`` (the original PCC-RL form): R = 10 tput - 1000 lat - 2000 loss
* ``"genet"`` (bandwidth-normalised): R = 500 tput / bw - 1000 lat - 2000 loss

The normaliser ``bw`` is the trace's mean bandwidth in Genet's CC-new
simulator, its baselines and the packet-level reward; CC-old (the Genet BO
loop's training) used the bandwidth available during the monitor interval.
:class:`~genet.cc.env.AuroraEnv` takes the trace mean by default and offers
``reward_normaliser="interval"`` for compatibility. ``REWARD_SCALE`` is not
applied (as in Genet).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import numpy as np

from genet.cc.monitor import EV_ACKED, EV_SENT, MonitorInterval

REWARD_FORMS = ("genet", "aurora")


def aurora_reward(throughput_pps: float, latency_s: float, loss: float, avg_bandwidth_pps: float | None = None,
                  form: str = "genet") -> float:
    """Aurora's reward; ``form="genet"`` needs ``avg_bandwidth_pps``."""
    if form == "aurora":
        return 10.0 * throughput_pps - 1000.0 * latency_s - 2000.0 * loss
    if form == "genet":
        if avg_bandwidth_pps is None or not avg_bandwidth_pps > 0:
            raise BadInputError(f"the genet reward needs avg_bandwidth_pps > 0, got {avg_bandwidth_pps}")
        return 500.0 * throughput_pps / avg_bandwidth_pps - 1000.0 * latency_s - 2000.0 * loss
    raise BadInputError(f"unknown reward form {form!r}; choose from {', '.join(REWARD_FORMS)}")


def interval_reward(mi: MonitorInterval, form: str = "genet", avg_bandwidth_pps: float | None = None) -> float:
    """Reward of one monitor interval: its receive rate, mean RTT and loss ratio."""
    return aurora_reward(mi.throughput_pps, mi.avg_latency_s, mi.loss_ratio, avg_bandwidth_pps, form)


def packet_level_reward(kind: np.ndarray, time_s: np.ndarray, rtt_s: np.ndarray, form: str = "genet",
                        avg_bandwidth_pps: float | None = None) -> float:
    """Genet's packet-level (episode) reward from an event stream: throughput =
    acked / (last ACK - first ACK), latency = mean RTT of acked packets,
    loss = 1 - acked / sent (the reward Genet's BO compares)."""
    kind = np.asarray(kind)
    acked = kind == EV_ACKED
    n_acked = int(np.count_nonzero(acked))
    n_sent = int(np.count_nonzero(kind == EV_SENT))
    if n_acked == 0 or n_sent == 0:
        tput, lat = 0.0, 0.0
    else:
        t = np.asarray(time_s)[acked]
        span = float(t[-1] - t[0])
        tput = n_acked / span if span > 0 else 0.0
        lat = float(np.mean(np.asarray(rtt_s)[acked]))
    loss = 1.0 - n_acked / n_sent if n_sent else 0.0
    return aurora_reward(tput, lat, loss, avg_bandwidth_pps, form)
