"""The CC policy registry: a ``--policy`` value gives a policy, the same way in
``genet eval cc`` (simulator), ``genet emulate cc`` and ``genet sender send``.

Forms (:data:`POLICY_FORMS`):

* ``bbr``, ``cubic`` — the rule-based baselines: the simulator's BBR/Cubic
  senders in simulation, the kernel's through iperf3 on real packets;
* ``tcp:NAME`` — any kernel TCP congestion control the kernel allows
  (``tcp:reno``, ``tcp:vegas``; real packets only; ``tcp:bbr`` = ``bbr``);
* ``const:MBPS`` — a constant sending rate in Mbit/s of 1500-byte packets;
* ``PATH.onnx`` — an Aurora policy exported by ``genet export`` (checked against
  :func:`cc_policy_spec` on load; ``genet.delta_scale`` metadata sets the action
  mapping's delta).

An unknown name raises :class:`~genet.errors.BadInputError` listing the known
ones. This module and what it loads for ONNX policies (:mod:`genet.policy`,
onnxruntime, :mod:`genet.cc.aurora`) import no simulator, numba, gymnasium,
torch or matplotlib.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np

from genet.cc.aurora import AuroraConfig
from genet.errors import BadInputError

#: Observation layout names of the CC policies (genet.policy spec).
LAYOUTS = {("sent_latency_inflation", "latency_ratio", "recv_ratio"): "cc.aurora-genet",
           ("sent_latency_inflation", "latency_ratio", "send_ratio"): "cc.aurora-original"}
ACTION_SEMANTICS = "cc.aurora-rate"


@dataclass(frozen=True)
class RegistryEntry:
    """One registered policy name.

    name: what ``--policy`` takes ("bbr")
    kind: "bbr", "cubic", "tcp", "const" or "onnx"
    description: one line for listings
    """

    name: str
    kind: str
    description: str


REGISTRY: dict[str, RegistryEntry] = {}


def register(entry: RegistryEntry) -> RegistryEntry:
    if entry.name in REGISTRY:
        raise BadInputError(f"CC policy {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


register(RegistryEntry("bbr", "bbr", "BBR: the simulator's in simulation, the kernel's (iperf3 -C bbr) on real packets"))
register(RegistryEntry("cubic", "cubic", "Cubic: the simulator's in simulation, the kernel's (iperf3 -C cubic) "
                                          "on real packets"))
register(RegistryEntry("tcp:NAME", "tcp", "any kernel TCP congestion control the kernel allows (real packets only)"))
register(RegistryEntry("const:MBPS", "const", "constant sending rate in Mbit/s (e.g. const:5)"))
register(RegistryEntry("PATH.onnx", "onnx", "an Aurora policy exported by `genet export` (models/cc/*.onnx)"))

POLICY_FORMS = ", ".join(REGISTRY)


def known_policies() -> str:
    """One line per registered form."""
    return "\n".join(f"{e.name:<12} {e.description}" for e in REGISTRY.values())


@dataclass(frozen=True)
class CcPolicy:
    """A parsed ``--policy`` value.

    label: name in results ("bbr", "cubic", "tcp:reno", "const:5", the ONNX file stem)
    kind: "bbr", "cubic", "tcp", "const" or "onnx"
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


def parse_policy(text: str, real_packets: bool = False) -> CcPolicy:
    """``--policy`` value -> :class:`CcPolicy` (``real_packets``: ``tcp:NAME`` is allowed)."""
    t = text.strip()
    if t in ("bbr", "cubic", "tcp:bbr", "tcp:cubic"):
        name = t.split(":")[-1]
        return CcPolicy(name, name, tcp_name=name)
    if t.startswith("tcp:"):
        name = t.split(":", 1)[1]
        if not name or not name.replace("_", "").isalnum():
            raise BadInputError(f"--policy {text!r}: tcp:NAME needs a kernel algorithm name, e.g. tcp:reno")
        if not real_packets:
            raise BadInputError(f"--policy {text!r}: kernel TCP algorithms other than bbr and cubic run only on "
                                "real packets (genet emulate cc); the simulator has bbr and cubic")
        return CcPolicy(t, "tcp", tcp_name=name)
    if t.startswith("const:"):
        try:
            rate = float(t.split(":", 1)[1])
        except ValueError:
            raise BadInputError(f"--policy {text!r}: the constant rate must be a number of Mbps, e.g. const:5") from None
        if not (rate > 0 and math.isfinite(rate)):
            raise BadInputError(f"--policy {text!r}: the constant rate must be > 0 Mbps")
        return CcPolicy(f"const:{rate:g}", "const", rate_mbps=rate)
    if t.endswith(".onnx"):
        if not os.path.isfile(t):
            raise FileNotFoundError(f"--policy {text!r}: ONNX policy file not found")
        return CcPolicy(os.path.splitext(os.path.basename(t))[0], "onnx", path=t)
    raise BadInputError(f"--policy {text!r}: unknown CC policy; known: {POLICY_FORMS}")


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

    Returns (policy, aurora config with the file's delta_scale if it has one)."""
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
    return policy, aurora


class RatePolicy:
    """What a rate-based sender (ours, real packets) runs: an Aurora network or a constant rate.

    label: name in results; config: the :class:`AuroraConfig` (ONNX: with the file's delta)
    ``decide(observation) -> action`` (float) for Aurora, None for a constant rate;
    ``fixed_rate_pps``: the constant rate in 1500-byte packets/s (None for Aurora).
    """

    def __init__(self, label: str, config: AuroraConfig, network=None, fixed_rate_pps: float | None = None):
        self.label = label
        self.config = config
        self.network = network
        self.fixed_rate_pps = fixed_rate_pps
        self._batch = np.zeros((1, config.observation_size), np.float32)

    def decide(self, observation: np.ndarray) -> float | None:
        if self.network is None:
            return None
        self._batch[0] = observation
        return float(self.network.forward(self._batch)[0, 0])


def load_rate_policy(text: str, aurora: AuroraConfig | None = None) -> RatePolicy:
    """``const:MBPS`` or ``PATH.onnx`` -> :class:`RatePolicy` (the spec check runs here, before any packet)."""
    from genet.packets import PACKET_BITS
    p = parse_policy(text, real_packets=True)
    aurora = aurora or AuroraConfig(reward_normaliser="measured")
    if p.kind == "const":
        return RatePolicy(p.label, aurora, fixed_rate_pps=p.rate_mbps * 1e6 / PACKET_BITS)
    if p.kind == "onnx":
        net, cfg = load_aurora_policy(p.path, aurora)
        return RatePolicy(p.label, cfg, network=net)
    raise BadInputError(f"--policy {text!r}: the UDP sender runs Aurora ONNX policies and const:MBPS; kernel TCP "
                        f"({p.tcp_name}) runs through iperf3 (genet emulate cc)")
