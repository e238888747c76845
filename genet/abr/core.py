"""The batched ABR chunk-level simulator (numba-compiled kernels), genet-simulators.md §1.

:class:`BatchedAbrSim` steps ``n_envs`` video sessions at once: every array
of state has one entry per environment and one ``step(quality)`` call
downloads one chunk in every active environment. The Gymnasium env
(:mod:`genet.abr.env`), the evaluation runner and training all drive this one
implementation.

Semantics (identical arithmetic to Pensieve / Genet ABR-A ``get_video_chunk``, §1.3):

* bandwidth ``bw[i]`` (Mbps) applies to the interval (t[i-1], t[i]] (§1.2;
  the simulator's own reading of :class:`traces.Trace` arrays); the pointer
  ``ptr`` is the end sample of the current interval, ``last_time_s`` the
  position in trace time;
* a chunk of ``size`` bytes downloads at ``bw * 1e6 / 8 * payload_fraction``
  bytes/s across intervals; at the trace end it wraps to ``ptr = 1`` and
  ``last_time = 0`` (Genet, ``wrap_time_zero``) or ``t[0]`` (default);
* ``delay_ms = download_s * 1000 + rtt_ms``, times U(0.9, 1.1) if delay
  noise is on; ``rebuffer = max(delay - buffer, 0)``; ``buffer = max(buffer -
  delay, 0) + chunk_length``; above ``max_buffer`` the player sleeps
  ``ceil(excess / 500 ms) * 500 ms`` while the trace clock runs on;
* the reward of the downloaded chunk is :func:`genet.abr.qoe.chunk_qoe`: ``b/1000 - mu * rebuffer_s -
  smooth * |b - b_prev|/1000`` (kbps ladder, §1.6); ``b_prev`` is the previous
  chunk's bitrate, the first chunk's own (the first quality) at a video start;
* after the video's last chunk (``end_of_video``), buffer and chunk counter
  reset; the next-chunk sizes returned are then chunk 0's (§1.3 step 9).

Buffers are kept in milliseconds internally as in the references so that the
compatibility mode is bit-for-bit the same arithmetic.

The kernels are plain Python that numba compiles on first use (:mod:`genet.abr.jit`; importing this
module loads no numba). A simulator steps its first :data:`INTERPRETED_CHUNK_STEPS` chunk downloads (per
process) with the kernels' plain Python while numba is not loaded yet, and the compiled kernels after:
a short run (``genet eval abr --policy bba`` over a few hundred traces) never pays numba's start-up, a
long one soon runs compiled. Both run the same source with the same IEEE operations: the same bits.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from genet.abr.jit import jitable, lazy_njit, numba_available
from genet.abr.params import PENSIEVE, EnvParams, SimConventions
from genet.abr.qoe import chunk_qoe
from genet.abr.video import Video
from traces.errors import TraceFormatError
from traces.trace import Trace

#: Largest chunk-size tables (all environments and video lengths together) a simulator may allocate.
MAX_CHUNK_TABLE_BYTES = 2**30
#: Chunk downloads (all simulators of a process together) stepped with the kernels' plain Python while numba
#: is not loaded: about what loading numba and the cached kernels costs (~0.4 s of start-up; one interpreted
#: chunk download takes ~7 us). ``engine="auto"`` only.
INTERPRETED_CHUNK_STEPS = 50_000
#: Simulator engines: "auto" (interpreted first, compiled after: module docstring), "numba", "python".
ENGINES = ("auto", "numba", "python")
_interpreted_left = INTERPRETED_CHUNK_STEPS


@jitable
def download_chunk(t_all, bw_all, off, ln, ptr0, last_time0, size, rtt_ms, noise, buffer0, chunk_ms,
                   max_buffer_ms, payload_frac, drain_ms, wrap_t):
    """One chunk over one trace (§1.3 steps 2-6). Returns (ptr, last_time_s, buffer_ms, delay_ms,
    rebuffer_ms, sleep_ms); ``off``/``ln`` locate the trace in the concatenated arrays."""
    p = np.int64(ptr0)
    lt = np.float64(last_time0)
    buf = np.float64(buffer0)
    sent = 0.0
    delay = 0.0
    sleep = 0.0
    rebuf = 0.0
    # (the single-pass for loop works around a numba 0.68 typing failure with a top-level `while True`)
    for _once in range(1):
        # bounded: BatchedAbrSim._check_trace makes one pass of the trace carry the largest chunk, so a
        # download ends within the rest of this pass plus one more (<= 2 x trace samples)
        while True:
            tput = bw_all[off + p] * 1000000.0 / 8.0
            dur = t_all[off + p] - lt
            payload = tput * dur * payload_frac
            if sent + payload > size:
                frac = (size - sent) / tput / payload_frac
                delay += frac
                lt += frac
                break
            sent += payload
            delay += dur
            lt = t_all[off + p]
            p += 1
            if p >= ln:
                p = 1
                lt = wrap_t
        delay *= 1000.0
        delay += rtt_ms
        delay *= noise
        rebuf = delay - buf
        if rebuf < 0.0:
            rebuf = 0.0
        buf = buf - delay
        if buf < 0.0:
            buf = 0.0
        buf += chunk_ms
        if buf > max_buffer_ms:
            drain = buf - max_buffer_ms
            sleep = np.ceil(drain / drain_ms) * drain_ms
            buf -= sleep
            while True:
                gap_s = t_all[off + p] - lt
                if gap_s > sleep / 1000.0:
                    lt += sleep / 1000.0
                    break
                sleep -= gap_s * 1000.0
                lt = t_all[off + p]
                p += 1
                if p >= ln:
                    p = 1
                    lt = wrap_t
                    # a sleep longer than two passes of the trace (a short trace, long chunks) skips the whole
                    # passes at once, so the loop crosses <= 3 passes; never taken by normal traces
                    pass_ms = (t_all[off + ln - 1] - wrap_t) * 1000.0
                    if pass_ms > 0.0 and sleep > 2.0 * pass_ms:
                        sleep -= (np.floor(sleep / pass_ms) - 1.0) * pass_ms
    return p, lt, buf, delay, rebuf, sleep


#: :func:`genet.abr.qoe.chunk_qoe` (the one definition of a chunk's QoE, §1.6; the kernels call it
#: directly) compiled by numba on its own (on first call).
chunk_reward = lazy_njit(chunk_qoe)


@lazy_njit
def _step_kernel(quality, active, noise, t_all, bw_all, tr_off, tr_len, tr_id, ptr, last_time_s, buffer_ms,
                 chunk_idx, last_quality, sizes, n_chunks, rtt_ms, chunk_ms, max_buffer_ms, bitrates_kbps,
                 mu, smooth, payload_frac, drain_ms, wrap_zero,
                 out_delay_ms, out_sleep_ms, out_buffer_s, out_rebuf_s, out_size, out_next, out_remain,
                 out_end, out_reward, out_chunk, out_bitrate_mbps, out_change_mbps):
    n = quality.shape[0]
    n_levels = sizes.shape[1]
    for i in range(n):
        if not active[i]:
            continue
        q = quality[i]
        k = tr_id[i]
        off = tr_off[k]
        c = chunk_idx[i]
        size = sizes[i, q, c]
        wrap_t = 0.0 if wrap_zero else t_all[off]
        p, lt, buf, delay, rebuf, sleep = download_chunk(
            t_all, bw_all, off, tr_len[k], ptr[i], last_time_s[i], size, rtt_ms[i], noise[i], buffer_ms[i],
            chunk_ms[i], max_buffer_ms[i], payload_frac, drain_ms, wrap_t)
        ptr[i] = p
        last_time_s[i] = lt
        out_delay_ms[i] = delay
        out_sleep_ms[i] = sleep
        out_buffer_s[i] = buf / 1000.0
        rebuf_s = rebuf / 1000.0
        out_rebuf_s[i] = rebuf_s
        out_size[i] = size
        out_chunk[i] = c
        out_reward[i] = chunk_qoe(bitrates_kbps[q], bitrates_kbps[last_quality[i]], rebuf_s, mu, smooth)
        out_bitrate_mbps[i] = bitrates_kbps[q] / 1000.0
        out_change_mbps[i] = abs(bitrates_kbps[q] - bitrates_kbps[last_quality[i]]) / 1000.0
        last_quality[i] = q
        c += 1
        out_remain[i] = n_chunks[i] - c
        if c >= n_chunks[i]:
            out_end[i] = True
            buf = 0.0
            c = 0
        else:
            out_end[i] = False
        buffer_ms[i] = buf
        chunk_idx[i] = c
        for j in range(n_levels):
            out_next[i, j] = sizes[i, j, c]


@dataclass
class StepResult:
    """One chunk download in every environment (arrays over environments; inactive entries are 0).

    quality: quality index of the downloaded chunk
    chunk_index: index of the downloaded chunk in its video
    delay_ms: download time incl. RTT (and noise), ms
    sleep_ms: residual sleep after trace consumption (Genet's logging value, §1.3 QUIRK), ms
    buffer_s: buffer after the download (and the sleep), s
    rebuffer_s: stall caused by this chunk, s
    chunk_size_bytes: size of the downloaded chunk, bytes
    next_sizes_bytes: (n_envs, levels) sizes of the next chunk at every level, bytes
    chunks_remaining: chunks left in the video after this one
    end_of_video: this was the video's last chunk
    reward: QoE of this chunk (bitrate_mbps - mu * rebuffer_s - smooth * bitrate_change_mbps)
    bitrate_mbps: bitrate of the chunk, Mbps
    bitrate_change_mbps: |bitrate - previous bitrate|, Mbps
    active: which environments stepped
    """

    quality: np.ndarray
    chunk_index: np.ndarray
    delay_ms: np.ndarray
    sleep_ms: np.ndarray
    buffer_s: np.ndarray
    rebuffer_s: np.ndarray
    chunk_size_bytes: np.ndarray
    next_sizes_bytes: np.ndarray
    chunks_remaining: np.ndarray
    end_of_video: np.ndarray
    reward: np.ndarray
    bitrate_mbps: np.ndarray
    bitrate_change_mbps: np.ndarray
    active: np.ndarray

    @property
    def throughput_mbyteps(self) -> np.ndarray:
        """Measured throughput size/delay in MB/s (KB/ms; Pensieve's state row 2 and MPC's sample)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.delay_ms > 0, self.chunk_size_bytes / np.maximum(self.delay_ms, 1e-300) / 1000.0,
                            0.0)


class BatchedAbrSim:
    """Many ABR sessions stepped together.

    traces: the trace pool; environment i plays ``traces[assignment[i]]``
    video: the ladder and chunk sizes (e.g. ``load_video("../shared/video/envivio")``)
    conventions: PENSIEVE (default) or GENET_COMPAT (genet/abr/params.py)
    params: per-trace EnvParams (a sequence, one per trace) or one for all
        (None: each trace's ``meta["config"]`` if generated, else ``conventions.params``)
    n_envs: number of sessions (None: one per trace, environment i on trace i)
    seed: seed of the simulator's Generator (trace choice, start pointer, delay noise)
    autoreset: after a video end an environment starts a new video at once on a
        randomly drawn trace (True; training), or stays finished (False; evaluation)
    engine: "auto" (the kernels' plain Python for the process's first :data:`INTERPRETED_CHUNK_STEPS`
        chunk downloads while numba is not loaded, compiled after), "numba" (compiled; plain Python when
        numba is not installed) or "python" (interpreted); all give the same results
    """

    def __init__(self, traces: Sequence[Trace], video: Video, conventions: SimConventions = PENSIEVE,
                 params: EnvParams | Sequence[EnvParams] | None = None, n_envs: int | None = None,
                 seed: int | None = None, autoreset: bool = False, engine: str = "auto") -> None:
        if len(traces) == 0:
            raise BadInputError("BatchedAbrSim needs at least one trace")
        if engine not in ENGINES:
            raise BadInputError(f"BatchedAbrSim engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine = engine
        self.traces = list(traces)
        self.video = video
        self.conv = conventions
        self.autoreset = autoreset
        self.rng = np.random.default_rng(seed)
        self.n_envs = len(self.traces) if n_envs is None else int(n_envs)
        if params is None:
            self.trace_params = [EnvParams.from_trace(tr, conventions.params) for tr in self.traces]
        elif isinstance(params, EnvParams):
            self.trace_params = [params] * len(self.traces)
        else:
            self.trace_params = list(params)
            if len(self.trace_params) != len(self.traces):
                raise BadInputError(f"{len(self.trace_params)} EnvParams for {len(self.traces)} traces")
        self.n_levels = video.n_levels
        self.bitrates_kbps = np.asarray(video.bitrates_kbps, dtype=np.float64)
        # per-trace chunk tables (cached by (n_chunks, chunk length))
        self._tables: dict[tuple[int, float], np.ndarray] = {}
        self.max_chunks = max(p.n_chunks for p in self.trace_params)
        self._check_table_size()
        lens = [len(tr.timestamps_s) for tr in self.traces]
        self.tr_len = np.asarray(lens, dtype=np.int64)
        self.tr_off = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        self.t_all = np.concatenate([tr.timestamps_s for tr in self.traces]).astype(np.float64)
        self.bw_all = np.concatenate([tr.bandwidth_mbps for tr in self.traces]).astype(np.float64)
        for k, tr in enumerate(self.traces):
            self._check_trace(k, tr)
        n = self.n_envs
        self.tr_id = np.zeros(n, dtype=np.int64)
        self.ptr = np.ones(n, dtype=np.int64)
        self.last_time_s = np.zeros(n)
        self.buffer_ms = np.zeros(n)
        self.chunk_idx = np.zeros(n, dtype=np.int64)
        self.last_quality = np.full(n, conventions.first_quality, dtype=np.int64)
        self.sizes = np.zeros((n, self.n_levels, self.max_chunks + 1))
        self.n_chunks = np.zeros(n, dtype=np.int64)
        self.rtt_ms = np.zeros(n)
        self.chunk_ms = np.zeros(n)
        self.max_buffer_ms = np.zeros(n)
        self.done = np.zeros(n, dtype=bool)
        self.episode = np.zeros(n, dtype=np.int64)
        #: optional per-environment Generators (Gymnasium seeding: env i's trace choice, start pointer and
        #: delay noise come from env_rngs[i]; a vector env then matches n independently seeded envs)
        self.env_rngs: list[np.random.Generator] | None = None

    # ------------------------------------------------------------------ set-up
    def _table(self, p: EnvParams) -> np.ndarray:
        key = (p.n_chunks, p.chunk_length_s)
        if key not in self._tables:
            self._tables[key] = self.video.chunk_sizes_for(p.n_chunks, p.chunk_length_s)
        return self._tables[key]

    def _check_table_size(self) -> None:
        """Reject, before allocating, chunk-size tables (per environment and per video length) too large."""
        distinct = {(p.n_chunks, p.chunk_length_s) for p in self.trace_params}
        n_bytes = 8 * self.n_levels * (self.n_envs * (self.max_chunks + 1) + sum(n for n, _ in distinct))
        if n_bytes > MAX_CHUNK_TABLE_BYTES:
            p = max(self.trace_params, key=lambda q: q.n_chunks)
            raise BadInputError(
                f"EnvParams video_length_s={p.video_length_s:g} / chunk_length_s={p.chunk_length_s:g} is a video of "
                f"{p.n_chunks:,} chunks: its chunk-size tables for {self.n_envs} environments would take "
                f"{n_bytes / 2**30:.1f} GiB (limit {MAX_CHUNK_TABLE_BYTES / 2**30:g} GiB); "
                "use a shorter video_length_s")

    def _check_trace(self, k: int, tr: Trace) -> None:
        where = tr.meta.get("path") if isinstance(tr.meta, dict) else None
        label = where or (tr.name or f"trace #{k}")
        t, bw = tr.timestamps_s, tr.bandwidth_mbps
        if len(t) < 2:
            raise TraceFormatError(f"ABR simulation needs at least 2 samples, trace {label!r} has {len(t)}", where)
        if not np.any(bw[1:] * np.diff(t) > 0):
            raise TraceFormatError(f"trace {label!r} has zero bandwidth for its whole length: no chunk can download "
                                   f"(the simulator loops the trace)", where, field="bandwidth_mbps")
        if self.conv.wrap_time_zero and t[1] < 0.0:
            raise TraceFormatError(f"trace {label!r} starts at {t[0]:g} s, but this simulator mode wraps the trace "
                                   "clock to 0 s at the trace end: timestamps after the first must be >= 0", where,
                                   field="timestamps_s")
        carried = float(np.sum(bw[1:] * 1e6 / 8.0 * np.diff(t))) * self.conv.payload_fraction
        largest = float(self._table(self.trace_params[k]).max())
        if not carried >= largest:
            raise TraceFormatError(
                f"trace {label!r} is shorter than one chunk download: one pass ({t[-1] - t[0]:g} s) carries "
                f"{carried:.0f} bytes but the largest chunk is {largest:.0f} bytes", where)

    def _assign(self, idx: np.ndarray, trace_ids: np.ndarray) -> None:
        for i, k in zip(idx.tolist(), trace_ids.tolist()):
            p = self.trace_params[k]
            table = self._table(p)
            self.tr_id[i] = k
            self.n_chunks[i] = p.n_chunks
            self.sizes[i, :, : p.n_chunks] = table
            self.sizes[i, :, p.n_chunks:] = table[:, :1]
            self.rtt_ms[i] = p.min_rtt_ms
            self.chunk_ms[i] = p.chunk_length_s * 1000.0
            self.max_buffer_ms[i] = p.max_buffer_s * 1000.0
            if self.conv.random_start:
                rng = self.env_rngs[i] if self.env_rngs is not None else self.rng
                self.ptr[i] = rng.integers(1, self.tr_len[k])
            else:
                self.ptr[i] = 1
            self.last_time_s[i] = self.t_all[self.tr_off[k] + self.ptr[i] - 1]

    def reset(self, mask: np.ndarray | None = None, trace_ids: Sequence[int] | np.ndarray | None = None) -> None:
        """Start new videos in the environments of ``mask`` (all when None).

        trace_ids: the trace of each reset environment (None: environment i gets trace i when
            there is one trace per environment, else a uniformly drawn trace)."""
        idx = np.arange(self.n_envs) if mask is None else np.flatnonzero(mask)
        if trace_ids is None:
            if self.env_rngs is not None:
                trace_ids = [int(self.env_rngs[i].integers(0, len(self.traces))) for i in idx.tolist()]
            elif self.n_envs == len(self.traces) and not self.autoreset:
                trace_ids = idx
            else:
                trace_ids = self.rng.integers(0, len(self.traces), size=idx.size)
        trace_ids = np.asarray(trace_ids, dtype=np.int64)
        self._assign(idx, trace_ids)
        self.buffer_ms[idx] = 0.0
        self.chunk_idx[idx] = 0
        self.last_quality[idx] = self.conv.first_quality
        self.done[idx] = False
        self.episode[idx] += 1

    # -------------------------------------------------------------------- step
    def step(self, quality: np.ndarray, active: np.ndarray | None = None) -> StepResult:
        """Download one chunk at ``quality`` (int array, n_envs) in every active, unfinished environment."""
        n = self.n_envs
        q = np.asarray(quality, dtype=np.int64).reshape(-1)
        if q.shape[0] != n:
            raise BadInputError(f"step: got {q.shape[0]} qualities for {n} environments")
        act = ~self.done if active is None else (np.asarray(active, dtype=bool) & ~self.done)
        qa = q[act]
        if qa.size and (qa.min() < 0 or qa.max() >= self.n_levels):
            bad = qa[(qa < 0) | (qa >= self.n_levels)][0]
            raise BadInputError(f"step: quality {bad} outside [0, {self.n_levels - 1}]")
        if self.conv.delay_noise and self.env_rngs is not None:
            noise = np.ones(n)
            for i in np.flatnonzero(act).tolist():
                noise[i] = self.env_rngs[i].uniform(self.conv.noise_low, self.conv.noise_high, size=1)[0]
        elif self.conv.delay_noise:
            noise = self.rng.uniform(self.conv.noise_low, self.conv.noise_high, size=n)
        else:
            noise = np.ones(n)
        r = StepResult(quality=np.where(act, q, 0), chunk_index=np.zeros(n, np.int64), delay_ms=np.zeros(n),
                       sleep_ms=np.zeros(n), buffer_s=np.zeros(n), rebuffer_s=np.zeros(n),
                       chunk_size_bytes=np.zeros(n), next_sizes_bytes=np.zeros((n, self.n_levels)),
                       chunks_remaining=np.zeros(n, np.int64), end_of_video=np.zeros(n, bool), reward=np.zeros(n),
                       bitrate_mbps=np.zeros(n), bitrate_change_mbps=np.zeros(n), active=act)
        kernel = self._kernel(int(np.count_nonzero(act)))
        kernel(q, act, noise, self.t_all, self.bw_all, self.tr_off, self.tr_len, self.tr_id, self.ptr,
               self.last_time_s, self.buffer_ms, self.chunk_idx, self.last_quality, self.sizes, self.n_chunks,
               self.rtt_ms, self.chunk_ms, self.max_buffer_ms, self.bitrates_kbps,
               float(self.conv.rebuffer_penalty), float(self.conv.smooth_penalty),
               float(self.conv.payload_fraction), float(self.conv.drain_quantum_ms), bool(self.conv.wrap_time_zero),
               r.delay_ms, r.sleep_ms, r.buffer_s, r.rebuffer_s, r.chunk_size_bytes, r.next_sizes_bytes,
               r.chunks_remaining, r.end_of_video, r.reward, r.chunk_index, r.bitrate_mbps, r.bitrate_change_mbps)
        ended = r.end_of_video & act
        if ended.any():
            if self.autoreset:
                self.reset(ended)
                r.next_sizes_bytes[ended] = self.sizes[ended, :, 0]
            else:
                self.done |= ended
        return r

    def _kernel(self, n_active: int):
        """The step kernel for a step of ``n_active`` downloads: compiled or its plain Python (``engine``)."""
        global _interpreted_left
        if self.engine == "python" or not numba_available():
            return _step_kernel.py_func
        if self.engine == "auto" and "numba" not in sys.modules and n_active <= _interpreted_left:
            _interpreted_left -= n_active
            return _step_kernel.py_func
        return _step_kernel

    def current_state(self) -> dict[str, np.ndarray]:
        """Position of every environment: chunk index of the next chunk, buffer (s), trace pointer."""
        return {"next_chunk": self.chunk_idx.copy(), "buffer_s": self.buffer_ms / 1000.0, "ptr": self.ptr.copy(),
                "last_time_s": self.last_time_s.copy(), "trace_id": self.tr_id.copy()}
