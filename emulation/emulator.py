"""The front door: one context manager for a trace-driven link, whatever the backend.

>>> from emulation import LinkEmulator
>>> with LinkEmulator("12mbps.mahi", "12mbps.mahi", delay_ms=20,
...                   uplink_queue="droptail", uplink_queue_args="packets=20") as link:
...     server = link.host.popen(["iperf3", "-s", "-1", "-B", link.host.address])
...     out = link.emulated.run(["iperf3", "-c", link.host.address, "-C", "cubic", "-t", "20"])

Arguments (units in names; Mahimahi's semantics, testbeds.md §1):

* uplink / downlink: a trace file in any format :mod:`traces` reads (a
  Mahimahi file is used as written), a :class:`~traces.Trace`, or a constant
  rate in Mbit/s. Uplink = emulated side -> host side.
* delay_ms: one-way delay applied in each direction (RTT = 2 x delay_ms), default 0
* uplink_loss / downlink_loss: Bernoulli loss rate per direction in [0, 1], default 0
* uplink_queue / downlink_queue: ``infinite`` (default) | ``droptail`` | ``drophead``,
  with ``*_queue_args`` such as ``"packets=20"`` or ``"bytes=30000"``
* uplink_log / downlink_log: Mahimahi-format log files (``genet emulate link-stats`` reads them)
* once: end at the end of the trace instead of looping (mm-link ``--once``)
* seed: seed of the loss draws (default None: random)
* backend: ``netns`` (default, embedded), ``mahimahi`` or ``mininet``
* clock: netns backend only: ``ms`` (default: Mahimahi's whole-millisecond clock, its semantics exactly) or
  ``precise`` (the same schedule and queues in fractional ms: a ms's opportunities paced evenly over it,
  delays exact) — :data:`emulation.config.CLOCKS`
* isolate_host: netns backend only: put the host side in its own namespace
  rather than the root one (default False; tests use True so nothing touches the host)
* realtime: netns backend only: run the link process at SCHED_RR priority 1
  (default True; falls back to nice -20) so a busy machine adds no ms-scale jitter
* start_on_first_packet: netns backend only: the trace's clock (t = 0) starts when the emulated side
  sends its first packet — a player's first SYN — rather than when the link is configured (default
  False), so a session sees the same stretch of the trace however long its programs took to start;
  ``stats["trace_start_epoch_s"]`` (after exit) is when the trace started
* pcap_dir: netns backend only: capture both sides into emulated.pcap / host.pcap
  there (``genet emulate flow-stats DIR`` summarises them per flow)
* low_latency_idle: hold ``/dev/cpu_dma_latency`` at 0 while the link is up (default False; best effort,
  root only; see foundation/cpuidle.py): on a VM an idle vCPU wakes late, which delays the link's ms-tick
  releases — here an idle machine showed more RTT spread than a busy one (ping median 44.5 ms instead of
  42-43). Off by default: idle CPUs then poll instead of halting, and it shifts the timing of everything
  else on the machine (a fresh-clone run with it on for every link moved the browser-vs-Python step test
  onto its knife edge); the ping-fidelity test turns it on

Everything is validated before anything is created; all created resources
are removed on exit, on an exception, and on SIGINT/SIGTERM (the handler
turns SIGTERM into ``SystemExit(143)`` while the link is open, in the main thread).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import os
import signal
import threading
from typing import Any

from emulation.config import LinkSpec, QueueSpec, TraceLike, make_link_spec
from foundation.cpuidle import hold_low_latency_idle, release_low_latency_idle

BACKENDS = ("netns", "mahimahi", "mininet")


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)


class LinkEmulator:
    """A trace-driven emulated link (context manager). See the module docstring for the arguments.

    After entering: ``emulated`` and ``host`` are :class:`~emulation.endpoint.Endpoint` objects
    (``.address``, ``.run``, ``.popen``, ``.call``); ``stats`` (after exit) holds the link's counters.
    """

    def __init__(self, uplink: TraceLike, downlink: TraceLike, *, delay_ms: float = 0.0,
                 uplink_loss: float = 0.0, downlink_loss: float = 0.0,
                 uplink_queue: QueueSpec | str | None = None, downlink_queue: QueueSpec | str | None = None,
                 uplink_queue_args: str | None = None, downlink_queue_args: str | None = None,
                 uplink_log: str | os.PathLike | None = None, downlink_log: str | os.PathLike | None = None,
                 once: bool = False, seed: int | None = None, backend: str = "netns",
                 isolate_host: bool = False, command_line: str = "", low_latency_idle: bool = False,
                 clock: str = "ms", **backend_options: Any):
        if backend not in BACKENDS:
            raise BadInputError(f"unknown emulation backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend_name = backend
        self.uplink_source, self.downlink_source = uplink, downlink
        self.spec: LinkSpec = make_link_spec(
            uplink, downlink, delay_ms=delay_ms, uplink_loss=uplink_loss, downlink_loss=downlink_loss,
            uplink_queue=uplink_queue, downlink_queue=downlink_queue, uplink_queue_args=uplink_queue_args,
            downlink_queue_args=downlink_queue_args, uplink_log=uplink_log, downlink_log=downlink_log,
            once=once, seed=seed, command_line=command_line, clock=clock)
        if clock != "ms" and backend != "netns":
            raise BadInputError(f"clock {clock!r}: netns backend only (the {backend} backend has its own clock)")
        self.isolate_host = isolate_host
        self.low_latency_idle = low_latency_idle
        self._qos_fd: int | None = None
        self.backend_options = backend_options
        self._impl = self._make_backend()  # raises for unsupported options before anything is created
        self._old_sigterm = None

    def _make_backend(self):
        if self.backend_name == "netns":
            from emulation.netns_backend import NetnsLink
            known = {"realtime", "pcap_dir", "start_on_first_packet"}
            unknown = set(self.backend_options) - known
            if unknown:
                raise BadInputError(f"netns backend: unknown options {sorted(unknown)} (known: {', '.join(sorted(known))})")
            return NetnsLink(self.spec, isolate_host=self.isolate_host, **self.backend_options)
        netns_only = sorted(set(self.backend_options) & {"realtime", "pcap_dir", "start_on_first_packet"})
        if netns_only:
            raise BadInputError(f"{', '.join(netns_only)}: netns backend only (this link's backend is {self.backend_name})")
        if self.backend_name == "mininet":
            from emulation.mininet_backend import MininetLink
            return MininetLink(self.spec, self.uplink_source, self.downlink_source, **self.backend_options)
        from emulation.mahimahi_backend import MahimahiLink
        if self.isolate_host:
            raise BadInputError("isolate_host: Mahimahi's host side is always the root namespace (use the netns "
                             "backend, or mininet whose host side is always a Mininet host)")
        return MahimahiLink(self.spec, self.uplink_source, self.downlink_source, **self.backend_options)

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "LinkEmulator":
        if threading.current_thread() is threading.main_thread():
            self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)
        if self.low_latency_idle:  # foundation/cpuidle.py: idle vCPUs wake late, and so would the link's ticks
            self._qos_fd = hold_low_latency_idle()
        try:
            self._impl.start()
        except BaseException:
            self._restore_signals()
            release_low_latency_idle(self._qos_fd)
            self._qos_fd = None
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._impl.close()
        finally:
            self._restore_signals()
            release_low_latency_idle(self._qos_fd)
            self._qos_fd = None

    def _restore_signals(self) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    # ------------------------------------------------------------ accessors
    @property
    def emulated(self):
        return self._impl.emulated

    @property
    def host(self):
        return self._impl.host

    @property
    def stats(self) -> dict:
        return self._impl.stats

    @property
    def run_name(self) -> str:
        return self._impl.run_name

    @property
    def backend(self):
        """The backend object (NetnsLink, MininetLink or MahimahiLink)."""
        return self._impl

    def wait_finished(self, timeout_s: float | None = None):
        """Wait until the link ends by itself (``once=True``: the trace ran out)."""
        return self._impl.wait_finished(timeout_s)


def open_link(uplink: TraceLike, downlink: TraceLike, **kwargs: Any) -> LinkEmulator:
    """Same as ``LinkEmulator(...)``; use as ``with open_link(...) as link:``."""
    return LinkEmulator(uplink, downlink, **kwargs)
