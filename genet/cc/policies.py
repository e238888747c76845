"""Run CC policies in the simulator: ``bbr``, ``cubic``, ``const:RATE_MBPS`` and
ONNX Aurora policies, behind one ``run_policy`` call.

Parsing ``--policy`` values and loading ONNX files is the registry's job
(:mod:`genet.cc.registry`, re-exported here): the file must be a continuous
one-action CC policy whose observation size matches the history
(history_length x features = 30 by default). Actions are deterministic (the
Gaussian mean, as in Genet's tests).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from genet.cc.aurora import AuroraConfig
from genet.cc.env import AuroraEnv
from genet.cc.link import LinkConfig
from genet.cc.registry import (ACTION_SEMANTICS, LAYOUTS, CcPolicy, cc_policy_spec,  # noqa: F401
                               load_aurora_policy, parse_policy)
from genet.cc.senders import BbrSender, CubicSender, RateSender
from genet.cc.simulator import EventLog, Simulation
from foundation.errors import BadInputError
from genet.policy import act_one
from traces import Trace


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
    """Run one policy over one link for the whole trace in the packet-level simulator; returns the event log
    (what :mod:`genet.cc.metrics` turns into a row, a time series or the packets after the first ACK).

    ``loaded``: an already loaded (policy, aurora config) for ONNX policies. An ONNX policy decides through
    :class:`genet.policy.Policy`'s one verb (``act``, on a batch of one), bound to the run's AuroraConfig."""
    if policy.kind == "tcp":
        raise BadInputError(f"--policy {policy.label}: kernel TCP runs only on real packets (genet emulate cc)")
    if policy.kind in ("bbr", "cubic", "const"):
        sender = {"bbr": BbrSender, "cubic": CubicSender}.get(policy.kind)
        sender = sender() if sender else RateSender(policy.rate_mbps)
        return Simulation(link, sender, seed=seed).run()
    net, cfg = loaded if loaded is not None else load_aurora_policy(policy.path, aurora)
    cfg = replace(cfg, delay_ms=link.delay_ms, queue_packets=link.queue_packets, loss_rate=link.loss_rate)
    net.bind(cfg)
    net.reset()
    log, _ = run_aurora(lambda obs: float(act_one(net, obs)[0]), trace, cfg, seed)
    return log
