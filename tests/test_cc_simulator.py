"""Calibration of the packet-level CC simulator with the constant-rate sender,
plus reproducibility, pausing/resuming and link input errors."""

from __future__ import annotations

import numpy as np
import pytest

from genet.cc.link import LinkConfig, mbps_to_pps
from genet.cc.senders import RateSender
from genet.cc.simulator import EV_ACKED, EV_LOST, EV_SENT, Simulation
from traces import Trace, TraceFormatError


def run(link, rate_mbps, seed=0, **kw):
    sim = Simulation(link, RateSender(rate_mbps), seed=seed, **kw)
    return sim, sim.run()


def test_underloaded_link_delivers_every_packet_at_base_rtt():
    link = LinkConfig.constant(10, delay_ms=40, queue_packets=20, duration_s=10)
    sim, log = run(link, 4.0)
    sent_times = log.time_s[log.kind == EV_SENT]
    # paced exactly at 4 Mbps = 333.3 pkt/s from t = 0
    np.testing.assert_allclose(np.diff(sent_times), 12000 / 4e6, rtol=1e-9)
    assert log.packets_lost == 0
    acked = log.kind == EV_ACKED
    serialisation_s = 1 / mbps_to_pps(10)
    # each packet waits only for its own serialisation: RTT = 2 x delay + 1/bandwidth
    np.testing.assert_allclose(log.rtt_s[acked], 0.080 + serialisation_s, rtol=1e-9)
    np.testing.assert_allclose(log.queue_delay_s[acked], serialisation_s, rtol=1e-9)
    # everything sent more than one RTT before the end has been acked
    assert log.packets_acked == np.count_nonzero(sent_times < 10 - 0.0812)


@pytest.mark.parametrize("rate_mbps,queue", [(15.0, 30), (30.0, 5)])
def test_overloaded_link_delivers_capacity_and_drops_the_excess(rate_mbps, queue):
    bw_mbps, dur = 10.0, 20.0
    link = LinkConfig.constant(bw_mbps, delay_ms=20, queue_packets=queue, duration_s=dur)
    sim, log = run(link, rate_mbps)
    acked_t = log.time_s[log.kind == EV_ACKED]
    # in steady state the link serves exactly its capacity
    steady = (acked_t > 2) & (acked_t <= 12)
    assert np.count_nonzero(steady) == pytest.approx(mbps_to_pps(bw_mbps) * 10, abs=2)
    sent = log.packets_sent
    lost = log.packets_lost
    assert lost / sent == pytest.approx(1 - bw_mbps / rate_mbps, abs=0.01)
    # a full queue: queueing delay = queue / bandwidth
    q = log.queue_delay_s[(log.kind == EV_ACKED) & (log.time_s > 2)]
    assert np.median(q) == pytest.approx(queue / mbps_to_pps(bw_mbps), rel=0.02)
    assert q.max() <= queue / mbps_to_pps(bw_mbps) + 1e-9


def test_random_loss_rate_matches_configuration():
    link = LinkConfig.constant(20, delay_ms=10, queue_packets=100, duration_s=30, loss_rate=0.05)
    _, log = run(link, 10.0, seed=3)
    n = log.packets_lost + log.packets_acked
    p = log.packets_lost / n
    assert abs(p - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n)


def test_loss_is_detected_one_path_latency_after_sending():
    link = LinkConfig.constant(10, delay_ms=30, queue_packets=50, duration_s=5, loss_rate=0.2)
    _, log = run(link, 2.0, seed=1)
    lost = log.kind == EV_LOST
    assert lost.any()
    assert np.all(log.rtt_s[lost] >= 0.060 - 1e-9)
    assert np.all(log.rtt_s[lost] < 0.060 + 0.01)


def test_variable_bandwidth_serves_what_the_trace_allows():
    t = np.arange(0, 30.5, 1.0)
    bw = np.where(np.arange(t.size) % 2 == 0, 2.0, 6.0)
    link = LinkConfig(t, bw, delay_ms=25, queue_packets=20)
    _, log = run(link, 8.0)
    acked_t = log.time_s[log.kind == EV_ACKED]
    # served by second s (ACK returns 25 ms after leaving the queue): bounded by the capacity
    capacity = np.concatenate([[0], np.cumsum(mbps_to_pps(bw[:-1]))])
    for s in (5, 10, 20):
        served = np.count_nonzero(acked_t <= s + 0.025)
        assert served <= capacity[s] + 1
        assert served >= capacity[s] - 20 - 2  # at most the queue behind
    assert log.packets_acked / 30 * 12000 / 1e6 == pytest.approx(link.mean_bandwidth_mbps, rel=0.02)


def test_zero_bandwidth_stretch_is_raised_to_genets_minimum():
    t = np.array([0.0, 1.0, 2.0, 10.0])
    link = LinkConfig(t, np.array([5.0, 0.0, 5.0, 5.0]), delay_ms=10, queue_packets=1000)
    _, log = run(link, 4.0)
    acked_t = log.time_s[log.kind == EV_ACKED]
    inside = np.count_nonzero((acked_t > 1.03) & (acked_t <= 2.0))
    assert inside <= mbps_to_pps(0.1) + 1  # 8.3 pkt/s while the trace says 0


def test_same_seed_same_events_and_resume_equals_single_run():
    link = LinkConfig.constant(10, delay_ms=50, queue_packets=40, duration_s=10, loss_rate=0.02)
    _, whole = run(link, 12.0, seed=7)
    sim = Simulation(link, RateSender(12.0), seed=7, log_chunk_events=100)
    parts = [sim.run(t) for t in np.arange(0.37, 10.0, 0.37)] + [sim.run()]
    for field in ("kind", "time_s", "packet_id", "rtt_s", "queue_delay_s"):
        np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in parts]), getattr(whole, field))
    _, other = run(link, 12.0, seed=8)
    assert not np.array_equal(other.kind, whole.kind)


def test_many_packets_in_flight_grow_the_heap():
    link = LinkConfig.constant(100, delay_ms=200, queue_packets=5000, duration_s=3)
    sim, log = run(link, 50.0)
    assert log.packets_lost == 0
    assert sim.stats["packets_acked"] == log.packets_acked > 8000
    assert np.all(np.diff(log.time_s) >= 0)


def test_delay_noise_stays_within_its_bound():
    link = LinkConfig(np.array([0.0, 10.0]), np.array([10.0, 10.0]), delay_ms=20, queue_packets=50,
                      delay_noise_ms=30)
    _, log = run(link, 2.0)
    rtt = log.rtt_s[log.kind == EV_ACKED]
    base = 0.040 + 1 / mbps_to_pps(10)
    extra = rtt - base
    assert extra.min() >= -1e-12 and extra.max() <= 0.030 + 1e-9
    noisy = np.mean(extra > 1e-9)
    assert 0.05 < noisy < 0.15  # noise hits 10% of packets
    assert np.all(np.diff(log.time_s) >= 0)  # reordered arrivals still come out in time order


@pytest.mark.parametrize("kwargs,message", [
    (dict(queue_packets=0.5), "queue_packets must be >= 1"),
    (dict(delay_ms=-1), "delay_ms must be >= 0"),
    (dict(loss_rate=1.0), "loss_rate must be in [0, 1)"),
    (dict(loss_rate=-0.1), "loss_rate must be in [0, 1)"),
])
def test_bad_link_parameters_are_named(kwargs, message):
    args = dict(delay_ms=10, queue_packets=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        LinkConfig(np.array([0.0, 1.0]), np.array([1.0, 1.0]), **args)


def test_all_zero_bandwidth_trace_is_rejected_with_its_name():
    trace = Trace(np.array([0.0, 1.0, 2.0]), np.zeros(3), name="dead-link", delay_ms=10)
    with pytest.raises(TraceFormatError, match="dead-link.*zero for the whole trace"):
        LinkConfig.from_trace(trace)


def test_from_trace_uses_trace_properties_then_overrides_then_defaults():
    trace = Trace(np.array([0.0, 5.0]), np.array([3.0, 3.0]), name="x", delay_ms=40, loss_rate=0.01)
    link = LinkConfig.from_trace(trace)
    assert (link.delay_ms, link.loss_rate, link.queue_packets) == (40, 0.01, 10)
    link = LinkConfig.from_trace(trace, queue_packets=77, delay_ms=5)
    assert (link.delay_ms, link.queue_packets) == (5, 77)
    with pytest.raises(ValueError, match="x.*queue_packets must be >= 1"):
        LinkConfig.from_trace(trace, queue_packets=0)
