"""The ABR experience pool: logged sessions as (observation, action, reward, done) episodes, for offline RL.

Offline agents (the Decision Transformer, ``genet train abr --agent dt``, genet/abr/dt.py) learn from a pool
written from runs the product already makes, all through the one observation code
(genet/abr/observations.py), so a real path's log is training data as a simulated session is:

* **simulator evaluations** (:func:`pool_from_simulation`, ``genet pool abr --policy mpc,FILE.onnx --traces
  DIR -o POOL.npz``): the policies of the ABR registry play one video per trace in the batched simulator (as
  ``genet eval abr``: :func:`genet.abr.evaluate.evaluate`, whose ``on_step`` hook hands every chunk here);
* **player logs** (:func:`pool_from_player_log`, ``genet pool abr --from-runs DIR -o POOL.npz``): the
  headless player's per-chunk JSON-lines log (player/client.py), which ``genet emulate abr`` writes per session
  (``OUT/sessions/<policy>/<trace>-r<k>/player.jsonl``) and a deploy campaign's ABR runs fetch back
  (``runs/<run>/a<k>/run.jsonl``). A chunk record holds what the player's decider fed the observation
  (``quality``, ``bytes``, ``download_ms``, ``buffer_after_s``, ``rebuffer_s``, ``chunk_index``) and the
  chunk's QoE (``qoe``); the next chunk's sizes at every level, the remaining row of the observation, come from
  the video's chunk table, which the log does not hold: ``--video`` (default: the run folder's
  ``video-sized`` table, which ``genet emulate abr`` writes, else EnvivioDash3). With the table the
  observations are rebuilt exactly as the player built them (:class:`~genet.abr.observations.Observer`).

An **episode** is one session's decisions. Decision ``t`` sees the observation after chunk ``t`` (the
``abr.pensieve-6x8`` state, whatever layout the logged policy itself read), its action is the quality index
of chunk ``t + 1`` (``abr.direct6``) and its reward is chunk ``t + 1``'s QoE (:func:`genet.abr.qoe.chunk_qoe`
with the pool's weights); ``done`` marks the decision that fetched the last chunk. A video of ``C`` chunks
gives ``C - 1`` decisions: the first chunk's quality is fixed (the conventions' first quality), so its QoE is
in no episode's return. A session cut short (a failed emulated run) gives the decisions it logged, its last
one ``done``.

File format (one ``.npz`` per pool, written atomically; numpy arrays, no pickles):

===================  ==============  ===========================================================
key                  array           meaning
===================  ==============  ===========================================================
observations         (N, 6, 8) f32   the ``abr.pensieve-6x8`` observation of each decision
actions              (N,) int64      the quality index chosen for the next chunk (``abr.direct6``)
rewards              (N,) float64    the QoE of that chunk
dones                (N,) bool       the episode's last decision
episode_sources      (E,) str        one label per episode, in order ("sim:mpc:trace_1", a log path)
meta                 () str          JSON: format, version, layout, action_semantics,
                                     rebuffer_penalty, smooth_penalty, max_bitrate_kbps
===================  ==============  ===========================================================

Episodes are consecutive runs of rows ending at a ``done``. :func:`read_pool` checks all of it and names the
file and the key in a one-line error; :func:`concat_pools` joins pools of the same layout and QoE weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from foundation.errors import BadInputError

#: ``meta["format"]`` of a pool file, and its version.
POOL_FORMAT = "genet-abr-pool"
POOL_VERSION = 1
#: The observation layout and action semantics of every pool (names of genet/abr/observations.py).
POOL_LAYOUT = "abr.pensieve-6x8"
POOL_ACTIONS = "abr.direct6"
ARRAY_KEYS = ("observations", "actions", "rewards", "dones", "episode_sources")


class PoolFormatError(BadInputError):
    """A file that is not a readable experience pool (the message names the file and what is wrong)."""


@dataclass
class ExperiencePool:
    """Episodes of decisions (see the module docstring for the arrays and their meaning).

    observations: (N, 6, 8) float32; actions: (N,) int64; rewards: (N,) float64; dones: (N,) bool
    episode_sources: (E,) one label per episode
    rebuffer_penalty / smooth_penalty: the QoE weights of ``rewards`` (4.3 / 1.0 in Pensieve's conventions)
    max_bitrate_kbps: row 0's normaliser of the observations (the ladder's top: 4300 for EnvivioDash3)
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    episode_sources: np.ndarray
    rebuffer_penalty: float
    smooth_penalty: float
    max_bitrate_kbps: float

    def __post_init__(self) -> None:
        self.observations = np.ascontiguousarray(self.observations, np.float32)
        self.actions = np.asarray(self.actions, np.int64)
        self.rewards = np.asarray(self.rewards, np.float64)
        self.dones = np.asarray(self.dones, bool)
        self.episode_sources = np.asarray([str(s) for s in self.episode_sources], dtype=str)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def meta(self) -> dict[str, Any]:
        return {"format": POOL_FORMAT, "version": POOL_VERSION, "layout": POOL_LAYOUT,
                "action_semantics": POOL_ACTIONS, "rebuffer_penalty": float(self.rebuffer_penalty),
                "smooth_penalty": float(self.smooth_penalty), "max_bitrate_kbps": float(self.max_bitrate_kbps)}

    def episode_bounds(self) -> list[tuple[int, int]]:
        """(start, stop) row ranges of the episodes, in order."""
        ends = np.flatnonzero(self.dones) + 1
        starts = np.concatenate([[0], ends[:-1]])
        return list(zip(starts.tolist(), ends.tolist()))

    def episode_returns(self) -> np.ndarray:
        """Each episode's return (sum of its rewards), float64 (E,)."""
        return np.array([self.rewards[a:b].sum() for a, b in self.episode_bounds()], np.float64)

    def returns_to_go(self) -> np.ndarray:
        """(N,) the return from each decision to its episode's end (inclusive)."""
        out = np.empty_like(self.rewards)
        for a, b in self.episode_bounds():
            out[a:b] = np.cumsum(self.rewards[a:b][::-1])[::-1]
        return out

    def check(self, where: str = "pool") -> "ExperiencePool":
        """Raise :class:`PoolFormatError` (naming ``where``) unless the arrays are consistent."""
        n = len(self)
        if self.observations.shape != (n, 6, 8):
            raise PoolFormatError(f"{where}: observations have shape {self.observations.shape}, expected "
                                  f"({n}, 6, 8) ({POOL_LAYOUT})")
        for key in ("rewards", "dones"):
            if getattr(self, key).shape != (n,):
                raise PoolFormatError(f"{where}: {key} has shape {getattr(self, key).shape}, expected ({n},)")
        if n == 0:
            raise PoolFormatError(f"{where}: the pool holds no decisions")
        if not self.dones[-1]:
            raise PoolFormatError(f"{where}: the last row is not an episode's end (dones[-1] is False)")
        if int(self.dones.sum()) != self.episode_sources.shape[0]:
            raise PoolFormatError(f"{where}: {int(self.dones.sum())} episodes (dones) but "
                                  f"{self.episode_sources.shape[0]} episode_sources")
        if np.any((self.actions < 0) | (self.actions > 5)):
            raise PoolFormatError(f"{where}: actions outside [0, 5] ({POOL_ACTIONS})")
        if not (np.all(np.isfinite(self.rewards)) and np.all(np.isfinite(self.observations))):
            raise PoolFormatError(f"{where}: rewards or observations hold NaN or infinity")
        return self


def write_pool(pool: ExperiencePool, path: str | os.PathLike) -> Path:
    """Write ``pool`` to ``path`` (``.npz``; atomically: a crash leaves the old file or none)."""
    import tempfile

    from foundation.atomic import publish
    pool.check(str(path))
    path = Path(path)
    if path.suffix != ".npz":
        raise BadInputError(f"{path}: pool files are .npz (numpy archives); got suffix {path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, observations=pool.observations, actions=pool.actions, rewards=pool.rewards,
                            dones=pool.dones, episode_sources=pool.episode_sources,
                            meta=np.array(json.dumps(pool.meta)))
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def read_pool(path: str | os.PathLike) -> ExperiencePool:
    """Read a pool file; a one-line :class:`PoolFormatError` naming the file when it is not one."""
    import zipfile
    path = Path(path)
    if not path.is_file():
        raise PoolFormatError(f"{path}: no such pool file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise PoolFormatError(f"{path}: not an experience pool (.npz written by `genet pool abr`): "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    missing = [k for k in (*ARRAY_KEYS, "meta") if k not in data]
    if missing:
        raise PoolFormatError(f"{path}: not an experience pool: lacks {', '.join(missing)}")
    try:
        meta = json.loads(str(data["meta"]))
    except ValueError:
        raise PoolFormatError(f"{path}: meta is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != POOL_FORMAT:
        raise PoolFormatError(f"{path}: meta.format is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                              f"not {POOL_FORMAT!r}")
    if meta.get("version") != POOL_VERSION or meta.get("layout") != POOL_LAYOUT \
            or meta.get("action_semantics") != POOL_ACTIONS:
        raise PoolFormatError(f"{path}: a version {meta.get('version')} pool of {meta.get('layout')} / "
                              f"{meta.get('action_semantics')}; this build reads version {POOL_VERSION} of "
                              f"{POOL_LAYOUT} / {POOL_ACTIONS}")
    try:
        pool = ExperiencePool(data["observations"], data["actions"], data["rewards"], data["dones"],
                              data["episode_sources"], float(meta["rebuffer_penalty"]), float(meta["smooth_penalty"]),
                              float(meta["max_bitrate_kbps"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise PoolFormatError(f"{path}: malformed pool ({type(exc).__name__}: {exc})") from None
    return pool.check(str(path))


def concat_pools(pools: Sequence[ExperiencePool], where: str = "pools") -> ExperiencePool:
    """One pool of the episodes of ``pools`` (same QoE weights and observation normaliser, else an error)."""
    if not pools:
        raise BadInputError(f"{where}: no pool given")
    first = pools[0]
    for p in pools[1:]:
        if (p.rebuffer_penalty, p.smooth_penalty, p.max_bitrate_kbps) != (
                first.rebuffer_penalty, first.smooth_penalty, first.max_bitrate_kbps):
            raise BadInputError(f"{where}: pools of different QoE weights / bitrate normalisers cannot be joined "
                                f"({first.rebuffer_penalty}, {first.smooth_penalty}, {first.max_bitrate_kbps} vs "
                                f"{p.rebuffer_penalty}, {p.smooth_penalty}, {p.max_bitrate_kbps})")
    return ExperiencePool(np.concatenate([p.observations for p in pools]),
                          np.concatenate([p.actions for p in pools]), np.concatenate([p.rewards for p in pools]),
                          np.concatenate([p.dones for p in pools]),
                          np.concatenate([p.episode_sources for p in pools]), first.rebuffer_penalty,
                          first.smooth_penalty, first.max_bitrate_kbps)


def read_pools(paths: str | Sequence[str | os.PathLike]) -> ExperiencePool:
    """The pools of ``paths`` (a list, or one comma-separated string) joined into one."""
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p]
    return concat_pools([read_pool(p) for p in paths], where=", ".join(str(p) for p in paths))


class _EpisodeBuilder:
    """Collects one session's decisions: :meth:`chunk` after every downloaded chunk (its observation, its
    reward, whether it was the last), :meth:`decide` with the next chunk's quality."""

    def __init__(self) -> None:
        self.obs: list[np.ndarray] = []
        self.actions: list[int] = []
        self.rewards: list[float] = []

    def chunk(self, observation: np.ndarray, reward: float, first: bool) -> None:
        if not first:  # the reward of the chunk the previous decision chose
            self.rewards.append(float(reward))
        self.obs.append(np.asarray(observation, np.float32))

    def decide(self, quality: int) -> None:
        self.actions.append(int(quality))

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(observations, actions, rewards) of the decisions whose chunk came back; None when there is none."""
        n = min(len(self.actions), len(self.rewards))
        if n == 0:
            return None
        return np.stack(self.obs[:n]), np.array(self.actions[:n], np.int64), np.array(self.rewards[:n])


def _pool_of(episodes: list[tuple[str, tuple]], rebuffer_penalty: float, smooth_penalty: float,
             max_bitrate_kbps: float, where: str) -> ExperiencePool:
    kept = [(src, ep) for src, ep in episodes if ep is not None]
    if not kept:
        raise BadInputError(f"{where}: no session with at least one decision and its chunk")
    dones = []
    for _, (o, a, r) in kept:
        d = np.zeros(len(a), bool)
        d[-1] = True
        dones.append(d)
    return ExperiencePool(np.concatenate([ep[0] for _, ep in kept]), np.concatenate([ep[1] for _, ep in kept]),
                          np.concatenate([ep[2] for _, ep in kept]), np.concatenate(dones),
                          np.array([src for src, _ in kept]), rebuffer_penalty, smooth_penalty,
                          max_bitrate_kbps).check(where)


def pool_from_simulation(policies: Sequence[Any], traces: Sequence[Any], video: Any, conv: Any = None,
                         params: Any = None, labels: Sequence[str] | None = None, deterministic: bool = True,
                         seed: int | None = None) -> ExperiencePool:
    """The episodes of ``policies`` (registry names, ``.onnx`` paths or policy objects) each playing one video per
    trace in the simulator (:func:`genet.abr.evaluate.evaluate`, ``conv``: Pensieve's conventions by default)."""
    from genet.abr.evaluate import evaluate, policy_label
    from genet.abr.observations import PENSIEVE_6X8, StateBuilder
    from genet.abr.params import PENSIEVE
    conv = conv or PENSIEVE
    episodes: list[tuple[str, Any]] = []
    max_bitrate = None
    for k, policy in enumerate(policies):
        label = labels[k] if labels else policy_label(policy)
        state: dict[str, Any] = {}

        def on_step(sim, r, next_quality, state=state) -> None:
            if not state:
                state["builder"] = StateBuilder(PENSIEVE_6X8, sim.n_envs, float(np.max(sim.bitrates_kbps)))
                state["eps"] = [_EpisodeBuilder() for _ in range(sim.n_envs)]
                state["max"] = float(np.max(sim.bitrates_kbps))
            obs = state["builder"].update(r, sim.bitrates_kbps)
            for i in np.flatnonzero(r.active).tolist():
                ep = state["eps"][i]
                ep.chunk(obs[i], r.reward[i], first=not ep.obs)
                if not r.end_of_video[i]:
                    ep.decide(next_quality[i])

        evaluate(policy, traces, video, conv, params=params, label=label, deterministic=deterministic, seed=seed,
                 on_step=on_step)
        max_bitrate = state["max"]
        for i, tr in enumerate(traces):
            episodes.append((f"sim:{label}:{tr.name or f'trace{i}'}", state["eps"][i].finish()))
    return _pool_of(episodes, conv.rebuffer_penalty, conv.smooth_penalty, max_bitrate, "simulation")


def pool_from_player_log(log_path: str | os.PathLike, video: Any, smooth_penalty: float | None = None
                         ) -> ExperiencePool:
    """The episode of one player log (player/client.py's JSON lines: ``genet emulate abr``'s ``player.jsonl``,
    a deploy run's ``run.jsonl``), its observations rebuilt by :class:`~genet.abr.observations.Observer` from
    the logged measurements and ``video``'s chunk table (the measurement the player's decider made:
    player/abr.py ``AbrDecider.measurement``). The QoE weights are the log's (``rebuffer_penalty`` in its
    session record; ``smooth_penalty``: 1.0 unless given); rewards are the logged per-chunk ``qoe``."""
    from genet.abr.observations import PENSIEVE_6X8, Observer, chunk_measurement
    from genet.abr.qoe import SMOOTH_PENALTY
    from genet.abr.video import Video
    log_path = Path(log_path)
    session, chunks = None, []
    with open(log_path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:  # a cut-short last line (a killed run)
                continue
            if isinstance(rec, dict) and rec.get("type") == "session":
                session = rec
            elif isinstance(rec, dict) and rec.get("type") == "chunk":
                chunks.append(rec)
    if session is None:
        raise BadInputError(f"{log_path}: not a player log (no session record)")
    ladder = [float(b) for b in session.get("bitrates_kbps", [])]
    if ladder != [float(b) for b in video.bitrates_kbps]:
        raise BadInputError(f"{log_path}: the log's ladder {ladder} is not the video's {list(video.bitrates_kbps)} "
                            f"({video.source}); pass the video the run served (--video)")
    n_chunks = int(session.get("n_chunks") or video.n_source_chunks)
    if n_chunks > video.n_source_chunks:
        raise BadInputError(f"{log_path}: {n_chunks} chunks, but the video {video.source} has "
                            f"{video.n_source_chunks}")
    if n_chunks < video.n_source_chunks:  # the player played (and measured against) the first n_chunks
        video = Video(video.bitrates_kbps, video.chunk_sizes_bytes[:, :n_chunks], video.chunk_length_s, video.source)
    observer = Observer(PENSIEVE_6X8, video.bitrates_kbps)
    ep = _EpisodeBuilder()
    try:
        for rec in sorted(chunks, key=lambda c: int(c["chunk_index"])):
            k = int(rec["chunk_index"])
            m = chunk_measurement(video.chunk_sizes_bytes, k, int(rec["quality"]), float(rec["buffer_after_s"]),
                                  float(rec["bytes"]), float(rec["download_ms"]), float(rec["rebuffer_s"]))
            if k > 0:
                ep.decide(int(rec["quality"]))  # the previous decision's choice
            ep.chunk(observer.observe(m)[0], float(rec["qoe"]), first=k == 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{log_path}: malformed chunk record ({type(exc).__name__}: {exc})") from None
    penalty = float(session.get("rebuffer_penalty", 4.3))
    return _pool_of([(str(log_path), ep.finish())], penalty,
                    SMOOTH_PENALTY if smooth_penalty is None else float(smooth_penalty),
                    float(max(video.bitrates_kbps)), str(log_path))


def player_logs(root: str | os.PathLike) -> list[Path]:
    """The player logs under ``root`` (a log file itself, or a run folder: ``genet emulate abr``'s
    ``sessions/*/*/player.jsonl``, a deploy campaign's ``runs/*/*/run.jsonl`` of ABR runs): every ``*.jsonl`` whose
    first record is a player session record."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such run folder or log")
    out = []
    for p in sorted(root.rglob("*.jsonl")):
        try:
            with open(p, encoding="utf-8") as fh:
                first = json.loads(fh.readline() or "null")
        except (OSError, ValueError):
            continue
        if isinstance(first, dict) and first.get("type") == "session" and "bitrates_kbps" in first:
            out.append(p)
    return out


def pool_from_runs(roots: Sequence[str | os.PathLike], video: Any = None) -> ExperiencePool:
    """The episodes of every player log under ``roots`` (see :func:`player_logs`). ``video``: the video the runs
    served (a Video or a ``--video`` spec); None: each run folder's ``video-sized`` table (``genet emulate abr``'s)
    when it has one, else EnvivioDash3."""
    from genet.abr.video import Video, resolve_video
    pools = []
    for root in roots:
        logs = player_logs(root)
        if not logs:
            raise BadInputError(f"{root}: no player logs (player.jsonl / run.jsonl with a session record)")
        if isinstance(video, Video):
            v = video
        elif video is not None:
            v = resolve_video(video)
        else:
            sized = Path(root) / "video-sized"
            v = resolve_video(sized if (sized / "video.json").is_file() else None)
        pools += [pool_from_player_log(p, v) for p in logs]
    return concat_pools(pools, where=", ".join(str(r) for r in roots))


def describe(pool: ExperiencePool) -> str:
    """One line: episodes, decisions, return statistics."""
    ret = pool.episode_returns()
    return (f"{len(ret)} episodes, {len(pool)} decisions; episode return mean {ret.mean():.2f}, "
            f"median {np.median(ret):.2f}, max {ret.max():.2f}")


__all__ = ["ExperiencePool", "PoolFormatError", "POOL_FORMAT", "POOL_LAYOUT", "POOL_ACTIONS", "write_pool",
           "read_pool", "read_pools", "concat_pools", "pool_from_simulation", "pool_from_player_log",
           "pool_from_runs", "player_logs", "describe"]
