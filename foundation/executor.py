"""One executor for independent work items: the cells of an experiment, the curriculum's trials.

:func:`make_executor` picks where the items run:

* ``jobs`` = 1 and no cluster: in this thread, one after another (:class:`SerialExecutor`), exactly as before;
* ``kind="thread"``: ``jobs`` threads (:class:`ThreadExecutor`), for items that wait on processes, links or hosts
  (an emulated run, a deploy path);
* ``kind="process"``: ``jobs`` local worker processes (:class:`ProcessExecutor`, forkserver), for items that
  compute (a simulator run);
* a Ray cluster address (``--ray-address``, ``[cluster] address``): Ray tasks of one CPU each on that cluster
  (:class:`RayExecutor`; ``pip install 'genet-testbed[cluster]'``), as many at once as the cluster has CPUs, or
  with ``per_node``, that many at once on each live node (items that wait rather than compute).

Every executor has one verb, :meth:`Executor.map_unordered`: ``fn`` over ``items``, yielding ``(item, result)``
as each finishes (in order for :class:`SerialExecutor`). The first item that fails raises here, after the items
already running have ended; items not started are cancelled. For processes and Ray, ``fn`` and the items are
pickled (a module-level function, or a :func:`functools.partial` of one). Which executor ran an item never
changes its result: items carry their own seeds.

Standard library only (Ray is imported by :class:`RayExecutor` alone).
"""

from __future__ import annotations

import functools
from concurrent.futures import FIRST_COMPLETED, Executor as _PoolExecutor, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator


class _Failed:
    """An item's failure carried back as a result (``errors="return"``)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _catching(fn: Callable[[Any], Any], item: Any) -> Any:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - handed to the caller with its item
        return _Failed(exc)


def _run_chunk(fn: Callable[[Any], Any], chunk: list) -> list:
    return [fn(item) for item in chunk]


def chunks_for(n_items: int, workers: int, per_worker: int = 4) -> int:
    """Items per task so that each worker gets about ``per_worker`` tasks (short items then pay one round trip
    per task, not per item, and the last tasks still balance the workers)."""
    return max(1, -(-n_items // max(1, workers * per_worker)))


class Executor:
    """Runs a function over independent items (see the module's docstring)."""

    name = "executor"
    workers = 1

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any], chunk: int = 1, errors: str = "raise"
                      ) -> Iterator[tuple[Any, Any]]:
        """``fn`` over ``items``, yielding ``(item, result)`` as each finishes; ``chunk`` > 1 sends that many
        items per task (their results come back together). ``errors="return"``: an item whose task failed (an
        exception, a worker or node that died) is yielded with the exception as its result and the others go on
        (``"raise"``: the first failure is raised)."""
        items = list(items)
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        if errors == "return":
            fn = functools.partial(_catching, fn)
        if chunk <= 1:
            for item, result in self._map(fn, items):
                yield item, (result.error if isinstance(result, _Failed) else result)
            return
        groups = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        for group, results in self._map(functools.partial(_run_chunk, fn), groups):
            for item, result in zip(group, results):
                yield item, (result.error if isinstance(result, _Failed) else result)

    def _map(self, fn: Callable[[Any], Any], items: list) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.name} ({self.workers} at a time)"


class SerialExecutor(Executor):
    name = "serial"

    def _map(self, fn, items):
        for item in items:
            yield item, fn(item)


class _PoolBacked(Executor):
    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"an executor needs at least one worker, got {jobs}")
        self.workers = jobs
        self._pool: _PoolExecutor | None = None

    def _make_pool(self) -> _PoolExecutor:
        raise NotImplementedError

    def _map(self, fn, items):
        if self._pool is None:
            self._pool = self._make_pool()
        futures = {self._pool.submit(fn, item): item for item in items}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield futures[fut], fut.result()
        except BaseException:
            for f in pending:
                f.cancel()
            wait(pending)
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class ThreadExecutor(_PoolBacked):
    name = "threads"

    def _make_pool(self) -> _PoolExecutor:
        return ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="genet-item")


class ProcessExecutor(_PoolBacked):
    """``jobs`` worker processes forked from a forkserver that has imported ``preload`` (module names) once, so
    each worker starts with them loaded (the simulator and its compiled kernels) instead of importing them."""

    name = "processes"

    def __init__(self, jobs: int, preload: tuple[str, ...] = ()) -> None:
        super().__init__(jobs)
        self.preload = tuple(preload)

    def _make_pool(self) -> _PoolExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        ctx = multiprocessing.get_context("forkserver")
        if self.preload:
            ctx.set_forkserver_preload(list(self.preload))
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)


class RayExecutor(Executor):
    """Ray tasks (one CPU each) on the cluster at ``address``; the driver connects on first use."""

    name = "ray"

    def __init__(self, address: str, per_node: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            from foundation.errors import MissingExtraError
            raise MissingExtraError("cluster", "--ray-address", "ray") from None
        if per_node is not None and per_node < 1:
            raise ValueError(f"per_node must be >= 1, got {per_node}")
        self.ray = ray
        self.address = address
        self.per_node = per_node
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
        if per_node is None:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        else:
            self.workers = per_node * max(1, len(self._alive_nodes()))

    def describe(self) -> str:
        if self.per_node is not None:
            return f"ray at {self.address} ({self.per_node} per node, {self.workers} at a time)"
        return f"ray at {self.address} ({self.workers} CPUs)"

    def _alive_nodes(self) -> list[dict]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def on_every_node(self, fn: Callable[[], Any]) -> list[tuple[str, Any]]:
        """``fn()`` once on every live node of the cluster: [(node address, result)] (a node check)."""
        return _every_node(self, fn)

    def _map(self, fn, items):
        if self.per_node is not None:
            yield from self._map_per_node(fn, items)
            return
        remote = self.ray.remote(num_cpus=1)(_apply)  # (a partial cannot be a Ray task itself: it travels)
        tolerant = isinstance(fn, functools.partial) and fn.func is _catching
        refs = {}
        for item in items:
            refs[remote.remote(fn, item)] = item
        pending = list(refs)
        try:
            while pending:
                done, pending = self.ray.wait(pending, num_returns=1)
                for ref in done:
                    yield refs[ref], self._result(ref, tolerant)
        except BaseException:
            self._cancel(pending)
            raise

    def _result(self, ref, tolerant: bool):
        """A finished task's result; a task whose worker or node died raises, or (``tolerant``) is a failure
        carried back as the item's result."""
        try:
            return self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the task's worker or node died
            if not tolerant:
                raise
            return _Failed(exc)

    def _cancel(self, refs) -> None:
        for ref in refs:
            try:
                self.ray.cancel(ref)
            except Exception:  # noqa: BLE001 - already finished
                pass

    def _map_per_node(self, fn, items):
        """Up to ``per_node`` items at once on each live node (tasks of no CPU pinned to their node: items that
        wait on links and processes, e.g. ABR sessions); a node whose task died takes no more items, the others
        take the rest."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        remote = self.ray.remote(num_cpus=0)(_apply)
        tolerant = isinstance(fn, functools.partial) and fn.func is _catching
        busy = {n["NodeID"]: 0 for n in self._alive_nodes()}
        queue = list(items)
        refs: dict = {}
        try:
            while queue or refs:
                for node in list(busy):
                    while queue and busy[node] < self.per_node:
                        item = queue.pop(0)
                        ref = remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
                                             ).remote(fn, item)
                        refs[ref] = (item, node)
                        busy[node] += 1
                if not refs:  # every node is gone
                    lost = RuntimeError(f"no live node left in the Ray cluster at {self.address}")
                    if not tolerant:
                        raise lost
                    while queue:
                        yield queue.pop(0), _Failed(lost)
                    return
                done, _ = self.ray.wait(list(refs), num_returns=1)
                for ref in done:
                    item, node = refs.pop(ref)
                    if node in busy:
                        busy[node] -= 1
                    result = self._result(ref, tolerant)
                    if isinstance(result, _Failed):  # its node may be gone: it takes no more items
                        alive = {n["NodeID"] for n in self._alive_nodes()}
                        for gone in set(busy) - alive:
                            del busy[gone]
                    yield item, result
        except BaseException:
            self._cancel(refs)
            raise


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _on_node(fn: Callable[[], Any]) -> Any:
    return fn()


def _every_node(executor: "RayExecutor", fn: Callable[[], Any]) -> list[tuple[str, Any]]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    ray = executor.ray
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [(n["NodeManagerAddress"], ray.remote(num_cpus=0)(_on_node).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(fn)) for n in nodes]
    return [(ip, ray.get(ref)) for ip, ref in refs]


def make_executor(jobs: int = 1, ray_address: str | None = None, kind: str = "process",
                  preload: tuple[str, ...] = ()) -> Executor:
    """The executor for ``jobs`` items at once (see the module's docstring); ``ray_address`` wins. ``preload``:
    modules worker processes start with (:class:`ProcessExecutor`)."""
    if ray_address:
        return RayExecutor(ray_address)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1:
        return SerialExecutor()
    if kind == "thread":
        return ThreadExecutor(jobs)
    if kind == "process":
        return ProcessExecutor(jobs, preload)
    raise ValueError(f"executor kind must be 'thread' or 'process', got {kind!r}")


__all__ = ["Executor", "SerialExecutor", "ThreadExecutor", "ProcessExecutor", "RayExecutor", "make_executor"]
