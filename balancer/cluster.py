"""``genet balancer cluster``: N worker servers and the balancer on one host, as one command — the server side of
an LB run of ``genet deploy run`` (:mod:`balancer.schemes`).

The workers (``python -m balancer worker``, one process each, rates ``--rates``) listen on ``--worker-bind``
(loopback by default) on free ports; once every one is ready the balancer (``genet balancer serve``'s
:func:`balancer.server.serve_main`, in this process) connects to them, listens on ``--listen`` for its one
client, serves it, writes its run record and ends; the workers are then stopped. The workers are children in
this process's group, so stopping the group (what ``genet deploy run`` does) stops them all.

numpy, onnxruntime (with the policy) and the standard library only (what a remote host runs).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from balancer.wire import TIME_UNIT_MS
from foundation.errors import BadInputError, GenetRuntimeError

#: How long the workers may take to start (s).
WORKERS_START_TIMEOUT_S = 30.0
#: Most workers of one cluster (the LB observation's limit, genet.lb.observations.MAX_WORKERS).
MAX_CLUSTER_WORKERS = 64


def parse_rates(text: str, what: str = "--rates") -> tuple[float, ...]:
    """``0.5,1,2`` -> (0.5, 1.0, 2.0): 1 to :data:`MAX_CLUSTER_WORKERS` finite rates > 0."""
    try:
        rates = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise BadInputError(f"{what} {text!r}: expected comma-separated numbers, e.g. 0.5,1,2") from None
    if not 1 <= len(rates) <= MAX_CLUSTER_WORKERS or not all(0 < r < float("inf") for r in rates):
        raise BadInputError(f"{what} {text!r}: expected 1 to {MAX_CLUSTER_WORKERS} finite rates > 0")
    return rates


def _start_workers(rates: Sequence[float], bind: str, enforce: str, time_unit_ms: float,
                   ready_dir: Path) -> list[tuple[subprocess.Popen, Path]]:
    out = []
    for i, rate in enumerate(rates):
        ready = ready_dir / f"worker{i}.port"
        cmd = [sys.executable, "-m", "balancer", "worker", "--rate", repr(float(rate)), "--bind", bind, "--port", "0",
               "--enforce", enforce, "--name", f"w{i}", "--time-unit-ms", f"{time_unit_ms:g}",
               "--ready-file", str(ready)]
        out.append((subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL), ready))
    return out


def _wait_ports(workers: list[tuple[subprocess.Popen, Path]], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    ports = []
    for i, (p, ready) in enumerate(workers):
        while not ready.exists():
            if p.poll() is not None:
                raise GenetRuntimeError(f"worker {i} exited ({p.returncode}) before it listened")
            if time.monotonic() > deadline:
                raise GenetRuntimeError(f"worker {i} did not listen within {timeout_s:g} s")
            time.sleep(0.01)
        ports.append(int(ready.read_text().strip()))
    return ports


def _stop(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    for p, _ in workers:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p, _ in workers:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cluster_main(rates: Sequence[float], policy: str, listen: tuple[str, int], record: str | None, *,
                 worker_bind: str = "127.0.0.1", enforce: str = "pacing", time_unit_ms: float = TIME_UNIT_MS,
                 seed: int = 0, answer_timeout_s: float | None = None, ready_file: str | None = None) -> int:
    """Start the workers, then serve one client with the balancer (see the module docstring)."""
    from balancer.server import ANSWER_TIMEOUT_S, WorkerSpec, serve_main
    from genet.lb.registry import make_policy
    make_policy(policy, n_workers=len(rates), where="--policy")  # a bad name fails before anything starts
    workers: list = []
    old_term = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # the finally below stops the workers
    try:
        with tempfile.TemporaryDirectory(prefix="genet-lb-cluster-") as tmp:
            workers = _start_workers(rates, worker_bind, enforce, time_unit_ms, Path(tmp))
            ports = _wait_ports(workers, WORKERS_START_TIMEOUT_S)
        specs = [WorkerSpec(worker_bind, port, float(rate), f"w{i}") for i, (port, rate) in enumerate(zip(ports, rates))]
        print(f"cluster: {len(specs)} workers ({', '.join(f'{r:g}' for r in rates)} work units per time unit) on "
              f"{worker_bind}; the balancer ({policy}) on {listen[0]}:{listen[1]}", file=sys.stderr, flush=True)
        return serve_main(specs, policy, listen[0], listen[1], record, time_unit_ms, ready_file, seed,
                          answer_timeout_s or ANSWER_TIMEOUT_S)
    finally:
        _stop(workers)
        signal.signal(signal.SIGTERM, old_term)


__all__ = ["cluster_main", "parse_rates", "MAX_CLUSTER_WORKERS", "WORKERS_START_TIMEOUT_S"]

