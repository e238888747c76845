"""Calibration of the packet-level CC simulator with the constant-rate sender,
plus reproducibility, pausing/resuming, link input errors, and (issue 10) the
one-clock rule and the work bound under degenerate links."""

from __future__ import annotations

import numpy as np
import pytest

from genet.cc.link import LinkConfig, mbps_to_pps
from genet.cc.senders import BbrSender, CubicSender, RateSender
from genet.cc.simulator import (EV_ACKED, EV_LOST, EV_SENT, WORK_BOUND_BASE_EVENTS, WORK_BOUND_EVENTS_PER_PACKET,
                                Simulation, WorkBoundError)
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


# ----------------------------------------------- issue 10: one clock, bounded work
def test_rate_matched_zero_delay_link_keeps_time_monotone():
    # the first example: the sender's pacing and the link's drain reach the same instant by
    # different arithmetic; a drop notice used to come 1e-16 s before its own send
    link = LinkConfig(np.array([0.0, 1.0]), np.array([1.0, 0.0]), delay_ms=0, queue_packets=1)
    sim, log = run(link, 1.0)
    assert np.all(np.diff(log.time_s) >= 0)
    assert np.all(log.queue_delay_s >= 0) and np.all(log.rtt_s >= 0)
    done = log.kind != EV_SENT
    sent_at = dict(zip(log.packet_id[log.kind == EV_SENT], log.time_s[log.kind == EV_SENT]))
    assert all(t >= sent_at[i] for i, t in zip(log.packet_id[done], log.time_s[done]))


@pytest.mark.parametrize("sender", [CubicSender(), BbrSender()], ids=["cubic", "bbr"])
def test_zero_delay_one_packet_queue_is_simulated_at_link_rate(sender):
    # the second example: zero delay, a 1-packet queue and a window sender used to loop at
    # one instant (tail drop into a rounding residue, loss notice at once, re-send) until memory ran out
    link = LinkConfig(np.array([0.0, 0.5]), np.array([26.02, 19.79]), delay_ms=0, queue_packets=1)
    sim = Simulation(link, sender, seed=1)
    log = sim.run()
    assert sim.done and np.all(np.diff(log.time_s) >= 0)
    capacity = link.available_packets(0, 0.5)
    assert log.packets_acked <= capacity + 2
    assert log.packets_acked >= 0.7 * capacity  # the link is kept busy, not starved by the loop
    assert len(log) < 8 * sim.reference_rate_pps * link.duration_s
    acked = log.kind == EV_ACKED
    # zero propagation delay: RTT = queueing delay, at least one serialisation time
    np.testing.assert_allclose(log.rtt_s[acked], log.queue_delay_s[acked], rtol=0, atol=1e-12)
    assert log.rtt_s[acked].min() >= 1 / mbps_to_pps(26.02) - 1e-12


def test_zero_delay_with_random_loss_terminates_and_counts_every_packet():
    link = LinkConfig.constant(5, delay_ms=0, queue_packets=1, duration_s=2, loss_rate=0.5)
    sim = Simulation(link, CubicSender(), seed=3)
    log = sim.run()
    s = sim.stats
    assert s["packets_sent"] == s["packets_acked"] + s["packets_lost"] + s["inflight_packets"]
    assert log.packets_lost > 0 and np.all(np.diff(log.time_s) >= 0)


def test_a_run_past_its_work_bound_stops_with_an_error_naming_the_link(monkeypatch):
    # the bound itself (normally 100,000 + 64 events per packet time) is real: shrink it below what
    # a rate sender needs (2 per packet) and the run stops at the first event past it
    import genet.cc.simulator as simulator

    monkeypatch.setattr(simulator, "WORK_BOUND_BASE_EVENTS", 50)
    monkeypatch.setattr(simulator, "WORK_BOUND_EVENTS_PER_PACKET", 1.0)
    link = LinkConfig.constant(10, delay_ms=10, queue_packets=20, duration_s=5, name="tight")
    sim = Simulation(link, RateSender(10.0))
    with pytest.raises(WorkBoundError, match=r"link 'tight' \(duration_s=5.*delay_ms=10.*queue_packets=20.*"
                                             r"work bound"):
        sim.run()
    stats = sim.stats
    assert stats["events"] <= stats["work_allowance"] + 1
    assert stats["events"] < 50 + 2 * mbps_to_pps(10) * 5


def test_work_allowance_grows_with_simulated_time_not_per_call():
    link = LinkConfig.constant(10, delay_ms=20, queue_packets=20, duration_s=4)
    sim = Simulation(link, RateSender(5.0))
    for t in np.arange(0.1, 4.0, 0.1):
        sim.run(t)
    sim.run()
    expected = WORK_BOUND_BASE_EVENTS + WORK_BOUND_EVENTS_PER_PACKET * mbps_to_pps(10) * 4
    assert sim.stats["work_allowance"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("kwargs,sender,named", [
    (dict(bandwidth_mbps=100, duration_s=7200), CubicSender(), r"duration_s=7200.*up to 100 Mbps"),
    (dict(bandwidth_mbps=1, duration_s=60), RateSender(3000.0), r"up to 3000 Mbps"),
    (dict(bandwidth_mbps=1, duration_s=60, loss_rate=0.99999), CubicSender(), r"loss_rate=0.99999"),
])
def test_a_run_too_large_to_record_is_rejected_before_it_starts(kwargs, sender, named):
    link = LinkConfig.constant(delay_ms=10, queue_packets=10, **kwargs)
    sim = Simulation(link, sender)
    with pytest.raises(WorkBoundError, match=named + r".*max_events=20,000,000"):
        sim.run()
    assert sim.stats["events"] == 0 and sim.now_s == 0  # nothing ran
    assert Simulation(link, sender, record_log=False).run(0.01) is not None  # unrecorded runs are not capped


def test_a_long_queue_over_a_fine_grained_trace_is_served_in_log_time():
    # 1-ms samples at the 0.1 Mbps floor with a 3000-packet queue: each departure lies many thousand
    # samples ahead; the serve-time search is a binary search (it was a linear scan per packet)
    from genet.cc.link import serve_time_s

    t = np.arange(0, 60.001, 0.001)
    bw = np.where(np.arange(t.size) % 2 == 0, 0.0, 0.3)
    link = LinkConfig(t, bw, delay_ms=5, queue_packets=3000)
    t_s, bw_pps, cum = link.arrays()
    for served, i in [(0.0, 0), (123.4, 1000), (cum[-1] + 5, 0), (cum[7], 7), (cum[7], 3)]:
        j = i
        while j + 1 < t_s.size and cum[j + 1] <= served:
            j += 1
        linear = t_s[j] + (served - cum[j]) / bw_pps[j]
        assert serve_time_s(t_s, bw_pps, cum, i, 0.0, served, 0.0) == linear
    sim, log = run(link, 20.0)
    assert log.packets_acked <= link.available_packets(0, 60) + 1
    assert np.all(np.diff(log.time_s) >= 0)
