"""A use case is one description: :class:`UseCase`.

Each use case (ABR, CC, LB next) declares itself once, in its own package (``genet/abr/usecase.py``,
``genet/cc/usecase.py``), with what every other part of the tree needs to know about it:

* ``columns``: its result columns with units (:class:`foundation.metrics.Column`; the paper's Table 6 /
  Table 7 figures), the one list the simulator, the emulated and remote runs and the reports write;
* ``reward``: the reward definition (``"module:function"``) and ``reward_fields``: the columns that break it
  down (bitrate, rebuffering, smoothness for ABR; throughput, latency, loss for CC);
* ``space``: its environment config space (a JSON file of ``traces/spaces``: every dimension with its unit
  and range), ``environment``: the simulator environment's factory (``"module:attr"``, a Gymnasium id in
  ``gym_id``);
* ``policies``: its policy registry (``"module:attr"`` of a :class:`foundation.registry.Registry`) and
  ``baselines``: the rule-based baselines in it, ``curriculum_baseline``: the one Genet's curriculum compares
  against;
* ``schemes``: how a scheme runs on real packets (``"module:attr"`` of a factory returning a
  ``deploy/schemes.py`` ``SchemeRunner``: its server side and its client side), and ``emulate``: the
  ``genet emulate`` command path.

Everything is given as strings or plain values, so declaring a use case imports nothing heavy (no numpy, torch,
numba): the parts are imported on first use with :func:`load`. The use cases are listed in one place,
:data:`USE_CASES` (a :class:`foundation.registry.Registry` filled by :func:`register_builtins`); a new use case
is one package with a ``usecase.py`` (whose ``declare()`` returns its :class:`UseCase`) plus one line there.

Standard library only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from foundation.metrics import Column, column_names
from foundation.registry import IMPORT_PATH_PATTERN, Registry, RegistryError


def load(import_path: str) -> Any:
    """The object named by ``"package.module:attribute"`` (the attribute may be dotted)."""
    module, _, attr = import_path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class UseCase:
    """One use case, declared once (see the module's docstring)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    reward: str
    reward_fields: tuple[str, ...]
    space: str
    environment: str
    policies: str
    baselines: tuple[str, ...]
    curriculum_baseline: str
    gym_id: str = ""
    schemes: str = ""
    emulate: tuple[str, ...] = ()
    #: what the reports call the use case's table of :attr:`table_columns` ("Table 6 (ABR)")
    table_name: str = ""
    #: the columns that identify a row (beside the result columns): policy, environment, repetition
    key_columns: tuple[str, ...] = ("policy", "trace")
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        where = f"use case {self.name!r}"
        names = column_names(self.columns)
        if len(set(names)) != len(names):
            raise RegistryError(f"{where}: duplicate result columns {sorted(n for n in names if names.count(n) > 1)}")
        missing = [f for f in self.reward_fields if f not in names]
        if missing:
            raise RegistryError(f"{where}: reward fields {missing} are not among its columns {list(names)}")
        for label in ("reward", "environment", "policies") + (("schemes",) if self.schemes else ()):
            value = getattr(self, label)
            if not IMPORT_PATH_PATTERN.fullmatch(value):
                raise RegistryError(f"{where}: {label} {value!r} must be an import path 'package.module:attribute'")
        if self.curriculum_baseline not in self.baselines:
            raise RegistryError(f"{where}: curriculum baseline {self.curriculum_baseline!r} is not one of its "
                                f"baselines {list(self.baselines)}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return column_names(self.columns)

    @property
    def table_title(self) -> str:
        return self.table_name or f"{self.name.upper()} results"

    @property
    def table_columns(self) -> tuple[Column, ...]:
        """The columns the paper's table prints (Table 6 / Table 7)."""
        return tuple(c for c in self.columns if c.table)

    def policy_registry(self) -> Registry:
        """The use case's policy registry (imported on first use)."""
        return load(self.policies)

    def reward_function(self):
        return load(self.reward)

    def config_space(self):
        """The use case's config space (:class:`traces.config_space.ConfigSpace`)."""
        return load("traces.config_space:load_space")(self.space)


def register_builtins(registry: Registry) -> Registry:
    """The use cases of the product, in one place (each declared in its own package)."""
    registry.register("abr", "genet.abr.usecase:declare", description="adaptive bitrate video streaming")
    registry.register("cc", "genet.cc.usecase:declare", description="congestion control")
    registry.register("lb", "genet.lb.usecase:declare", description="load balancing")
    return registry


#: Every use case, by name: ``USE_CASES.make("abr")`` returns its :class:`UseCase`.
USE_CASES: Registry = register_builtins(Registry("use case"))


def use_case(name: str) -> UseCase:
    """The :class:`UseCase` declared under ``name`` (a one-line error listing the known ones otherwise)."""
    made = USE_CASES.make(name)
    if not isinstance(made, UseCase):
        raise RegistryError(f"use case {name!r}: its declaration returned {type(made).__name__}, not a UseCase")
    return made


def all_use_cases() -> list[UseCase]:
    return [use_case(n) for n in USE_CASES.names()]


__all__ = ["UseCase", "USE_CASES", "use_case", "all_use_cases", "load", "register_builtins"]
