"""A real worker server: ``genet balancer worker --rate R`` (TCP, :mod:`balancer.wire`'s messages).

One FIFO queue served by one thread: jobs are served one at a time in the order they arrived (over any of
its connections), and a job of size S lasts ``S / rate`` time units (:data:`balancer.wire.TIME_UNIT_MS` ms
each, or ``--time-unit-ms``). The rate is enforced by

* ``pacing`` (the default; works everywhere): the service thread holds the job until its deadline
  (``time.monotonic``), sleeping;
* ``cgroup`` (root, a cgroup v1 ``cpu`` controller): the kernel does it — the worker runs under a CPU quota
  proportional to its rate and burns CPU for each job in proportion to its size (:mod:`balancer.cpuquota`).

For each job the worker answers on the connection it came from: ``started`` when it leaves the queue and
``finished`` (with its service time and time in the queue, measured here) when it is done. A job whose
connection has closed is still served in its turn (the queue is real) but answered to nobody. Standard
library only.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from balancer.wire import TIME_UNIT_MS, ProtocolError, job_id, job_size, messages, send
from foundation.errors import BadInputError

ENFORCE = ("pacing", "cgroup")
#: Longest queue a worker accepts (jobs): a balancer sending more is refused with an error answer.
MAX_QUEUE_JOBS = 100_000


@dataclass(frozen=True)
class WorkerConfig:
    """rate: service rate (work units per time unit, > 0); time_unit_ms: ms per time unit;
    enforce: "pacing" or "cgroup"; name: for the cgroup's name and messages."""

    rate: float
    time_unit_ms: float = TIME_UNIT_MS
    enforce: str = "pacing"
    name: str = "worker"

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.rate < float("inf")):
            raise BadInputError(f"worker rate must be a positive number, got {self.rate!r}")
        if not (self.time_unit_ms > 0 and self.time_unit_ms < float("inf")):
            raise BadInputError(f"--time-unit-ms must be a positive number, got {self.time_unit_ms!r}")
        if self.enforce not in ENFORCE:
            raise BadInputError(f"--enforce must be one of {', '.join(ENFORCE)}, got {self.enforce!r}")

    def service_ms(self, size: float) -> float:
        """How long a job of ``size`` work units is served (ms of wall-clock time)."""
        return size / self.rate * self.time_unit_ms


@dataclass
class _Job:
    id: int
    size: float
    conn: "_Conn"
    enqueued: float


class _Conn:
    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock, self.peer = sock, peer
        self.lock = threading.Lock()
        self.open = True

    def send(self, msg: dict) -> None:
        if not self.open:
            return
        try:
            with self.lock:
                send(self.sock, msg)
        except OSError:
            self.open = False


class WorkerServer:
    """A worker on ``bind``:``port`` (0: any free port, see ``address``). :meth:`serve_forever` until
    :meth:`stop`."""

    def __init__(self, config: WorkerConfig, bind: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.listener = socket.create_server((bind, port), reuse_port=False)
        self.address = self.listener.getsockname()[:2]
        self.queue: collections.deque[_Job] = collections.deque()
        self.cv = threading.Condition()
        self.stopping = False
        self.served = 0
        self.busy_ms = 0.0
        self._quota = None

    # serving ----------------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        if self.config.enforce == "cgroup":
            from balancer.cpuquota import CpuQuota
            self._quota = CpuQuota(self.config.rate, self.config.name).__enter__()
        try:
            threading.Thread(target=self._service_loop, name="service", daemon=True).start()
            self.listener.settimeout(0.2)
            while not self.stopping:
                try:
                    sock, addr = self.listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Conn(sock, f"{addr[0]}:{addr[1]}")
                threading.Thread(target=self._read_loop, args=(conn,), daemon=True).start()
        finally:
            self.listener.close()
            if self._quota is not None:
                self._quota.__exit__()

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify_all()

    def _read_loop(self, conn: _Conn) -> None:
        where = f"worker {self.config.name}: from {conn.peer}"
        try:
            for msg in messages(conn.sock, where):
                if msg["type"] != "job":
                    conn.send({"type": "error", "id": msg.get("id"), "reason": f"unknown message {msg['type']!r}"})
                    continue
                try:
                    jid, size = job_id(msg, where), job_size(msg, where)
                except ProtocolError as exc:
                    conn.send({"type": "error", "id": msg.get("id"), "reason": str(exc)})
                    continue
                with self.cv:
                    if len(self.queue) >= MAX_QUEUE_JOBS:
                        conn.send({"type": "error", "id": jid, "reason": f"queue full ({MAX_QUEUE_JOBS} jobs)"})
                        continue
                    self.queue.append(_Job(jid, size, conn, time.monotonic()))
                    self.cv.notify()
        except (OSError, ProtocolError) as exc:
            print(f"worker {self.config.name}: connection {conn.peer} ended: {exc}", file=sys.stderr)
        finally:
            conn.open = False
            try:
                conn.sock.close()
            except OSError:
                pass

    def _service_loop(self) -> None:
        while True:
            with self.cv:
                while not self.queue and not self.stopping:
                    self.cv.wait()
                if self.stopping:
                    return
                job = self.queue.popleft()
            start = time.monotonic()
            job.conn.send({"type": "started", "id": job.id})
            self._serve(job.size, start)
            end = time.monotonic()
            self.served += 1
            self.busy_ms += (end - start) * 1000.0
            job.conn.send({"type": "finished", "id": job.id, "service_ms": round((end - start) * 1000.0, 3),
                           "queue_wait_ms": round((start - job.enqueued) * 1000.0, 3)})

    def _serve(self, size: float, start: float) -> None:
        if self._quota is not None:
            self._quota.burn(size, self.config.time_unit_ms)
            return
        deadline = start + self.config.service_ms(size) / 1000.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(left)


def worker_main(config: WorkerConfig, bind: str, port: int, ready_file: str | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT; writes its port to ``ready_file`` once it listens."""
    server = WorkerServer(config, bind, port)

    def _stop(signum, frame):
        server.stop()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"worker {config.name}: rate {config.rate:g} on {server.address[0]}:{server.address[1]} "
          f"({config.enforce}, {config.time_unit_ms:g} ms per time unit)", file=sys.stderr, flush=True)
    if ready_file:
        tmp = Path(f"{ready_file}.{os.getpid()}.tmp")
        tmp.write_text(str(server.address[1]))
        os.replace(tmp, ready_file)
    server.serve_forever()
    return 0


__all__ = ["WorkerConfig", "WorkerServer", "worker_main", "ENFORCE", "MAX_QUEUE_JOBS"]
