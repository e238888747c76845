"""Link configuration: what one emulated link is, validated before anything is created.

A link has two directions. ``uplink`` carries packets from the emulated side
to the host side, ``downlink`` the reverse (Mahimahi's convention,
testbeds.md §1.7). Each direction has a delivery-opportunity schedule, a
random loss rate, a queue and an optional Mahimahi-format log; the one-way
``delay_ms`` applies to each direction (RTT = 2 x delay_ms, as ``mm-delay``,
§1.4).

Queue syntax follows ``mm-link`` (§1.3): kind ``infinite`` | ``droptail`` |
``drophead`` | ``codel`` | ``pie`` and args ``"packets=20"`` / ``"bytes=30000, packets=20"`` /
``"target=5, interval=100, packets=1000"`` (CoDel, ms) /
``"qdelay_ref=20, max_burst=100, packets=1000"`` (PIE, ms).
Unlike Mahimahi's substring search, unknown or malformed arguments are an
error here (Mahimahi silently reads a missing name as 0).

Schedules: a Mahimahi file is used exactly as written (``parse_mahimahi_schedule``);
any other trace (file in a format :mod:`traces` reads, a :class:`~traces.Trace`)
goes through ``traces.mahimahi.trace_to_schedule``; a number is a constant
rate in Mbit/s (1504-byte opportunities spread evenly over 1 s, so 12 Mbit/s
is one opportunity per ms, as Mahimahi's ``12mbps`` file).
"""

from __future__ import annotations

from foundation.errors import BadInputError, GenetRuntimeError

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # annotations only: numpy is imported where it is used
    import numpy as np

from traces.errors import TraceFormatError

#: Bytes one delivery opportunity carries on the TUN device (1500-byte IP MTU + 4-byte packet-info header).
QUEUE_KINDS = ("infinite", "droptail", "drophead", "codel", "pie")
QUEUE_ARG_NAMES = ("packets", "bytes", "target", "interval", "qdelay_ref", "max_burst")
#: AQM arguments (ms) and the queue kind that takes them
AQM_ARGS = {"target": "codel", "interval": "codel", "qdelay_ref": "pie", "max_burst": "pie"}

#: What a direction's trace may be: a file path, a traces.Trace, a Schedule, or a constant rate in Mbit/s.
TraceLike = Union[str, os.PathLike, float, int, Any]


class EmulationError(GenetRuntimeError):
    """The emulated link could not be created or run (missing tool, privilege, kernel feature)."""


@dataclass(frozen=True)
class QueueSpec:
    """A per-direction queue.

    kind: ``infinite`` | ``droptail`` | ``drophead`` | ``codel`` | ``pie`` (default infinite, as mm-link)
    packets: packet limit, 0 = none (e.g. 20)
    bytes: byte limit counted in TUN bytes (IP packet + 4), 0 = none (e.g. 30000)
    target_ms: CoDel target sojourn time, ms (codel only, e.g. 5)
    interval_ms: CoDel interval, ms (codel only, e.g. 100)
    qdelay_ref_ms: PIE reference queueing delay, ms (pie only, e.g. 20)
    max_burst_ms: PIE burst allowance, ms (pie only, e.g. 100)
    """

    kind: str = "infinite"
    packets: int = 0
    bytes: int = 0
    target_ms: int = 0
    interval_ms: int = 0
    qdelay_ref_ms: int = 0
    max_burst_ms: int = 0

    def __post_init__(self) -> None:
        if self.kind not in QUEUE_KINDS:
            raise BadInputError(f"queue kind {self.kind!r} unknown; choose one of {', '.join(QUEUE_KINDS)}")
        for name in ("packets", "bytes", "target_ms", "interval_ms", "qdelay_ref_ms", "max_burst_ms"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise BadInputError(f"queue {name.removesuffix('_ms')}= must be a non-negative integer, got {v!r}")
        if self.kind == "infinite" and (self.packets or self.bytes):
            raise BadInputError("an infinite queue takes no packets=/bytes= arguments")
        if self.kind != "infinite" and not (self.packets or self.bytes):
            raise BadInputError(f"a {self.kind} queue must have a byte or packet limit (e.g. packets=20)")
        if self.kind == "codel" and not (self.target_ms and self.interval_ms):
            raise BadInputError("a codel queue needs target= and interval= in ms (e.g. target=5, interval=100)")
        if self.kind == "pie" and not (self.qdelay_ref_ms and self.max_burst_ms):
            raise BadInputError("a pie queue needs qdelay_ref= and max_burst= in ms (e.g. qdelay_ref=20, max_burst=100)")
        for name, owner in AQM_ARGS.items():
            if getattr(self, name + "_ms") and self.kind != owner:
                raise BadInputError(f"{name}= is a {owner} argument; a {self.kind} queue does not take it")

    @classmethod
    def parse(cls, kind: str | None, args: str | None = None) -> "QueueSpec":
        """``QueueSpec.parse("droptail", "packets=20, bytes=30000")``, ``("codel", "target=5, interval=100, packets=1000")``."""
        kind = (kind or "infinite").strip().lower()
        if kind not in QUEUE_KINDS:
            cls(kind)  # raises, naming the valid kinds
        values: dict[str, int] = {}
        for part in (args or "").split(","):
            part = part.strip()
            if not part:
                continue
            m = re.fullmatch(r"([a-z_]+)\s*=\s*(\d+)", part)
            if not m:
                raise BadInputError(f"queue argument {part!r}: expected NAME=INTEGER with NAME in "
                                 f"{', '.join(QUEUE_ARG_NAMES)} (e.g. packets=20)")
            name, value = m.group(1), int(m.group(2))
            if name not in QUEUE_ARG_NAMES:
                raise BadInputError(f"queue argument {name!r} unknown; expected one of {', '.join(QUEUE_ARG_NAMES)}")
            values[name + "_ms" if name in AQM_ARGS else name] = value
        return cls(kind, **values)

    def describe(self) -> str:
        """Mahimahi's log description: ``infinite``, ``droptail [packets=20]``, ``codel [bytes=..., packets=...]``."""
        if self.kind == "infinite":
            return "infinite"
        args = [f"{n}={getattr(self, n)}" for n in ("bytes", "packets") if getattr(self, n)]
        return f"{self.kind} [{', '.join(args)}]"

    def args_string(self) -> str:
        """The arguments in mm-link's --*-queue-args syntax."""
        parts = [f"{n}={getattr(self, n)}" for n in ("packets", "bytes") if getattr(self, n)]
        parts += [f"{n}={getattr(self, n + '_ms')}" for n in AQM_ARGS if getattr(self, n + "_ms")]
        return ", ".join(parts)


@dataclass(frozen=True)
class Schedule:
    """A looping delivery-opportunity schedule in run-length form.

    slot_ms: distinct opportunity times within one period, increasing (ms)
    slot_count: opportunities at each of those times (>= 1)
    period_ms: the loop length = the schedule's last value (> 0)
    source: where it came from (file path or description), for logs and errors
    """

    slot_ms: tuple[int, ...]
    slot_count: tuple[int, ...]
    period_ms: int
    source: str = ""

    @classmethod
    def from_ms(cls, schedule_ms: "np.ndarray", source: str = "") -> "Schedule":
        import numpy as np
        s = np.asarray(schedule_ms, dtype=np.int64)
        if s.size == 0 or s[-1] <= 0 or np.any(np.diff(s) < 0) or s[0] < 0:
            raise TraceFormatError("invalid delivery schedule (needs non-decreasing ms values ending > 0)", source)
        uniq, counts = np.unique(s, return_counts=True)
        return cls(tuple(int(x) for x in uniq), tuple(int(x) for x in counts), int(s[-1]), source)

    @property
    def opportunities_per_period(self) -> int:
        return int(sum(self.slot_count))

    @property
    def mean_rate_mbps(self) -> float:
        """Long-run capacity in Mbit/s of 1500-byte IP packets (traces' convention)."""
        return self.opportunities_per_period * 1500 * 8 / (self.period_ms * 1000.0)

    def to_json(self) -> dict:
        return {"slot_ms": list(self.slot_ms), "slot_count": list(self.slot_count),
                "period_ms": self.period_ms, "source": self.source}

    @classmethod
    def from_json(cls, d: dict) -> "Schedule":
        return cls(tuple(d["slot_ms"]), tuple(d["slot_count"]), int(d["period_ms"]), d.get("source", ""))


def constant_schedule(rate_mbps: float) -> Schedule:
    """Opportunities for a constant ``rate_mbps`` (quantised to 12 kbit/s over a 1-s period)."""
    if not (isinstance(rate_mbps, (int, float)) and math.isfinite(rate_mbps) and rate_mbps > 0):
        raise BadInputError(f"constant link rate must be a positive number of Mbit/s, got {rate_mbps!r}")
    from traces.mahimahi import trace_to_schedule
    from traces.trace import Trace
    if rate_mbps * 1e6 / 12000 < 1:
        raise BadInputError(f"constant link rate {rate_mbps} Mbit/s is below one 1500-byte packet per second")
    return Schedule.from_ms(trace_to_schedule(Trace.constant(float(rate_mbps), 1.0)), f"constant {rate_mbps:g} Mbit/s")


def load_schedule(trace: TraceLike) -> Schedule:
    """A :class:`Schedule` from a trace file path, a :class:`~traces.Trace`, a rate in Mbit/s or a Schedule."""
    from traces.io import detect_format, read_trace
    from traces.mahimahi import parse_mahimahi_schedule, trace_to_schedule
    from traces.trace import Trace
    if isinstance(trace, Schedule):
        return trace
    if isinstance(trace, bool):
        raise BadInputError(f"not a trace: {trace!r}")
    if isinstance(trace, (int, float)):
        return constant_schedule(trace)
    if isinstance(trace, Trace):
        return Schedule.from_ms(trace_to_schedule(trace), trace.meta.get("path") or trace.name or "<trace>")
    if isinstance(trace, (str, os.PathLike)):
        path = Path(trace)
        if not path.is_file():
            raise TraceFormatError("no such trace file", path)
        if detect_format(path) == "mahimahi":
            return Schedule.from_ms(parse_mahimahi_schedule(path), str(path))
        return Schedule.from_ms(trace_to_schedule(read_trace(path)), str(path))
    raise BadInputError(f"not a trace: {trace!r} (expected a file path, a traces.Trace or a rate in Mbit/s)")


def parse_trace_arg(text: str) -> TraceLike:
    """A command-line trace: a file path, or ``12mbps`` / ``const:12`` for a constant rate."""
    m = re.fullmatch(r"(?:const:)?(\d+(?:\.\d+)?)\s*mbps|const:(\d+(?:\.\d+)?)", text.strip(), re.IGNORECASE)
    if m and not Path(text).exists():
        return float(m.group(1) or m.group(2))
    return text


@dataclass(frozen=True)
class DirectionSpec:
    """One direction of the link.

    schedule: delivery opportunities (see :class:`Schedule`)
    loss_rate: Bernoulli drop probability in [0, 1] (default 0)
    queue: the queue (default infinite)
    log_path: Mahimahi-format log file, or None
    """

    schedule: Schedule
    loss_rate: float = 0.0
    queue: QueueSpec = field(default_factory=QueueSpec)
    log_path: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.loss_rate, (int, float)) and 0.0 <= self.loss_rate <= 1.0):
            raise BadInputError(f"loss_rate must be in [0, 1], got {self.loss_rate!r}")


#: The link's clock. "ms": Mahimahi's (the default; its semantics exactly): whole milliseconds, a ms's
#: opportunities in one burst at its start, a delay released at the first whole ms at or after it ends,
#: every wait rounded up to whole ms — about 1 ms per direction on top of the configured path, with up to
#: 1 ms of jitter (measured: ``genet emulate selfcheck``; the cause of most of the CC simulator-emulation gap
#: on sub-millisecond paths, docs/fidelity.md). "precise": the same schedule and queue, in fractional ms: a
#: ms's opportunities evenly paced over it, delays exact, waits to the microsecond (what the simulator models;
#: not Mahimahi's, so not for comparisons with ``--backend mahimahi``).
CLOCKS = ("ms", "precise")


@dataclass(frozen=True)
class LinkSpec:
    """A whole link (both directions).

    uplink: emulated side -> host side
    downlink: host side -> emulated side
    delay_ms: one-way propagation delay added in each direction, ms (e.g. 20 -> RTT 40)
    once: stop at the end of the trace instead of looping (mm-link --once)
    seed: seed of the loss draws (None: random)
    command_line: recorded in the logs' "# command line:" header
    clock: "ms" (Mahimahi's whole-millisecond clock) or "precise" (:data:`CLOCKS`)
    """

    uplink: DirectionSpec
    downlink: DirectionSpec
    delay_ms: float = 0.0
    once: bool = False
    seed: int | None = None
    command_line: str = ""
    clock: str = "ms"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise BadInputError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if not (isinstance(self.delay_ms, (int, float)) and math.isfinite(self.delay_ms) and self.delay_ms >= 0):
            raise BadInputError(f"delay_ms must be a finite number >= 0, got {self.delay_ms!r}")
        for d in (self.uplink, self.downlink):
            if d.log_path:
                parent = Path(d.log_path).resolve().parent
                if not parent.is_dir():
                    raise FileNotFoundError(f"log directory {parent} does not exist (for log {d.log_path})")

    def to_json(self) -> dict:
        def direction(d: DirectionSpec) -> dict:
            return {"schedule": d.schedule.to_json(), "loss_rate": d.loss_rate,
                    "queue": dataclasses.asdict(d.queue),
                    "log_path": d.log_path}
        return {"uplink": direction(self.uplink), "downlink": direction(self.downlink),
                "delay_ms": self.delay_ms, "once": self.once, "seed": self.seed, "command_line": self.command_line,
                "clock": self.clock}

    @classmethod
    def from_json(cls, d: dict) -> "LinkSpec":
        def direction(x: dict) -> DirectionSpec:
            return DirectionSpec(Schedule.from_json(x["schedule"]), x["loss_rate"], QueueSpec(**x["queue"]),
                                 x["log_path"])
        return cls(direction(d["uplink"]), direction(d["downlink"]), d["delay_ms"], d["once"], d["seed"],
                   d.get("command_line", ""), d.get("clock", "ms"))


def make_link_spec(uplink: TraceLike, downlink: TraceLike, *, delay_ms: float = 0.0,
                   uplink_loss: float = 0.0, downlink_loss: float = 0.0,
                   uplink_queue: QueueSpec | str | None = None, downlink_queue: QueueSpec | str | None = None,
                   uplink_queue_args: str | None = None, downlink_queue_args: str | None = None,
                   uplink_log: str | os.PathLike | None = None, downlink_log: str | os.PathLike | None = None,
                   once: bool = False, seed: int | None = None, command_line: str = "",
                   clock: str = "ms") -> LinkSpec:
    """Validate everything and build a :class:`LinkSpec` (raises before anything is created)."""
    def queue(q, args) -> QueueSpec:
        if isinstance(q, QueueSpec):
            if args:
                raise BadInputError("give queue args inside the QueueSpec, not separately")
            return q
        return QueueSpec.parse(q, args)
    up = DirectionSpec(load_schedule(uplink), float(uplink_loss), queue(uplink_queue, uplink_queue_args),
                       os.fspath(uplink_log) if uplink_log else None)
    down = DirectionSpec(load_schedule(downlink), float(downlink_loss), queue(downlink_queue, downlink_queue_args),
                         os.fspath(downlink_log) if downlink_log else None)
    return LinkSpec(up, down, float(delay_ms), bool(once), seed, command_line, clock)
