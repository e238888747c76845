"""Low-latency idle: the PM QoS request (``/dev/cpu_dma_latency`` = 0 us, what ``cyclictest`` asks for) that
keeps idle CPUs from sleeping deeply while real-time work runs.

On a VM whose idle driver halts the vCPU (``haltpoll`` here), a process woken after an idle spell runs on a
cold vCPU: measured here, an ONNX call that takes 8 us in a loop takes ~260 us after a 10-ms sleep, and an
emulated link's ms-tick releases come late, so an idle machine shows *more* RTT spread than a busy one.
The sender (``genet sender send``, unless ``--no-low-latency-idle``) and an emulated link asked to
(``LinkEmulator(low_latency_idle=True)``) hold the request while they run; it is dropped when the returned
descriptor is closed (or the process ends).
Best effort: without root, or without the device, nothing is held and nothing fails. Standard library only
(runtime code)."""

from __future__ import annotations

import os
import struct

CPU_DMA_LATENCY = "/dev/cpu_dma_latency"


def hold_low_latency_idle(path: str = CPU_DMA_LATENCY) -> int | None:
    """Ask for low-latency idle (PM QoS 0 us) for as long as the returned fd stays open; None when the file
    cannot be opened or written (not root, no such device): best effort, silently skipped."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return None
    try:
        os.write(fd, struct.pack("i", 0))
    except OSError:
        os.close(fd)
        return None
    return fd


def release_low_latency_idle(fd: int | None) -> None:
    """Drop a request made by :func:`hold_low_latency_idle` (None: nothing held)."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
