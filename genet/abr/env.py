"""Gymnasium environment for one ABR session: a thin view over :class:`~genet.abr.core.BatchedAbrSim`.

``gymnasium.make("genet/Abr-v0", traces=..., video=...)`` after :func:`register_envs` (explicit:
importing this module registers nothing with Gymnasium).
``gymnasium.make_vec("genet/Abr-v0", num_envs=N, vectorization_mode="vector_entry_point")`` gives
:class:`AbrVectorEnv`, N sessions on one batched simulator with the same per-session trajectories as
``SyncVectorEnv`` (autoreset mode SAME_STEP; tested).

Episode = one video (Pensieve-PPO convention, §1.7): ``reset`` picks a trace
(uniformly, from ``np_random``), downloads the first chunk at the
conventions' first quality and returns the state after it; each ``step``
chooses the next chunk's quality (``abr.direct6``) or a jump
(``abr.jump3``) and returns that chunk's reward; the step that downloads the
video's last chunk is ``terminated``. There is no time limit (``truncated``
is always False). ``info`` holds the chunk's measurements (``bitrate_mbps``,
``rebuffer_s``, ``buffer_s``, ``delay_ms``, ``quality``...); ``reset``'s
info holds the first chunk's (its reward is not part of the return, as in
Pensieve's A3C bookkeeping).

Without ``traces`` a small synthetic set is generated from the ABR config
space (RL1 range, seed 0); without ``video`` the chunk sizes are the exact
bitrate x chunk length (:func:`~genet.abr.video.constant_bitrate_video`).
All randomness (trace choice, start pointer, delay noise) comes from ``np_random``.

Speed: :meth:`AbrEnv.step` takes a one-session fast path (:func:`_single_step`: the same
:func:`~genet.abr.core.download_chunk` and :func:`~genet.abr.qoe.chunk_qoe`, and the state-matrix
update of :mod:`genet.abr.observations`, in one compiled call on the simulator's own arrays) instead of
the batched step with its per-call set-up; trajectories are the same (tested against the batched core).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import os
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from genet.abr import ENV_ID
from genet.abr.core import BatchedAbrSim, StepResult, download_chunk
from genet.abr.jit import lazy_njit
from genet.abr.observations import PENSIEVE_6X8, StateBuilder, get_layout, to_quality
from genet.abr.params import EnvParams, SimConventions, conventions
from genet.abr.qoe import chunk_qoe
from genet.abr.video import Video, constant_bitrate_video, load_video
from traces.trace import Trace


def _info(r: StepResult) -> dict[str, Any]:
    return {"quality": int(r.quality[0]), "bitrate_mbps": float(r.bitrate_mbps[0]),
            "rebuffer_s": float(r.rebuffer_s[0]), "buffer_s": float(r.buffer_s[0]), "delay_ms": float(r.delay_ms[0]),
            "chunk_size_bytes": float(r.chunk_size_bytes[0]), "bitrate_change_mbps": float(r.bitrate_change_mbps[0]),
            "chunks_remaining": int(r.chunks_remaining[0]), "reward": float(r.reward[0])}


def _setup(traces, video, mode, layout, delay_noise, random_start):
    conv: SimConventions = conventions(mode)
    changes = {}
    if delay_noise is not None:
        changes["delay_noise"] = bool(delay_noise)
    if random_start is not None:
        changes["random_start"] = bool(random_start)
    conv = conv.replace(**changes) if changes else conv
    if traces is None:
        from traces.generators import generate_set
        traces = generate_set("abr", "rl1", n=8, seed=0)
    elif isinstance(traces, (str, os.PathLike)):
        from traces.io import load_traces
        traces = load_traces(traces)
    if video is None:
        video = constant_bitrate_video()
    elif not isinstance(video, Video):
        video = load_video(video)
    return conv, list(traces), video, get_layout(layout)


#: Fields of :func:`_single_step`'s output vector, in order.
_OUT = ("delay_ms", "sleep_ms", "buffer_s", "rebuffer_s", "chunk_size_bytes", "reward", "bitrate_mbps",
        "bitrate_change_mbps", "chunks_remaining", "end_of_video")


@lazy_njit(error_model="numpy")
def _single_step(q, noise, t_all, bw_all, ip, fp, ptr, last_time_s, buffer_ms, chunk_idx, last_quality, sizes,
                 bitrates_kbps, state, out):
    """Session 0 of a :class:`BatchedAbrSim` downloads one chunk at quality ``q`` (what ``_step_kernel``
    does for one active session), and its (6, S) observation ``state[0]`` is shifted and written as
    :func:`genet.abr.observations._update_state` does. ``ip`` = (trace offset, trace length, chunks in the
    video); ``fp`` = (rtt_ms, chunk_ms, max_buffer_ms, mu, smooth, payload_fraction, drain_ms, wrap_t,
    max_bitrate_kbps, chunk_cap). Writes :data:`_OUT` into ``out``."""
    c = chunk_idx[0]
    size = sizes[0, q, c]
    p, lt, buf, delay, rebuf, sleep = download_chunk(
        t_all, bw_all, ip[0], ip[1], ptr[0], last_time_s[0], size, fp[0], noise, buffer_ms[0], fp[1], fp[2],
        fp[5], fp[6], fp[7])
    ptr[0] = p
    last_time_s[0] = lt
    rebuf_s = rebuf / 1000.0
    lq = last_quality[0]
    out[0] = delay
    out[1] = sleep
    out[2] = buf / 1000.0
    out[3] = rebuf_s
    out[4] = size
    out[5] = chunk_qoe(bitrates_kbps[q], bitrates_kbps[lq], rebuf_s, fp[3], fp[4])
    out[6] = bitrates_kbps[q] / 1000.0
    out[7] = abs(bitrates_kbps[q] - bitrates_kbps[lq]) / 1000.0
    last_quality[0] = q
    c += 1
    remain = ip[2] - c
    out[8] = remain
    if c >= ip[2]:
        out[9] = 1.0
        buf = 0.0
        c = 0
    else:
        out[9] = 0.0
    buffer_ms[0] = buf
    chunk_idx[0] = c
    # the observation: np.roll(state, -1, axis=2), then the newest chunk
    s = state[0]
    rows, cols = s.shape
    for r in range(rows):
        first = s[r, 0]
        for j in range(cols - 1):
            s[r, j] = s[r, j + 1]
        s[r, cols - 1] = first
    s[0, cols - 1] = bitrates_kbps[q] / fp[8]
    s[1, cols - 1] = out[2] / 10.0
    s[2, cols - 1] = size / delay / 1000.0
    s[3, cols - 1] = delay / 1000.0 / 10.0
    for j in range(sizes.shape[1]):
        s[4, j] = sizes[0, j, c] / 1e6
    s[5, cols - 1] = min(float(remain), fp[9]) / fp[9]


#: Upper bound of the observation space (state entries are normalised; throughput in MB/s stays far below).
OBS_HIGH = 1e6


class AbrEnv(gym.Env):
    """One ABR streaming session.

    traces: list of Trace, or a directory/file readable by traces.load_traces (None: synthetic RL1 set)
    video: a Video or a directory of video_size_* files (None: constant-bitrate chunks)
    mode: "pensieve" (default conventions) or "genet" (compatibility mode); see genet/abr/params.py
    layout: observation layout, "abr.pensieve-6x8" (Discrete(6)) or "abr.genet-6x6" (Discrete(3))
    params: EnvParams for every trace (None: from each trace's meta["config"], else the mode's default)
    delay_noise: multiply delays by U(0.9, 1.1) (None: the mode's default, off)
    random_start: random start pointer per video (None: the mode's default, off)
    """

    metadata = {"render_modes": []}

    def __init__(self, traces: Sequence[Trace] | str | os.PathLike | None = None,
                 video: Video | str | os.PathLike | None = None, mode: str = "pensieve",
                 layout: str = PENSIEVE_6X8.name, params: EnvParams | None = None,
                 delay_noise: bool | None = None, random_start: bool | None = None) -> None:
        self.conv, traces, video, self.layout = _setup(traces, video, mode, layout, delay_noise, random_start)
        self.sim = BatchedAbrSim(traces, video, self.conv, params=params, n_envs=1, autoreset=False)
        self.builder = StateBuilder(self.layout, 1, float(np.max(self.sim.bitrates_kbps)))
        self.observation_space = gym.spaces.Box(0.0, OBS_HIGH, shape=self.layout.shape, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.layout.n_actions)
        self._quality = self.conv.first_quality
        self._out = np.zeros(len(_OUT))
        self._ip = np.zeros(3, dtype=np.int64)
        self._fp = np.zeros(10)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.sim.rng = self.np_random
        self.sim.env_rngs = [self.np_random]
        trace_ids = [int(options["trace_index"])] if options and "trace_index" in options else None
        self.sim.reset(trace_ids=trace_ids)
        self.builder.reset()
        r = self.sim.step(np.array([self.conv.first_quality]))
        self._quality = int(r.quality[0])
        obs = self.builder.update(r, self.sim.bitrates_kbps)[0]
        info = _info(r)
        info["trace"] = self.sim.traces[int(self.sim.tr_id[0])].name
        sim, conv = self.sim, self.conv
        k = int(sim.tr_id[0])
        self._ip = np.array([sim.tr_off[k], sim.tr_len[k], sim.n_chunks[0]], dtype=np.int64)
        self._fp = np.array([sim.rtt_ms[0], sim.chunk_ms[0], sim.max_buffer_ms[0], conv.rebuffer_penalty,
                             conv.smooth_penalty, conv.payload_fraction, conv.drain_quantum_ms,
                             0.0 if conv.wrap_time_zero else sim.t_all[sim.tr_off[k]], self.builder.max_bitrate_kbps,
                             float(self.layout.chunk_cap)], dtype=np.float64)
        return obs, info

    def step(self, action):
        a = int(action)
        if not 0 <= a < self.layout.n_actions:
            raise BadInputError(f"action {a} outside Discrete({self.layout.n_actions})")
        q = a if self.layout.action_semantics == "abr.direct6" else min(max(self._quality + a - 1, 0),
                                                                        self.sim.n_levels - 1)
        sim = self.sim
        if sim.done[0]:
            raise RuntimeError("step() after the video ended; call reset()")
        if q >= sim.n_levels:
            raise BadInputError(f"step: quality {q} outside [0, {sim.n_levels - 1}]")
        conv = self.conv
        # the noise draw of BatchedAbrSim.step for one session with env_rngs (reset sets them; a scalar draw
        # gives the value of its size=1 draw)
        noise = sim.env_rngs[0].uniform(conv.noise_low, conv.noise_high) if conv.delay_noise else 1.0
        out = self._out
        _single_step(q, noise, sim.t_all, sim.bw_all, self._ip, self._fp, sim.ptr, sim.last_time_s, sim.buffer_ms,
                     sim.chunk_idx, sim.last_quality, sim.sizes, sim.bitrates_kbps, self.builder.state, out)
        self._quality = q
        delay, _, buffer_s, rebuf_s, size, reward, bitrate, change, remain, end = out.tolist()
        ended = end != 0.0
        if ended:
            sim.done[0] = True
        info = {"quality": q, "bitrate_mbps": bitrate, "rebuffer_s": rebuf_s, "buffer_s": buffer_s,
                "delay_ms": delay, "chunk_size_bytes": size, "bitrate_change_mbps": change,
                "chunks_remaining": int(remain), "reward": reward}
        return self.builder.state[0].astype(np.float32), reward, ended, False, info


class AbrVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` sessions on one :class:`BatchedAbrSim` (the natively batched ``vector_entry_point``).

    Same arguments and per-session behaviour as :class:`AbrEnv`. Autoreset mode: SAME_STEP only
    (the step that ends a video returns the next video's first observation; the final observation
    and info are in ``infos["final_obs"]`` / ``infos["final_info"]``). Seeding as SyncVectorEnv:
    ``reset(seed=s)`` seeds session i with s + i, so trajectories equal n seeded AbrEnvs.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, traces=None, video=None, mode: str = "pensieve",
                 layout: str = PENSIEVE_6X8.name, params: EnvParams | None = None, delay_noise: bool | None = None,
                 random_start: bool | None = None) -> None:
        self.conv, traces, video, self.layout = _setup(traces, video, mode, layout, delay_noise, random_start)
        self.num_envs = int(num_envs)
        self.sim = BatchedAbrSim(traces, video, self.conv, params=params, n_envs=self.num_envs, autoreset=False)
        self.builder = StateBuilder(self.layout, self.num_envs, float(np.max(self.sim.bitrates_kbps)))
        self.single_observation_space = gym.spaces.Box(0.0, OBS_HIGH, shape=self.layout.shape, dtype=np.float32)
        self.single_action_space = gym.spaces.Discrete(self.layout.n_actions)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._quality = np.full(self.num_envs, self.conv.first_quality, dtype=np.int64)
        self.sim.env_rngs = [np.random.default_rng(i) for i in range(self.num_envs)]

    def _start(self, mask: np.ndarray) -> StepResult:
        self.sim.reset(mask)
        self.builder.reset(mask)
        q = np.where(mask, self.conv.first_quality, 0)
        r = self.sim.step(q, active=mask)
        self._quality[mask] = self.conv.first_quality
        self.builder.update(r, self.sim.bitrates_kbps)
        return r

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        from gymnasium.utils import seeding
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise BadInputError(f"reset: {len(seeds)} seeds for {self.num_envs} environments")
            self.sim.env_rngs = [seeding.np_random(s)[0] for s in seeds]
        r = self._start(np.ones(self.num_envs, dtype=bool))
        return self.builder.observation(), _vector_info(r)

    def step(self, actions):
        q = to_quality(np.asarray(actions), self._quality, self.layout.action_semantics, self.sim.n_levels)
        r = self.sim.step(q)
        self._quality = q.copy()
        obs = self.builder.update(r, self.sim.bitrates_kbps)
        rewards = r.reward.copy()
        terminated = r.end_of_video.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos = _vector_info(r)
        if terminated.any():
            final_obs = np.empty(self.num_envs, dtype=object)
            final_info = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(terminated).tolist():
                final_obs[i] = obs[i].copy()
                final_info[i] = {k: v[i] for k, v in infos.items() if not k.startswith("_")}
            infos["final_obs"], infos["_final_obs"] = final_obs, terminated.copy()
            infos["final_info"], infos["_final_info"] = final_info, terminated.copy()
            self._start(terminated)
            obs = self.builder.observation()
        return obs, rewards, terminated, truncated, infos


def _vector_info(r: StepResult) -> dict[str, Any]:
    keys = ("quality", "bitrate_mbps", "rebuffer_s", "buffer_s", "delay_ms", "chunk_size_bytes",
            "bitrate_change_mbps", "chunks_remaining", "reward")
    info: dict[str, Any] = {}
    for k in keys:
        info[k] = np.asarray(getattr(r, k)).copy()
        info["_" + k] = r.active.copy()
    return info


def register_envs() -> None:
    """Register ``genet/Abr-v0`` (and its ``vector_entry_point``) with Gymnasium (idempotent); call it
    before ``gymnasium.make("genet/Abr-v0")``: nothing registers it on import."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="genet.abr.env:AbrEnv",
                     vector_entry_point="genet.abr.env:AbrVectorEnv")
