"""One iperf3 run across an open link, whatever the backend (tests, benchmarks and the CLI use this).

The server runs on the host side, the client on the emulated side (uplink data, downlink ACKs:
Pantheon's and the issues' direction), with the congestion control always named (the machine's
default is BBR). Figures come from iperf3's JSON: the receiver's throughput and the sender's
mean smoothed RTT (``tcpi_rtt`` samples, as iperf3 reports them).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass


@dataclass
class IperfResult:
    """receiver_mbps: goodput seen by the receiver; sender_mean_rtt_ms: iperf3's mean of the sender's
    smoothed RTT; retransmits: sender retransmissions; server_finished: the server saw its client's end
    within ``server_wait_s`` after the client returned (the link delivered the last packets)."""

    cc: str
    receiver_mbps: float
    sender_mean_rtt_ms: float
    retransmits: int
    server_finished: bool


def wait_listening(endpoint, address: str, port: int, timeout_s: float = 5.0) -> None:
    """Until ``address:port`` accepts TCP connections on ``endpoint``'s side (``ss``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if endpoint.run(["sh", "-c", f"ss -ltn | grep -q '{address}:{port} '"]).returncode == 0:
            return
        time.sleep(0.05)
    raise TimeoutError(f"iperf3 server on {address}:{port} did not start within {timeout_s} s")


def iperf3(link, cc: str, duration_s: float, port: int = 5201, server_wait_s: float = 10.0) -> IperfResult:
    """``iperf3 -c HOST -C cc -t duration_s`` from the emulated side to a one-off server on the host side."""
    if cc not in ("cubic", "bbr", "reno"):
        raise ValueError(f"cc must be cubic, bbr or reno, got {cc!r}")
    server = link.host.popen(["iperf3", "-s", "-1", "-B", link.host.address, "-p", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(link.host, link.host.address, port)
    res = link.emulated.run(["iperf3", "-c", link.host.address, "-p", str(port), "-C", cc, "-t", str(duration_s),
                             "-J"], timeout_s=duration_s + 30)
    try:
        server.wait(timeout=server_wait_s)
        finished = True
    except subprocess.TimeoutExpired:
        finished = False
    if res.returncode != 0:
        raise RuntimeError(f"iperf3 -C {cc} failed (status {res.returncode}): {res.stdout[-1000:]} {res.stderr}")
    end = json.loads(res.stdout)["end"]
    sender = end["streams"][0]["sender"]
    return IperfResult(cc, end["sum_received"]["bits_per_second"] / 1e6, sender.get("mean_rtt", 0) / 1000.0,
                       int(end["sum_sent"].get("retransmits", 0)), finished)
