"""Kernel TCP congestion control through iperf3, on the same footing as our sender (testbeds.md §5).

* The algorithm is always named (``iperf3 -C NAME``; this machine's default is BBR) and must be in
  ``/proc/sys/net/ipv4/tcp_allowed_congestion_control`` — :func:`check_kernel_algorithm` fails
  before any link is made otherwise.
* Each run gets a fresh one-shot server (``iperf3 -s -1``): a server can stay busy after the client
  ends while data drains. Readiness: the server's listening socket appears (``ss``), not a sleep.
* iperf3's own view (``-J``): receiver throughput, retransmits, mean/min RTT of the sender's socket.
  The figures compared across schemes come from the link's logs (:mod:`sender.emulate`).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from genet.errors import BadInputError, GenetRuntimeError

ALLOWED_PATH = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
AVAILABLE_PATH = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")


def allowed_algorithms() -> list[str]:
    try:
        return ALLOWED_PATH.read_text().split()
    except OSError:
        return []


def check_kernel_algorithm(name: str) -> None:
    """BadInputError unless the kernel allows ``name`` (sysctl net.ipv4.tcp_allowed_congestion_control)."""
    allowed = allowed_algorithms()
    if name not in allowed:
        try:
            available = AVAILABLE_PATH.read_text().split()
        except OSError:
            available = []
        hint = (f"; it is available: allow it with sysctl -w net.ipv4.tcp_allowed_congestion_control="
                f"\"{' '.join(allowed + [name])}\"" if name in available else
                f"; available: {', '.join(available) or 'unknown'} (modprobe tcp_{name}?)")
        raise BadInputError(f"kernel TCP {name!r} is not allowed (net.ipv4.tcp_allowed_congestion_control = "
                            f"{' '.join(allowed) or 'unreadable'}){hint}")


def check_iperf3() -> None:
    import shutil
    if shutil.which("iperf3") is None:
        raise GenetRuntimeError("iperf3 is not installed (scripts/provision.sh installs it)")


def wait_listening(endpoint, port: int, timeout_s: float = 5.0) -> None:
    """Poll ``ss`` on the endpoint's side until a TCP socket listens on ``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = endpoint.run(["ss", "-Hltn", f"sport = :{port}"], timeout_s=5).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise GenetRuntimeError(f"iperf3 server on port {port} did not start listening within {timeout_s} s")


def run_iperf3(link, algorithm: str, duration_s: float, port: int = 5201, json_path: str | None = None) -> dict:
    """One kernel-TCP run over ``link`` (a started LinkEmulator): client on the emulated side sends to a
    fresh one-shot server on the host side (data on the uplink). Returns iperf3's own view."""
    server = link.host.popen(["iperf3", "-s", "-1", "-p", str(port), "-B", link.host.address],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(link.host, port)
        secs = max(1, int(round(duration_s)))
        res = link.emulated.run(["iperf3", "-c", link.host.address, "-p", str(port), "-C", algorithm,
                                 "-t", str(secs), "-J"], timeout_s=secs + 30)
        try:
            data = json.loads(res.stdout)
        except ValueError:
            raise GenetRuntimeError(f"iperf3 -C {algorithm}: no JSON output (exit {res.returncode}): "
                                    f"{res.stderr.strip()[:300]}") from None
        if json_path:
            Path(json_path).write_text(res.stdout)
        if "error" in data:
            raise GenetRuntimeError(f"iperf3 -C {algorithm}: {data['error']}")
        end = data.get("end", {})
        streams = end.get("streams") or [{}]
        snd = streams[0].get("sender", {})
        return {"iperf3_throughput_mbps": end.get("sum_received", {}).get("bits_per_second", 0.0) / 1e6,
                "iperf3_retransmits": end.get("sum_sent", {}).get("retransmits"),
                "iperf3_mean_rtt_ms": snd.get("mean_rtt", 0) / 1000.0 if snd.get("mean_rtt") else None,
                "iperf3_min_rtt_ms": snd.get("min_rtt", 0) / 1000.0 if snd.get("min_rtt") else None,
                "iperf3_congestion": end.get("sender_tcp_congestion")}
    finally:
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
