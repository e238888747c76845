"""CC policies for evaluation: ``bbr``, ``cubic``, ``const:RATE_MBPS`` and
ONNX Aurora policies (``PATH.onnx``), behind one ``run`` call.

ONNX files are loaded through the shared interface :class:`genet.policy.OnnxPolicy`;
the CC-specific check here is that the file is a continuous one-action CC
policy whose observation size matches the environment's history
(history_length x features = 30 by default), with a clear error otherwise.
An ONNX file may carry ``genet.delta_scale`` metadata, which then sets the
action mapping's delta. Actions are deterministic (the Gaussian mean, as in
Genet's tests).
"""

from __future__ import annotations

from genet.errors import BadInputError

import os
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from genet.cc.env import AuroraConfig, AuroraEnv
from genet.cc.link import LinkConfig
from genet.cc.senders import BbrSender, CubicSender, RateSender
from genet.cc.simulator import EventLog, Simulation
from traces import Trace

#: Observation layout names of the CC policies (genet.policy spec).
LAYOUTS = {("sent_latency_inflation", "latency_ratio", "recv_ratio"): "cc.aurora-genet",
           ("sent_latency_inflation", "latency_ratio", "send_ratio"): "cc.aurora-original"}
ACTION_SEMANTICS = "cc.aurora-rate"

POLICY_FORMS = "bbr, cubic, const:RATE_MBPS (e.g. const:5), or a PATH.onnx Aurora policy"


def cc_policy_spec(aurora: AuroraConfig | None = None):
    """The :class:`genet.policy.PolicySpec` an Aurora policy for this config must have."""
    from genet.policy import PolicySpec
    aurora = aurora or AuroraConfig()
    layout = LAYOUTS.get(tuple(aurora.features), "cc.aurora-" + "+".join(aurora.features))
    return PolicySpec(use_case="cc", observation_layout=layout, observation_shape=(aurora.observation_size,),
                      action_semantics=ACTION_SEMANTICS, n_actions=1, action_type="continuous", output="mean")


@dataclass(frozen=True)
class CcPolicy:
    """A parsed ``--policy`` value.

    label: name in results ("bbr", "cubic", "const:5", the ONNX file stem)
    kind: "bbr", "cubic", "const" or "onnx"
    rate_mbps: the constant rate (kind "const")
    path: the ONNX file (kind "onnx")
    """

    label: str
    kind: str
    rate_mbps: float = 0.0
    path: str = ""


def parse_policy(text: str) -> CcPolicy:
    t = text.strip()
    if t in ("bbr", "cubic"):
        return CcPolicy(t, t)
    if t.startswith("const:"):
        try:
            rate = float(t.split(":", 1)[1])
        except ValueError:
            raise BadInputError(f"--policy {text!r}: the constant rate must be a number of Mbps, e.g. const:5") from None
        if not (rate > 0 and np.isfinite(rate)):
            raise BadInputError(f"--policy {text!r}: the constant rate must be > 0 Mbps")
        return CcPolicy(f"const:{rate:g}", "const", rate_mbps=rate)
    if t.endswith(".onnx"):
        if not os.path.isfile(t):
            raise FileNotFoundError(f"--policy {text!r}: ONNX policy file not found")
        return CcPolicy(os.path.splitext(os.path.basename(t))[0], "onnx", path=t)
    raise BadInputError(f"--policy {text!r}: unknown policy; use {POLICY_FORMS}")


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


def run_aurora(act: Callable[[np.ndarray], float], trace: Trace, aurora: AuroraConfig | None = None,
               seed: int = 0) -> tuple[EventLog, AuroraEnv]:
    """One Aurora episode on ``trace`` with ``act(observation) -> action``."""
    env = AuroraEnv(traces=[trace], aurora=aurora or AuroraConfig())
    obs, _ = env.reset(seed=seed)
    while True:
        obs, _, terminated, truncated, _ = env.step(np.array([act(obs)], np.float32))
        if terminated or truncated:
            break
    return env.episode_log(), env


def run_policy(policy: CcPolicy, trace: Trace, link: LinkConfig, seed: int = 0,
               aurora: AuroraConfig | None = None, loaded=None) -> EventLog:
    """Run one policy over one link for the whole trace; returns the event log.

    ``loaded``: an already loaded (policy, aurora config) for ONNX policies."""
    if policy.kind in ("bbr", "cubic", "const"):
        sender = {"bbr": BbrSender, "cubic": CubicSender}.get(policy.kind)
        sender = sender() if sender else RateSender(policy.rate_mbps)
        return Simulation(link, sender, seed=seed).run()
    net, cfg = loaded if loaded is not None else load_aurora_policy(policy.path, aurora)
    cfg = replace(cfg, delay_ms=link.delay_ms, queue_packets=link.queue_packets, loss_rate=link.loss_rate)
    log, _ = run_aurora(lambda obs: float(net.act(obs[None, :])[0, 0]), trace, cfg, seed)
    return log
