"""Per-run metrics of a CC run, reduced from its per-packet event stream.

Definitions (Pantheon's ``tunnel_graph`` and Genet's packet-level reward,
testbeds.md §4.3-4.4, genet-simulators.md §4.6):

* throughput_mbps: acked bits / (last ACK - first ACK), as Genet's packet-level throughput;
* ``*_rtt_ms``: per-packet RTTs of acked packets (data one-way incl.
  queueing + ACK one-way: Genet's "latency"); ``*_one_way_delay_ms``: the
  data packet's part (RTT - the ACK path's propagation delay);
  ``p95_queueing_delay_ms``: the bottleneck-queue part alone; percentiles
  by the one rule of :func:`foundation.metrics.percentile` (Pantheon's);
* loss_rate: 1 - acked / sent (packets still in flight at the end count as
  lost, as in Pantheon and Genet);
* reward_genet / reward_aurora: the packet-level reward in both forms
  (:func:`genet.cc.reward.packet_level_reward`); ``reward`` is the chosen form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from genet.cc.monitor import EV_ACKED, EV_SENT
from genet.cc.reward import packet_level_reward
from foundation.metrics import Column, column_names, percentile
from foundation.packets import PACKET_BITS

if TYPE_CHECKING:  # the link model loads numba: imported where a run is summarised
    from genet.cc.link import LinkConfig

#: The CC result columns (the paper's Table 7 and the p95 RTT), the one list: every CC results file has them
#: in this order (``genet eval cc`` and ``genet emulate cc``: :class:`RunMetrics`; ``genet deploy run``: the
#: sender's summary and :func:`deploy.schemes.iperf3_metrics`), and so do the ``sim_*`` and gap columns of
#: ``genet emulate cc`` and the summaries; the reports print :data:`TABLE7`.
COLUMNS = (
    Column("throughput_mbps", "Mbit/s", "throughput", "delivered bits over the first-to-last delivery span"),
    Column("p90_rtt_ms", "ms", "p90 latency", "90th percentile of the per-packet RTT (foundation.metrics.percentile)"),
    Column("p95_rtt_ms", "ms", "p95 latency", "95th percentile of the per-packet RTT", table=False),
    Column("loss_rate", "", "loss rate", "1 - delivered / sent packets (0-1)"),
    Column("reward", "", "reward", "Genet's packet-level reward (genet.cc.reward), the run's chosen form"),
)
#: The paper's Table 7: the :data:`COLUMNS` the reports print per environment, in order.
TABLE7 = tuple(c for c in COLUMNS if c.table)
#: The names of :data:`COLUMNS`, in order.
COLUMN_NAMES = column_names(COLUMNS)


@dataclass(frozen=True)
class RunMetrics:
    """One policy on one trace (one row of ``genet eval cc``)."""

    trace: str
    policy: str
    throughput_mbps: float
    mean_rtt_ms: float
    p90_rtt_ms: float
    p95_rtt_ms: float
    p90_one_way_delay_ms: float
    p95_one_way_delay_ms: float
    p95_queueing_delay_ms: float
    loss_rate: float
    reward: float
    reward_genet: float
    reward_aurora: float
    trace_mean_bandwidth_mbps: float
    utilisation: float
    min_rtt_ms: float
    queue_packets: float
    link_loss_rate: float
    packets_sent: int
    packets_acked: int
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def run_key(self) -> tuple:
        """What identifies the run (for resuming): policy, trace, seed and link settings."""
        return (self.policy, self.trace, self.seed, self.queue_packets, round(self.min_rtt_ms, 9),
                self.link_loss_rate)


def summarize(log, link: LinkConfig, policy: str, trace: str = "", reward_form: str = "genet",
              seed: int = 0) -> RunMetrics:
    acked = log.kind == EV_ACKED
    n_acked = int(np.count_nonzero(acked))
    n_sent = int(np.count_nonzero(log.kind == EV_SENT))
    ack_t = log.time_s[acked]
    span = float(ack_t[-1] - ack_t[0]) if n_acked > 1 else 0.0
    tput_mbps = n_acked * PACKET_BITS / span / 1e6 if span > 0 else 0.0
    rtt_ms = 1000 * log.rtt_s[acked]
    q_ms = 1000 * log.queue_delay_s[acked]

    from genet.cc.link import mbps_to_pps

    owd_ms = rtt_ms - link.delay_ms  # the ACK path has propagation delay only
    bw_pps = float(mbps_to_pps(link.mean_bandwidth_mbps))
    rg = packet_level_reward(log.kind, log.time_s, log.rtt_s, "genet", bw_pps)
    ra = packet_level_reward(log.kind, log.time_s, log.rtt_s, "aurora")
    delivered_mbps = n_acked * PACKET_BITS / link.duration_s / 1e6
    return RunMetrics(trace=trace or link.name, policy=policy, throughput_mbps=tput_mbps,
                      mean_rtt_ms=float(rtt_ms.mean()) if rtt_ms.size else float("nan"),
                      p90_rtt_ms=percentile(rtt_ms, 90), p95_rtt_ms=percentile(rtt_ms, 95),
                      p90_one_way_delay_ms=percentile(owd_ms, 90), p95_one_way_delay_ms=percentile(owd_ms, 95),
                      p95_queueing_delay_ms=percentile(q_ms, 95),
                      loss_rate=1.0 - n_acked / n_sent if n_sent else 0.0,
                      reward=rg if reward_form == "genet" else ra, reward_genet=rg, reward_aurora=ra,
                      trace_mean_bandwidth_mbps=link.mean_bandwidth_mbps,
                      utilisation=delivered_mbps / link.mean_bandwidth_mbps, min_rtt_ms=2 * link.delay_ms,
                      queue_packets=link.queue_packets, link_loss_rate=link.loss_rate, packets_sent=n_sent, packets_acked=n_acked, seed=seed)


def after_first_ack(log):
    """``log`` without the packets the sender sent before its first ACK came back (their sends, ACKs and
    losses): the part of a run no policy controls. An Aurora sender starts at 10 packets per minimum RTT and
    its first decision comes with the first ACK (genet-simulators.md §4.3-4.4), so on a 0.1-Mbit/s link it has
    sent ~300 packets into a queue of a few before it can act (``genet study cc-startup``). The same cut
    applies to every scheme, each at its own first ACK. A log without an ACK is returned unchanged."""
    acked = log.kind == EV_ACKED
    if not acked.any():
        return log
    first_ack_s = log.time_s[int(np.argmax(acked))]
    early = log.packet_id[(log.kind == EV_SENT) & (log.time_s < first_ack_s)]
    keep = ~np.isin(log.packet_id, early)
    return type(log)(*(getattr(log, f)[keep] for f in ("kind", "time_s", "packet_id", "rtt_s", "queue_delay_s")))


def time_series(log, bin_s: float = 0.5, duration_s: float | None = None):
    """(bin start times s, throughput Mbps, mean RTT ms) per bin of acked packets."""
    acked = log.kind == EV_ACKED
    t = log.time_s[acked]
    end = duration_s if duration_s is not None else (float(t[-1]) if t.size else bin_s)
    edges = np.arange(0.0, end + bin_s, bin_s)
    counts, _ = np.histogram(t, edges)
    rtt_sum, _ = np.histogram(t, edges, weights=log.rtt_s[acked])
    with np.errstate(invalid="ignore", divide="ignore"):
        delay_ms = np.where(counts > 0, 1000 * rtt_sum / np.maximum(counts, 1), np.nan)
    return edges[:-1], counts * PACKET_BITS / bin_s / 1e6, delay_ms


def from_link_logs(uplink_log, downlink_log, delay_ms: float, policy: str, trace: str,
                   trace_mean_bandwidth_mbps: float, queue_packets: float, link_loss_rate: float,
                   run_duration_s: float, reward_form: str = "genet", seed: int = 0) -> RunMetrics:
    """The same row as :func:`summarize`, measured from an emulated link's Mahimahi-format logs, as read by
    :func:`emulation.logstats.read_link_log_arrays` (the caller reads them: genet/ imports nothing above it)
    (uplink = data, downlink = ACKs; no downlink log: ACKs see the propagation delay only) for every scheme alike, as Pantheon's tunnel logs (testbeds.md §4.3-4.4):

    * throughput: departed bits (1500-byte IP packets: the log's sizes minus the 4-byte TUN header),
      less those of packets randomly lost after the link (the netns link's ``l`` lines), over the
      first-to-last departure span;
    * one-way delay of each departed packet: ``delay_ms`` + its queueing delay in the link;
    * RTT as Genet's Pantheon parser (``connection.py``): mean = mean data one-way delay + mean ACK
      one-way delay; p90/p95 = that percentile of the data one-way delay + the mean ACK one-way delay;
    * loss: 1 - (departed - randomly lost) / arrived bytes: queue drops and the random loss after the queue
      (the netns link logs it as ``l`` lines; Mahimahi's mm-loss logs nothing, so there: queue drops only);
    * reward: the packet-level reward with the link's measured capacity (its ``#`` opportunities over the
      log) as normaliser (:func:`genet.cc.aurora.run_reward_normaliser_pps`).
    """
    from genet.cc.aurora import run_reward_normaliser_pps
    from genet.cc.reward import aurora_reward
    from foundation.packets import TUN_HEADER_BYTES

    up, down = uplink_log, downlink_log
    n_dep, n_arr = int(up.departure_ms.size), int(up.arrival_ms.size)
    rand_pkts, rand_bytes = getattr(up, "random_lost_packets", 0), getattr(up, "random_lost_bytes", 0)
    dep_bits = (float(np.sum(up.departure_bytes - TUN_HEADER_BYTES))
                - (rand_bytes - rand_pkts * TUN_HEADER_BYTES)) * 8
    span_s = float(up.departure_ms[-1] - up.departure_ms[0]) / 1000.0 if n_dep > 1 else 0.0
    tput_mbps = dep_bits / span_s / 1e6 if span_s > 0 else 0.0
    owd = delay_ms + up.departure_delay_ms.astype(float)
    ack_owd = delay_ms + (float(np.mean(down.departure_delay_ms)) if down is not None and down.departure_ms.size
                          else 0.0)
    arr_bytes = float(np.sum(up.arrival_bytes))
    loss = 1.0 - (float(np.sum(up.departure_bytes)) - rand_bytes) / arr_bytes if arr_bytes else 0.0
    mean_rtt_ms = float(owd.mean()) + ack_owd if owd.size else float("nan")
    capacity_mbps = link_log_capacity_mbps(up)
    bw_pps = run_reward_normaliser_pps(capacity_mbps, 0.0)
    tput_pps = tput_mbps * 1e6 / PACKET_BITS
    lat_s = mean_rtt_ms / 1000.0 if owd.size else 0.0
    rg = aurora_reward(tput_pps, lat_s, loss, bw_pps, "genet") if bw_pps > 0 else float("nan")
    ra = aurora_reward(tput_pps, lat_s, loss, None, "aurora")
    delivered_mbps = dep_bits / run_duration_s / 1e6 if run_duration_s > 0 else float("nan")
    return RunMetrics(trace=trace, policy=policy, throughput_mbps=tput_mbps, mean_rtt_ms=mean_rtt_ms,
                      p90_rtt_ms=percentile(owd, 90) + ack_owd, p95_rtt_ms=percentile(owd, 95) + ack_owd,
                      p90_one_way_delay_ms=percentile(owd, 90), p95_one_way_delay_ms=percentile(owd, 95),
                      p95_queueing_delay_ms=percentile(up.departure_delay_ms, 95), loss_rate=loss,
                      reward=rg if reward_form == "genet" else ra, reward_genet=rg, reward_aurora=ra,
                      trace_mean_bandwidth_mbps=trace_mean_bandwidth_mbps,
                      utilisation=delivered_mbps / trace_mean_bandwidth_mbps, min_rtt_ms=2 * delay_ms,
                      queue_packets=queue_packets, link_loss_rate=link_loss_rate, packets_sent=n_arr,
                      packets_acked=n_dep - rand_pkts, seed=seed)


def link_log_capacity_mbps(log) -> float:
    """The link's measured capacity from its ``#`` opportunity lines (1500-byte packets), Mbit/s
    (``log``: :class:`emulation.logstats.LinkLogArrays` or ``LinkLog``)."""
    opp = log.opportunity_ms
    span_s = (opp[-1] - opp[0]) / 1000.0 if len(opp) > 1 else 0.0
    return (len(opp) - 1) * PACKET_BITS / span_s / 1e6 if span_s > 0 else float("nan")
