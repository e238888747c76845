"""Aurora's monitor intervals, observation history and reward, computed from
per-packet event streams (no simulator involved)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from genet.cc.monitor import (EV_ACKED, EV_LOST, EV_SENT, GENET_FEATURES, IntervalMonitor, ObservationHistory)
from genet.cc.reward import aurora_reward, interval_reward, packet_level_reward


def feed_one_by_one(mon, kind, t, rtt):
    for k, ti, ri in zip(kind, t, rtt):
        if k == EV_SENT:
            mon.on_packet_sent(ti)
        elif k == EV_ACKED:
            mon.on_packet_acked(ti, ri)
        else:
            mon.on_packet_lost(ti)


def test_interval_record_follows_genets_rules():
    mon = IntervalMonitor()
    mon.start(0.0)
    # 10 sends in [0, 1); first ACKs ever at 0.5 .. 0.8 with rising RTT; one loss
    kind = [EV_SENT] * 10 + [EV_ACKED, EV_ACKED, EV_ACKED, EV_ACKED, EV_LOST]
    t = list(np.arange(10) * 0.1) + [0.5, 0.6, 0.7, 0.8, 0.9]
    rtt = [0] * 10 + [0.10, 0.10, 0.20, 0.20, 0.3]
    mon.on_events(np.array(kind), np.array(t), np.array(rtt))
    mi = mon.finish(1.0)
    assert (mi.packets_sent, mi.packets_acked, mi.packets_lost) == (10, 4, 1)
    # first interval: receive window starts at the first ACK, which is not counted
    assert (mi.recv_start_s, mi.recv_end_s, mi.packets_acked_for_rate) == (0.5, 0.8, 3)
    assert mi.send_rate_bps == pytest.approx(10 * 12000 / 1.0)
    assert mi.recv_rate_bps == pytest.approx(3 * 12000 / 0.3)
    assert mi.avg_latency_s == pytest.approx(0.15)
    assert mi.latency_increase_s == pytest.approx(0.1)
    assert mi.sent_latency_inflation == pytest.approx(0.1 / 1.0)
    assert mi.ack_latency_inflation == pytest.approx(0.1 / 0.3)
    assert mi.loss_ratio == pytest.approx(1 / 5)
    assert mi.latency_ratio == pytest.approx(1.0)  # its own mean is the minimum so far
    assert mi.recv_ratio == pytest.approx(mi.recv_rate_bps / mi.send_rate_bps)
    assert mi.send_ratio == pytest.approx(mi.send_rate_bps / mi.recv_rate_bps)

    # second interval: window continues from the previous recv_end; latency ratio vs the running min
    mon.on_events(np.array([EV_SENT, EV_ACKED, EV_ACKED]), np.array([1.0, 1.1, 1.3]), np.array([0, 0.3, 0.3]))
    mi2 = mon.finish(1.4)
    assert (mi2.recv_start_s, mi2.recv_end_s, mi2.packets_acked_for_rate) == (0.8, 1.3, 2)
    assert mi2.latency_ratio == pytest.approx(0.3 / 0.15)

    # an interval without ACKs reuses the mean of the previous RTT samples and the interval bounds
    mon.on_events(np.array([EV_SENT]), np.array([1.5]), np.array([0.0]))
    mi3 = mon.finish(2.0)
    np.testing.assert_allclose(mi3.rtt_samples_s, [0.3])
    assert (mi3.recv_start_s, mi3.recv_end_s, mi3.recv_rate_bps) == (1.4, 2.0, 0.0)
    assert mi3.recv_ratio == 0.0 and mi3.send_ratio == 1.0


streams = st.lists(st.tuples(st.sampled_from([EV_SENT, EV_ACKED, EV_LOST]),
                             st.floats(0.001, 0.05), st.floats(0.01, 0.5)), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None)
@given(streams, st.lists(st.integers(1, 20), min_size=1, max_size=5))
def test_batched_and_per_packet_feeds_agree(events, cuts):
    kind = np.array([e[0] for e in events])
    t = np.cumsum([e[1] for e in events])
    rtt = np.array([e[2] for e in events])
    a, b = IntervalMonitor(), IntervalMonitor()
    bounds = np.unique(np.clip(np.cumsum(cuts), 0, len(events)))
    start = 0
    for stop in list(bounds) + [len(events)]:
        sl = slice(start, stop)
        a.on_events(kind[sl], t[sl], rtt[sl])
        feed_one_by_one(b, kind[sl], t[sl], rtt[sl])
        end = float(t[stop - 1]) + 0.01 if stop > 0 else 0.01
        ma, mb = a.finish(end), b.finish(end)
        for f in GENET_FEATURES + ("send_ratio", "loss_ratio", "ack_latency_inflation"):
            assert ma.feature(f) == pytest.approx(mb.feature(f), rel=1e-12, abs=1e-12)
        start = stop


def test_observation_history_is_oldest_first_and_starts_empty():
    hist = ObservationHistory(GENET_FEATURES, history_length=10)
    obs = hist.observation()
    assert obs.shape == (30,)
    np.testing.assert_array_equal(obs.reshape(10, 3), np.tile([0.0, 1.0, 1.0], (10, 1)))
    mon = IntervalMonitor()
    mon.on_events(np.array([EV_SENT, EV_SENT, EV_ACKED, EV_ACKED]), np.array([0, 0.1, 0.2, 0.3]),
                  np.array([0, 0, 0.1, 0.3]))
    mi = mon.finish(0.4)
    obs = hist.push(mi).reshape(10, 3)
    np.testing.assert_allclose(obs[-1], [mi.sent_latency_inflation, mi.latency_ratio, mi.recv_ratio], rtol=1e-6)
    np.testing.assert_array_equal(obs[:-1], np.tile([0.0, 1.0, 1.0], (9, 1)))
    with pytest.raises(ValueError, match="unknown observation feature 'rtt'"):
        ObservationHistory(("rtt",))


def test_reward_forms_reproduce_genets_published_rows():
    # genet fig13 summary row (testbeds.md §4.4): 31.58 Mbps, 179.03 ms, loss 0.01884, trace avg bw 43.41 Mbps
    tput_pps = 31.58e6 / 12000
    assert aurora_reward(tput_pps, 0.17903, 0.01884, form="aurora") == pytest.approx(26101.9, rel=2e-4)
    assert aurora_reward(tput_pps, 0.17903, 0.01884, 43.41e6 / 12000, form="genet") == pytest.approx(147.04, abs=0.05)
    with pytest.raises(ValueError, match="needs avg_bandwidth_pps"):
        aurora_reward(1.0, 0.1, 0.0, None, form="genet")
    with pytest.raises(ValueError, match="unknown reward form"):
        aurora_reward(1.0, 0.1, 0.0, 1.0, form="paper")


def test_interval_and_packet_level_rewards():
    mon = IntervalMonitor()
    kind = np.array([EV_SENT] * 4 + [EV_ACKED, EV_ACKED, EV_ACKED, EV_LOST])
    t = np.array([0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8])
    rtt = np.array([0, 0, 0, 0, 0.1, 0.1, 0.1, 0.1])
    mon.on_events(kind, t, rtt)
    mi = mon.finish(1.0)
    expect = 10 * mi.throughput_pps - 1000 * 0.1 - 2000 * 0.25
    assert interval_reward(mi, "aurora") == pytest.approx(expect)
    # packet level: 3 acked over 0.2 s = 15 pkt/s, mean RTT 0.1 s, loss 1 - 3/4
    assert packet_level_reward(kind, t, rtt, "aurora") == pytest.approx(150 - 100 - 500)
    assert packet_level_reward(kind, t, rtt, "genet", 30.0) == pytest.approx(250 - 100 - 500)
