"""The UDP rate-controlled sender: paces 1500-byte packets at the policy's rate and
runs the Aurora controller (:mod:`genet.cc.aurora`) on their ACKs.

Loop (one thread): send every packet whose pacing time has come (at most
:data:`MAX_BURST` at once; a sender more than :data:`MAX_LAG_S` behind resets its
clock, keeping at most that much credit), drain ACKs, apply the loss rule
(:class:`genet.cc.monitor.LossDetector`), and at the end of each monitor
interval — the first packet due at or after its end time, once the first ACK has
come, as in the simulator — feed the :class:`~genet.cc.monitor.IntervalMonitor` record to the
controller: observation -> policy -> action -> new rate (the same objects the
simulator's environment uses). Between packets it waits in ``select`` on the
socket (woken by ACKs) until :data:`SPIN_S` before the next send, then spins:
a sleep/busy-wait hybrid accurate to a few microseconds.

Start-up (the policy's ``AuroraConfig.startup``, from the model's metadata): "aurora" paces at the initial rate
from the first packet; "window" sends only while :meth:`~genet.cc.aurora.AuroraController.may_send` allows
(at most ``initial_window_packets`` in flight — sent, neither acknowledged nor declared lost — until the first
ACK), waiting in ``select`` for that ACK without earning pacing credit, and at the first ACK takes the rate
:meth:`~genet.cc.aurora.AuroraController.on_first_ack` gives (min(rate, IW / first RTT)): the simulator's rules,
:mod:`genet.cc.aurora`. The summary's ``packets_sent_before_first_ack`` counts what went out before that ACK.

Decision latency (issue 12: observation + policy + rate update, ``decision_us``):
on a VM the first call after a sleep finds caches and TLB cold (the ONNX call
alone goes from 8 to ~260 us), so the sender keeps the decision path warm:
within :data:`HOT_S` (at most a quarter of the interval) of the next monitor
interval's end it stops sleeping (spins, yielding the CPU) and rehearses the
decision — :meth:`~genet.cc.aurora.AuroraController.rehearse` (the interval's
record and observation, nothing changed), the policy on it and the action
mapping, results discarded — over and over while the next packet is more
than :data:`REHEARSE_GUARD_S` away (spinning costs that CPU time anyway), and
collects the young GC generation so no collection lands inside a decision. The timed span
stays the real decision. While it runs it also asks for low-latency idle
(``/dev/cpu_dma_latency`` = 0, the PM QoS request `cyclictest` makes, dropped
when the sender exits) where it may open that file (root), and silently does
without elsewhere (``low_latency_idle=False`` / ``--no-low-latency-idle`` turns it off).

Log (JSONL, one line per record, flushed as written, so a crash or SIGKILL
leaves a readable prefix; :func:`read_log` skips a cut last line):
``{"type": "start", "run_metadata": {...}, ...}`` (the project's one run-metadata record,
:mod:`foundation.runmeta`: command, commit, host, versions, start time), one ``{"type": "mi", ...}`` per monitor interval
(``t_s``, ``target_rate_mbps``, ``send_rate_mbps``, ``throughput_mbps``,
``rtt_mean_ms``, ``rtt_min_ms``, ``loss_rate``, ``action``, ``reward``,
packet counts, ``decision_us``: observation + policy + rate update), and a
final ``{"type": "summary", ...}``. Every line is strict JSON: an undefined figure (no RTT sample, no
decision) is ``null``, never a bare ``NaN`` (:mod:`foundation.jsonout`).

ACKs: only a well-formed ACK (:func:`sender.wire.parse_header`: magic, wire version, type, length) of
this session counts; anything else — garbage, truncated, another type, session or wire version — is
counted in ``malformed_acks`` (another wire version also in ``wrong_version_acks``) and otherwise
ignored: it neither acknowledges a packet nor keeps the silence timeout from firing.

Stops: after ``duration_s``; when no ACK has come for ``silence_timeout_s``
(exit status 3, reason in the summary); on SIGINT/SIGTERM (status 128 + signal).
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import select
import signal
import socket
import time
from array import array
from pathlib import Path

import numpy as np

from genet.cc.aurora import AuroraController, apply_rate_action, initial_rate_pps, run_reward_normaliser_pps
from genet.cc.monitor import LossDetector
from foundation.cpuidle import CPU_DMA_LATENCY, hold_low_latency_idle  # noqa: F401  (one definition; re-exported)
from genet.cc.registry import RatePolicy
from genet.cc.reward import aurora_reward
from foundation.errors import BadInputError
from foundation.jsonout import dumps as json_dumps
from foundation.metrics import percentile
from genet.policy import act_one
from foundation.packets import PACKET_BITS
from sender.wire import (ACK, DATA, MAGIC, T_ACK, T_DATA, T_FIN, T_FIN_ACK, VERSION, MalformedDatagram, data_packet,
                          decode, parse_header)

MAX_BURST = 64
yield_cpu = getattr(os, "sched_yield", lambda: None)
#: Pacing credit kept by a sender that fell behind (a scheduling stall), s: it then sends at most this much of its
#: rate back to back (and never more than MAX_BURST at once) and forgoes the rest, as a kernel pacer's ~1-ms bursts
#: do. 50 ms of credit (this sender's first value) turned each stall on a busy machine into a burst of up to
#: ~250 packets at 59 Mbit/s: 4.6-7 % loss into a 10-packet queue at 97 % of a 61 Mbit/s link, where the perfectly
#: paced simulator loses none in the queue; with 2 ms, 0.5-0.6 % at the same throughput (docs/fidelity.md).
MAX_LAG_S = 0.002
SPIN_S = 200e-6
#: Before a monitor interval's end, spin (no sleep) for this long (at most a quarter of the interval) ...
HOT_S = 2e-3
#: ... rehearsing the decision again and again (the spin's own CPU time; see the module notes) while the next
#: packet is at least this far away (so a rehearsal never delays a send).
REHEARSE_GUARD_S = 100e-6
EXIT_OK, EXIT_SILENT = 0, 3


def read_log(path: str | os.PathLike) -> list[dict]:
    """Records of a sender log; a line cut by a crash is skipped."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class UdpSender:
    """dest: (address, port); policy: :class:`genet.cc.registry.RatePolicy`; log_path: JSONL log (None: none).

    duration_s: how long to send (s); silence_timeout_s: stop after this long without ACKs (5 s);
    initial_rate_mbps: start rate (None: 10 packets per ``min_rtt_ms`` if given, else 1.2 Mbit/s);
    link_capacity_mbps: the run reward's normaliser when known (emulation), else the measured capacity.
    """

    def __init__(self, dest: tuple[str, int], policy: RatePolicy, duration_s: float,
                 log_path: str | os.PathLike | None = None, silence_timeout_s: float = 5.0,
                 initial_rate_mbps: float | None = None, min_rtt_ms: float | None = None,
                 session: int | None = None, bind: str | None = None, low_latency_idle: bool = True):
        if not duration_s > 0:
            raise BadInputError(f"--duration-s must be > 0, got {duration_s}")
        if not silence_timeout_s > 0:
            raise BadInputError(f"--silence-timeout-s must be > 0, got {silence_timeout_s}")
        self.dest = dest
        self.policy = policy
        self.duration_s = float(duration_s)
        self.log_path = log_path
        self.silence_timeout_s = float(silence_timeout_s)
        cfg = policy.config
        if policy.fixed_rate_pps is not None:
            rate = policy.fixed_rate_pps
        elif initial_rate_mbps is not None:
            rate = initial_rate_mbps * 1e6 / PACKET_BITS
        else:
            rate = initial_rate_pps(cfg, None if min_rtt_ms is None else min_rtt_ms / 1000.0)
        self.controller = AuroraController(cfg, rate)
        self.session = session if session is not None else random.getrandbits(63) | 1
        self.bind = bind
        self.low_latency_idle = low_latency_idle
        self.low_latency_idle_held = False
        self._stop_signal = 0

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def run(self) -> tuple[int, dict]:
        """Send; returns (exit status, summary)."""
        old = {}
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self._on_signal)
        log = open(self.log_path, "a", buffering=1) if self.log_path else None
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        qos_fd = hold_low_latency_idle() if self.low_latency_idle else None
        self.low_latency_idle_held = qos_fd is not None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            if self.bind:
                sock.bind((self.bind, 0))
            sock.connect(self.dest)
            sock.setblocking(False)
            if log:
                from foundation.runmeta import RunMetadata
                meta = RunMetadata.collect(extra={"use_case": "cc", "role": "sender"}).to_dict()
                log.write(json_dumps({"type": "start", "run_metadata": meta, "policy": self.policy.label,
                                      "dest": list(self.dest),
                                      "session": self.session, "duration_s": self.duration_s,
                                      "initial_rate_mbps": self.controller.rate_pps * PACKET_BITS / 1e6,
                                      "packet_bytes": PACKET_BITS // 8,
                                      "reward_normaliser": self.policy.config.reward_normaliser,
                                      "startup": self.policy.config.startup,
                                      "initial_window_packets": self.policy.config.initial_window_packets}) + "\n")
            status, summary = self._loop(sock, log)
            summary["receiver"] = self._finish(sock)
            summary["receiver_throughput_mbps"] = (summary["receiver"] or {}).get("throughput_mbps")
            if log:
                log.write(json_dumps(summary) + "\n")
            return status, summary
        finally:
            if qos_fd is not None:
                os.close(qos_fd)
            sock.close()
            if log:
                log.close()
            for sig, h in old.items():
                signal.signal(sig, h)

    # ------------------------------------------------------------------ main loop
    def _loop(self, sock: socket.socket, log) -> tuple[int, dict]:
        ctl = self.controller
        cfg = ctl.config
        mon = ctl.monitor
        policy = self.policy
        loss = LossDetector()
        pkt = data_packet(self.session, 0, 0)
        pack_into = DATA.pack_into
        ack_unpack = ACK.unpack_from
        ack_buf = bytearray(256)
        session = self.session
        clock = time.perf_counter_ns
        t0 = clock()
        ns = 1e-9
        rate_pps = ctl.rate_pps
        gap_ns = 1e9 / rate_pps
        next_send = float(t0)
        end_ns = t0 + int(self.duration_s * 1e9)
        ctl.start(0.0)
        window = cfg.startup_window_packets  # start-up window until the first ACK (0: Aurora's start-up, no gate)
        window_wait_s = 0.01  # while the window is full: select this long at most (woken by ACKs), re-check losses
        sent_before_first_ack = None
        mi_end_ns = t0 + ctl.interval_s * 1e9
        mi_target_rate = rate_pps
        seq = 0
        sent_total = acked_total = 0
        last_ack_ns = t0
        rtts = array("d")
        first_ack_s = last_ack_s = None
        malformed = wrong_version = 0  # ACKs not ours: short, garbage, other type/session; other wire version
        decision_us = array("d")
        status, reason = EXIT_OK, "duration reached"
        send = sock.send
        recv_into = sock.recv_into
        net = policy.network  # the Aurora policy (genet.policy.Policy); None: a constant rate
        warm = net is not None  # rehearse the decision path (constant rates have none to speak of)
        while True:
            now = clock()
            if now >= end_ns:
                break
            if self._stop_signal:
                status, reason = 128 + self._stop_signal, f"stopped by signal {signal.Signals(self._stop_signal).name}"
                break
            # ---- send what is due; a monitor interval ends at the first send at or after its end time once
            # the first ACK has come (the simulator's rule: the first interval lasts until the first ACK)
            if now >= next_send:
                if now >= mi_end_ns and acked_total:
                    d0 = clock()
                    mi = ctl.finish_interval((now - t0) * ns)
                    action = None if net is None else float(act_one(net, ctl.observation)[0])
                    if action is not None:
                        rate_pps = ctl.apply_action(action)
                        gap_ns = 1e9 / rate_pps
                        next_send = max(next_send, now - gap_ns)
                    d1 = clock()
                    decision_us.append((d1 - d0) / 1000.0)
                    mi_end_ns = now + ctl.interval_s * 1e9
                    if log:
                        self._log_mi(log, mi, mi_target_rate, action, (d1 - d0) / 1000.0)
                    mi_target_rate = rate_pps
                if now - next_send > MAX_LAG_S * 1e9:
                    next_send = now - MAX_LAG_S * 1e9
                burst = 0
                while next_send <= now and burst < MAX_BURST:
                    if window and not ctl.may_send(acked_total, len(loss.inflight)):
                        next_send = now  # window full before the first ACK: no pacing credit while waiting
                        break
                    pack_into(pkt, 0, MAGIC, VERSION, T_DATA, session, seq, now)
                    try:
                        send(pkt)
                    except BlockingIOError:
                        break  # socket buffer full: try again on the next turn
                    except ConnectionRefusedError:
                        pass  # ICMP port unreachable from an earlier packet: the receiver is not there (yet)
                    t_s = (now - t0) * ns
                    loss.on_sent(seq, t_s)
                    mon.on_packet_sent(t_s)
                    seq += 1
                    burst += 1
                    next_send += gap_ns
                sent_total += burst
            # ---- ACKs
            for _ in range(256):
                try:
                    n = recv_into(ack_buf)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    break
                head = parse_header(ack_buf, n)  # magic, version, type and length (sender.wire)
                if head is None or head[0] != T_ACK or head[1] != session:
                    malformed += 1
                    if head is None and n >= 4 and ack_buf[2] != VERSION and ack_buf[0:2] == MAGIC:
                        wrong_version += 1
                    continue
                _m, _v, _k, _s, a_seq, _send_ns, _recv_ns = ack_unpack(ack_buf, 0)
                t = clock()
                t_s = (t - t0) * ns
                rtt = loss.on_ack(a_seq, t_s)
                last_ack_ns = t
                if rtt is None:
                    continue
                acked_total += 1
                rtts.append(rtt)
                if first_ack_s is None:
                    first_ack_s = t_s
                    sent_before_first_ack = seq
                    if window:  # the start-up's rate from the first ACK on; no gate after it
                        rate_pps = ctl.on_first_ack(rtt)
                        gap_ns = 1e9 / rate_pps
                        window = 0
                last_ack_s = t_s
                mon.on_packet_acked(t_s, rtt)
            now = clock()
            loss.expired((now - t0) * ns)
            lost = loss.lost
            if lost:
                t_s = (now - t0) * ns
                for _ in lost:
                    mon.on_packet_lost(t_s)
                lost.clear()
            if now - last_ack_ns > self.silence_timeout_s * 1e9:
                status = EXIT_SILENT
                reason = (f"no ACK from {self.dest[0]}:{self.dest[1]} for {self.silence_timeout_s:g} s "
                          + (f"({wrong_version} ACKs of another wire version came: the receiver speaks another "
                             f"version than this sender's {VERSION})" if wrong_version else
                             "(receiver gone or unreachable)"))
                break
            # ---- wait: select (woken by ACKs) until SPIN_S before the next send, then spin; close to the
            # interval's end (where the decision comes: the first send at or after it), spin and rehearse
            wait_s = (next_send - now) * ns - SPIN_S
            if window and next_send <= now and not ctl.may_send(acked_total, len(loss.inflight)):
                wait_s = window_wait_s  # window full: wait for an ACK (select wakes) or a loss timeout
            hot_in_s = 1.0  # time until the spin before the next decision starts
            if warm and acked_total:
                t_dec = next_send  # the decision comes with the first send at or after the interval's end
                if mi_end_ns > next_send:
                    t_dec += math.ceil((mi_end_ns - next_send) / gap_ns) * gap_ns
                hot_in_s = (t_dec - now) * ns - min(HOT_S, 0.25 * ctl.interval_s)
                if hot_in_s < wait_s:
                    wait_s = hot_in_s  # wake for it even when the next packet is further away
            if hot_in_s <= 0:
                if next_send - now >= REHEARSE_GUARD_S * 1e9:
                    obs = ctl.rehearse((now - t0) * ns)
                    a = float(act_one(net, obs)[0])
                    apply_rate_action(ctl.rate_pps, a, cfg.delta_scale, cfg.min_rate_pps, cfg.max_rate_pps)
                    gc.collect(0)
                elif next_send > now:
                    yield_cpu()
            elif wait_s > 0:
                try:
                    select.select((sock,), (), (), min(wait_s, 0.05))
                except InterruptedError:
                    pass
            elif next_send > now:
                yield_cpu()  # spinning: let another task of our priority run (real-time priority under emulation)
        elapsed_s = (clock() - t0) * ns
        n_lost = len(loss.inflight) + len(loss._lost)  # in flight at the end counts as lost (Pantheon, Genet)
        rtt_ms = np.frombuffer(rtts, dtype=np.float64) * 1000.0 if len(rtts) else np.zeros(0)
        span = (last_ack_s - first_ack_s) if first_ack_s is not None else 0.0
        tput_mbps = (acked_total - 1) * PACKET_BITS / span / 1e6 if span > 0 else 0.0
        loss_rate = 1.0 - acked_total / sent_total if sent_total else 0.0
        mean_rtt_s = float(rtt_ms.mean()) / 1000.0 if rtt_ms.size else 0.0
        bw_pps = run_reward_normaliser_pps(None, ctl.max_delivery_pps)
        tput_pps = tput_mbps * 1e6 / PACKET_BITS
        dec = np.frombuffer(decision_us, dtype=np.float64) if len(decision_us) else np.zeros(0)
        summary = {
            "type": "summary", "policy": policy.label, "reason": reason, "exit_status": status,
            "duration_s": elapsed_s, "packets_sent": sent_total, "packets_acked": acked_total, "packets_lost": n_lost,
            "send_rate_mbps": sent_total * PACKET_BITS / elapsed_s / 1e6 if elapsed_s > 0 else 0.0,
            "throughput_mbps": tput_mbps, "loss_rate": loss_rate,
            "mean_rtt_ms": float(rtt_ms.mean()) if rtt_ms.size else None,
            "min_rtt_ms": float(rtt_ms.min()) if rtt_ms.size else None,
            "p90_rtt_ms": percentile(rtt_ms, 90), "p95_rtt_ms": percentile(rtt_ms, 95),
            "reward": aurora_reward(tput_pps, mean_rtt_s, loss_rate, bw_pps, "genet") if bw_pps > 0 else None,
            "reward_normaliser_mbps": bw_pps * PACKET_BITS / 1e6, "reward_normaliser": "measured capacity "
            "(largest monitor-interval delivery rate)", "intervals": ctl.intervals,
            "decision_p50_us": percentile(dec, 50), "decision_p99_us": percentile(dec, 99),
            "low_latency_idle": self.low_latency_idle_held,
            "startup": cfg.startup, "initial_window_packets": cfg.initial_window_packets,
            "packets_sent_before_first_ack": seq if sent_before_first_ack is None else sent_before_first_ack,
            "late_acks": loss.late_acks, "duplicate_acks": loss.duplicate_acks, "malformed_acks": malformed,
            "wrong_version_acks": wrong_version,
        }
        return status, summary

    def _log_mi(self, log, mi, target_rate_pps: float, action, decision_us: float) -> None:
        ctl = self.controller
        r = mi.rtt_samples_s
        log.write(json_dumps({
            "type": "mi", "t_s": round(mi.send_end_s, 6), "target_rate_mbps": target_rate_pps * PACKET_BITS / 1e6,
            "send_rate_mbps": mi.send_rate_bps / 1e6, "throughput_mbps": mi.recv_rate_bps / 1e6,
            "rtt_mean_ms": 1000 * mi.avg_latency_s, "rtt_min_ms": 1000 * float(r.min()) if r.size else None,
            "loss_rate": mi.loss_ratio, "action": action, "reward": ctl.reward(mi),
            "packets_sent": mi.packets_sent, "packets_acked": mi.packets_acked, "packets_lost": mi.packets_lost,
            "next_interval_s": ctl.interval_s, "decision_us": round(decision_us, 2)}) + "\n")

    def _finish(self, sock: socket.socket) -> dict | None:
        """FIN -> FIN_ACK: the receiver's counters (None when it does not answer within 1 s)."""
        fin = DATA.pack(MAGIC, VERSION, T_FIN, self.session, 0, 0)
        buf = bytearray(256)
        deadline = time.monotonic() + 1.0
        next_fin = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_fin:
                try:
                    sock.send(fin)
                except OSError:
                    pass
                next_fin = time.monotonic() + 0.1
            r, _, _ = select.select((sock,), (), (), 0.05)
            if not r:
                continue
            try:
                n = sock.recv_into(buf)
            except OSError:
                continue
            try:
                msg = decode(buf, n)
            except MalformedDatagram:
                continue
            if msg.kind == T_FIN_ACK and msg.session == self.session:
                packets, nbytes, first_ns, last_ns, malformed, other = msg.fields
                d = (last_ns - first_ns) / 1e9
                return {"packets": packets, "bytes": nbytes, "duration_s": d, "malformed": malformed,
                        "other_session": other,
                        "throughput_mbps": (packets - 1) * PACKET_BITS / d / 1e6 if d > 0 and packets > 1 else 0.0}
        return None
