"""Kernel TCP congestion control through iperf3, on the same footing as our sender (testbeds.md §5).

* The algorithm is always named (``iperf3 -C NAME``; this machine's default is BBR) and must be in
  ``/proc/sys/net/ipv4/tcp_allowed_congestion_control`` — :func:`check_kernel_algorithm` fails
  before any link is made otherwise.
* Running iperf3 (commands, readiness probe, one run over a link) and reading its JSON report are
  :mod:`sender.iperf3` (the one definition). The figures compared across schemes come from the link's
  logs (:mod:`sender.emulate`).
"""

from __future__ import annotations

from pathlib import Path

from foundation.errors import BadInputError, GenetRuntimeError

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
