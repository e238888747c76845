"""Rule-based ABR policies (genet-simulators.md §2); genet/abr/registry.py names them.

Every rule-based policy reads the ``abr.raw`` observation (genet/abr/observations.py)
and returns ``abr.direct6`` actions (the next chunk's quality index), batched:
``act(observations (n_envs, 9), active=None) -> (n_envs,) int64``.

* :class:`BBA`: reservoir 5 s, cushion 10 s; quality 0 below 5 s, the top
  level from 15 s, else ``int((levels-1) * (B - 5) / 10)`` (all references agree).
* :class:`~genet.abr.mpc.RobustMPC` (genet/abr/mpc.py).
* the offline optimum is not a causal policy: see genet/abr/optimal.py.
"""

from __future__ import annotations

import numpy as np

from genet.abr.observations import RAW

RESERVOIR_S = 5.0
CUSHION_S = 10.0


class BBA:
    """Buffer-based adaptation (Huang et al.), Pensieve/Genet constants.

    reservoir_s: buffer below which the lowest quality is chosen, s (5)
    cushion_s: buffer span over which quality rises linearly to the top, s (10)
    n_levels: ladder size (6)
    """

    name = "bba"

    def __init__(self, reservoir_s: float = RESERVOIR_S, cushion_s: float = CUSHION_S, n_levels: int = 6) -> None:
        self.spec = RAW.policy_spec()
        self.reservoir_s = float(reservoir_s)
        self.cushion_s = float(cushion_s)
        self.n_levels = int(n_levels)

    def bind(self, videos) -> None:
        """Only the ladder's size matters to BBA (:class:`genet.abr.video.SessionVideos`)."""
        self.n_levels = int(videos.n_levels)

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        b = np.asarray(observations, dtype=np.float64)[:, 1]
        top = self.n_levels - 1
        mid = (top * (b - self.reservoir_s) / self.cushion_s)
        mid = np.where(np.isfinite(mid), mid, 0.0).astype(np.int64)
        return np.where(b < self.reservoir_s, 0, np.where(b >= self.reservoir_s + self.cushion_s, top, mid))
