"""ABR observations and action mappings: the one definition used by the simulator, the player and training.

Layouts (genet-simulators.md §1.4-1.5):

* ``abr.pensieve-6x8`` (:data:`PENSIEVE_6X8`): Pensieve / Pensieve-PPO's 6x8
  state, 6 direct actions (``abr.direct6``: the next chunk's quality index);
* ``abr.genet-6x6`` (:data:`GENET_6X6`): the Genet paper models' 6x6 state
  (``G:fig_reproduce/sim/rl_test_clean.py``), 3 "jump" actions
  (``abr.jump3``: 0 = one level down, 1 = keep, 2 = one level up, clamped);
* ``abr.raw`` (:data:`RAW`): the unnormalised per-chunk measurements that
  rule-based policies (BBA, RobustMPC) read; see :data:`RAW_FIELDS`.

State rows, after each chunk the matrix is shifted one column left and the
newest values go into the last column:

0. bitrate of the downloaded chunk / max bitrate (last column)
1. buffer after the download, s / 10 (last column)
2. throughput size / delay_ms / 1000 (MB/s) (history)
3. download time delay_ms / 1000 / 10 (history)
4. next chunk's sizes at every level, MB, in columns 0..levels-1 (overwritten)
5. min(chunks remaining, cap) / cap (last column); cap 48 (Pensieve, paper models)

A real player builds the same observations from a plain :class:`ChunkMeasurement`
per chunk through :class:`Observer` (any layout; :meth:`StateBuilder.push` and
:func:`raw_from_measurements` underneath). This module imports only numpy
(no numba, no simulator).

The first state of a video is all zeros (before its first chunk). The state
after a video's last chunk is still computed (the look-ahead sizes are the
next video's chunk 0, as in the references).
"""

from __future__ import annotations

from foundation.errors import BadInputError

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from genet.abr.jit import lazy_njit, numba_available
from genet.policy import PolicySpec

if TYPE_CHECKING:  # the simulator's step record; only its attributes are read (no numba import here)
    from genet.abr.core import StepResult

BUFFER_NORM_S = 10.0
DELAY_NORM_S = 10.0

#: Fields of the ``abr.raw`` observation, in order.
RAW_FIELDS = ("quality", "buffer_s", "throughput_mbyteps", "delay_ms", "chunk_size_bytes", "next_chunk_index",
              "chunks_remaining", "rebuffer_s", "end_of_video")


@dataclass(frozen=True)
class ObservationLayout:
    """A named observation layout.

    name: layout id carried by policy files (e.g. "abr.genet-6x6")
    shape: shape of one observation (e.g. (6, 6))
    action_semantics: "abr.direct6" or "abr.jump3"
    n_actions: 6 or 3
    chunk_cap: cap of the chunks-remaining row (48)
    """

    name: str
    shape: tuple[int, ...]
    action_semantics: str
    n_actions: int
    chunk_cap: int = 48

    def policy_spec(self, output: str = "probabilities") -> PolicySpec:
        return PolicySpec(use_case="abr", observation_layout=self.name, observation_shape=self.shape,
                          action_semantics=self.action_semantics, n_actions=self.n_actions, output=output)


PENSIEVE_6X8 = ObservationLayout("abr.pensieve-6x8", (6, 8), "abr.direct6", 6)
GENET_6X6 = ObservationLayout("abr.genet-6x6", (6, 6), "abr.jump3", 3)
RAW = ObservationLayout("abr.raw", (len(RAW_FIELDS),), "abr.direct6", 6)
LAYOUTS = {lay.name: lay for lay in (PENSIEVE_6X8, GENET_6X6, RAW)}


def get_layout(name: str) -> ObservationLayout:
    if name not in LAYOUTS:
        raise BadInputError(f"unknown ABR observation layout {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def to_quality(actions: np.ndarray, last_quality: np.ndarray, semantics: str, n_levels: int = 6) -> np.ndarray:
    """Map policy actions to the next chunk's quality index (§1.5)."""
    a = np.asarray(actions, dtype=np.int64)
    if semantics == "abr.direct6":
        if np.any((a < 0) | (a >= n_levels)):
            raise BadInputError(f"abr.direct6 action outside [0, {n_levels - 1}]: {a[(a < 0) | (a >= n_levels)][0]}")
        return a
    if semantics == "abr.jump3":
        if np.any((a < 0) | (a > 2)):
            raise BadInputError(f"abr.jump3 action outside [0, 2]: {a[(a < 0) | (a > 2)][0]}")
        return np.clip(np.asarray(last_quality, dtype=np.int64) + a - 1, 0, n_levels - 1)
    raise BadInputError(f"unknown ABR action semantics {semantics!r}; known: abr.direct6, abr.jump3")


def raw_from_measurements(quality, buffer_s, chunk_size_bytes, delay_ms, next_chunk_index, chunks_remaining,
                          rebuffer_s=0.0, end_of_video=False) -> np.ndarray:
    """The ``abr.raw`` observation from plain measurements (scalars or arrays over sessions), for a real
    player driving BBA/RobustMPC; same fields as :func:`raw_observation` (throughput = size/delay/1000)."""
    cols = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (
        quality, buffer_s, chunk_size_bytes, delay_ms, next_chunk_index, chunks_remaining, rebuffer_s,
        end_of_video)))
    q, b, size, delay, nxt, remain, rebuf, end = (np.atleast_1d(c) for c in cols)
    out = np.empty((q.shape[0], len(RAW_FIELDS)))
    out[:, 0], out[:, 1], out[:, 3], out[:, 4] = q, b, delay, size
    out[:, 2] = np.where(delay > 0, size / np.where(delay > 0, delay, 1.0) / 1000.0, 0.0)
    out[:, 5], out[:, 6], out[:, 7], out[:, 8] = nxt, remain, rebuf, end
    return out


def raw_observation(step: "StepResult") -> np.ndarray:
    """(n_envs, len(RAW_FIELDS)) float64 measurements of the last chunk (see RAW_FIELDS)."""
    n = step.quality.shape[0]
    out = np.empty((n, len(RAW_FIELDS)))
    out[:, 0] = step.quality
    out[:, 1] = step.buffer_s
    out[:, 2] = step.throughput_mbyteps
    out[:, 3] = step.delay_ms
    out[:, 4] = step.chunk_size_bytes
    out[:, 5] = (step.chunk_index + 1)
    out[:, 6] = step.chunks_remaining
    out[:, 7] = step.rebuffer_s
    out[:, 8] = step.end_of_video
    return out


@lazy_njit
def _update_state_loop(state, active, quality, bitrates_kbps, buffer_s, size_bytes, delay_ms, next_sizes, remaining,
                       max_bitrate_kbps, cap):
    """:func:`_update_state_numpy` as a loop (compiled by numba when installed: the training fast path)."""
    n, rows, s_len = state.shape
    levels = next_sizes.shape[1]
    for i in range(n):
        if not active[i]:
            continue
        for r in range(rows):  # np.roll(state, -1, axis=1): the oldest column wraps to the end
            first = state[i, r, 0]
            for c in range(s_len - 1):
                state[i, r, c] = state[i, r, c + 1]
            state[i, r, s_len - 1] = first
        state[i, 0, s_len - 1] = bitrates_kbps[quality[i]] / max_bitrate_kbps
        state[i, 1, s_len - 1] = buffer_s[i] / BUFFER_NORM_S
        state[i, 2, s_len - 1] = size_bytes[i] / delay_ms[i] / 1000.0
        state[i, 3, s_len - 1] = delay_ms[i] / 1000.0 / DELAY_NORM_S
        for j in range(levels):
            state[i, 4, j] = next_sizes[i, j] / 1e6
        state[i, 5, s_len - 1] = min(remaining[i], cap) / cap


def _update_state(*args):
    """Shift and write the newest chunk: numba loop when numba is installed, else numpy (same results)."""
    if numba_available():
        _update_state_loop(*args)
    else:
        _update_state_numpy(*args)


def _update_state_numpy(state, active, quality, bitrates_kbps, buffer_s, size_bytes, delay_ms, next_sizes, remaining,
                        max_bitrate_kbps, cap):
    """Shift the active sessions' states one column left (np.roll: the oldest column wraps to the end) and
    write the newest chunk (numpy; the same IEEE operations as the references)."""
    idx = np.flatnonzero(np.asarray(active, dtype=bool))
    if idx.size == 0:
        return
    levels = next_sizes.shape[1]
    s = np.roll(state[idx], -1, axis=2)
    q = np.asarray(quality, dtype=np.int64)[idx]
    s[:, 0, -1] = np.asarray(bitrates_kbps, dtype=np.float64)[q] / max_bitrate_kbps
    s[:, 1, -1] = np.asarray(buffer_s, dtype=np.float64)[idx] / BUFFER_NORM_S
    with np.errstate(divide="ignore", invalid="ignore"):
        s[:, 2, -1] = np.asarray(size_bytes, dtype=np.float64)[idx] / np.asarray(delay_ms, dtype=np.float64)[idx] \
            / 1000.0
    s[:, 3, -1] = np.asarray(delay_ms, dtype=np.float64)[idx] / 1000.0 / DELAY_NORM_S
    s[:, 4, :levels] = np.asarray(next_sizes, dtype=np.float64)[idx] / 1e6
    s[:, 5, -1] = np.minimum(np.asarray(remaining, dtype=np.float64)[idx], cap) / cap
    state[idx] = s


@dataclass(frozen=True)
class ChunkMeasurement:
    """What a player measured about the chunk it just downloaded: the input of every observation.

    quality: quality index of the chunk (0 = lowest)
    buffer_s: buffer after the download, s
    chunk_size_bytes: its size, bytes
    delay_ms: its download time, ms (the simulator's includes one RTT: request to last byte)
    next_chunk_sizes_bytes: sizes of the next chunk at every level, bytes (levels,)
    next_chunk_index: index of the next chunk to fetch (0-based)
    chunks_remaining: chunks left after this one
    rebuffer_s: stall caused by this chunk, s (0.0)
    end_of_video: this was the last chunk (False)
    """

    quality: int
    buffer_s: float
    chunk_size_bytes: float
    delay_ms: float
    next_chunk_sizes_bytes: tuple[float, ...]
    next_chunk_index: int
    chunks_remaining: int
    rebuffer_s: float = 0.0
    end_of_video: bool = False


def chunk_measurement(chunk_sizes_bytes, chunk_index: int, quality: int, buffer_s: float,
                      chunk_size_bytes: float, delay_ms: float, rebuffer_s: float = 0.0) -> ChunkMeasurement:
    """The measurement after chunk ``chunk_index`` (0-based) of a video whose sizes are ``chunk_sizes_bytes``
    (levels, chunks): the next chunk's sizes at every level (after the last chunk: chunk 0's, as the simulator),
    the chunks remaining and the end flag. The one construction the real player and the pool's rebuilding of
    player logs share."""
    n_chunks = int(chunk_sizes_bytes.shape[1])
    nxt = int(chunk_index) + 1
    sizes = chunk_sizes_bytes[:, nxt % n_chunks]
    return ChunkMeasurement(int(quality), float(buffer_s), float(chunk_size_bytes), float(delay_ms),
                            tuple(float(x) for x in sizes), nxt, n_chunks - nxt, float(rebuffer_s),
                            nxt >= n_chunks)


class Observer:
    """Builds one session's observations for any ABR layout from :class:`ChunkMeasurement` records —
    what a real player (genet/player) uses, the same arithmetic as the simulator's.

    layout: an ObservationLayout (or its name)
    bitrates_kbps: the video's ladder, lowest first
    max_bitrate_kbps: normaliser of row 0 (None: the ladder's top; Pensieve: 4300)
    """

    def __init__(self, layout: "ObservationLayout | str", bitrates_kbps, max_bitrate_kbps: float | None = None) -> None:
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        self.bitrates_kbps = np.asarray(bitrates_kbps, dtype=np.float64)
        top = float(np.max(self.bitrates_kbps)) if max_bitrate_kbps is None else float(max_bitrate_kbps)
        self.builder = None if self.layout.name == RAW.name else StateBuilder(self.layout, 1, top)
        self.reset()

    def reset(self) -> None:
        """A new video: the first observation is all zeros."""
        if self.builder is not None:
            self.builder.reset()
        self._last = np.zeros((1, *self.layout.shape), dtype=np.float64 if self.builder is None else np.float32)

    def initial(self) -> np.ndarray:
        """The observation before the first chunk (zeros), shape (1, *layout.shape)."""
        return self._last.copy()

    def observe(self, m: ChunkMeasurement) -> np.ndarray:
        """The observation after chunk ``m``, shape (1, *layout.shape)."""
        if self.builder is None:
            self._last = raw_from_measurements(m.quality, m.buffer_s, m.chunk_size_bytes, m.delay_ms,
                                               m.next_chunk_index, m.chunks_remaining, m.rebuffer_s, m.end_of_video)
        else:
            nxt = np.asarray(m.next_chunk_sizes_bytes, dtype=np.float64).reshape(1, -1)
            self._last = self.builder.push(m.quality, m.buffer_s, m.chunk_size_bytes, m.delay_ms, nxt,
                                           m.chunks_remaining, self.bitrates_kbps)
        return self._last.copy()


class StateBuilder:
    """Keeps the (n_envs, 6, S_LEN) Pensieve-style state of a batch of sessions.

    layout: PENSIEVE_6X8 or GENET_6X6
    n_envs: batch size
    max_bitrate_kbps: normaliser of row 0 (4300)
    """

    def __init__(self, layout: ObservationLayout, n_envs: int, max_bitrate_kbps: float = 4300.0) -> None:
        if layout.name == RAW.name:
            raise BadInputError("StateBuilder builds matrix layouts; use raw_observation for abr.raw")
        self.layout = layout
        self.max_bitrate_kbps = float(max_bitrate_kbps)
        self.state = np.zeros((n_envs, *layout.shape), dtype=np.float64)

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.state[:] = 0.0
        else:
            self.state[np.asarray(mask, dtype=bool)] = 0.0

    def update(self, step: "StepResult", bitrates_kbps: np.ndarray) -> np.ndarray:
        """Shift and write the newest chunk (active environments only); returns a float32 copy."""
        _update_state(self.state, step.active, step.quality, np.asarray(bitrates_kbps, dtype=np.float64),
                      step.buffer_s, step.chunk_size_bytes, step.delay_ms, step.next_sizes_bytes,
                      step.chunks_remaining, self.max_bitrate_kbps, float(self.layout.chunk_cap))
        return self.state.astype(np.float32)

    def push(self, quality, buffer_s, chunk_size_bytes, delay_ms, next_sizes_bytes, chunks_remaining,
             bitrates_kbps, active=None) -> np.ndarray:
        """Same as :meth:`update` from plain measurements (arrays over sessions) — for a real player.

        quality: index of the chunk just downloaded; buffer_s: buffer after it, s; chunk_size_bytes: its
        size, bytes; delay_ms: its download time incl. RTT, ms; next_sizes_bytes: (n, levels) sizes of the
        next chunk, bytes; chunks_remaining: chunks left after it; active: sessions to update (all)."""
        n = self.state.shape[0]

        def arr(x, dtype=np.float64):
            return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()

        act = np.ones(n, dtype=bool) if active is None else arr(active, bool)
        nxt = np.broadcast_to(np.asarray(next_sizes_bytes, dtype=np.float64),
                              (n, np.asarray(next_sizes_bytes).shape[-1])).copy()
        _update_state(self.state, act, arr(quality, np.int64), np.asarray(bitrates_kbps, dtype=np.float64),
                      arr(buffer_s), arr(chunk_size_bytes), arr(delay_ms), nxt, arr(chunks_remaining, np.int64),
                      self.max_bitrate_kbps, float(self.layout.chunk_cap))
        return self.state.astype(np.float32)

    def observation(self) -> np.ndarray:
        return self.state.astype(np.float32)
