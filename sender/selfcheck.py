"""``genet emulate selfcheck``: what this machine's emulated links deliver against what they are set to.

For each rate (default 1, 10, 100, 1000 Mbit/s), on the chosen backend:

* **rate**: a constant-rate link both ways, no delay, a 1000-packet droptail queue; ``iperf3 -C cubic`` for
  ``duration_s``; the receiver's throughput against the set rate (TCP over 1500-byte packets delivers about
  97 % of the link's packet rate as payload: the figure to expect is the rate, not more);
* **delay**: the same link with ``delay_ms`` each way, idle; ICMP echo RTTs (:func:`emulation.probes.icmp_rtt_probe`)
  against ``2 x delay_ms`` (the probe's own transmission time at that rate included in the expectation);
* **loss**: the same link with ``loss_rate`` on the uplink; a constant UDP stream of ``LOSS_PACKETS`` packets
  well under the rate; the share that did not arrive against ``loss_rate`` (a binomial 99 % band).

A row is flagged (``ok`` False, with the reason) where this machine does not keep up: achieved rate under
``RATE_OK_FRACTION`` of the set rate, RTT off by more than ``DELAY_OK_MS``, loss outside its band. Needs root
(network namespaces, TUN) and iperf3.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass

#: achieved / set rate below this is flagged (TCP payload over 1500-byte packets: ~0.97 at best)
RATE_OK_FRACTION = 0.85
#: measured - expected RTT beyond this is flagged (ms): the expectation is Mahimahi's model (see
#: :func:`expected_rtt_ms`), whose 1-ms clock adds ~1-1.5 ms per direction on its own (measured here: 2.5 ms of RTT
#: at 100 Mbit/s with no delay), so only more than that says the machine does not keep up
DELAY_OK_MS = 4.0
#: bytes a delivery opportunity carries (Mahimahi: one MTU-sized packet per opportunity)
OPPORTUNITY_BYTES = 1500
#: packets of the loss stream and its rate cap (packets per second)
LOSS_PACKETS = 3000
LOSS_STREAM_MAX_PPS = 3000
#: the rates checked by default (Mbit/s)
DEFAULT_RATES_MBPS = (1.0, 10.0, 100.0, 1000.0)


@dataclass
class SelfCheckRow:
    rate_mbps: float
    achieved_mbps: float
    delay_ms: float
    expected_rtt_ms: float
    measured_rtt_ms: float
    loss_rate: float
    measured_loss_rate: float
    ok: bool
    problems: str


def _rate(rate_mbps: float, duration_s: float, backend: str, clock: str = "ms") -> float:
    from emulation import LinkEmulator
    from sender.iperf3 import run_over_link
    with LinkEmulator(rate_mbps, rate_mbps, backend=backend, isolate_host=backend == "netns", clock=clock,
                      uplink_queue="droptail", uplink_queue_args="packets=1000") as link:
        return run_over_link(link, "cubic", duration_s).throughput_mbps


def _delay_and_loss(rate_mbps: float, delay_ms: float, loss_rate: float, backend: str,
                    clock: str = "ms") -> tuple[float, float]:
    from emulation import LinkEmulator
    from emulation.probes import icmp_rtt_probe, udp_constant_stream, udp_count_receiver
    with LinkEmulator(rate_mbps, rate_mbps, delay_ms=delay_ms, backend=backend, isolate_host=backend == "netns",
                      seed=1, clock=clock) as link:
        rtt = link.emulated.call(icmp_rtt_probe, link.host.address, 30, 0.03)
    pps = max(50.0, min(LOSS_STREAM_MAX_PPS, 0.5 * rate_mbps * 1e6 / (8 * 228)))  # 200-byte payloads
    with LinkEmulator(rate_mbps, rate_mbps, backend=backend, isolate_host=backend == "netns",
                      uplink_loss=loss_rate, seed=2, clock=clock) as link:
        got: dict = {}
        rx = threading.Thread(target=lambda: got.setdefault(
            "n", link.host.call(udp_count_receiver, link.host.address, 9400, 1.5, 10.0)))
        rx.start()
        time.sleep(0.3)
        link.emulated.call(udp_constant_stream, link.host.address, 9400, pps, LOSS_PACKETS, 200)
        rx.join()
    return rtt.avg_ms, 1.0 - got.get("n", 0) / LOSS_PACKETS


def expected_rtt_ms(rate_mbps: float, delay_ms: float) -> float:
    """An idle ICMP echo's RTT under Mahimahi's semantics: the delay both ways plus, each way, the mean wait for
    the next delivery opportunity (opportunities every ``OPPORTUNITY_BYTES`` x 8 / rate; half of that on average)."""
    return 2 * delay_ms + 2 * 0.5 * OPPORTUNITY_BYTES * 8 / (rate_mbps * 1e6) * 1000


def check(rates_mbps=DEFAULT_RATES_MBPS, delay_ms: float = 20.0, loss_rate: float = 0.01, duration_s: float = 3.0,
          backend: str = "netns", progress=None, clock: str = "ms") -> list[SelfCheckRow]:
    """One :class:`SelfCheckRow` per rate (see the module's docstring); ``clock``: the netns link's clock
    (:data:`emulation.config.CLOCKS`)."""
    rows = []
    for r in rates_mbps:
        achieved = _rate(r, duration_s, backend, clock)
        rtt_ms, lost = _delay_and_loss(r, delay_ms, loss_rate, backend, clock)
        expected = expected_rtt_ms(r, delay_ms)
        sigma = math.sqrt(max(loss_rate * (1 - loss_rate), 1e-12) / LOSS_PACKETS)
        problems = []
        if achieved < RATE_OK_FRACTION * r:
            problems.append(f"rate {achieved:.1f} of {r:g} Mbit/s: this machine does not keep up")
        if abs(rtt_ms - expected) > DELAY_OK_MS:
            problems.append(f"RTT {rtt_ms:.2f} ms, expected {expected:.2f}")
        if abs(lost - loss_rate) > 2.58 * sigma + 1.0 / LOSS_PACKETS:
            problems.append(f"loss {lost:.4f}, set {loss_rate:.4f}")
        rows.append(SelfCheckRow(r, achieved, delay_ms, expected, rtt_ms, loss_rate, lost, not problems,
                                 "; ".join(problems)))
        if progress is not None:
            progress(rows[-1])
    return rows


def format_table(rows: list[SelfCheckRow]) -> str:
    head = (f"{'rate (Mbit/s)':>13} {'achieved':>9} {'RTT model':>9} {'RTT got':>8} {'excess':>7} {'loss set':>9} "
            f"{'loss got':>9}  verdict")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.rate_mbps:>13g} {r.achieved_mbps:>9.1f} {r.expected_rtt_ms:>9.2f} {r.measured_rtt_ms:>8.2f} "
                     f"{r.measured_rtt_ms - r.expected_rtt_ms:>+7.2f} {r.loss_rate:>9.4f} {r.measured_loss_rate:>9.4f}  "
                     f"{'ok' if r.ok else 'WARNING: ' + r.problems}")
    lines.append("RTT model: 2 x delay + each way half an opportunity interval (1500 B at the rate: Mahimahi's "
                 "semantics). Excess: with --clock ms (Mahimahi's), the emulator's 1-ms clock (packets enter and "
                 "leave its queues on whole milliseconds, ~1-1.5 ms each way); with --clock precise, only this "
                 f"machine (TUN devices, process wakeups); flagged beyond {DELAY_OK_MS:g} ms.")
    return "\n".join(lines)


def to_json(rows: list[SelfCheckRow]) -> list[dict]:
    return [asdict(r) for r in rows]
