"""A Decision Transformer ONNX file as an ABR policy: the per-session context window at run time.

The exported model (genet/agents/dt.py, ``genet export`` of a ``genet train abr --agent dt`` run) is not a
function of one observation: it reads the last ``K`` steps of a session, each a token triple (return-to-go,
``abr.pensieve-6x8`` observation, action), and returns the newest step's action probabilities. Its file says so
in its metadata (``genet.policy_kind = decision-transformer``, ``genet.context_window = K``,
``genet.target_return``, ``genet.rebuffer_penalty``, ``genet.smooth_penalty``, ``genet.max_bitrate_kbps``), and
:func:`genet.abr.registry.load_onnx_abr` turns such a file into a :class:`DecisionTransformerPolicy`, so it runs
through the one policy registry in ``genet eval abr``, ``genet emulate abr``, the player and deploy like any
ONNX policy; the history is the policy's own state (the :class:`genet.policy.Policy` protocol's ``reset`` and
``act(observations, active)``), fed to the model as four inputs:

* ``rtg`` (n, K): a session starts at the target return (``genet.target_return``, chosen at training); after
  each chunk the return-to-go falls by that chunk's QoE (:func:`genet.abr.qoe.chunk_qoe` with the pool's
  weights), which the policy reads off two consecutive observations (:func:`chunk_reward`): the chunk's bitrate
  (row 0 x the ladder's top), the previous one's, and the stall ``max(download time - previous buffer, 0)``
  (rows 3 and 1: the simulator's rule, genet/abr/core.py). In the simulator this is the chunk's reward up to
  float32 rounding; on a real player (whose stall counts the time between chunks) it is the same estimate;
* ``observation`` (n, K, 6, 8): the observations the session's decisions saw, newest last;
* ``actions`` (n, K): the quality each of those decisions chose (the newest: 0, hidden by the causal mask);
* ``mask`` (n, K): 1 for a real step, 0 for the padding before a session's K-th decision.

``reset(mask)`` empties the windows of the sessions that start again (a new video); a session's first
decision sees only itself. A session that ``act`` is called for with ``active`` False keeps its window. The
policy is per session state: the ABR server builds one per session (player/abr.py's ``shared_policy`` shares
stateless :class:`genet.policy.OnnxPolicy` objects only). Runtime code: numpy and onnxruntime only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from genet.abr.qoe import chunk_qoe
from genet.policy import META_PREFIX, PolicyBase, PolicyMismatchError, PolicySpec, choose_actions, open_onnx_session

#: ``genet.policy_kind`` of a Decision Transformer file.
DT_KIND = "decision-transformer"
#: Normalisers of the observation rows the reward is read from (genet/abr/observations.py).
_BUFFER_NORM_S = 10.0
_DELAY_NORM_S = 10.0


def chunk_reward(previous: np.ndarray | None, observation: np.ndarray, max_bitrate_kbps: float,
                 rebuffer_penalty: float, smooth_penalty: float) -> np.ndarray:
    """The QoE of the chunk each ``observation`` (n, 6, 8) shows, given the session's ``previous`` observation
    (n, 6, 8) (see the module docstring)."""
    obs = np.asarray(observation, np.float64)
    prev = np.asarray(previous, np.float64)
    bitrate = obs[:, 0, -1] * max_bitrate_kbps
    last = prev[:, 0, -1] * max_bitrate_kbps
    rebuffer_s = np.maximum(obs[:, 3, -1] * _DELAY_NORM_S - prev[:, 1, -1] * _BUFFER_NORM_S, 0.0)
    return chunk_qoe(bitrate, last, rebuffer_s, rebuffer_penalty, smooth_penalty)


def read_kind(session: Any) -> dict[str, str]:
    """An onnxruntime session's metadata."""
    return dict(session.get_modelmeta().custom_metadata_map)


class DecisionTransformerPolicy(PolicyBase):
    """A Decision Transformer ONNX file as a batched, stateful ABR policy (see the module docstring).

    path: the ``.onnx`` file (its metadata says policy_kind decision-transformer)
    deterministic / seed: argmax, or Pensieve's sampling rule with this seed
    target_return: the return-to-go of a session's first decision (None: the file's ``genet.target_return``)
    session: an onnxruntime InferenceSession of ``path`` already open (None: open it)
    """

    def __init__(self, path: str | os.PathLike, deterministic: bool = True, seed: int | None = None,
                 target_return: float | None = None, session: Any = None) -> None:
        path = Path(path)
        if session is None:
            session = open_onnx_session(path)
        meta = read_kind(session)
        self.spec = PolicySpec.from_metadata(meta, where=str(path))
        if meta.get(META_PREFIX + "policy_kind") != DT_KIND:
            raise PolicyMismatchError(f"{path}: not a Decision Transformer policy (genet.policy_kind is "
                                      f"{meta.get(META_PREFIX + 'policy_kind')!r})")
        try:
            self.context = int(json.loads(meta[META_PREFIX + "context_window"]))
            self.target_return = float(json.loads(meta[META_PREFIX + "target_return"])) if target_return is None \
                else float(target_return)
            self.rebuffer_penalty = float(json.loads(meta[META_PREFIX + "rebuffer_penalty"]))
            self.smooth_penalty = float(json.loads(meta[META_PREFIX + "smooth_penalty"]))
            self.max_bitrate_kbps = float(json.loads(meta[META_PREFIX + "max_bitrate_kbps"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise PolicyMismatchError(f"{path}: Decision Transformer metadata incomplete or malformed ({exc})") \
                from None
        names = [i.name for i in session.get_inputs()]
        if names != ["rtg", "observation", "actions", "mask"]:
            raise PolicyMismatchError(f"{path}: a Decision Transformer's inputs are rtg, observation, actions, mask; "
                                      f"the graph has {', '.join(names)}")
        self.name = meta.get(META_PREFIX + "name", path.stem)
        self.path, self.metadata = path, meta
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self._session = session
        self._n = 0
        self._alloc(1)

    # ----------------------------------------------------------- state
    def _alloc(self, n: int) -> None:
        k, shape = self.context, self.spec.observation_shape
        self._n = n
        self.rtg = np.zeros((n, k), np.float32)
        self.obs = np.zeros((n, k, *shape), np.float32)
        self.actions = np.zeros((n, k), np.int64)
        self.mask = np.zeros((n, k), np.float32)
        self.togo = np.full(n, self.target_return, np.float64)  # the return-to-go of the next decision

    def bind(self, context: Any) -> None:
        """ABR's :class:`genet.abr.video.SessionVideos`: the ladder's top normalises row 0 (as the observation
        builders do); the file's ``max_bitrate_kbps`` otherwise."""
        ladder = getattr(context, "bitrates_kbps", None)
        if ladder is not None and np.size(ladder):
            self.max_bitrate_kbps = float(np.max(ladder))

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self._alloc(self._n)
            return
        m = np.asarray(mask, bool)
        if m.shape[0] != self._n:
            self._alloc(m.shape[0])
            return
        self.rtg[m], self.obs[m], self.actions[m], self.mask[m] = 0.0, 0.0, 0, 0.0
        self.togo[m] = self.target_return

    # ------------------------------------------------------------- act
    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        obs = np.asarray(observations, np.float32)
        if obs.shape[1:] != self.spec.observation_shape:
            raise PolicyMismatchError(
                f"{self.name}: observation batch has shape {obs.shape} but the policy expects "
                f"(n, {', '.join(str(d) for d in self.spec.observation_shape)}) [{self.spec.observation_layout}]")
        n = obs.shape[0]
        if n != self._n:
            self._alloc(n)
        idx = np.arange(n) if active is None else np.flatnonzero(np.asarray(active, bool))
        if idx.size == 0:
            return np.zeros(n, np.int64)
        seen = self.mask[idx, -1] > 0  # sessions with an earlier decision: its chunk's QoE comes off
        if seen.any():
            s = idx[seen]
            self.togo[s] -= chunk_reward(self.obs[s, -1], obs[s], self.max_bitrate_kbps, self.rebuffer_penalty,
                                         self.smooth_penalty)
        for arr in (self.rtg, self.obs, self.actions, self.mask):  # shift the windows one step left
            arr[idx] = np.roll(arr[idx], -1, axis=1)
        self.rtg[idx, -1] = self.togo[idx]
        self.obs[idx, -1] = obs[idx]
        self.actions[idx, -1] = 0
        self.mask[idx, -1] = 1.0
        probs = self.forward(idx)
        a = choose_actions(probs, self.spec, self.deterministic, self.rng)
        self.actions[idx, -1] = a
        out = np.zeros(n, np.int64)
        out[idx] = a
        return out

    def forward(self, idx: np.ndarray) -> np.ndarray:
        """The model's probabilities for the windows of sessions ``idx``."""
        feeds = {"rtg": np.ascontiguousarray(self.rtg[idx]), "observation": np.ascontiguousarray(self.obs[idx]),
                 "actions": np.ascontiguousarray(self.actions[idx]), "mask": np.ascontiguousarray(self.mask[idx])}
        return self._session.run(None, feeds)[0]


def load_context_policy(path: str | os.PathLike, deterministic: bool = True, seed: int | None = None):
    """A :class:`DecisionTransformerPolicy` when ``path`` is a Decision Transformer file, else None (the caller
    loads it as a plain :class:`genet.policy.OnnxPolicy`)."""
    try:
        session = open_onnx_session(path)
    except PolicyMismatchError:  # not loadable: OnnxPolicy says so in its own words
        return None
    if read_kind(session).get(META_PREFIX + "policy_kind") != DT_KIND:
        return None
    return DecisionTransformerPolicy(path, deterministic=deterministic, seed=seed, session=session)


__all__ = ["DecisionTransformerPolicy", "DT_KIND", "chunk_reward", "load_context_policy"]
