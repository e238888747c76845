"""Environment config spaces of the Genet use cases, read from ``traces/spaces/*.json``.

One data file per use case (``abr.json``, ``cc.json``; LB later) lists each
dimension's name (with its unit), default, sampling scale and RL1/RL2/RL3
ranges, plus fixed parameters. The simulators, the trace generators and the
curriculum all read the space through :func:`load_space`.

Scales: ``uniform``; ``log`` (log-uniform); ``log_with_zero`` (Genet's loss
rate: log10-uniform over [lo+1e-5, hi+1e-5], and 0 below 1e-4).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPACES_DIR = Path(__file__).with_name("spaces")
RANGE_NAMES = ("rl1", "rl2", "rl3")
SCALES = ("uniform", "log", "log_with_zero")


class ConfigSpaceError(BadInputError):
    """A config-space file or a config value is invalid (the message names which)."""


@dataclass(frozen=True)
class Dimension:
    """One dimension of an environment space.

    name: identifier with its unit as suffix (e.g. "min_rtt_ms")
    unit: unit for humans (e.g. "ms")
    default: value used when the dimension is not varied
    scale: "uniform", "log" or "log_with_zero"
    ranges: {"rl1": (lo, hi), "rl2": ..., "rl3": ...}; rl3 is the widest
    description: one line for --help and plots
    """

    name: str
    unit: str
    default: float
    scale: str
    ranges: dict[str, tuple[float, float]]
    description: str = ""

    @property
    def bounds(self) -> tuple[float, float]:
        """The widest range (the union of all ranges)."""
        los, his = zip(*self.ranges.values())
        return min(los), max(his)

    def sample(self, rng: np.random.Generator, range_name: str = "rl3") -> float:
        lo, hi = self.ranges[range_name]
        if lo == hi:
            return float(lo)
        if self.scale == "log":
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.scale == "log_with_zero":
            x = rng.uniform(math.log10(lo + 1e-5), math.log10(hi + 1e-5))
            return 0.0 if x < -4 else float(min(10 ** x, hi))
        return float(rng.uniform(lo, hi))

    def to_unit(self, value: float) -> float:
        """Map a value to [0, 1] along its scale over the widest range (for BO and plots)."""
        lo, hi = self.bounds
        if hi == lo:
            return 0.0
        if self.scale in ("log", "log_with_zero"):
            off = 1e-5 if self.scale == "log_with_zero" else 0.0
            return (math.log(value + off) - math.log(lo + off)) / (math.log(hi + off) - math.log(lo + off))
        return (value - lo) / (hi - lo)


@dataclass(frozen=True)
class ConfigSpace:
    """A use case's environment space: ordered dimensions plus fixed parameters."""

    use_case: str
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    path: str = ""

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def __getitem__(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(f"{self.use_case} config space has no dimension {name!r}; "
                       f"dimensions are {', '.join(self.names)}")

    def default(self) -> dict[str, float]:
        return {d.name: float(d.default) for d in self.dimensions}

    def ranges(self, range_name: str = "rl3") -> dict[str, tuple[float, float]]:
        check_range_name(range_name)
        return {d.name: d.ranges[range_name] for d in self.dimensions}

    def sample(self, rng: np.random.Generator, range_name: str = "rl3") -> dict[str, float]:
        """Draw one config uniformly (along each dimension's scale) from a range."""
        check_range_name(range_name)
        return {d.name: d.sample(rng, range_name) for d in self.dimensions}

    def validate(self, config: dict[str, float], range_name: str | None = None) -> dict[str, float]:
        """Fill defaults and check every value lies in its range (the widest one when
        ``range_name`` is None). Raises ConfigSpaceError naming the dimension."""
        unknown = set(config) - set(self.names) - set(self.fixed) - {"queue_packets"}
        if unknown:
            raise ConfigSpaceError(f"unknown {self.use_case} config dimension(s) {sorted(unknown)}; "
                                   f"dimensions are {', '.join(self.names)}")
        out = self.default()
        for d in self.dimensions:
            if d.name not in config:
                continue
            v = float(config[d.name])
            lo, hi = d.ranges[range_name] if range_name else d.bounds
            if not (lo - 1e-12 <= v <= hi + 1e-12) or math.isnan(v):
                where = f"range {range_name}" if range_name else "its widest range"
                raise ConfigSpaceError(f"{self.use_case} config '{d.name}' = {v:g} {d.unit} is outside "
                                       f"{where} [{lo:g}, {hi:g}]")
            out[d.name] = v
        for k in set(config) - set(self.names):
            out[k] = config[k]
        return out


def check_range_name(range_name: str) -> str:
    if range_name not in RANGE_NAMES:
        raise ConfigSpaceError(f"unknown range {range_name!r}; choose one of {', '.join(RANGE_NAMES)}")
    return range_name


def load_space(use_case_or_path: str | os.PathLike) -> ConfigSpace:
    """Load a config space: a use-case name ("abr", "cc") or a path to a JSON file."""
    p = Path(use_case_or_path)
    if not p.suffix:
        p = SPACES_DIR / f"{use_case_or_path}.json"
        if not p.is_file():
            known = sorted(x.stem for x in SPACES_DIR.glob("*.json"))
            raise ConfigSpaceError(f"unknown use case {use_case_or_path!r}; known: {', '.join(known)}")
    try:
        raw = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigSpaceError(f"{p}: cannot read config space: {exc}") from None
    dims = []
    for i, d in enumerate(raw.get("dimensions", [])):
        where = f"{p}: dimension {i} ({d.get('name', '?')})"
        for key in ("name", "unit", "default", "scale", "ranges"):
            if key not in d:
                raise ConfigSpaceError(f"{where}: missing field '{key}'")
        if d["scale"] not in SCALES:
            raise ConfigSpaceError(f"{where}: scale must be one of {SCALES}, got {d['scale']!r}")
        ranges = {}
        for rn in RANGE_NAMES:
            if rn not in d["ranges"]:
                raise ConfigSpaceError(f"{where}: missing range '{rn}'")
            lo, hi = (float(x) for x in d["ranges"][rn])
            if lo > hi:
                raise ConfigSpaceError(f"{where}: range {rn} is inverted ([{lo:g}, {hi:g}])")
            if d["scale"] == "log" and lo <= 0:
                raise ConfigSpaceError(f"{where}: log scale needs positive bounds, range {rn} has {lo:g}")
            ranges[rn] = (lo, hi)
        dims.append(Dimension(d["name"], d["unit"], float(d["default"]), d["scale"], ranges,
                              d.get("description", "")))
    if not dims:
        raise ConfigSpaceError(f"{p}: no dimensions")
    return ConfigSpace(raw.get("use_case", p.stem), tuple(dims), dict(raw.get("fixed", {})),
                       raw.get("description", ""), str(p))
