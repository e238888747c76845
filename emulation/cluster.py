"""Emulated runs on the nodes of a Ray cluster (``genet emulate cc --ray-address``, ``genet emulate abr
--ray-address``): the one node check, the one node-local run folder and the one way a run's files come back.

* :func:`cluster_executor`: the :class:`foundation.executor.RayExecutor` for the cluster, after the netns backend
  is checked (each link's host side in a namespace of its own, so runs on one node cannot clash) and every live
  node passed :func:`node_check` (root, ``/dev/net/tun``, ``ip``): a node that fails refuses the command with one
  line naming the node and what it lacks, before any run starts;
* :func:`run_in_node_folder` (on the node): a run's body in a node-local temporary folder, at nice 0 (not Ray's
  worker nice 15); returns its row (with ``ray_node``) and its files (each at most
  :data:`MAX_RETURNED_FILE_BYTES`);
* :func:`write_node_files` (on the head): those files under the run's folder in ``--out``.

Standard library only (Ray is imported by the executor).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

from foundation.errors import BadInputError, GenetRuntimeError

#: The largest file an emulated run on a Ray node sends back (larger ones, e.g. a kept link log, stay behind).
MAX_RETURNED_FILE_BYTES = 64 * 1024 * 1024


def node_check(needs: tuple[str, ...] = ("ip",)) -> dict:
    """What an emulated run needs on this node: root, the TUN device, the commands ``needs``; ``problems`` lists
    what is missing."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    if not os.path.exists("/dev/net/tun"):
        problems.append("no /dev/net/tun")
    for cmd in needs:
        if shutil.which(cmd) is None:
            problems.append(f"no `{cmd}` command")
    return {"node": os.uname().nodename, "problems": problems}


def check_nodes(executor, command: str, check: Callable[[], dict] = node_check) -> None:
    """Refuse (one line naming each bad node and what it lacks) a cluster with a node that cannot run emulated
    links, before any run starts; ``command``: what the user ran (``genet emulate cc --ray-address``)."""
    bad = [f"{r['node']} ({ip}): {', '.join(r['problems'])}" for ip, r in executor.on_every_node(check)
           if r["problems"]]
    if bad:
        raise GenetRuntimeError(f"{command}: nodes that cannot run emulated links: {'; '.join(bad)}")


def cluster_executor(address: str, command: str, backend: str, per_node: int | None = None):
    """The executor of ``command``'s runs on the cluster at ``address`` (module docstring); ``per_node``: runs at
    once on each node (None: one per CPU of the cluster)."""
    if backend != "netns":
        raise BadInputError("--ray-address needs the netns backend (each link's host side in a namespace "
                            "of its own: runs on one node cannot clash on ports)")
    from foundation.executor import RayExecutor
    executor = RayExecutor(address, per_node=per_node)
    check_nodes(executor, command)
    return executor


def run_in_node_folder(body: Callable[[Path], tuple[dict, Path]]) -> tuple[dict, dict[str, bytes]]:
    """``body(folder)`` in a node-local temporary folder (needs root); ``body`` returns the run's row and its run
    folder; returns the row (with ``ray_node``: the Ray node that ran it) and the run folder's files by relative
    path (each at most :data:`MAX_RETURNED_FILE_BYTES`). The folder is removed afterwards.

    ``body`` runs at the normal priority (nice 0): Ray starts its workers at nice 15 (``RAY_worker_niceness``),
    and every process of the run (sender, receiver, player, link) inherits it, so a busy node would delay an
    emulated run's packets that a local run (``genet emulate`` without ``--ray-address``) sends on time; the
    worker's priority comes back afterwards."""
    if os.geteuid() != 0:
        raise GenetRuntimeError(f"{os.uname().nodename}: an emulated run needs root (network namespaces, TUN)")
    with tempfile.TemporaryDirectory(prefix="genet-emulate-") as tmp, normal_priority():
        row, run_dir = body(Path(tmp))
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            row["ray_node"] = ray.get_runtime_context().get_node_id()
        files = {}
        for f in sorted(Path(run_dir).rglob("*")):
            if f.is_file() and f.stat().st_size <= MAX_RETURNED_FILE_BYTES:
                files[f.relative_to(run_dir).as_posix()] = f.read_bytes()
    return row, files


@contextlib.contextmanager
def normal_priority():
    """This thread (and what it starts) at nice 0 while the block runs, if it was nicer (root may raise a
    priority); the old nice value afterwards."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    if before > 0:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    try:
        yield
    finally:
        if before > 0:
            os.setpriority(os.PRIO_PROCESS, 0, before)


def write_node_files(dest: Path, files: dict[str, bytes]) -> None:
    """A run's files from its node (:func:`run_in_node_folder`) under ``dest`` (names that would leave ``dest``
    are refused)."""
    dest = Path(dest)
    for name, data in files.items():
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise GenetRuntimeError(f"a node sent back a file named {name!r}, outside its run folder")
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A failed task's reason in one line (Ray's errors span many)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]


__all__ = ["MAX_RETURNED_FILE_BYTES", "node_check", "check_nodes", "cluster_executor", "run_in_node_folder",
           "normal_priority", "write_node_files", "one_line"]
