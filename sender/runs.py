"""What every emulated CC run of ``genet emulate cc`` is made of: the trace's link settings, the emulated link, the
receiver and sender processes (and their priority), and the CSV text of its result rows.

Shared by the one-flow runs (:mod:`sender.emulate`) and the competing-flows runs (:mod:`sender.flows`):

* :class:`LinkSettings` / :func:`link_settings`: the emulated link of one trace — its one-way delay, droptail
  queue and random loss (each overridable; defaults as the simulator: 25 ms, 10 packets, 0) and the run's
  duration (:meth:`traces.Trace.run_duration_s`, as ``genet eval cc``);
* :func:`make_link`: the :class:`emulation.LinkEmulator` of a run: uplink (emulated -> host side) = the
  trace, downlink (ACKs) = :data:`ACK_LINK_MBPS` constant (Pantheon's 12 Mbit/s acklink, but wide enough for
  one ACK per packet at any rate, as the simulator's ACK path), the host side in a namespace of its own on
  the netns backend (so concurrent runs do not clash); on the netns backend the trace starts (t = 0) at the
  sender's first packet, as a simulated run's does (the sender's start-up, ~0.2 s, would otherwise shift
  the trace against the simulator's; Mahimahi's and Mininet's links start when they are made);
* :func:`start_receiver` / :func:`sender_cmd`: ``genet sender receive`` on the host side and ``genet sender
  send`` on the emulated side, at the priority :func:`set_priority_for_jobs` chose;
* :func:`union_columns` / :func:`csv_text`: a results file's columns (every key of the rows, first seen
  first) and its CSV text.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import GenetRuntimeError

#: The ACK link's rate (Mbit/s): wide enough for one ACK per data packet at any rate (not logged).
ACK_LINK_MBPS = 1000.0
#: The receiver's UDP port on the host side (one run; concurrent runs add their slot).
RECEIVER_PORT = 9000
#: How long the receiver may take to start listening (s).
RECEIVER_START_S = 20.0


@dataclass(frozen=True)
class LinkSettings:
    """The emulated link of one trace (ms, packets, 0-1, s, Mbit/s; the link's clock,
    :data:`emulation.config.CLOCKS`)."""

    delay_ms: float
    queue_packets: float
    loss_rate: float
    duration_s: float
    mean_bandwidth_mbps: float
    clock: str = "ms"


def link_settings(trace, delay_ms, queue_packets, loss_rate, duration_s, clock: str = "ms") -> LinkSettings:
    """The link of ``trace``: each of ``delay_ms``, ``queue_packets``, ``loss_rate`` given (not None) wins over
    the trace's own, which wins over the simulator's default; the run lasts ``trace.run_duration_s(duration_s)``."""
    from genet.cc.link import DEFAULT_DELAY_MS, DEFAULT_LOSS_RATE, DEFAULT_QUEUE_PACKETS

    def pick(over, own, default):
        return float(over if over is not None else own if own is not None else default)
    dur = trace.run_duration_s(duration_s)  # the one definition, as genet eval cc (traces.trace)
    return LinkSettings(pick(delay_ms, trace.delay_ms, DEFAULT_DELAY_MS),
                        pick(queue_packets, trace.queue_packets, DEFAULT_QUEUE_PACKETS),
                        pick(loss_rate, trace.loss_rate, DEFAULT_LOSS_RATE), dur,
                        cut_trace(trace, dur).mean_bandwidth_mbps, clock)


def cut_trace(trace, duration_s: float):
    """The trace over a run of ``duration_s``: cut, or looped as the emulated link loops it (the
    simulator then covers what the emulated run covers)."""
    return trace.looped_to(duration_s)


def make_link(trace, s: LinkSettings, backend: str, logs: Path | None, **extra):
    """The emulated link of one run (not started: use it as a context manager); ``logs``: the folder of its
    ``uplink.log`` (None: no log); ``extra``: more :class:`emulation.LinkEmulator` arguments."""
    from emulation import LinkEmulator
    return LinkEmulator(trace, ACK_LINK_MBPS, delay_ms=s.delay_ms, uplink_loss=s.loss_rate,
                        uplink_queue="droptail", uplink_queue_args=f"packets={max(1, int(round(s.queue_packets)))}",
                        uplink_log=logs / "uplink.log" if logs else None, backend=backend,
                        isolate_host=backend == "netns", clock=s.clock,
                        **({"start_on_first_packet": True} if backend == "netns" else {}),
                        **extra)


#: Our sender and receiver run at real-time priority (SCHED_RR 1, as the netns link process; root) when
#: there is a spare core per concurrent run (the sender busy-waits up to 200 us before each packet, so at
#: high rates it keeps a core busy), else at nice -10 — so that a busy machine delays packets and ACKs less.
RT_PRIORITY = ["chrt", "-r", "1"]
NICE_PRIORITY = ["nice", "-n", "-10"]
_priority = {"cmd": NICE_PRIORITY}


def set_priority_for_jobs(jobs: int) -> list[str]:
    """Choose the sender/receiver priority for ``jobs`` concurrent runs (see RT_PRIORITY)."""
    rt = shutil.which("chrt") and jobs <= max(1, (os.cpu_count() or 1) - 1)
    _priority["cmd"] = RT_PRIORITY if rt else NICE_PRIORITY
    return _priority["cmd"]


def genet_cmd(*args: str) -> list[str]:
    """``genet ARGS`` as this interpreter runs it, at the chosen priority when root."""
    return [*(_priority["cmd"] if os.geteuid() == 0 else []), sys.executable, "-m", "app.cli", *args]


def _sides(policy, link, s: LinkSettings | None, run_dir: Path, port: int, **options):
    """The CC scheme's two sides on the link (:class:`sender.schemes.SenderRunner`, the command lines
    ``genet deploy run`` starts on two hosts): the receiver on the host side, the sender on the emulated side."""
    from foundation.scheme import SchemeContext
    from sender.schemes import SenderRunner
    genet = tuple(genet_cmd())
    ctx = SchemeContext(policy.label if policy is not None else "", policy.kind if policy is not None else "",
                        (policy.path if policy.kind == "onnx" else policy.label) if policy is not None else "",
                        genet, genet, link.host.address, port, s.duration_s if s is not None else 0.0,
                        bind_address=link.host.address, log_dir=str(run_dir), options=options)
    return SenderRunner(), ctx


def start_receiver(link, run_dir: Path, port: int = RECEIVER_PORT, name: str = "receiver"):
    """Start ``genet sender receive --once`` on the link's host side; returns its process once it listens
    (its summary goes to ``run_dir/NAME.json``, its errors to ``run_dir/NAME.err``)."""
    ready = run_dir / f"{name}.port"
    ready.unlink(missing_ok=True)
    runner, ctx = _sides(None, link, None, run_dir, port, summary=str(run_dir / f"{name}.json"),
                         ready_file=str(ready))
    p = link.host.popen(runner.server(ctx).argv, stdout=subprocess.DEVNULL, stderr=open(run_dir / f"{name}.err", "w"))
    deadline = time.monotonic() + RECEIVER_START_S
    while not ready.exists():
        if p.poll() is not None:
            err = (run_dir / f"{name}.err").read_text()[-300:]
            raise GenetRuntimeError(f"the receiver exited ({p.returncode}): {err}")
        if time.monotonic() > deadline:
            raise GenetRuntimeError(f"the receiver did not start within {RECEIVER_START_S:g} s")
        time.sleep(0.02)
    return p


def sender_cmd(policy, link, s: LinkSettings, run_dir: Path, port: int = RECEIVER_PORT, name: str = "sender"):
    """The ``genet sender send`` command of ``policy`` to the link's host side for the run's duration (its
    log: ``run_dir/NAME.jsonl``)."""
    runner, ctx = _sides(policy, link, s, run_dir, port, log=str(run_dir / f"{name}.jsonl"),
                         min_rtt_ms=2 * s.delay_ms)
    return runner.client(ctx).argv


def union_columns(rows) -> list[str]:
    """Every key of ``rows``, in the order first seen: a results file's columns."""
    return list(dict.fromkeys(k for r in rows for k in r))


def csv_text(rows, cols) -> str:
    """The CSV text of ``rows`` under the header ``cols`` (keys not in ``cols`` left out)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


__all__ = ["ACK_LINK_MBPS", "RECEIVER_PORT", "RECEIVER_START_S", "LinkSettings", "link_settings", "cut_trace",
           "make_link", "RT_PRIORITY", "NICE_PRIORITY", "set_priority_for_jobs", "genet_cmd", "start_receiver",
           "sender_cmd", "union_columns", "csv_text"]
