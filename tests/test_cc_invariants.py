"""Invariants of the packet-level simulator over random links and senders.

The budget (40 examples) is raised by ``GENET_HYPOTHESIS_EXAMPLES`` (scripts/hypothesis_soak.sh);
the seed is fixed per run and printed in pytest's header (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings, strategies as st

from conftest import hypothesis_examples

from genet.cc.link import LinkConfig, mbps_to_pps
from genet.cc.senders import BbrSender, CubicSender, RateSender
from genet.cc.simulator import EV_LOST, EV_SENT, Simulation

#: Normal runs use 2-4 events per packet time of the reference rate (genet.cc.simulator); this
#: catches an event storm long before the simulator's own bound (100,000 + 64 per packet time).
EVENTS_PER_PACKET_TIME = 8

links = st.builds(
    lambda bws, delay, queue, loss, noise, dur: LinkConfig(
        np.linspace(0, dur, len(bws)), np.array(bws), delay_ms=delay, queue_packets=queue, loss_rate=loss,
        delay_noise_ms=noise),
    st.lists(st.floats(0.0, 30.0), min_size=2, max_size=8).filter(lambda b: max(b[:-1]) > 0),
    st.floats(0.0, 150.0), st.integers(1, 300), st.sampled_from([0.0, 0.001, 0.05]),
    st.sampled_from([0.0, 20.0]), st.floats(0.5, 4.0))
senders = st.one_of(st.builds(RateSender, st.floats(0.05, 40.0)), st.just(CubicSender()), st.just(BbrSender()))


@settings(max_examples=hypothesis_examples(40), deadline=None)
@given(links, senders, st.integers(0, 2**31))
# issue 10: a drop notice computed 1e-16 s before its send (event times went backwards)
@example(link=LinkConfig(np.array([0.0, 1.0]), np.array([1.0, 0.0]), delay_ms=0.0, queue_packets=1),
         sender=RateSender(1.0), seed=0)
# issue 10: zero delay, 1-packet queue: Cubic looped forever at one instant (24 GB of event log)
@example(link=LinkConfig(np.array([0.0, 0.5]), np.array([26.02, 19.79]), delay_ms=0.0, queue_packets=1),
         sender=CubicSender(), seed=1)
def test_every_packet_is_accounted_for(link, sender, seed):
    sim = Simulation(link, sender, seed=seed)
    log = sim.run()
    # the work is proportional to simulated time and rate (no event storm at one instant)
    assert len(log) == sim.stats["events"] <= 1000 + EVENTS_PER_PACKET_TIME * sim.reference_rate_pps * sim.now_s
    assert sim.now_s >= link.duration_s
    stats = sim.stats
    sent = log.packet_id[log.kind == EV_SENT]
    done = log.packet_id[log.kind != EV_SENT]
    # ids are consecutive; each packet is acked or lost at most once, after it was sent
    np.testing.assert_array_equal(sent, np.arange(sent.size))
    assert np.unique(done).size == done.size and np.all(np.isin(done, sent))
    assert stats["packets_sent"] == stats["packets_acked"] + stats["packets_lost"] + stats["inflight_packets"]
    assert (stats["packets_acked"], stats["packets_lost"]) == (log.packets_acked, log.packets_lost)
    assert np.all(np.diff(log.time_s) >= 0)
    finished = log.kind != EV_SENT
    # RTT = two propagation delays + queueing (+ noise); queueing never exceeds the queue at the slowest rate
    min_bw_pps = mbps_to_pps(link.effective_bandwidth_mbps.min())
    rtt = log.rtt_s[finished]
    q = log.queue_delay_s[finished]
    base = 2 * link.delay_ms / 1000
    assert np.all(rtt >= base + q - 1e-9)
    assert np.all(rtt <= base + q + link.delay_noise_ms / 1000 + 1e-9)
    assert np.all(q <= (link.queue_packets + 1) / min_bw_pps + 1e-9)
    # the link never delivers more than its capacity over the run (plus one queue of slack)
    assert stats["packets_acked"] <= link.available_packets(0, sim.now_s) + link.queue_packets + 1
    if link.loss_rate == 0:
        lost_q = log.queue_delay_s[log.kind == EV_LOST]
        assert lost_q.size == 0 or np.all(lost_q > 0)  # only tail drops, from a non-empty queue
    if log.packets_acked:
        assert sim.stats["srtt_s"] > 0 and sim.stats["min_rtt_s"] >= base - 1e-12
