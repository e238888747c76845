"""The ABR policy registry: a name or a path to an ``.onnx`` file gives a policy.

=========  ===================================================================  =========
name       policy                                                               causal
=========  ===================================================================  =========
bba        buffer-based adaptation (genet/abr/baselines.py)                      yes
mpc        RobustMPC (genet/abr/mpc.py), planning with the session's QoE weights  yes
optimal    the offline optimum (genet/abr/optimal.py): knows the whole trace;    no
           only ``genet eval abr`` (simulation) can run it
PATH.onnx  an exported ABR policy (layout abr.pensieve-6x8 or abr.genet-6x6)     yes
=========  ===================================================================  =========

:func:`make_policy` is what the simulator's evaluation, the player and the ABR
server all call; an unknown name raises :class:`UnknownPolicyError` listing the
known ones. Importing this module loads no numba (RobustMPC compiles its
kernels on first use when numba is installed, else runs them in numpy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY
from genet.errors import BadInputError

#: ONNX observation layouts an ABR session can drive.
ONNX_LAYOUTS = ("abr.pensieve-6x8", "abr.genet-6x6")


class UnknownPolicyError(BadInputError):
    """A policy name that is neither registered nor an existing ``.onnx`` file."""


@dataclass(frozen=True)
class RegistryEntry:
    """name: registry key; description: one line; causal: usable by a real player;
    factory: (rebuffer_penalty, smooth_penalty) -> policy (None for non-causal entries)"""

    name: str
    description: str
    causal: bool
    factory: Callable[[float, float], Any] | None


def _bba(mu: float, smooth: float):
    from genet.abr.baselines import BBA
    return BBA()


def _mpc(mu: float, smooth: float):
    from genet.abr.mpc import RobustMPC
    return RobustMPC(rebuffer_penalty=mu, smooth_penalty=smooth)


REGISTRY: dict[str, RegistryEntry] = {}


def register(entry: RegistryEntry) -> None:
    """Add an entry (explicitly; nothing registers by import side effect elsewhere)."""
    if not isinstance(entry, RegistryEntry):
        raise BadInputError(f"register() takes a RegistryEntry, got {type(entry).__name__}")
    if entry.name in REGISTRY:
        raise BadInputError(f"ABR policy {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry


register(RegistryEntry("bba", "buffer-based (reservoir 5 s, cushion 10 s)", True, _bba))
register(RegistryEntry("mpc", "RobustMPC (5-chunk horizon, harmonic-mean throughput / (1 + max error))", True, _mpc))
register(RegistryEntry("optimal", "offline optimum over the whole trace (simulation only)", False, None))


def known_names(causal_only: bool = False) -> list[str]:
    return [n for n, e in REGISTRY.items() if e.causal or not causal_only]


def is_onnx(policy: str) -> bool:
    return str(policy).endswith(".onnx")


def policy_label(policy: Any) -> str:
    """Short label: the name, an ONNX file's stem, or the object's ``name``."""
    if isinstance(policy, (str, Path)):
        return Path(policy).stem if is_onnx(str(policy)) else str(policy)
    return getattr(policy, "name", type(policy).__name__)


def load_onnx_abr(path: str | Path, deterministic: bool = True, seed: int | None = None):
    """An ONNX ABR policy, checked to be one an ABR session can drive."""
    from genet.abr.observations import GENET_6X6, get_layout
    from genet.policy import OnnxPolicy, PolicyMismatchError
    pol = OnnxPolicy(path, deterministic=deterministic, seed=seed)
    if pol.spec.use_case != "abr" or pol.spec.observation_layout not in ONNX_LAYOUTS:
        raise PolicyMismatchError(
            f"{path} is not an ABR policy this simulator/player can drive:\n"
            f"  expected: use_case=abr with layout {' or '.join(ONNX_LAYOUTS)} "
            f"(e.g. {GENET_6X6.policy_spec().describe()})\n  actual:   {pol.spec.describe()}")
    pol.spec.check_compatible(get_layout(pol.spec.observation_layout).policy_spec(pol.spec.output), where=str(path))
    return pol


def make_policy(policy: Any, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE,
                smooth_penalty: float = SMOOTH_PENALTY, deterministic: bool = True, seed: int | None = None,
                causal: bool = True):
    """A policy from a registry name, an ``.onnx`` path, or a policy object (returned as is).

    rebuffer_penalty / smooth_penalty: the QoE weights RobustMPC plans with (the session's, genet/abr/qoe.py)
    deterministic / seed: ONNX action choice (argmax, or Pensieve's sampling rule with this seed)
    causal: refuse entries that need the future (``optimal``) — True for everything but simulation
    """
    if not isinstance(policy, (str, Path)):
        return policy
    name = str(policy)
    if name in REGISTRY:
        entry = REGISTRY[name]
        if entry.factory is None or (causal and not entry.causal):
            raise UnknownPolicyError(
                f"ABR policy {name!r} ({entry.description}) cannot drive a session here; use one of "
                f"{', '.join(known_names(causal_only=True))} or a path to an .onnx policy file")
        return entry.factory(float(rebuffer_penalty), float(smooth_penalty))
    if is_onnx(name) or Path(name).is_file():
        if not Path(name).is_file():
            raise FileNotFoundError(f"ONNX policy file {name} does not exist")
        return load_onnx_abr(name, deterministic=deterministic, seed=seed)
    names = known_names(causal_only=causal)
    raise UnknownPolicyError(f"unknown ABR policy {name!r}: use one of {', '.join(names)} "
                             f"or a path to an .onnx policy file")


__all__ = ["REGISTRY", "RegistryEntry", "UnknownPolicyError", "register", "known_names", "make_policy",
           "policy_label", "load_onnx_abr", "is_onnx", "ONNX_LAYOUTS"]
