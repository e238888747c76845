"""The UDP sender and receiver on loopback: wire format, loss rule, reliability (malformed floods,
impaired ACKs, a receiver that disappears, signals, SIGKILL), bad input. Real sockets, real processes."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from genet.cc.aurora import AuroraConfig
from genet.cc.monitor import LossDetector
from genet.cc.registry import load_rate_policy
from foundation.packets import PACKET_BYTES, UDP_PAYLOAD_BYTES
from sender import wire
from sender.receiver import Receiver
from sender.udp_sender import EXIT_SILENT, UdpSender, read_log
from udp_relay import UdpRelay

GENET = [sys.executable, "-m", "app.cli"]


def test_data_packets_are_one_simulator_packet_on_the_wire():
    pkt = wire.data_packet(7, 3, 11)
    assert len(pkt) == UDP_PAYLOAD_BYTES == PACKET_BYTES - 28  # + IPv4 (20) + UDP (8) = 1500
    assert wire.parse_header(pkt, len(pkt)) == (wire.T_DATA, 7)
    assert wire.parse_header(pkt, 100) is None  # truncated data packet
    assert wire.parse_header(b"xx" + bytes(pkt[2:]), len(pkt)) is None
    bad_version = bytearray(pkt)
    bad_version[2] = 9
    assert wire.parse_header(bad_version, len(pkt)) is None


def test_loss_rule_reordering_timeout_late_and_duplicate_acks():
    d = LossDetector(initial_timeout_s=1.0)
    for s in range(10):
        d.on_sent(s, 0.001 * s)
    assert d.on_ack(0, 0.05) == pytest.approx(0.05)
    assert d.on_ack(2, 0.052) is not None and d.pop_lost() == []  # 1 overtaken by one ACK: not yet lost
    d.on_ack(5, 0.055)  # three later packets acked past 1: lost
    assert d.pop_lost() == [1]
    assert d.on_ack(1, 0.06) is None and d.late_acks == 1  # its ACK came after all: late, not counted
    assert d.on_ack(0, 0.06) is None and d.duplicate_acks == 1
    # no later ACK: timeout 2 SRTT + 4 RTTVar (>= 20 ms)
    d.expired(0.06)
    assert 3 not in d.pop_lost()
    d.expired(0.05 + d.timeout_s + 0.01)
    assert set(d.pop_lost()) == {3, 4, 6, 7, 8, 9}


def _wait_for_start(log, proc, timeout_s=60.0):
    """Until the sender's log has its start record (its signal handlers are in place by then)."""
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and log.read_text().startswith('{"type": "start"')):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)


class _Receiver(threading.Thread):
    def __init__(self, **kw):
        super().__init__(daemon=True)
        self.rx = Receiver("127.0.0.1", 0, **kw)
        self.summary = None

    def run(self):
        self.summary = self.rx.serve(once=True, duration_s=60)


def _send(port, policy="const:5", duration_s=2.0, log=None, **kw):
    pol = load_rate_policy(policy, AuroraConfig(reward_normaliser="measured"))
    return UdpSender(("127.0.0.1", port), pol, duration_s, log, **kw).run()


def test_run_completes_with_correct_figures_under_10000_malformed_datagrams(tmp_path):
    rx = _Receiver()
    rx.start()
    port = rx.rx.port
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(1)

    def flood():
        deadline = time.monotonic() + 30
        while not rx.rx.sessions and time.monotonic() < deadline:  # mid-run: once our session is locked
            time.sleep(0.01)
        for i in range(10000):
            k = i % 4
            if k == 0:
                d = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
            elif k == 1:
                d = bytes(wire.data_packet(5, i, 0))[: rng.randint(1, 200)]  # truncated
            elif k == 2:
                d = b"GT\x01\x07" + bytes(40)  # unknown type
            else:
                d = bytes(wire.data_packet(rng.getrandbits(62) + 12345, i, 0))  # another session
            junk.sendto(d, ("127.0.0.1", port))

    t = threading.Thread(target=flood)
    t.start()
    status, summary = _send(port, "const:5", 3.0, tmp_path / "run.jsonl", session=1)
    t.join()
    rx.join(timeout=10)
    junk.close()
    assert status == 0
    got = rx.summary
    assert got["malformed"] + got["other_session"] == 10000 and got["other_session"] >= 2400
    sess = got["sessions"][0]
    assert sess["session"] == 1 and sess["packets"] == summary["packets_sent"] == summary["receiver"]["packets"]
    # every packet's ACK came back (on a loaded host some after the loss timeout: counted late); the last
    # instants' ACKs may still be in flight
    assert summary["packets_acked"] + summary["late_acks"] >= summary["packets_sent"] - 5
    assert summary["malformed_acks"] == 0
    recs = read_log(tmp_path / "run.jsonl")
    assert recs[0]["type"] == "start" and recs[-1]["type"] == "summary" and any(r["type"] == "mi" for r in recs)
    assert recs[0]["run_metadata"]["host"]["hostname"] and recs[0]["run_metadata"]["started_utc"]


class _AckMangler(UdpRelay):
    """A UDP relay sender <-> receiver that drops, duplicates and reorders ACKs (data passes untouched)."""

    def __init__(self, receiver_port, drop=0.1, dup=0.1, swap=0.2, seed=0):
        super().__init__(receiver_port)
        self.rng = random.Random(seed)
        self.drop, self.dup, self.swap = drop, dup, swap
        self.held = None

    def on_reply(self, ack):
        if ack[3] != wire.T_ACK:
            self.to_sender(ack)
            return
        r = self.rng.random()
        if r < self.drop:
            return
        if self.held is None and r < self.drop + self.swap:
            self.held = ack  # sent after the next one
            return
        self.to_sender(ack)
        if r > 1 - self.dup:
            self.to_sender(ack)
        if self.held is not None:
            self.to_sender(self.held)
            self.held = None


def test_sender_survives_lost_duplicated_and_reordered_acks(tmp_path):
    rx = _Receiver()
    rx.start()
    relay = _AckMangler(rx.rx.port)
    relay.start()
    status, summary = _send(relay.port, "const:4", 2.0, tmp_path / "run.jsonl")
    relay.stop = True
    rx.join(timeout=10)
    assert status == 0 and summary["duplicate_acks"] > 0
    # every data packet arrived; ~10% of ACKs were dropped, so the sender sees ~10% "loss"
    assert rx.summary["sessions"][0]["packets"] == summary["packets_sent"]
    assert 0.04 < summary["loss_rate"] < 0.2
    assert summary["packets_acked"] + summary["packets_lost"] == summary["packets_sent"]


def test_sender_stops_after_the_stated_silence_when_the_receiver_disappears(tmp_path):
    rx = subprocess.Popen(GENET + ["sender", "receive", "--bind", "127.0.0.1", "--port", "0", "--ready-file",
                                   str(tmp_path / "port")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not (tmp_path / "port").exists():
            assert rx.poll() is None, rx.stderr.read()
            time.sleep(0.02)
        port = (tmp_path / "port").read_text().strip()
        log = tmp_path / "run.jsonl"
        snd = subprocess.Popen(GENET + ["sender", "send", "--to", f"127.0.0.1:{port}", "--policy", "const:2",
                                        "--duration-s", "30", "--silence-timeout-s", "1", "--log", str(log)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        rx.kill()  # the receiver disappears mid-run
        out, err = snd.communicate(timeout=20)
    finally:
        rx.kill()
        rx.wait()
    assert snd.returncode == EXIT_SILENT
    assert "no ACK from 127.0.0.1" in err and "for 1 s" in err
    summary = read_log(log)[-1]
    assert summary["type"] == "summary" and summary["exit_status"] == EXIT_SILENT and summary["duration_s"] < 10


def test_sigterm_and_sigint_stop_both_cleanly_with_the_log_flushed(tmp_path):
    rx = subprocess.Popen(GENET + ["sender", "receive", "--bind", "127.0.0.1", "--port", "0", "--ready-file",
                                   str(tmp_path / "port"), "--summary", str(tmp_path / "rx.json")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    snd = None
    try:
        while not (tmp_path / "port").exists():
            assert rx.poll() is None
            time.sleep(0.02)
        port = (tmp_path / "port").read_text().strip()
        log = tmp_path / "run.jsonl"
        snd = subprocess.Popen(GENET + ["sender", "send", "--to", f"127.0.0.1:{port}", "--policy", "const:2",
                                        "--duration-s", "60", "--log", str(log)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        _wait_for_start(log, snd)
        time.sleep(0.5)
        snd.send_signal(signal.SIGTERM)
        assert snd.wait(timeout=10) == 128 + signal.SIGTERM
        summary = read_log(log)[-1]
        assert summary["type"] == "summary" and "SIGTERM" in summary["reason"] and summary["packets_sent"] > 0
        rx.send_signal(signal.SIGINT)
        assert rx.wait(timeout=10) == 0
        rx_summary = json.loads((tmp_path / "rx.json").read_text())
        assert rx_summary["sessions"][0]["packets"] == summary["packets_sent"]
    finally:
        for p in (snd, rx):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def test_sigkill_leaves_a_readable_log_prefix(tmp_path):
    rx = _Receiver()
    rx.start()
    log = tmp_path / "run.jsonl"
    snd = subprocess.Popen(GENET + ["sender", "send", "--to", f"127.0.0.1:{rx.rx.port}", "--policy", "const:2",
                                    "--duration-s", "60", "--log", str(log)], stdout=subprocess.DEVNULL)
    _wait_for_start(log, snd)
    time.sleep(1.0)
    snd.kill()
    snd.wait()
    recs = read_log(log)
    assert recs[0]["type"] == "start" and len([r for r in recs if r["type"] == "mi"]) > 3
    rx.rx.stop()


@pytest.mark.parametrize("policy,msg", [
    ("bbr", "kernel TCP (bbr) runs through iperf3"),
    ("vegas", "unknown CC policy; known: bbr, cubic"),
    ("models/abr/genet.onnx", "not a CC (Aurora) policy"),
    ("const:0", "> 0 Mbps"),
])
def test_bad_input_is_one_clear_line_before_any_packet(policy, msg, repo_dir):
    res = subprocess.run(GENET + ["sender", "send", "--to", "127.0.0.1:9", "--policy", policy, "--duration-s", "1"],
                         capture_output=True, text=True, cwd=repo_dir, timeout=60)
    assert res.returncode == 1 and res.stderr.startswith("genet: error:") and msg in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_an_aurora_model_drives_the_rate_over_loopback(tmp_path, repo_dir):
    rx = _Receiver()
    rx.start()
    status, summary = _send(rx.rx.port, str(repo_dir / "models" / "cc" / "genet.onnx"), 3.0, tmp_path / "a.jsonl",
                            min_rtt_ms=40)
    rx.join(timeout=10)
    mis = [r for r in read_log(tmp_path / "a.jsonl") if r["type"] == "mi"]
    assert status == 0 and len(mis) >= 5
    assert all(r["action"] is not None for r in mis)
    assert len({round(r["target_rate_mbps"], 6) for r in mis}) >= 3  # the policy changes the rate
    assert os.path.exists(tmp_path / "a.jsonl")


def _fed_controller(n_intervals: int):
    """A controller fed with a fixed event stream for n_intervals intervals (then left mid-interval)."""
    from genet.cc.aurora import AuroraController
    ctl = AuroraController(AuroraConfig(reward_normaliser="measured"), 500.0)
    rng = random.Random(3)
    t = 0.0
    ctl.start(t)
    for k in range(n_intervals + 1):
        for _ in range(40):
            t += 0.001
            ctl.monitor.on_packet_sent(t)
            if rng.random() < 0.9:
                ctl.monitor.on_packet_acked(t + 0.0005, 0.04 + 0.01 * rng.random())
            else:
                ctl.monitor.on_packet_lost(t)
        if k < n_intervals:
            ctl.finish_interval(t)
    return ctl, t


def test_rehearsing_the_decision_changes_nothing():
    """The sender's warm-up (AuroraController.rehearse, IntervalMonitor.peek) gives the observation the next
    decision would see and leaves every later record and observation exactly as without it."""
    import numpy as np
    plain, t = _fed_controller(12)
    rehearsed, _ = _fed_controller(12)
    peeked = rehearsed.monitor.peek(t)
    for _ in range(3):
        obs = rehearsed.rehearse(t)
    np.testing.assert_array_equal(obs, rehearsed.observation)
    a, b = plain.finish_interval(t + 0.001), rehearsed.finish_interval(t + 0.001)
    assert peeked.packets_sent == b.packets_sent == 40 and peeked.avg_latency_s == a.avg_latency_s
    for f in ("send_start_s", "send_end_s", "recv_start_s", "recv_end_s", "packets_sent", "packets_acked",
              "packets_lost", "conn_min_latency_s", "avg_latency_s", "latency_increase_s"):
        assert getattr(a, f) == getattr(b, f), f
    np.testing.assert_array_equal(plain.observation, rehearsed.observation)
    assert plain.interval_s == rehearsed.interval_s and plain.observation.dtype == np.float32
    assert not np.array_equal(plain.observation[-3:], np.array([0.0, 1.0, 1.0], np.float32))


def test_low_latency_idle_is_held_where_writable_and_skipped_elsewhere(tmp_path):
    import struct

    from sender.udp_sender import hold_low_latency_idle
    assert hold_low_latency_idle(str(tmp_path / "no-such-dir" / "cpu_dma_latency")) is None
    f = tmp_path / "qos"
    f.write_bytes(b"")
    fd = hold_low_latency_idle(str(f))
    assert fd is not None
    os.close(fd)
    assert f.read_bytes() == struct.pack("i", 0)


def _write_log(path, lines):
    path.write_text("# mahimahi mm-link (Uplink) [x] > log\n# command line: x\n# queue: droptail [packets=10]\n"
                    "# init timestamp: 1700000000000\n# base timestamp: 1000\n" + "".join(l + "\n" for l in lines))


def test_link_log_metrics_follow_the_stated_definitions(tmp_path):
    """genet.cc.metrics.from_link_logs on a log whose figures are known by construction; the fast
    reader agrees with emulation.logstats.read_link_log."""
    from emulation.logstats import read_link_log, read_link_log_arrays
    from genet.cc.metrics import from_link_logs
    up, down = tmp_path / "up.log", tmp_path / "down.log"
    lines = [f"{1000 + t} # 1504" for t in range(1000)]  # 1000 opportunities/s: 12 Mbit/s of 1500-byte packets
    lines += [f"{1000 + 2 * k} + 1504" for k in range(600)]
    lines += [f"{1000 + 2 * k} - 1504 {k % 10}" for k in range(500)]  # queueing 0..9 ms
    lines += ["2200 d 100 150400"]
    _write_log(up, sorted(lines, key=lambda s: int(s.split()[0])))
    _write_log(down, [f"{1000 + 2 * k} - 64 0" for k in range(500)])
    a, ref = read_link_log_arrays(up), read_link_log(up)
    assert a.opportunity_ms.tolist() == ref.opportunity_ms and a.departure_delay_ms.tolist() == [d for *_x, d in ref.departures]
    assert a.dropped_packets == 100
    m = from_link_logs(a, read_link_log_arrays(down), delay_ms=20.0, policy="p", trace="t", trace_mean_bandwidth_mbps=12.0,
                       queue_packets=10, link_loss_rate=0.0, run_duration_s=1.0)
    assert m.throughput_mbps == pytest.approx(500 * 1500 * 8 / 0.998 / 1e6)
    assert m.loss_rate == pytest.approx(1 - 500 / 600)
    assert m.p95_one_way_delay_ms == 20 + 9 and m.p90_one_way_delay_ms == 20 + 8  # nearest rank of 50 x (0..9)
    assert m.mean_rtt_ms == pytest.approx(20 + 4.5 + 20) and m.p95_rtt_ms == 20 + 9 + 20
    cap_pps = 999 / 0.999
    tput_pps = m.throughput_mbps * 1e6 / 12000
    assert m.reward == pytest.approx(500 * tput_pps / cap_pps - 1000 * m.mean_rtt_ms / 1000 - 2000 * m.loss_rate)
