"""Rollout workers: one training run on several cores (or a Ray cluster), the same PPO update.

With ``rollout_workers`` N > 1 a use case splits its ``n_envs`` environments into N slices
(:func:`shard_sizes`); each slice lives in a worker (a local process by default, a Ray actor when
a Ray address is given) with its own copy of the network. One PPO update is then:

1. **collect** — every worker loads the current weights and steps its slice for the rollout
   (the use case's own ``collect``), then computes its slice's values, returns and advantages
   (discounted returns and GAE are per-environment columns, so a slice needs nothing from the
   others); it returns the rewards and a few sums (for the batch mean/std of the advantages and the
   explained variance);
2. **update** — ABR: data-parallel PPO: for every gradient step the parent sends the weights and each
   worker the rows of the minibatch it holds; the workers return the gradient of their part of the
   minibatch-mean loss; the parent adds them up and takes the optimiser step (Adam in the parent;
   the parent's optimiser state is the checkpointed one). The rollout *and* the update run on every
   worker's core. Local workers read the weights from and write their gradient to files the parent
   maps too (:class:`SharedVectors`, under /dev/shm): 1.6 instead of 3.3-4.0 ms per gradient step
   outside the workers' own compute for the 0.8-MB Pensieve network.
   CC: the parent fetches the slices' tensors (:meth:`WorkerPool.training_data`) and runs the
   one-process update on them. Aurora's network is so small (two hidden layers of 32 and 16) that a
   gradient step costs about the same on 300 rows as on 600; its 144 steps per update (12 epochs of
   minibatches of 600) each paid a round trip to the workers, so the data-parallel update took twice the
   one-process one (0.64 vs 0.31 s; ``benchmarks/cc_training_speed.py``, 2026-12-02).

Determinism: slice i's environments are seeded from ``SeedSequence([seed, N, i])`` (:func:`shard_seed`),
the minibatch order comes from the parent's torch generator, and workers run torch on one thread, so
the same seed and the same N give the same result on the local processes and on Ray. N = 1 is the
use case's in-process path, unchanged (a different N samples different environments and sums the
gradients in another order, so it is another, equally valid run).

Engines: :class:`LocalEngine` (``multiprocessing`` forkserver processes, the default) and
:class:`RayEngine` (``ray`` actors; ``pip install 'genet-testbed[cluster]'``). Both drive the same
:class:`ShardWorker`.

A use case that supports workers provides ``shard_use_case(i, n)`` (a picklable copy whose config holds
slice i's environments and one torch thread), ``collect(agent, distribution)`` and
``prepare_shard(agent, batch)`` (see :class:`ShardWorker`).
"""

from __future__ import annotations

import os
import pickle
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from foundation.errors import BadInputError, GenetRuntimeError


def worker_count(requested: int, n_envs: int) -> int:
    """``requested`` rollout workers (0 = every core, at most ``n_envs``); more than ``n_envs`` is an error."""
    if requested < 0:
        raise BadInputError(f"rollout workers must be >= 0 (0 = every core), got {requested}")
    if requested == 0:
        return max(1, min(os.cpu_count() or 1, n_envs))
    if requested > n_envs:
        raise BadInputError(f"{requested} rollout workers need at least {requested} environments (n_envs "
                            f"{n_envs}); each worker steps a slice of them")
    return requested


def shard_sizes(n_envs: int, n_workers: int) -> list[int]:
    """How many of ``n_envs`` environments each of ``n_workers`` slices holds (the first ones one more)."""
    return [n_envs // n_workers + (1 if i < n_envs % n_workers else 0) for i in range(n_workers)]


def shard_seed(seed: int, n_workers: int, index: int) -> int:
    """The rollout seed of slice ``index`` of ``n_workers`` for the run seed ``seed``."""
    return int(np.random.SeedSequence([int(seed) % 2**63, n_workers, index]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class ShardedRollout:
    """The rollout state of a run with N > 1 workers (what the agent's checkpoint holds).

    n_workers: N; shards: each worker's pickled rollout state after the last ``train`` call (None: not
    started); token: identifies that state (a worker pool holding it need not be sent it again);
    update_gen: the parent's torch generator state (minibatch order), where the use case has one
    """

    n_workers: int
    shards: list[bytes] | None = None
    token: str = ""
    update_gen: Any = None


# ------------------------------------------------------------------ the worker
class ShardWorker:
    """One slice of the environments and a copy of the network (in a process or a Ray actor)."""

    def __init__(self, use_case_blob: bytes, seed: int):
        import torch
        from genet.ppo.allocator import keep_freed_memory
        torch.set_num_threads(1)
        keep_freed_memory()
        self.use_case = pickle.loads(use_case_blob)
        self.agent = self.use_case.new_model(seed)
        self.data: dict[str, Any] | None = None
        self._maps: dict[str, np.ndarray] = {}  # SharedVectors files this worker has mapped

    def set_state(self, blob: bytes | None) -> None:
        self.agent.rollout = None if blob is None else pickle.loads(blob)
        self.data = None

    def get_state(self) -> bytes:
        return pickle.dumps(self.agent.rollout)

    def _load(self, weights: np.ndarray) -> None:
        import torch
        torch.nn.utils.vector_to_parameters(torch.from_numpy(weights), self.agent.net.parameters())

    def collect(self, weights: np.ndarray, distribution: Any, seed: int) -> dict[str, Any]:
        """Step the slice for one rollout with ``weights``; keep the training tensors, return the summary."""
        self._load(weights)
        uc = self.use_case
        if self.agent.rollout is None:
            self.agent.rollout = uc._start_rollout(distribution, seed)
        batch = uc.collect_shard(self.agent, distribution)
        self.data, summary = uc.prepare_shard(self.agent, batch)
        return summary

    def collect_shared(self, weights_path: str, n_floats: int, distribution: Any, seed: int) -> dict[str, Any]:
        """:meth:`collect` with the weights read from the parent's :class:`SharedVectors` file (a local
        worker: the 0.8-MB ABR network is not pickled to every worker on every update)."""
        return self.collect(self._mapped(weights_path, n_floats), distribution, seed)

    def trials(self, weights: np.ndarray, curriculum: Any, configs: list[dict], seed: int) -> list:
        """BO trials of the curriculum (:func:`genet.curriculum.loop.trial_score`) with ``weights``."""
        from genet.curriculum.loop import trial_score
        self._load(weights)
        return [trial_score(self.use_case, self.agent, curriculum, c, seed) for c in configs]

    def gradient_shared(self, weights_path: str, grad_path: str, n_floats: int, rows: np.ndarray, minibatch: int,
                        clip: float, dual_clip: float | None, value_coef: float,
                        entropy_weight: float) -> dict[str, float]:
        """:meth:`gradient` with the weights read from, and the gradient written to, the parent's
        :class:`SharedVectors` files (a local worker: no 2 x 0.8 MB pickled per gradient step)."""
        grad, stats = self.gradient(self._mapped(weights_path, n_floats), rows, minibatch, clip, dual_clip,
                                    value_coef, entropy_weight, out=self._mapped(grad_path, n_floats))
        return stats

    def _mapped(self, path: str, n_floats: int) -> np.ndarray:
        if path not in self._maps or self._maps[path].shape[0] != n_floats:
            self._maps[path] = np.memmap(path, np.float32, "r+", shape=(n_floats,))
        return self._maps[path]

    def training_data(self) -> dict[str, np.ndarray]:
        """This slice's training tensors of the last ``collect`` (raw advantages), as arrays: for a use case
        that runs the PPO update in the parent (:meth:`WorkerPool.training_data`)."""
        return {k: v.numpy() for k, v in self.data.items()}

    def normalize_advantages(self, mean: float, std: float) -> None:
        self.data["adv"] = (self.data["adv"] - mean) / (std + 1e-8)

    def gradient(self, weights: np.ndarray, rows: np.ndarray, minibatch: int, clip: float, dual_clip: float | None,
                 value_coef: float, entropy_weight: float,
                 out: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, float]]:
        """Gradient of this slice's share of one minibatch's mean PPO loss (rows: this slice's rows of it);
        written into ``out`` (a float32 vector: the shared gradient file) when given, else a new array."""
        import torch
        from genet.ppo.algorithm import ppo_loss_sums
        self._load(weights)
        net = self.agent.net
        net.train()
        net.zero_grad()
        d = self.data
        if len(rows) == 0:
            zero = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
            if out is not None:
                out[:] = 0.0
                return out, zero
            return np.zeros(sum(p.numel() for p in net.parameters()), np.float32), zero
        idx = torch.from_numpy(np.asarray(rows, np.int64))
        loss, stats = ppo_loss_sums(net, d["obs"][idx], d["actions"][idx], d["logp"][idx], d["adv"][idx],
                                    d["returns"][idx], clip, dual_clip, value_coef, entropy_weight, minibatch)
        loss.backward()
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in net.parameters()]
        if out is not None:  # straight into the shared file: no intermediate copy
            torch.cat(parts, out=torch.from_numpy(out))
            return out, stats
        return torch.cat(parts).numpy(), stats


# ------------------------------------------------------------------ engines
def _serve(conn) -> None:  # pragma: no cover - runs in the worker process
    """The worker process's loop: build the :class:`ShardWorker`, then answer ``(method, args)`` messages."""
    try:
        blob, seed = conn.recv()
        worker = ShardWorker(blob, seed)
        conn.send((True, None))
    except BaseException:
        conn.send((False, traceback.format_exc()))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if msg is None:
            return
        method, args = msg
        try:
            conn.send((True, getattr(worker, method)(*args)))
        except BaseException:
            conn.send((False, traceback.format_exc()))


class SharedVectors:
    """float32 vectors in files under /dev/shm (else the temp directory) that the parent and its local workers
    all map: the weights the parent writes before each gradient step and one gradient per worker."""

    def __init__(self, n_floats: int, n_workers: int):
        import tempfile
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="genet-workers-", dir=base)
        self.n_floats = n_floats
        self.weights_path = os.path.join(self.dir, "weights.f32")
        self.grad_paths = [os.path.join(self.dir, f"grad{i}.f32") for i in range(n_workers)]
        for path in (self.weights_path, *self.grad_paths):
            with open(path, "wb") as fh:
                fh.truncate(4 * n_floats)
        self.weights = np.memmap(self.weights_path, np.float32, "r+", shape=(n_floats,))
        self.grads = [np.memmap(p, np.float32, "r+", shape=(n_floats,)) for p in self.grad_paths]

    def close(self) -> None:
        import shutil
        self.weights = self.grads = None
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalEngine:
    """Worker processes on this machine: ``python -m genet.ppo.workers FD`` each, talking over a socket
    pair (a fresh interpreter: no inherited torch threads, no re-import of the caller's main module)."""

    name = "local"

    def __init__(self, blobs: Sequence[bytes], seed: int):
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        self.conns, self.procs = [], []
        self._shared: SharedVectors | None = None
        try:
            for blob in blobs:
                mine, theirs = socket.socketpair()
                fd = theirs.fileno()
                p = subprocess.Popen([sys.executable, "-m", "genet.ppo.workers", str(fd)], pass_fds=[fd], env=env)
                theirs.close()
                conn = Connection(mine.detach())
                conn.send((blob, seed))
                self.conns.append(conn)
                self.procs.append(p)
            self._gather()
        except BaseException:
            self.close()
            raise

    def _gather(self) -> list[Any]:
        out, errors = [], []
        for i, c in enumerate(self.conns):
            try:
                ok, value = c.recv()
            except (EOFError, OSError):
                ok, value = False, f"the process (pid {self.procs[i].pid}) exited"
            if ok:
                out.append(value)
            else:
                errors.append(f"rollout worker {i}: {value}")
        if errors:
            self.close()
            last = errors[0].strip().splitlines()[-1]
            raise GenetRuntimeError(f"rollout worker failed ({last}); GENET_DEBUG=1 shows more\n{errors[0]}"
                                    if os.environ.get("GENET_DEBUG") else f"rollout worker failed: {last}")
        return out

    def cpu_seconds(self) -> list[float]:
        """CPU time (user + system) each worker process has used so far, s (Linux /proc; benchmarks)."""
        tick = os.sysconf("SC_CLK_TCK")
        out = []
        for p in self.procs:
            with open(f"/proc/{p.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        return out

    def call(self, method: str, args_per_worker: Sequence[tuple]) -> list[Any]:
        """``method(*args)`` on every worker at once; the results in worker order."""
        for c, args in zip(self.conns, args_per_worker):
            c.send((method, tuple(args)))
        return self._gather()

    def shared_vectors(self, n_floats: int) -> SharedVectors:
        """The weight and gradient files of :func:`data_parallel_update` (made on first use, removed by
        :meth:`close`)."""
        if self._shared is None or self._shared.n_floats != n_floats:
            if self._shared is not None:
                self._shared.close()
            self._shared = SharedVectors(n_floats, len(self.conns))
        return self._shared

    def close(self) -> None:
        if getattr(self, "_shared", None) is not None:
            self._shared.close()
            self._shared = None
        for c in self.conns:
            try:
                c.send(None)
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except Exception:
                p.kill()
                p.wait()
        for c in self.conns:
            c.close()
        self.conns, self.procs = [], []


class RayEngine:
    """The same workers as Ray actors (one CPU each) on the cluster at ``address``."""

    name = "ray"

    def __init__(self, blobs: Sequence[bytes], seed: int, address: str):
        try:
            import ray
        except ImportError:
            from foundation.errors import MissingExtraError
            raise MissingExtraError("cluster", "--ray-address", "ray") from None
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
        remote = ray.remote(num_cpus=1)(ShardWorker)
        self.ray = ray
        self.actors = [remote.remote(blob, seed) for blob in blobs]

    def call(self, method: str, args_per_worker: Sequence[tuple]) -> list[Any]:
        refs = [getattr(a, method).remote(*args) for a, args in zip(self.actors, args_per_worker)]
        try:
            return self.ray.get(refs)
        except Exception as exc:
            raise GenetRuntimeError(f"rollout worker failed on Ray: {exc}") from exc

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ the pool
@dataclass
class WorkerPool:
    """N workers holding slices of one run's environments (kept alive across ``train`` calls)."""

    engine: Any
    n_workers: int
    token: str = ""
    sizes: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, use_case: Any, n_workers: int, seed: int, ray_address: str | None = None) -> "WorkerPool":
        blobs = [pickle.dumps(use_case.shard_use_case(i, n_workers)) for i in range(n_workers)]
        engine = RayEngine(blobs, seed, ray_address) if ray_address else LocalEngine(blobs, seed)
        return cls(engine, n_workers, sizes=shard_sizes(use_case.config.n_envs, n_workers))

    def sync_from(self, roll: ShardedRollout) -> None:
        """Give the workers ``roll``'s state unless they hold it already."""
        if roll.token and roll.token == self.token:
            return
        states = roll.shards or [None] * self.n_workers
        self.engine.call("set_state", [(s,) for s in states])
        self.token = roll.token

    def save_to(self, roll: ShardedRollout) -> None:
        roll.shards = self.engine.call("get_state", [()] * self.n_workers)
        roll.token = self.token = uuid.uuid4().hex

    def collect(self, weights: np.ndarray, distribution: Any, seed: int) -> list[dict[str, Any]]:
        seeds = [shard_seed(seed, self.n_workers, i) for i in range(self.n_workers)]
        if hasattr(self.engine, "shared_vectors"):  # local workers: the weights through the shared file
            shared = self.engine.shared_vectors(weights.size)
            shared.weights[:] = weights
            return self.engine.call("collect_shared", [(shared.weights_path, weights.size, distribution, s)
                                                       for s in seeds])
        return self.engine.call("collect", [(weights, distribution, s) for s in seeds])

    def training_data(self) -> dict[str, Any]:
        """Every slice's training tensors of the last ``collect``, concatenated in slice order (torch)."""
        import torch
        parts = self.engine.call("training_data", [()] * self.n_workers)
        return {k: torch.from_numpy(np.concatenate([p[k] for p in parts])) for k in parts[0]}

    def close(self) -> None:
        self.engine.close()


class WorkerPoolOwner:
    """Mixin of the use cases that train with rollout workers: holds the pool across ``train`` calls.

    Subclasses set ``ray_address`` (None: local processes) and implement ``shard_use_case``."""

    ray_address: str | None = None
    _pool: WorkerPool | None = None

    # ------------------------------------------------- the shared training loop
    def _before_collect(self, agent: Any, distribution: Any) -> None:
        """Hook run at the start of every in-process iteration, before :meth:`collect` (ABR refreshes its
        environment pool here)."""

    def _record_extras(self, agent: Any) -> dict[str, float]:
        """Extra figures for every update's record (CC: the policy's log std)."""
        return {}

    def _run_updates(self, agent: Any, distribution: Any, iterations: int, seed: int) -> Any:
        """``iterations`` PPO updates, the loop both use cases share: torch threads, rollout workers when
        asked for (:meth:`_train_sharded`), else collect -> update in this process, one record per update."""
        import time
        from genet.ppo.allocator import keep_freed_memory
        from genet.ppo.threads import set_torch_threads
        set_torch_threads(agent.config.torch_threads)
        keep_freed_memory()
        n_workers = worker_count(agent.config.rollout_workers, agent.config.n_envs)
        if agent.rollout is None and n_workers > 1:
            agent.rollout = ShardedRollout(n_workers)
        if isinstance(agent.rollout, ShardedRollout):
            return self._train_sharded(agent, distribution, iterations, seed)
        if agent.rollout is None:
            agent.rollout = self._start_rollout(distribution, seed)
        for _ in range(iterations):
            t0 = time.perf_counter()
            self._before_collect(agent, distribution)
            batch = self.collect(agent, distribution)
            t1 = time.perf_counter()
            stats = self.update(agent, batch)
            t2 = time.perf_counter()
            self._record(agent, batch["rewards"], batch["episode_returns"], t1 - t0, t2 - t1, stats)
        return agent

    def _record(self, agent: Any, rewards: np.ndarray, episodes: list, collect_s: float, update_s: float,
                stats: dict[str, float]) -> None:
        """One update's record on the agent, then the ``on_update`` callback."""
        record = agent.record_update(rewards, episodes, collect_s, update_s, **self._record_extras(agent), **stats)
        if self.on_update is not None:
            self.on_update(agent, record)

    def _record_sharded(self, agent: Any, summaries: list[dict[str, Any]], collect_s: float, update_s: float,
                        stats: dict[str, float]) -> None:
        """:meth:`_record` for an update whose rollout came from the workers' ``summaries``."""
        rewards = np.concatenate([s["rewards"] for s in summaries], axis=1)
        episodes = [e for s in summaries for e in s["episode_returns"]]
        self._record(agent, rewards, episodes, collect_s, update_s, stats)

    def _worker_pool(self, agent: Any) -> WorkerPool:
        """The pool for ``agent``'s :class:`ShardedRollout` (started on first use), holding its state."""
        roll = agent.rollout
        if self._pool is None or self._pool.n_workers != roll.n_workers:
            self.close()
            self._pool = WorkerPool.start(self, roll.n_workers, agent.seed, self.ray_address)
        self._pool.sync_from(roll)
        return self._pool

    def trial_evaluator(self, agent: Any, curriculum: Any, seed: int):
        """For :func:`genet.curriculum.search.search_gap`'s ``gap_many``: the curriculum's BO trials of
        ``agent`` spread over its rollout workers (configs dealt round-robin); None when the run has no
        workers (the trials then run in this process)."""
        if not isinstance(getattr(agent, "rollout", None), ShardedRollout):
            return None

        def many(configs: list[dict]) -> list:
            pool = self._worker_pool(agent)
            n = min(pool.n_workers, len(configs))
            w = parameters_vector(agent.net)
            parts = pool.engine.call("trials", [(w, curriculum, configs[j::n], seed) if j < n else
                                                (w, curriculum, [], seed) for j in range(pool.n_workers)])
            out = [None] * len(configs)
            for j in range(n):
                out[j::n] = parts[j]
            return out
        return many

    def close(self) -> None:
        """Stop the rollout workers (a later ``train`` starts them again)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _shard_copy(self) -> Any:
        import copy
        uc = copy.copy(self)
        uc.on_update, uc._pool = None, None
        return uc


def parameters_vector(net) -> np.ndarray:
    import torch
    with torch.no_grad():
        return torch.nn.utils.parameters_to_vector(net.parameters()).numpy().copy()


def data_parallel_update(pool: WorkerPool, net, optimizer, summaries: list[dict[str, Any]], cfg, entropy_weight: float,
                         generator=None) -> dict[str, float]:
    """PPO epochs over the workers' slices (see the module docstring); same statistics as ``ppo_update``.

    summaries: each worker's ``collect`` summary (``n``: its transitions; ``adv_sum``/``adv_sqsum`` for the
    batch-wide advantage standardisation); cfg: a :class:`genet.ppo.algorithm.PPOConfig`."""
    import torch

    from genet.ppo.algorithm import drop_actor_gradients
    counts = [int(s["n"]) for s in summaries]
    n = sum(counts)
    if cfg.normalize_adv and n > 1:
        mean = sum(s["adv_sum"] for s in summaries) / n
        var = (sum(s["adv_sqsum"] for s in summaries) - n * mean * mean) / (n - 1)
        std = float(np.sqrt(max(var, 0.0)))
        pool.engine.call("normalize_advantages", [(mean, std)] * pool.n_workers)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    mb = cfg.minibatch or n
    params = list(net.parameters())
    # one flat gradient whose views are the parameters' .grad: the workers' gradients are added straight into it
    # (no per-parameter copies); the sum runs in worker order, as np.sum over the stacked gradients did
    flat = torch.zeros(sum(p.numel() for p in params), dtype=torch.float32)
    flat_np = flat.numpy()
    views, pos = [], 0
    for p in params:
        views.append(flat[pos:pos + p.numel()].view_as(p))
        pos += p.numel()
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
    steps = 0
    for _ in range(cfg.epochs):
        order = (torch.randperm(n, generator=generator) if mb < n else torch.arange(n)).numpy()
        for start in range(0, n, mb):
            idx = order[start:start + mb]
            owner = np.searchsorted(offsets, idx, side="right") - 1
            rest = (cfg.clip, cfg.dual_clip, cfg.value_coef, entropy_weight)
            shared = pool.engine.shared_vectors(flat.numel()) if hasattr(pool.engine, "shared_vectors") else None
            if shared is not None:  # local workers: weights and gradients through shared files
                with torch.no_grad():
                    torch.cat([p.detach().reshape(-1) for p in params], out=torch.from_numpy(shared.weights))
                stats_of = pool.engine.call("gradient_shared", [
                    (shared.weights_path, shared.grad_paths[j], flat.numel(), idx[owner == j] - offsets[j], len(idx),
                     *rest) for j in range(pool.n_workers)])
                results = list(zip(shared.grads, stats_of))
            else:
                w = parameters_vector(net)
                results = pool.engine.call("gradient", [(w, idx[owner == j] - offsets[j], len(idx), *rest)
                                                        for j in range(pool.n_workers)])
            np.copyto(flat_np, results[0][0])
            for g, _ in results[1:]:
                np.add(flat_np, g, out=flat_np)
            for p, v in zip(params, views):
                p.grad = v
            drop_actor_gradients(net, cfg)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            for key in stats:
                stats[key] += sum(s[key] for _, s in results)
            steps += 1
    return {k: v / max(steps, 1) for k, v in stats.items()}


def explained_variance_from_sums(summaries: list[dict[str, Any]]) -> float:
    """:func:`genet.ppo.algorithm.explained_variance` from the workers' sums of returns and residuals."""
    n = sum(s["n"] for s in summaries)
    if n == 0:
        return float("nan")

    def var(key):
        m = sum(s[key + "_sum"] for s in summaries) / n
        return sum(s[key + "_sqsum"] for s in summaries) / n - m * m
    v = var("ret")
    return float("nan") if v <= 0 else float(1 - var("resid") / v)


def column_sums(prefix: str, x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, np.float64)
    return {f"{prefix}_sum": float(x.sum()), f"{prefix}_sqsum": float((x * x).sum())}


if __name__ == "__main__":  # pragma: no cover - a LocalEngine worker process
    import sys
    from multiprocessing.connection import Connection
    _serve(Connection(int(sys.argv[1])))
