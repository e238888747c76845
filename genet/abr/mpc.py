"""RobustMPC (genet-simulators.md §2.2): throughput predictor and 5-chunk horizon search, batched.

Predictor, per environment, after each chunk (all three references agree):
sample ``w = size_bytes / delay_ms / 1000`` (MB/s); error of the previous
estimate ``|est - w| / w`` (0 without one); harmonic mean ``hm`` of the last
<= 5 samples; ``future_bw = hm / (1 + max(last <= 5 errors))``; ``est = hm``.

Horizon search: every combination of qualities for the next ``N = min(5,
chunks left)`` chunks is scored with ``dt = size / 1e6 / future_bw``,
rebuffer ``max(dt - buf, 0)``, ``buf = max(buf - dt, 0) + chunk_length``,
reward ``sum(b/1000 - mu * rebuffer - smooth * |b - b_prev|/1000)``; the
best (ties: the later combination in ``itertools.product`` order, as the
references' ``>=``) gives the next quality. Two implementations that must
agree: :func:`plan_numpy` vectorised over environments x all 6^5 combinations,
and :func:`plan_numba`, which walks the same combinations in the same order
but reuses each prefix's partial sums (an odometer over the first N-1
positions, the last position scanned in an inner loop: 9,330 instead of
38,880 chunk evaluations per decision) — the fast path. Both compute every
term with the references' operations in the references' order, so ties
resolve identically.

Reference quirks (§2.2 item 5 and 7), both off by default:

* ``lookahead_offset=True``: Pensieve / Genet ABR-B's off-by-one look-ahead
  (chunk sizes taken from chunk k+1 on, where k is the next chunk; indices
  past the size file count as 0 bytes). Genet ABR-A (the compatibility mode's
  reference) indexes correctly, so compatibility mode leaves it off too.
* ``share_predictor_state=True``: the error/estimate history is never cleared
  at a new video (the references keep it in module globals; here it persists
  per environment slot, which equals the references when one slot plays the
  traces one after another). The reference numbers in issue 3 were measured
  with the state reset at every trace, which is what compatibility mode does.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import itertools

import numpy as np

from genet.abr.jit import lazy_njit as _lazy_njit
from genet.abr.jit import numba_available
from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY

HORIZON = 5
WINDOW = 5


def all_combos(n_levels: int = 6, horizon: int = HORIZON) -> np.ndarray:
    """(n_levels**horizon, horizon) combinations in itertools.product order."""
    return np.array(list(itertools.product(range(n_levels), repeat=horizon)), dtype=np.int64)


@_lazy_njit
def plan_numba(buffer_s, last_q, future_bw, first_idx, horizon, sizes, chunk_s, bitrates_kbps, mu, smooth,
               jump_only):
    """Best first quality per environment; sizes[i, level, chunk] must cover first_idx + horizon."""
    n = buffer_s.shape[0]
    n_levels = bitrates_kbps.shape[0]
    out = np.zeros(n, dtype=np.int64)
    digits = np.zeros(HORIZON, dtype=np.int64)
    bufs = np.zeros(HORIZON)
    rews = np.zeros(HORIZON)
    feas = np.zeros(HORIZON, dtype=np.bool_)
    # per-level terms, computed with the same operations as the per-combination formula
    gain = np.empty(n_levels)
    switch = np.empty((n_levels, n_levels))
    for q in range(n_levels):
        gain[q] = bitrates_kbps[q] / 1000.0
        for lq in range(n_levels):
            switch[q, lq] = smooth * abs(bitrates_kbps[q] - bitrates_kbps[lq]) / 1000.0
    dts = np.empty((HORIZON, n_levels))
    for i in range(n):
        N = horizon[i]
        if N <= 0:
            out[i] = 0
            continue
        fb = future_bw[i]
        for d in range(N):
            for q in range(n_levels):
                dts[d, q] = sizes[i, q, first_idx[i] + d] / 1000000.0 / fb
        cs = chunk_s[i]
        best = -100000000.0
        best_first = 0
        P = N - 1  # positions enumerated by the odometer; the last one is scanned in the inner loop
        for d in range(P):
            digits[d] = 0
        j = 0
        while True:
            for d in range(j, P):
                q = digits[d]
                if d == 0:
                    pb = buffer_s[i]
                    pr = 0.0
                    lq = last_q[i]
                    pf = True
                else:
                    pb = bufs[d - 1]
                    pr = rews[d - 1]
                    lq = digits[d - 1]
                    pf = feas[d - 1]
                if jump_only and abs(q - lq) > 1:
                    pf = False
                dt = dts[d, q]
                if pb < dt:
                    rews[d] = pr + (gain[q] - mu * (dt - pb) - switch[q, lq])
                    bufs[d] = cs
                else:
                    rews[d] = pr + (gain[q] - mu * 0.0 - switch[q, lq])
                    bufs[d] = (pb - dt) + cs
                feas[d] = pf
            if P == 0:
                pb = buffer_s[i]
                pr = 0.0
                lq = last_q[i]
                pf = True
            else:
                pb = bufs[P - 1]
                pr = rews[P - 1]
                lq = digits[P - 1]
                pf = feas[P - 1]
            if pf:
                for q in range(n_levels):
                    if jump_only and abs(q - lq) > 1:
                        continue
                    dt = dts[P, q]
                    if pb < dt:
                        r = pr + (gain[q] - mu * (dt - pb) - switch[q, lq])
                    else:
                        r = pr + (gain[q] - mu * 0.0 - switch[q, lq])
                    if r >= best:
                        best = r
                        best_first = digits[0] if P > 0 else q
            j = P - 1
            while j >= 0:
                digits[j] += 1
                if digits[j] < n_levels:
                    break
                digits[j] = 0
                j -= 1
            if j < 0:
                break
        out[i] = best_first
    return out


def plan_numpy(buffer_s, last_q, future_bw, first_idx, horizon, sizes, chunk_s, bitrates_kbps, mu, smooth,
               jump_only=False, combos: np.ndarray | None = None) -> np.ndarray:
    """Same as :func:`plan_numba`, vectorised over environments x all combinations (numpy)."""
    n_levels = len(bitrates_kbps)
    combos = all_combos(n_levels) if combos is None else combos
    br = np.asarray(bitrates_kbps, dtype=np.float64)
    n = len(buffer_s)
    env = np.arange(n)[:, None]
    buf = np.repeat(np.asarray(buffer_s, dtype=np.float64)[:, None], len(combos), axis=1)
    rew = np.zeros_like(buf)
    feasible = np.ones_like(buf, dtype=bool)
    last = np.repeat(np.asarray(last_q, dtype=np.int64)[:, None], len(combos), axis=1)
    fb = np.asarray(future_bw, dtype=np.float64)[:, None]
    for d in range(HORIZON):
        live = (d < np.asarray(horizon))[:, None]
        q = combos[None, :, d]
        dt = sizes[env, q, (np.asarray(first_idx) + d)[:, None]] / 1000000.0 / fb
        rb = np.where(buf < dt, dt - buf, 0.0)
        nb = np.where(buf < dt, 0.0, buf - dt) + np.asarray(chunk_s)[:, None]
        r = br[q] / 1000.0 - mu * rb - smooth * np.abs(br[q] - br[last]) / 1000.0
        if jump_only:
            feasible &= ~live | (np.abs(q - last) <= 1)
        rew = np.where(live, rew + r, rew)
        buf = np.where(live, nb, buf)
        last = np.where(live, q, last)
    rew = np.where(feasible, rew, -np.inf)
    rev_best = np.argmax(rew[:, ::-1], axis=1)
    choice = combos[len(combos) - 1 - rev_best, 0]
    return np.where(np.asarray(horizon) > 0, choice, 0)


@_lazy_njit
def predict_kernel(sample, win, win_n, errs, err_n, est, has_est, out_bw):
    """Update the RobustMPC predictor with one throughput sample per environment (MB/s)."""
    n = sample.shape[0]
    for i in range(n):
        if sample[i] <= 0.0:  # inactive environment
            continue
        w = sample[i]
        # window of the last WINDOW samples (oldest first)
        if win_n[i] < WINDOW:
            win[i, win_n[i]] = w
            win_n[i] += 1
        else:
            for j in range(WINDOW - 1):
                win[i, j] = win[i, j + 1]
            win[i, WINDOW - 1] = w
        e = 0.0
        if has_est[i]:
            e = abs(est[i] - w) / w
        if err_n[i] < WINDOW:
            errs[i, err_n[i]] = e
            err_n[i] += 1
        else:
            for j in range(WINDOW - 1):
                errs[i, j] = errs[i, j + 1]
            errs[i, WINDOW - 1] = e
        s = 0.0
        for j in range(win_n[i]):
            s += 1.0 / win[i, j]
        hm = 1.0 / (s / win_n[i])
        m = errs[i, 0]
        for j in range(1, err_n[i]):
            if errs[i, j] > m:
                m = errs[i, j]
        out_bw[i] = hm / (1.0 + m)
        est[i] = hm
        has_est[i] = True


class RobustMPC:
    """RobustMPC as a batched rule-based policy over the ``abr.raw`` observation.

    rebuffer_penalty: mu used in planning (use the simulator's: 4.3 default, 10 Genet)
    smooth_penalty: smoothness weight (1.0)
    lookahead_offset: reproduce Pensieve/ABR-B's off-by-one look-ahead (False)
    share_predictor_state: keep the predictor's error history across videos (False)
    jump_only: consider only combinations changing by at most one level per chunk (False)
    planner: "auto" (numba when installed, else numpy), "numba" (fast) or "numpy" (vectorised over combinations)

    Before use, :meth:`bind` gives it what the sessions play (:class:`genet.abr.video.SessionVideos`:
    the bitrate ladder, chunk-size tables, ``n_chunks``, chunk lengths) — plans score the video's own ladder.
    """

    name = "mpc"

    def __init__(self, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE, smooth_penalty: float = SMOOTH_PENALTY,
                 lookahead_offset: bool = False,
                 share_predictor_state: bool = False, jump_only: bool = False, planner: str = "auto") -> None:
        from genet.abr.observations import RAW
        self.spec = RAW.policy_spec()
        self.mu = float(rebuffer_penalty)
        self.smooth = float(smooth_penalty)
        self.lookahead_offset = lookahead_offset
        self.share_predictor_state = share_predictor_state
        self.jump_only = jump_only
        if planner == "auto":
            planner = "numba" if numba_available() else "numpy"
        if planner not in ("numba", "numpy"):
            raise BadInputError(f"RobustMPC planner must be 'auto', 'numba' or 'numpy', got {planner!r}")
        self.planner = planner
        self.bitrates_kbps: np.ndarray | None = None  # the ladder comes with bind()
        self._combos = None
        self.n = 0

    def bind(self, videos) -> None:
        """What the sessions play (:class:`genet.abr.video.SessionVideos`): the bitrate ladder the plans
        score, chunk sizes (n_envs, levels, >= n_chunks), chunks per video and chunk length (s) per
        session; ``source_sizes_bytes`` (levels, n) is used past a video's end by ``lookahead_offset``."""
        sizes = np.asarray(videos.chunk_sizes_bytes, dtype=np.float64)
        n, levels, _ = sizes.shape
        ladder = np.asarray(videos.bitrates_kbps, dtype=np.float64)
        if ladder.shape != (levels,):
            raise BadInputError(f"RobustMPC.bind: {ladder.shape[0]} bitrates for {levels} levels")
        if self.bitrates_kbps is None or not np.array_equal(ladder, self.bitrates_kbps):
            self.bitrates_kbps = ladder
            self._combos = all_combos(levels) if self.planner == "numpy" else None
        source_sizes = videos.source_sizes_bytes
        n_chunks = np.asarray(videos.n_chunks, dtype=np.int64)
        width = int(n_chunks.max()) + HORIZON + 2
        padded = np.zeros((n, levels, width))
        for i in range(n):
            c = int(n_chunks[i])
            padded[i, :, :c] = sizes[i, :, :c]
            if self.lookahead_offset and source_sizes is not None:
                extra = min(source_sizes.shape[1], width) - c
                if extra > 0:  # Pensieve's 49th size-file row is visible to the off-by-one look-ahead
                    padded[i, :, c:c + extra] = source_sizes[:, c:c + extra]
        self.sizes = padded
        self.n_chunks = n_chunks
        self.chunk_s = np.broadcast_to(np.asarray(videos.chunk_length_s, dtype=np.float64), (n,)).copy()
        if self.n != n:
            self.n = n
            self.win = np.zeros((n, WINDOW))
            self.win_n = np.zeros(n, dtype=np.int64)
            self.errs = np.zeros((n, WINDOW))
            self.err_n = np.zeros(n, dtype=np.int64)
            self.est = np.zeros(n)
            self.has_est = np.zeros(n, dtype=bool)
            self.future_bw = np.zeros(n)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """New videos in ``mask``: clear the sample window (and, unless shared, the error history)."""
        m = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.win[m] = 0.0
        self.win_n[m] = 0
        if not self.share_predictor_state:
            self.errs[m] = 0.0
            self.err_n[m] = 0
            self.est[m] = 0.0
            self.has_est[m] = False

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float64)
        if obs.shape != (self.n, self.spec.observation_shape[0]):
            raise BadInputError(f"RobustMPC: observations of shape {obs.shape}, expected ({self.n}, "
                             f"{self.spec.observation_shape[0]}) (abr.raw); call bind(videos) first")
        act = np.ones(self.n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        last_q = obs[:, 0].astype(np.int64)
        buffer_s = obs[:, 1]
        sample = np.where(act, obs[:, 2], 0.0)
        predict_kernel(sample, self.win, self.win_n, self.errs, self.err_n,
                       self.est, self.has_est, self.future_bw)
        k = obs[:, 5].astype(np.int64)  # next chunk index
        horizon = np.clip(self.n_chunks - k, 0, HORIZON)
        horizon = np.where(act, horizon, 0)
        first = k + (1 if self.lookahead_offset else 0)
        first = np.minimum(first, self.sizes.shape[2] - HORIZON)
        fb = np.where(self.future_bw > 0, self.future_bw, 1e-9)
        if self.planner == "numba":
            return plan_numba(buffer_s, last_q, fb, first, horizon, self.sizes, self.chunk_s, self.bitrates_kbps,
                              self.mu, self.smooth, self.jump_only)
        return plan_numpy(buffer_s, last_q, fb, first, horizon, self.sizes, self.chunk_s, self.bitrates_kbps,
                          self.mu, self.smooth, self.jump_only, self._combos)
