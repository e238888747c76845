"""Training distributions over environment configs.

A distribution is a weighted mixture of *entries*; each entry gives every
dimension of the use case's config space a range [lo, hi] (a point when
lo == hi). Sampling picks an entry by weight, then draws each dimension along
its scale (:meth:`traces.config_space.Dimension.sample` semantics). Optionally
a real-trace set is mixed in with probability ``real_prob`` (paper §5.2):
those draws return ``{"real_trace_index": i}`` for the use case to resolve.

:meth:`ConfigDistribution.promote` is Genet's promotion step (§6.1): every
existing weight is multiplied by (1 - w) and the promoted config joins as a
point entry with weight w (w = 0.3 in the paper).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from traces.config_space import ConfigSpace, ConfigSpaceError, Dimension, check_range_name


@dataclass
class Entry:
    weight: float
    ranges: dict[str, tuple[float, float]]
    label: str = ""


@dataclass
class ConfigDistribution:
    """space: the use case's config space; entries: weighted ranges;
    real_prob: probability of drawing a real trace instead (0 = never);
    n_real_traces: how many real traces there are to draw from."""

    space: ConfigSpace
    entries: list[Entry] = field(default_factory=list)
    real_prob: float = 0.0
    n_real_traces: int = 0

    @classmethod
    def udr(cls, space: ConfigSpace, range_name: str = "rl3", real_prob: float = 0.0,
            n_real_traces: int = 0) -> "ConfigDistribution":
        """Uniform domain randomisation over one of the space's ranges."""
        check_range_name(range_name)
        if not 0 <= real_prob <= 1:
            raise ConfigSpaceError(f"real_prob must be in [0, 1], got {real_prob}")
        if real_prob > 0 and n_real_traces < 1:
            raise ConfigSpaceError("real_prob > 0 needs at least one real trace")
        return cls(space, [Entry(1.0, dict(space.ranges(range_name)), label=range_name)], real_prob, n_real_traces)

    @property
    def weights(self) -> np.ndarray:
        w = np.array([e.weight for e in self.entries], float)
        return w / w.sum()

    def sample(self, rng: np.random.Generator) -> dict:
        if self.real_prob > 0 and rng.random() < self.real_prob:
            return {"real_trace_index": int(rng.integers(self.n_real_traces))}
        entry = self.entries[int(rng.choice(len(self.entries), p=self.weights))]
        out = {}
        for d in self.space.dimensions:
            lo, hi = entry.ranges[d.name]
            out[d.name] = Dimension(d.name, d.unit, d.default, d.scale, {"x": (lo, hi)}).sample(rng, "x")
        return out

    def promote(self, config: dict[str, float], weight: float = 0.3, label: str = "") -> None:
        """Add ``config`` as a point entry with ``weight``; scale the others by (1 - weight)."""
        if not 0 < weight < 1:
            raise ConfigSpaceError(f"promotion weight must be in (0, 1), got {weight}")
        cfg = self.space.validate(config)
        for e in self.entries:
            e.weight *= 1 - weight
        self.entries.append(Entry(weight, {d.name: (cfg[d.name], cfg[d.name]) for d in self.space.dimensions},
                                  label=label))

    def to_dict(self) -> dict:
        return {"use_case": self.space.use_case, "real_prob": self.real_prob, "n_real_traces": self.n_real_traces,
                "entries": [{"weight": e.weight, "label": e.label, "ranges": {k: list(v) for k, v in e.ranges.items()}}
                            for e in self.entries]}

    @classmethod
    def from_dict(cls, space: ConfigSpace, data: dict) -> "ConfigDistribution":
        if data.get("use_case") != space.use_case:
            raise ConfigSpaceError(f"distribution is for use case {data.get('use_case')!r}, not {space.use_case!r}")
        entries = [Entry(e["weight"], {k: tuple(v) for k, v in e["ranges"].items()}, e.get("label", ""))
                   for e in data["entries"]]
        return cls(space, entries, data.get("real_prob", 0.0), data.get("n_real_traces", 0))

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1)
