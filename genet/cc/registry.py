"""The CC policy registry: a ``--policy`` value gives a policy, the same way in
``genet eval cc`` (simulator), ``genet emulate cc`` and ``genet sender send``.

Forms (:data:`POLICIES`, a :class:`foundation.registry.Registry` filled by :func:`register_builtins`, the
one place CC policies are registered):

* ``bbr``, ``cubic`` — the rule-based baselines: the simulator's BBR/Cubic
  senders in simulation, the kernel's through iperf3 on real packets;
* ``tcp:NAME`` — any kernel TCP congestion control the kernel allows
  (``tcp:reno``, ``tcp:vegas``; real packets only; ``tcp:bbr`` = ``bbr``);
* ``const:MBPS`` — a constant sending rate in Mbit/s of 1500-byte packets;
* ``PATH.onnx`` — an Aurora policy exported by ``genet export`` (checked against
  :func:`cc_policy_spec` on load; ``genet.delta_scale`` metadata sets the action
  mapping's delta, ``genet.startup`` / ``genet.initial_window_packets`` the sender's start-up — a
  model without them was trained with Aurora's start-up and runs with it).

Each factory gets the form's argument (if any) and the keyword option ``real_packets`` and returns a
:class:`CcPolicy`, the parsed description every CC runner dispatches on. Aurora networks are
:class:`genet.policy.Policy` objects (:func:`load_aurora_policy`) and decide through its one verb,
``act``, in the simulator and in the UDP sender alike (:class:`RatePolicy`); BBR, Cubic and constant
rates are congestion controllers, not observation -> action policies (genet/policy.py says why).

An unknown name raises :class:`~foundation.registry.UnknownNameError` (a
:class:`~foundation.errors.BadInputError`) listing the known forms. This module and what it loads for
ONNX policies (:mod:`genet.policy`, onnxruntime, :mod:`genet.cc.aurora`) import no simulator, numba,
gymnasium, torch or matplotlib.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from genet.cc.aurora import AuroraConfig
from foundation.errors import BadInputError
from foundation.registry import Registry

#: Observation layout names of the CC policies (genet.policy spec).
LAYOUTS = {("sent_latency_inflation", "latency_ratio", "recv_ratio"): "cc.aurora-genet",
           ("sent_latency_inflation", "latency_ratio", "send_ratio"): "cc.aurora-original"}
ACTION_SEMANTICS = "cc.aurora-rate"


@dataclass(frozen=True)
class CcPolicy:
    """A parsed ``--policy`` value.

    label: name in results ("bbr", "cubic", "tcp:reno", "const:5", the ONNX file stem)
    kind: "bbr", "cubic", "tcp", "const" or "onnx" (the registry entry's name)
    rate_mbps: the constant rate (kind "const")
    path: the ONNX file (kind "onnx")
    tcp_name: the kernel algorithm (kinds "bbr", "cubic", "tcp")
    """

    label: str
    kind: str
    rate_mbps: float = 0.0
    path: str = ""
    tcp_name: str = ""

    @property
    def is_kernel_tcp(self) -> bool:
        return self.kind in ("bbr", "cubic", "tcp")


def _bbr(**_: Any) -> CcPolicy:
    return CcPolicy("bbr", "bbr", tcp_name="bbr")


def _cubic(**_: Any) -> CcPolicy:
    return CcPolicy("cubic", "cubic", tcp_name="cubic")


def _tcp(name: str, *, real_packets: bool = False, **_: Any) -> CcPolicy:
    if name in ("bbr", "cubic"):
        return CcPolicy(name, name, tcp_name=name)
    if not name.replace("_", "").isalnum():
        raise BadInputError(f"--policy 'tcp:{name}': tcp:NAME needs a kernel algorithm name, e.g. tcp:reno")
    if not real_packets:
        raise BadInputError(f"--policy 'tcp:{name}': kernel TCP algorithms other than bbr and cubic run only on "
                            "real packets (genet emulate cc); the simulator has bbr and cubic")
    return CcPolicy(f"tcp:{name}", "tcp", tcp_name=name)


def _const(rate_text: str, **_: Any) -> CcPolicy:
    try:
        rate = float(rate_text)
    except ValueError:
        raise BadInputError(f"--policy 'const:{rate_text}': the constant rate must be a number of Mbps, "
                            "e.g. const:5") from None
    if not (rate > 0 and math.isfinite(rate)):
        raise BadInputError(f"--policy 'const:{rate_text}': the constant rate must be > 0 Mbps")
    return CcPolicy(f"const:{rate:g}", "const", rate_mbps=rate)


def _onnx(path: str, **_: Any) -> CcPolicy:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--policy {path!r}: ONNX policy file not found")
    return CcPolicy(os.path.splitext(os.path.basename(path))[0], "onnx", path=path)


def register_builtins(registry: Registry) -> Registry:
    """Register the CC policy forms in ``registry`` (the one place they are registered); returns it."""
    registry.register("bbr", _bbr, description="BBR: the simulator's in simulation, the kernel's "
                                               "(iperf3 -C bbr) on real packets")
    registry.register("cubic", _cubic, description="Cubic: the simulator's in simulation, the kernel's "
                                                   "(iperf3 -C cubic) on real packets")
    registry.register("tcp", _tcp, argument="NAME",
                      description="any kernel TCP congestion control the kernel allows (real packets only)")
    registry.register("const", _const, argument="MBPS", description="constant sending rate in Mbit/s (e.g. const:5)")
    registry.register("onnx", _onnx, suffix=".onnx",
                      description="an Aurora policy exported by `genet export` (models/cc/*.onnx)")
    return registry


#: The CC policy forms: bbr, cubic, tcp:NAME, const:MBPS, PATH.onnx.
POLICIES: Registry = register_builtins(Registry("CC policy"))


def parse_policy(text: str, real_packets: bool = False) -> CcPolicy:
    """``--policy`` value -> :class:`CcPolicy` (``real_packets``: ``tcp:NAME`` is allowed)."""
    return POLICIES.make(text.strip(), where="--policy", real_packets=real_packets)


def parse_policies(values, real_packets: bool = False) -> list[CcPolicy]:
    """Repeated and/or comma-separated ``--policy`` values; labels must be unique."""
    out = [parse_policy(x, real_packets) for spec in values for x in str(spec).split(",") if x.strip()]
    labels = [p.label for p in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise BadInputError(f"--policy: {', '.join(dup)} given twice (two ONNX files with one name? rename one)")
    return out


def cc_policy_spec(aurora: AuroraConfig | None = None):
    """The :class:`genet.policy.PolicySpec` an Aurora policy for this config must have."""
    from genet.policy import PolicySpec
    aurora = aurora or AuroraConfig()
    layout = LAYOUTS.get(tuple(aurora.features), "cc.aurora-" + "+".join(aurora.features))
    return PolicySpec(use_case="cc", observation_layout=layout, observation_shape=(aurora.observation_size,),
                      action_semantics=ACTION_SEMANTICS, n_actions=1, action_type="continuous", output="mean")


def load_aurora_policy(path: str, aurora: AuroraConfig | None = None):
    """Load an ONNX Aurora policy via genet.policy, with CC-specific checks.

    Returns (policy, aurora config with the file's delta_scale if it has one and the start-up it was trained
    with: its ``startup`` / ``initial_window_packets`` metadata, "aurora" when it has none — every model
    exported before start-ups existed). A bad value is a :class:`~foundation.errors.BadInputError` naming
    the file."""
    from genet.policy import OnnxPolicy, PolicyMismatchError
    aurora = aurora or AuroraConfig()
    expected = cc_policy_spec(aurora)
    policy = OnnxPolicy(path)
    spec = policy.spec
    if spec.use_case != "cc":
        raise PolicyMismatchError(f"{path}: a {spec.use_case!r} policy, not a CC (Aurora) policy")
    size = int(np.prod(spec.observation_shape))
    if size != expected.observation_shape[0]:
        raise PolicyMismatchError(
            f"{path}: the policy takes {size} observation values but the Aurora environment gives "
            f"{expected.observation_shape[0]} ({aurora.history_length} intervals x {len(aurora.features)} "
            f"features: {', '.join(aurora.features)}); pass the matching history length")
    spec.check_compatible(expected, where=path)
    delta = policy.extra_metadata("delta_scale")
    if delta is not None:
        aurora = replace(aurora, delta_scale=float(delta))
    startup = policy.extra_metadata("startup", "aurora")
    window = policy.extra_metadata("initial_window_packets", aurora.initial_window_packets)
    try:
        aurora = replace(aurora, startup=startup, initial_window_packets=window)
    except BadInputError as e:
        raise BadInputError(f"{path}: metadata genet.startup / genet.initial_window_packets: {e}") from None
    # the interval rule the model was trained with; a model without it (every one exported before it existed):
    # the caller's (genet eval cc --interval-serialisation; default Genet's "link")
    serialisation = policy.extra_metadata("interval_serialisation", aurora.interval_serialisation)
    try:
        aurora = replace(aurora, interval_serialisation=serialisation)
    except BadInputError as e:
        raise BadInputError(f"{path}: metadata genet.interval_serialisation: {e}") from None
    return policy, aurora


class RatePolicy:
    """What a rate-based sender (ours, real packets) runs: an Aurora policy or a constant rate.

    label: name in results; config: the :class:`AuroraConfig` (ONNX: with the file's delta)
    network: the Aurora policy (a :class:`genet.policy.Policy`, bound to ``config``), None for a constant
        rate; the sender decides with ``genet.policy.act_one(network, observation)``, the one verb
    fixed_rate_pps: the constant rate in 1500-byte packets/s (None for Aurora)
    """

    def __init__(self, label: str, config: AuroraConfig, network=None, fixed_rate_pps: float | None = None):
        self.label = label
        self.config = config
        self.network = network
        self.fixed_rate_pps = fixed_rate_pps
        if network is not None:
            network.bind(config)
            network.reset()


def load_rate_policy(text: str, aurora: AuroraConfig | None = None) -> RatePolicy:
    """``const:MBPS`` or ``PATH.onnx`` -> :class:`RatePolicy` (the spec check runs here, before any packet)."""
    from foundation.packets import PACKET_BITS
    p = parse_policy(text, real_packets=True)
    aurora = aurora or AuroraConfig(reward_normaliser="measured")
    if p.kind == "const":
        return RatePolicy(p.label, aurora, fixed_rate_pps=p.rate_mbps * 1e6 / PACKET_BITS)
    if p.kind == "onnx":
        net, cfg = load_aurora_policy(p.path, aurora)
        return RatePolicy(p.label, cfg, network=net)
    raise BadInputError(f"--policy {text!r}: the UDP sender runs Aurora ONNX policies and const:MBPS; kernel TCP "
                        f"({p.tcp_name}) runs through iperf3 (genet emulate cc)")
