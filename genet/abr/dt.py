"""Offline RL of ABR policies: the Decision Transformer (``genet train abr --agent dt --pool FILE[,FILE...]``).

The agent (genet/agents/dt.py) learns from an experience pool (genet/abr/pool.py: ``genet pool abr`` writes
one from simulator evaluations of registry policies, ``genet emulate abr`` run folders or deploy campaigns'
player logs); no environment is stepped. One *update* is ``grad_steps`` (20) AdamW steps, each on
``minibatch`` (64) windows of ``context`` (10) decisions ending at pool rows drawn uniformly; ``--steps``
counts the real (unpadded) decisions trained on, so ``transitions_per_s`` in ``learning_curve.csv`` is
decisions trained on per second. The default ``--steps`` (genet/agents/registry.py ``DEFAULT_STEPS["dt"]``)
is 2,560,000: 200 updates, 4,000 AdamW steps (2.3 M real decisions: early windows are padded); measured on a
7,900-decision pool: 163-173 s of CPU on one core (~14 k decisions/s), 10-16 minutes of wall time on this
2-core machine while three other trainings ran. A quarter of it (640,000) did worse on both validation sets
(seeds 0 and 1, mean QoE fcc-val 22.3 and 17.0, norway-val 11.0 and 10.6, against the default's 24.7 and 22.7,
12.1 and 10.0).

**Target return** (``--target-return``, the return-to-go of each session's first decision at run time, stored
in the exported file): default the 75th percentile of the pool's episode returns. The best episode's return is
the usual choice of Decision Transformer papers, but an ABR episode's return is bounded by its trace: the pool's
best comes from its fastest trace, and asking that of a session on a slow link conditions the model on a
return-to-go it never saw with such observations. Measured on two DTs (seeds 0 and 1;
RobustMPC + UDR-RL3 pool over fcc-train, the default budget), mean QoE on fcc-val / norway-val with the first
return-to-go at the pool's median: 24.74 / 11.88 and 22.30 / 9.71; 75th percentile: 24.71 / 12.11 and
22.75 / 9.99; 90th: 23.66 / 11.80 and 22.34 / 9.47; best episode: 23.10 / 10.73 and 24.85 / 8.92 (the 75th
percentile is best or within 0.03 of it in three of the four, the best episode's return worst on norway-val).
The return-to-go is scaled inside the network by the
pool's largest |episode return| (``rtg_scale``).

The run directory is any ``genet train`` run's (run.json, run-metadata.json, learning_curve.csv/.png,
checkpoints/, model.pt) and ``genet export RUN_DIR -o dt.onnx`` writes the ONNX model with its context window
(genet/abr/dt_policy.py: how the history is fed at run time), checked against torch within 1e-5 on windows of
the pool, which ``genet eval abr --policy dt.onnx`` (``genet emulate abr``, the player, deploy) runs through the
ABR policy registry.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from foundation.errors import BadInputError
from genet.agents.dt import DecisionTransformer, DtAgent, DtConfig, Episodes
from genet.ppo.checkpoint import load_checkpoint, save_checkpoint
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads

#: Checkpoint format of a DT run.
DT_FORMAT = "genet-abr-dt-v1"
#: The default target return: this quantile of the pool's episode returns (module docstring).
TARGET_QUANTILE = 0.75
#: Windows of the pool kept in the checkpoint for the export's torch/onnxruntime check.
CHECK_WINDOWS = 256
#: torch threads when --torch-threads is not given (64 windows of 30 tokens gain nothing from a second thread).
DT_TORCH_THREADS = 1


@dataclass
class DtTrainConfig:
    """What a DT run trains on and how.

    pool: the pool files (comma-separated paths as given)
    target_return: the run-time return-to-go of a first decision (None: the pool's TARGET_QUANTILE quantile)
    dt: the agent's :class:`DtConfig`
    torch_threads: torch intra-op threads (1)
    """

    pool: str
    target_return: float | None = None
    dt: DtConfig = field(default_factory=DtConfig)
    torch_threads: int = DT_TORCH_THREADS

    @property
    def batch_size(self) -> int:
        """Transitions per update at most (windows x context x Adam steps): what ``genet train`` divides
        ``--steps`` by."""
        return self.dt.minibatch * self.dt.context * self.dt.grad_steps


@dataclass
class AbrDtAgent(TrainingProgress):
    """A DT in training: the learner, the pool's training data and what export needs."""

    learner: DtAgent
    data: Episodes | None = None
    target_return: float = 0.0
    rebuffer_penalty: float = 4.3
    smooth_penalty: float = 1.0
    max_bitrate_kbps: float = 4300.0
    check: dict | None = None
    pool_summary: str = ""
    pool_mean_reward: float = float("nan")

    @property
    def net(self) -> DecisionTransformer:
        return self.learner.network


class AbrDtUseCase:
    """The DT trainer behind ``genet train abr --agent dt`` (see the module docstring)."""

    name = "abr"

    def __init__(self, config: DtTrainConfig, on_update: Callable[[Any, dict], None] | None = None,
                 space: Any = None) -> None:
        from traces.config_space import load_space
        self.config = config
        self.on_update = on_update
        self.space = space or load_space("abr")

    # ---------------------------------------------------------------- models
    def _network(self, dt: DtConfig) -> DecisionTransformer:
        from genet.abr.observations import PENSIEVE_6X8
        return DecisionTransformer(PENSIEVE_6X8.shape, PENSIEVE_6X8.n_actions, dt)

    def new_model(self, seed: int) -> AbrDtAgent:
        """A fresh DT on the run's pool (read now: a one-line error naming a bad file)."""
        from genet.abr.pool import describe, read_pools
        pool = read_pools(self.config.pool)
        returns = pool.episode_returns()
        target = float(np.quantile(returns, TARGET_QUANTILE)) if self.config.target_return is None \
            else float(self.config.target_return)
        dt = DtConfig(**{**asdict(self.config.dt), "rtg_scale": float(max(np.max(np.abs(returns)), 1e-6))})
        self.config.dt = dt
        set_torch_threads(self.config.torch_threads)
        torch.manual_seed(seed)
        learner = DtAgent(self._network(dt), dt, seed=seed)
        data = Episodes.from_arrays(pool.observations, pool.actions, pool.rewards, pool.dones)
        rng = np.random.default_rng(seed + 1)
        check = data.windows(rng.integers(0, len(data.actions), CHECK_WINDOWS), dt.context)
        return AbrDtAgent(learner, data, target, pool.rebuffer_penalty, pool.smooth_penalty, pool.max_bitrate_kbps,
                          check, describe(pool), float(pool.rewards.mean()), seed=seed)

    def save_model(self, agent: AbrDtAgent, path: Path) -> None:
        blob = {"format": DT_FORMAT, "use_case": self.name, "agent": "dt", "pool": self.config.pool,
                **agent.learner.state_dict(), **agent.progress_state(), "target_return": agent.target_return,
                "rebuffer_penalty": agent.rebuffer_penalty, "smooth_penalty": agent.smooth_penalty,
                "max_bitrate_kbps": agent.max_bitrate_kbps, "check": agent.check, "pool_summary": agent.pool_summary,
                "pool_mean_reward": agent.pool_mean_reward}
        save_checkpoint(blob, Path(path))

    def load_model(self, path: Path) -> AbrDtAgent:
        """A saved DT (its pool is read again only to continue training: :meth:`train`)."""
        blob = load_checkpoint(Path(path), DT_FORMAT, "ABR Decision Transformer")
        dt = DtConfig(**blob["dt"])
        self.config.dt = dt
        set_torch_threads(self.config.torch_threads)
        learner = DtAgent(self._network(dt), dt, seed=int(blob["seed"]))
        learner.load_state_dict(blob)
        agent = AbrDtAgent(learner, None, float(blob["target_return"]), float(blob["rebuffer_penalty"]),
                           float(blob["smooth_penalty"]), float(blob["max_bitrate_kbps"]), blob["check"],
                           blob.get("pool_summary", ""), float(blob.get("pool_mean_reward", float("nan"))))
        agent.restore_progress(blob)
        return agent

    # -------------------------------------------------------------- training
    def train(self, agent: AbrDtAgent, distribution: Any, n_updates: int, seed: int) -> AbrDtAgent:
        """``n_updates`` updates on the pool (``distribution`` is not used: no environment is stepped)."""
        if agent.data is None:  # resumed: the pool again
            from genet.abr.pool import read_pools
            pool = read_pools(self.config.pool)
            agent.data = Episodes.from_arrays(pool.observations, pool.actions, pool.rewards, pool.dones)
        batch = {"data": agent.data}
        for _ in range(n_updates):
            t0 = time.perf_counter()
            stats = agent.learner.train_on(batch)
            dt_s = time.perf_counter() - t0
            n = int(stats.pop("transitions"))
            record = agent.record_update(np.zeros(n), [], 0.0, dt_s, **stats)
            record["mean_step_reward"] = agent.pool_mean_reward  # the pool's (no environment is stepped)
            if self.on_update is not None:
                self.on_update(agent, record)
        return agent

    def policy_object(self, agent: AbrDtAgent, deterministic: bool = True, seed: int | None = None) -> Any:
        raise BadInputError("a Decision Transformer runs from its exported file (genet export RUN_DIR -o dt.onnx)")


# ------------------------------------------------------------- CLI hooks
def build_use_case(args: Any, real_traces: Sequence[Any] | None = None,
                   on_update: Callable[[Any, dict], None] | None = None, space: Any = None) -> AbrDtUseCase:
    """The DT trainer from ``genet train abr --agent dt`` options: ``--pool`` (required), ``--target-return``,
    ``--lr``, ``--minibatch``, ``--torch-threads`` (others: :class:`DtConfig`'s defaults)."""
    pool = getattr(args, "pool", None)
    if not pool:
        raise BadInputError("--agent dt learns from an experience pool: give --pool FILE[,FILE...] "
                            "(`genet pool abr` writes one)")
    d = DtConfig()
    dt = DtConfig(learning_rate=float(getattr(args, "lr", None) or d.learning_rate),
                  minibatch=int(getattr(args, "minibatch", None) or d.minibatch))
    threads = getattr(args, "torch_threads", None)
    target = getattr(args, "target_return", None)
    return AbrDtUseCase(DtTrainConfig(str(pool), None if target is None else float(target), dt,
                                      DT_TORCH_THREADS if threads is None else int(threads)),
                        on_update=on_update, space=space)


def train_config_dict(use_case: AbrDtUseCase) -> dict:
    return {**asdict(use_case.config), "agent": "dt", "target_quantile": TARGET_QUANTILE}


#: What `genet export` says the export was checked on (genet/train_cli.py).
EXPORT_CHECK = "the pool windows kept in the checkpoint"


def export_policy(use_case: AbrDtUseCase, agent: AbrDtAgent, path: str | Path,
                  metadata: dict[str, Any] | None = None, n_check: int = 1000) -> Path:
    """The DT as an ONNX model with its context window (genet/abr/dt_policy.py reads it), checked against torch
    within 1e-5 on the pool windows kept in the checkpoint."""
    from genet.abr.observations import PENSIEVE_6X8
    extra = {"agent": "dt", "target_return": agent.target_return, "rebuffer_penalty": agent.rebuffer_penalty,
             "smooth_penalty": agent.smooth_penalty, "max_bitrate_kbps": agent.max_bitrate_kbps,
             "rtg_scale": float(agent.net.rtg_scale), "pool": use_case.config.pool, "pool_summary": agent.pool_summary,
             "env_steps": agent.env_steps, **(metadata or {})}
    extra["agent"] = "dt"
    return agent.learner.export_onnx(path, PENSIEVE_6X8.policy_spec(), extra, check_windows=agent.check)


__all__ = ["AbrDtAgent", "AbrDtUseCase", "DtTrainConfig", "DT_FORMAT", "TARGET_QUANTILE", "build_use_case",
           "export_policy", "train_config_dict"]
