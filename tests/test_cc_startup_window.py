"""Aurora's start-up option (issue 30): ``AuroraConfig.startup = "window"`` keeps at most
``initial_window_packets`` in flight until the first ACK, then continues at min(rate, IW / first RTT);
"aurora" (the default) is Aurora's reference start-up, unchanged. One definition (genet/cc/aurora.py) run
by the simulator's rate sender, the Gymnasium environment and the real UDP sender, and recorded in the
exported model."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from foundation.errors import BadInputError
from genet.cc.aurora import (AuroraConfig, AuroraController, initial_rate_pps, startup_rate_after_first_ack_pps,
                             startup_window_open)
from genet.cc.link import LinkConfig, pps_to_mbps
from genet.cc.senders import RateSender
from genet.cc.simulator import EV_ACKED, EV_LOST, EV_SENT, Simulation
from traces import Trace
from udp_relay import UdpRelay

#: The corner CC Genet's BO keeps promoting (app/study/cc_startup.py), without random loss.
BW_MBPS, DELAY_MS, QUEUE_PACKETS = 0.1, 2.0, 10


def _corner_link(duration_s: float = 5.0) -> LinkConfig:
    return LinkConfig.constant(BW_MBPS, delay_ms=DELAY_MS, queue_packets=QUEUE_PACKETS, duration_s=duration_s)


def _before_first_ack(log) -> tuple[int, int, float]:
    """(packets sent before the first ACK, how many of those were lost, the first ACK's time)."""
    t_ack = float(log.time_s[log.kind == EV_ACKED][0])
    early = log.packet_id[(log.kind == EV_SENT) & (log.time_s < t_ack)]
    lost = int(np.isin(log.packet_id[log.kind == EV_LOST], early).sum())
    return int(early.size), lost, t_ack


def _rate_sender(cfg: AuroraConfig, min_rtt_s: float) -> RateSender:
    return RateSender(pps_to_mbps(initial_rate_pps(cfg, min_rtt_s)), startup_window_packets=cfg.startup_window_packets,
                      min_rate_pps=cfg.min_rate_pps)


# ------------------------------------------------------------------ the rule
def test_the_gate_and_the_first_ack_rate_are_the_documented_rules():
    # Aurora's start-up (window 0) never gates and never changes the rate
    assert startup_window_open(0, 0, 10**6)
    assert startup_rate_after_first_ack_pps(2500.0, 0, 0.124, 5.0) == 2500.0
    # the window: fewer than IW in flight before the first ACK; anything after it
    assert startup_window_open(10, 0, 9) and not startup_window_open(10, 0, 10)
    assert startup_window_open(10, 1, 10**6)
    # min(rate, IW / first RTT), floored at the minimum rate; never raises the rate
    assert startup_rate_after_first_ack_pps(2500.0, 10, 0.124, 5.0) == pytest.approx(10 / 0.124)
    assert startup_rate_after_first_ack_pps(100.0, 10, 0.004, 5.0) == 100.0
    assert startup_rate_after_first_ack_pps(2500.0, 10, 100.0, 5.0) == 5.0
    cfg = AuroraConfig()
    assert cfg.startup == "aurora" and cfg.startup_window_packets == 0 and cfg.initial_window_packets == 10
    assert AuroraConfig(startup="window").startup_window_packets == 10
    assert AuroraConfig(startup="window", initial_window_packets=4.0).startup_window_packets == 4
    for bad in ({"startup": "slow-start"}, {"startup": "window", "initial_window_packets": 0},
                {"initial_window_packets": 2.5}, {"initial_window_packets": "10"}, {"initial_window_packets": True},
                {"initial_window_packets": float("nan")}, {"initial_window_packets": 10**6}):
        with pytest.raises(BadInputError, match="startup|initial_window_packets"):
            AuroraConfig(**bad)


# ------------------------------------------------------------------ simulator
def test_in_the_simulator_the_window_loses_a_handful_where_aurora_loses_hundreds():
    link = _corner_link()
    min_rtt_s = 2 * DELAY_MS / 1000
    out = {}
    for startup in ("aurora", "window"):
        cfg = AuroraConfig(startup=startup)
        sim = Simulation(link, _rate_sender(cfg, min_rtt_s), seed=0)
        log = sim.run(3.0)  # loss notices come late (the FIFO rule): run past the start-up's last one
        out[startup] = _before_first_ack(log) + (float(sim.sender_state["rate_pps"]),)
    sent_a, lost_a, t_ack_a, rate_a = out["aurora"]
    sent_w, lost_w, t_ack_w, rate_w = out["window"]
    iw = AuroraConfig().initial_window_packets
    assert sent_w <= iw and lost_w <= 3  # the window fits the 10-packet queue
    assert lost_a >= 100 and sent_a > 20 * iw  # ~300 sent into it before any feedback
    assert t_ack_w == pytest.approx(t_ack_a)  # the first packet's RTT: its own 120-ms serialisation
    # from the first ACK on: Aurora keeps 10 packets per min RTT, the window IW per first RTT
    assert rate_a == pytest.approx(initial_rate_pps(AuroraConfig(), min_rtt_s))
    assert rate_w == pytest.approx(startup_rate_after_first_ack_pps(rate_a, iw, t_ack_w, 5.0)) and rate_w < rate_a / 10


def test_a_window_lost_whole_does_not_stall_the_sender():
    """Every packet of the window dropped (a 1-packet queue, 100 % of the rest lost): the loss notices free
    the window's slots, so the sender goes on sending and gets its first ACK."""
    link = LinkConfig.constant(BW_MBPS, delay_ms=DELAY_MS, queue_packets=1, duration_s=10.0)
    sim = Simulation(link, _rate_sender(AuroraConfig(startup="window", initial_window_packets=4), 0.004), seed=0)
    log = sim.run(10.0)
    assert log.packets_lost > 0 and log.packets_acked > 10
    sent_before, _, _ = _before_first_ack(log)
    assert sent_before <= 4


def test_the_environment_and_the_simulator_agree():
    trace = Trace.constant(BW_MBPS, 30.0, delay_ms=DELAY_MS, queue_packets=QUEUE_PACKETS, loss_rate=0.0)
    from genet.cc.env import AuroraEnv
    for startup in ("aurora", "window"):
        cfg = AuroraConfig(startup=startup)
        env = AuroraEnv(traces=[trace], aurora=cfg)
        env.reset(seed=3)
        for _ in range(6):
            env.step(np.zeros(1, np.float32))  # the rate stays what the start-up made it
        log = env.episode_log()
        sim = Simulation(LinkConfig.from_trace(trace), _rate_sender(cfg, 2 * DELAY_MS / 1000), seed=0)
        ref = sim.run(env.sim.now_s)
        n = min(len(log), len(ref)) - 2  # (the run's last instant: a cut send)
        assert n > 50
        assert np.array_equal(log.kind[:n], ref.kind[:n]) and np.allclose(log.time_s[:n], ref.time_s[:n])
        # the controller (whose rate the policy's actions scale) holds the simulator's rate
        assert env.controller.rate_pps == pytest.approx(float(env.sim.sender_state["rate_pps"]))
        assert env.controller.rate_pps == pytest.approx(float(sim.sender_state["rate_pps"]))
        sent, lost, _ = _before_first_ack(log)
        assert (sent <= 10) == (startup == "window")


def test_the_default_start_up_is_aurora_s_unchanged():
    """Default config: no gate, the rate untouched at the first ACK; the first interval sends one packet
    every 1 / (10 per min RTT) from t = 0 until the first ACK, as Aurora's reference does."""
    trace = Trace.constant(BW_MBPS, 30.0, delay_ms=DELAY_MS, queue_packets=QUEUE_PACKETS, loss_rate=0.0)
    from genet.cc.env import AuroraEnv
    env = AuroraEnv(traces=[trace])
    env.reset(seed=0)
    rate = initial_rate_pps(AuroraConfig(), 2 * DELAY_MS / 1000)
    log = env.episode_log()
    sent, _, t_ack = _before_first_ack(log)
    assert abs(sent - t_ack * rate) <= 1  # (the last slot falls either side of the ACK by rounding)
    assert np.allclose(np.diff(log.time_s[log.kind == EV_SENT]), 1 / rate)
    assert env.controller.rate_pps == rate
    ctl = AuroraController(AuroraConfig(), rate)
    assert ctl.may_send(0, 10**6) and ctl.on_first_ack(0.5) == rate


# ------------------------------------------------------------------ the model's metadata
@pytest.fixture(scope="module")
def window_model(tmp_path_factory):
    """A tiny untrained policy exported by the training path with --startup window."""
    from genet.cc.training import CcTrainConfig, CcUseCase, export_policy
    uc = CcUseCase(CcTrainConfig(n_envs=2, steps_per_update=200, minibatch=50, epochs=2, startup="window",
                                 initial_window_packets=6))
    agent = uc.new_model(0)
    return export_policy(uc, agent, tmp_path_factory.mktemp("m") / "window.onnx", n_check=10)


def test_a_model_trained_with_the_window_runs_with_it_everywhere(window_model, repo_dir):
    from genet.cc.policies import run_policy
    from genet.cc.registry import load_aurora_policy, load_rate_policy, parse_policy
    _, cfg = load_aurora_policy(str(window_model), AuroraConfig())
    assert (cfg.startup, cfg.initial_window_packets) == ("window", 6)
    # genet sender send / genet emulate cc load it through load_rate_policy
    rp = load_rate_policy(str(window_model))
    assert (rp.config.startup, rp.config.startup_window_packets) == ("window", 6)
    # a model exported before start-ups existed (no metadata) loads as Aurora's
    shipped = repo_dir / "models" / "study" / "policies" / "cc-genet-ack-s0.onnx"
    _, old = load_aurora_policy(str(shipped), AuroraConfig(startup="window"))
    assert old.startup == "aurora"
    # the shipped models were trained with the window and record it
    assert load_aurora_policy(str(repo_dir / "models" / "cc" / "genet.onnx"), AuroraConfig())[1].startup == "window"
    # genet eval cc: the simulator run of each keeps its own start-up
    trace = Trace.constant(BW_MBPS, 3.0, delay_ms=DELAY_MS, queue_packets=QUEUE_PACKETS, loss_rate=0.0)
    link = LinkConfig.from_trace(trace)
    new_sent = _before_first_ack(run_policy(parse_policy(str(window_model)), trace, link))[0]
    old_sent = _before_first_ack(run_policy(parse_policy(str(shipped)), trace, link))[0]
    assert new_sent <= 6 < 20 * 6 < old_sent


def test_bad_start_up_metadata_is_one_clear_error(tmp_path, window_model):
    import onnx
    from genet.cc.registry import load_aurora_policy
    m = onnx.load(str(window_model))
    for p in m.metadata_props:
        if p.key == "genet.startup":
            p.value = '"burst"'
    bad = tmp_path / "bad.onnx"
    onnx.save(m, str(bad))
    with pytest.raises(BadInputError, match=r"bad\.onnx: metadata genet\.startup.*burst"):
        load_aurora_policy(str(bad), AuroraConfig())


def test_training_options_reach_the_config():
    import argparse
    from genet.cc.training import build_use_case
    uc = build_use_case(argparse.Namespace(startup="window", initial_window_packets=4))
    assert uc.config.aurora().startup_window_packets == 4
    default = build_use_case(argparse.Namespace()).config.aurora()  # the real sender's rules by default
    assert (default.startup, default.interval_serialisation) == ("window", "measured")
    genet = build_use_case(argparse.Namespace(startup="aurora", interval_serialisation="link")).config.aurora()
    assert (genet.startup, genet.interval_serialisation) == ("aurora", "link")


# ------------------------------------------------------------------ the real UDP sender on loopback
class _DelayedAcks(threading.Thread):
    """A UDP relay sender <-> receiver on 127.0.0.1 that holds every reply ``delay_s`` (data passes at once)."""

    def __init__(self, receiver_port: int, delay_s: float):
        super().__init__(daemon=True)
        self.delay_s = delay_s
        self.q: queue.Queue = queue.Queue()
        outer = self

        class Relay(UdpRelay):
            def on_reply(self, data):
                outer.q.put((time.monotonic() + outer.delay_s, data))
        self.relay = Relay(receiver_port, poll_s=0.01)
        self.port = self.relay.port

    def run(self):
        self.relay.start()
        while not self.relay.stop:
            try:
                due, data = self.q.get(timeout=0.05)
            except queue.Empty:
                continue
            time.sleep(max(0.0, due - time.monotonic()))
            self.relay.to_sender(data)

    def close(self):
        self.relay.stop = True
        self.join(timeout=5)


def _send_through_delay(tmp_path, startup: str, rate_pps: float = 400.0, delay_s: float = 0.3):
    from genet.cc.registry import RatePolicy
    from sender.receiver import Receiver
    from sender.udp_sender import UdpSender, read_log
    rx = Receiver("127.0.0.1", 0)
    rt = threading.Thread(target=rx.serve, kwargs={"once": True, "duration_s": 30}, daemon=True)
    rt.start()
    relay = _DelayedAcks(rx.port, delay_s)
    relay.start()
    try:
        cfg = AuroraConfig(reward_normaliser="measured", startup=startup)
        policy = RatePolicy(f"const-{startup}", cfg, fixed_rate_pps=rate_pps)
        log = tmp_path / f"{startup}.jsonl"
        status, summary = UdpSender(("127.0.0.1", relay.port), policy, 1.2, log).run()
    finally:
        relay.close()
        rt.join(timeout=10)
    return status, summary, read_log(log)


def test_the_udp_sender_sends_at_most_the_window_before_its_first_ack(tmp_path):
    status, summary, recs = _send_through_delay(tmp_path, "window")
    iw = AuroraConfig().initial_window_packets
    assert status == 0 and summary["packets_acked"] > 0
    assert recs[0]["startup"] == "window" and summary["startup"] == "window"
    assert 1 <= summary["packets_sent_before_first_ack"] <= iw
    assert summary["packets_sent"] > summary["packets_sent_before_first_ack"]  # it goes on after the ACK
    # Aurora's start-up on the same path sends at its rate until the ACK comes (0.3 s x 400 packets/s)
    status, aurora, recs = _send_through_delay(tmp_path, "aurora")
    assert status == 0 and recs[0]["startup"] == "aurora"
    assert aurora["packets_sent_before_first_ack"] > 5 * iw


def rate_state_dtype():
    from genet.cc.senders.rate import RATE_STATE
    return RATE_STATE


def test_a_simulation_pickled_before_start_ups_existed_resumes_unchanged():
    """A checkpoint holds environments mid-episode; one saved before the rate sender had its start-up fields
    unpickles with them (no window) and continues as an uninterrupted run does."""
    import pickle
    link = LinkConfig.constant(1.0, delay_ms=10, queue_packets=10, duration_s=3.0)
    sim = Simulation(link, RateSender(1.0), seed=0)
    sim.run(1.0)
    st = sim._sender_states[RateSender.kind]
    old = np.zeros(1, [("rate_pps", np.float64), ("next_send_s", np.float64)])
    old["rate_pps"], old["next_send_s"] = st["rate_pps"], st["next_send_s"]
    sim._sender_states[RateSender.kind] = old
    resumed = pickle.loads(pickle.dumps(sim))
    # (the compiled loop would otherwise read the missing fields past the record's end: not a clean error)
    assert resumed._sender_states[RateSender.kind].dtype == rate_state_dtype()
    assert resumed.sender_state["window_packets"] == 0
    ref = Simulation(link, RateSender(1.0), seed=0)
    ref.run(1.0)
    a, b = resumed.run(2.0), ref.run(2.0)
    assert len(a) > 50 and np.array_equal(a.kind, b.kind) and np.array_equal(a.time_s, b.time_s)
