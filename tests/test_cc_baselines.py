"""Sanity of the simulated Cubic and BBR baselines (issue 4's checks) and of
their state machines."""

from __future__ import annotations

import numpy as np
import pytest

from genet.cc.connection import new_conn_state
from genet.cc.link import LinkConfig, mbps_to_pps
from genet.cc.senders import BbrSender, CubicSender
from genet.cc.senders import bbr, cubic
from genet.cc.simulator import EV_ACKED, Simulation

BW_MBPS, DELAY_MS, DUR_S = 10.0, 50.0, 30.0
BDP_PACKETS = int(mbps_to_pps(BW_MBPS) * 2 * DELAY_MS / 1000)  # 83


def summary(sender, loss_rate=0.0, seed=0):
    link = LinkConfig.constant(BW_MBPS, DELAY_MS, BDP_PACKETS, duration_s=DUR_S, loss_rate=loss_rate)
    log = Simulation(link, sender, seed=seed).run()
    acked = log.kind == EV_ACKED
    return {"utilisation": log.packets_acked / (mbps_to_pps(BW_MBPS) * DUR_S),
            "p95_queue_s": float(np.percentile(log.queue_delay_s[acked], 95))}


@pytest.fixture(scope="module")
def clean():
    return {"cubic": summary(CubicSender()), "bbr": summary(BbrSender())}


@pytest.fixture(scope="module")
def lossy():
    return {"cubic": summary(CubicSender(), 0.01, seed=1), "bbr": summary(BbrSender(), 0.01, seed=1)}


@pytest.mark.parametrize("name", ["cubic", "bbr"])
def test_both_fill_a_bdp_queue_link(clean, name):
    assert clean[name]["utilisation"] >= 0.90


def test_cubic_fills_the_queue_and_bbr_keeps_it_short(clean):
    full_queue_s = BDP_PACKETS / mbps_to_pps(BW_MBPS)
    assert clean["cubic"]["p95_queue_s"] == pytest.approx(full_queue_s, rel=0.1)
    assert clean["bbr"]["p95_queue_s"] < 0.5 * full_queue_s


def test_random_loss_collapses_cubic_much_more_than_bbr(clean, lossy):
    cubic_keep = lossy["cubic"]["utilisation"] / clean["cubic"]["utilisation"]
    bbr_keep = lossy["bbr"]["utilisation"] / clean["bbr"]["utilisation"]
    assert cubic_keep < 0.5
    assert bbr_keep > 0.85
    assert bbr_keep > 2 * cubic_keep


# ------------------------------------------------------------ Cubic rules
def test_cubic_multiplicative_decrease_once_per_rtt():
    s = cubic.new_state()
    conn = new_conn_state()
    conn[0]["srtt_s"] = 0.1
    s[0]["cwnd"] = 100.0
    cubic.on_loss(s[0], conn[0], 1.0, 0.1, np.zeros(9))
    assert s[0]["cwnd"] == 70.0 and s[0]["ssthresh"] == 70.0 and s[0]["w_last_max"] == 100.0
    cubic.on_loss(s[0], conn[0], 1.05, 0.1, np.zeros(9))  # inside the same RTT: ignored
    assert s[0]["cwnd"] == 70.0
    cubic.on_loss(s[0], conn[0], 1.2, 0.1, np.zeros(9))  # fast convergence: below the last max
    assert s[0]["cwnd"] == 49.0 and s[0]["w_last_max"] == pytest.approx(70 * 1.7 / 2)


def test_cubic_slow_start_then_concave_growth_towards_last_max():
    s = cubic.new_state()
    conn = new_conn_state()
    for k in range(70):  # slow start: +1 per ACK up to ssthresh 80
        cubic.on_ack(s[0], conn[0], 0.1 + k * 1e-3, 0.1, np.zeros(9))
    assert s[0]["cwnd"] == 80.0
    s[0]["w_last_max"] = 90.0
    s[0]["ssthresh"] = 79.0
    cwnd_at = []
    now = 1.0
    for rtt_round in range(80):
        for _ in range(int(s[0]["cwnd"])):
            cubic.on_ack(s[0], conn[0], now, 0.1, np.zeros(9))
        now += 0.1
        cwnd_at.append(s[0]["cwnd"])
    growth = np.diff(cwnd_at)
    k_s = ((90 - 80) / 0.4) ** (1 / 3)  # plateau near W_max at t = K
    plateau = int(k_s / 0.1)
    assert growth[:5].mean() > 2 * growth[plateau - 3:plateau + 3].mean()  # concave approach
    assert cwnd_at[plateau] == pytest.approx(90, abs=3)
    assert cwnd_at[-1] > 120  # convex probing beyond the old maximum


# ------------------------------------------------------------ BBR machine
def test_bbr_models_the_path_and_cycles_through_its_states():
    link = LinkConfig.constant(BW_MBPS, DELAY_MS, BDP_PACKETS, duration_s=DUR_S)
    sim = Simulation(link, BbrSender(), seed=3)
    modes, cwnd_in_probe_rtt = [], []
    for t in np.arange(0.05, DUR_S, 0.05):
        sim.run(t)
        st = sim.sender_state
        modes.append(int(st["mode"]))
        if st["mode"] == bbr.PROBE_RTT:
            cwnd_in_probe_rtt.append(float(st["cwnd"]))
    order = [m for i, m in enumerate(modes) if i == 0 or modes[i - 1] != m]
    assert order[:3] == [bbr.STARTUP, bbr.DRAIN, bbr.PROBE_BW]
    assert order.count(bbr.PROBE_RTT) in (2, 3)  # RTprop expires every 10 s without a lower sample
    assert max(cwnd_in_probe_rtt) <= bbr.MIN_PIPE_CWND
    st = sim.sender_state
    assert st["btlbw_pps"] == pytest.approx(mbps_to_pps(BW_MBPS), rel=0.1)
    assert st["rtprop_s"] == pytest.approx(2 * DELAY_MS / 1000, rel=0.05)


def test_bbr_loss_enters_recovery_and_restores_the_window():
    s = bbr.new_state()
    conn = new_conn_state()
    conn[0]["srtt_s"] = 0.1
    conn[0]["inflight_packets"] = 50
    s[0]["cwnd"] = 120.0
    bbr.on_loss(s[0], conn[0], 2.0, 0.1, np.zeros(9))
    assert s[0]["in_recovery"] == 1 and s[0]["cwnd"] == 51.0 and s[0]["prior_cwnd"] == 120.0
    pkt = np.zeros(9)
    pkt[2] = 2.05  # sent
    bbr.on_ack(s[0], conn[0], 2.2, 0.15, pkt)  # after srtt: recovery over, window restored
    assert s[0]["in_recovery"] == 0 and s[0]["cwnd"] >= 120.0


def test_bbr_recovery_sample_rule_is_a_real_switch():
    link = LinkConfig.constant(60, 166, 2000, duration_s=DUR_S, loss_rate=0.01)
    keep = Simulation(link, BbrSender(), seed=0).run().packets_acked
    drop = Simulation(link, BbrSender(discard_recovery_samples=True), seed=0).run().packets_acked
    capacity = mbps_to_pps(60) * DUR_S
    assert keep != drop
    assert keep / capacity > 0.7 and drop / capacity > 0.6
