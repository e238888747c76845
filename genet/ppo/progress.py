"""What every agent in training counts, for every use case: seed, PPO updates, environment steps,
training wall time and the learning-curve history, and how they go into and out of a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

    def count_update(self, transitions: int, seconds: float) -> None:
        self.updates += 1
        self.env_steps += int(transitions)
        self.wall_s += float(seconds)

    def progress_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in PROGRESS_KEYS}

    def restore_progress(self, blob: dict[str, Any]) -> None:
        self.seed, self.updates, self.env_steps, self.wall_s = (blob[k] for k in PROGRESS_KEYS[:4])
        self.history = list(blob["history"])
