"""What every agent in training counts, for every use case: seed, PPO updates, environment steps,
training wall time and the learning-curve history, and how they go into and out of a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Checkpoint keys of :class:`TrainingProgress`.
PROGRESS_KEYS = ("seed", "updates", "env_steps", "wall_s", "history")


@dataclass(kw_only=True)
class TrainingProgress:
    """Base of the use cases' agents (keyword-only fields, so an agent's own fields stay positional).

    seed: the run's master seed; updates: PPO updates done; env_steps: transitions collected;
    wall_s: seconds spent in rollouts and updates; history: one record per update (the learning curve)
    """

    seed: int = 0
    updates: int = 0
    env_steps: int = 0
    wall_s: float = 0.0
    history: list[dict] = field(default_factory=list)

    def record_update(self, rewards: np.ndarray, episode_returns: list[float], rollout_s: float,
                      update_s: float, **stats: float) -> dict[str, Any]:
        """Count one PPO update on the batch ``rewards`` (one entry per transition) and append its
        learning-curve record (the columns of ``learning_curve.csv`` plus ``stats``); return the record."""
        n = int(np.size(rewards))
        self.updates += 1
        self.env_steps += n
        self.wall_s += rollout_s + update_s
        record = {"update": self.updates, "env_steps": self.env_steps, "wall_s": self.wall_s,
                  "mean_step_reward": float(np.mean(rewards)), "episodes": len(episode_returns),
                  "episode_reward_mean": float(np.mean(episode_returns)) if episode_returns else float("nan"),
                  "rollout_s": rollout_s, "update_s": update_s,
                  "transitions_per_s": n / max(rollout_s + update_s, 1e-9), **stats}
        self.history.append(record)
        return record

    def progress_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in PROGRESS_KEYS}

    def restore_progress(self, blob: dict[str, Any]) -> None:
        self.seed, self.updates, self.env_steps, self.wall_s = (blob[k] for k in PROGRESS_KEYS[:4])
        self.history = list(blob["history"])
