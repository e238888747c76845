"""The ABR policy registry: a name or a path to an ``.onnx`` file gives a policy.

=========  ===================================================================  =========
name       policy                                                               causal
=========  ===================================================================  =========
bba        buffer-based adaptation (genet/abr/baselines.py)                      yes
mpc        RobustMPC (genet/abr/mpc.py), planning with the session's QoE weights  yes
optimal    the offline optimum (genet/abr/optimal.py): knows the whole trace;    no
           only ``genet eval abr`` (simulation) can run it
PATH.onnx  an exported ABR policy (layout abr.pensieve-6x8 or abr.genet-6x6;     yes
           a Decision Transformer's keeps a per-session context window:
           genet/abr/dt_policy.py)
=========  ===================================================================  =========

:data:`POLICIES` is a :class:`foundation.registry.Registry`, filled by :func:`register_builtins` (the
one place ABR policies are registered; importing a policy module registers nothing).
:func:`make_policy` is what the simulator's evaluation, the player and the ABR server all call; an
unknown name raises :class:`UnknownPolicyError` listing the known ones. Every factory is called with
the keyword options ``rebuffer_penalty``, ``smooth_penalty`` (the QoE weights RobustMPC plans with),
``deterministic``, ``seed`` (ONNX action choice) and ``offline`` (an :class:`OfflineSessions` in
simulation, None elsewhere), and takes those it needs. Importing this module loads no numba
(RobustMPC compiles its kernels on first use when numba is installed, else runs them in numpy; the
offline optimum's module is imported when it is first made).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY
from foundation.registry import Registry, RegistryEntry, UnknownNameError

#: ONNX observation layouts an ABR session can drive.
ONNX_LAYOUTS = ("abr.pensieve-6x8", "abr.genet-6x6")


class UnknownPolicyError(UnknownNameError):
    """A policy name that is neither registered nor an existing ``.onnx`` file, or one that cannot drive a
    session here (``optimal`` outside simulation)."""


@dataclass(frozen=True)
class OfflineSessions:
    """What a non-causal policy (``optimal``) plans over: the sessions of one simulated evaluation.

    traces: one per session; video: what they play; conv: the simulator conventions
    (genet.abr.params.SimConventions); params: per-session EnvParams (one, a list, or None)
    progress: called with the number of sessions planned so far (None: no progress)
    """

    traces: Sequence[Any]
    video: Any
    conv: Any
    params: Any = None
    progress: Callable[[int], None] | None = None


def _bba(**_: Any):
    from genet.abr.baselines import BBA
    return BBA()


def _mpc(*, rebuffer_penalty: float, smooth_penalty: float, **_: Any):
    from genet.abr.mpc import RobustMPC
    return RobustMPC(rebuffer_penalty=rebuffer_penalty, smooth_penalty=smooth_penalty)


def _onnx(path: str, *, deterministic: bool = True, seed: int | None = None, **_: Any):
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX policy file {path} does not exist")
    return load_onnx_abr(path, deterministic=deterministic, seed=seed)


def register_builtins(registry: Registry) -> Registry:
    """Register the shipped ABR policies in ``registry`` (the one place they are registered); returns it."""
    registry.register("bba", _bba, description="buffer-based (reservoir 5 s, cushion 10 s)", causal=True)
    registry.register("mpc", _mpc, description="RobustMPC (5-chunk horizon, harmonic-mean throughput / "
                                               "(1 + max error))", causal=True)
    registry.register("optimal", "genet.abr.optimal:plan_policy",
                      description="offline optimum over the whole trace (simulation only)", causal=False)
    registry.register("onnx", _onnx, suffix=".onnx",
                      description=f"an exported ABR policy (layout {' or '.join(ONNX_LAYOUTS)})", causal=True)
    return registry


#: The ABR policies: bba, mpc, optimal, PATH.onnx.
POLICIES: Registry = register_builtins(Registry("ABR policy"))


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
    from genet.abr.dt_policy import load_context_policy
    from genet.policy import OnnxPolicy, PolicyMismatchError
    # a Decision Transformer file (genet/abr/dt_policy.py) keeps each session's context window
    pol = load_context_policy(path, deterministic=deterministic, seed=seed) or OnnxPolicy(
        path, deterministic=deterministic, seed=seed)
    if pol.spec.use_case != "abr" or pol.spec.observation_layout not in ONNX_LAYOUTS:
        raise PolicyMismatchError(
            f"{path} is not an ABR policy this simulator/player can drive:\n"
            f"  expected: use_case=abr with layout {' or '.join(ONNX_LAYOUTS)} "
            f"(e.g. {GENET_6X6.policy_spec().describe()})\n  actual:   {pol.spec.describe()}")
    pol.spec.check_compatible(get_layout(pol.spec.observation_layout).policy_spec(pol.spec.output), where=str(path))
    return pol


def _entry(name: str) -> tuple[RegistryEntry, str | None]:
    """(entry, argument) of a name or path; an existing file without the .onnx suffix is an ONNX policy too."""
    try:
        return POLICIES.resolve(name)
    except UnknownNameError as exc:
        if Path(name).is_file():
            return POLICIES.get("onnx"), name
        raise UnknownPolicyError(str(exc)) from None


def is_causal(policy: Any) -> bool:
    """Whether ``policy`` decides from the past alone (everything but ``optimal``; objects: True)."""
    if not isinstance(policy, (str, Path)):
        return True
    return bool(_entry(str(policy))[0].attributes.get("causal", True))


def make_policy(policy: Any, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE,
                smooth_penalty: float = SMOOTH_PENALTY, deterministic: bool = True, seed: int | None = None,
                offline: OfflineSessions | None = None):
    """A policy (:class:`genet.policy.Policy`) from a registry name, an ``.onnx`` path, or a policy object
    (returned as is).

    rebuffer_penalty / smooth_penalty: the QoE weights RobustMPC plans with (the session's, genet/abr/qoe.py)
    deterministic / seed: ONNX action choice (argmax, or Pensieve's sampling rule with this seed)
    offline: the simulated sessions a non-causal entry (``optimal``) plans over; None (a real player, the
        ABR server) refuses such entries
    """
    if not isinstance(policy, (str, Path)):
        from genet.policy import check_policy
        return check_policy(policy)
    name = str(policy)
    entry, arg = _entry(name)
    if offline is None and not entry.attributes.get("causal", True):
        causal = [e.form for e in POLICIES.entries() if e.attributes.get("causal", True)]
        raise UnknownPolicyError(
            f"ABR policy {name!r} ({entry.description}) cannot drive a session here; use one of "
            f"{', '.join(causal)}")
    return entry.create(arg, rebuffer_penalty=float(rebuffer_penalty), smooth_penalty=float(smooth_penalty),
                        deterministic=deterministic, seed=seed, offline=offline)


__all__ = ["POLICIES", "OfflineSessions", "UnknownPolicyError", "register_builtins", "make_policy", "is_causal",
           "policy_label", "load_onnx_abr", "is_onnx", "ONNX_LAYOUTS"]
