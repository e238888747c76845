"""The interface a use case (ABR, CC, later LB) gives the curriculum.

The paper's two calls (§4.3, Algorithm 1):

* ``train(model, distribution, iterations, seed) -> model`` — continue
  training ``model`` on environments drawn from ``distribution``;
* ``test(policy, configs, seed) -> rewards`` — one reward per config (each
  config is one environment; environment i is generated from (config, seed, i)),
  where ``policy`` is the model or the name of a rule-based baseline
  (``"mpc"``, ``"bba"``, ``"bbr"``, ``"cubic"``; ``"optimal"`` where an
  optimum is computable).

plus model persistence so that a curriculum run can stop and resume. The
curriculum code never looks inside a model or an environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from genet.curriculum.distribution import ConfigDistribution
from traces.config_space import ConfigSpace


@runtime_checkable
class UseCase(Protocol):
    name: str
    space: ConfigSpace
    baselines: tuple[str, ...]

    def new_model(self, seed: int) -> Any: ...

    def train(self, model: Any, distribution: ConfigDistribution, iterations: int, seed: int) -> Any: ...

    def test(self, policy: Any, configs: list[dict], seed: int) -> np.ndarray: ...

    def save_model(self, model: Any, path: Path) -> None: ...

    def load_model(self, path: Path) -> Any: ...
