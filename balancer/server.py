"""The balancer: ``genet balancer serve`` accepts jobs from one client over TCP and dispatches each, the moment
it arrives, to one of N worker servers (:mod:`balancer.worker`), choosing with a ``decide`` callable — in
practice any policy of :data:`genet.lb.registry.POLICIES` (:func:`balancer.decide.policy_decider`), fed with
the one observation function of :mod:`genet.lb.observations` computed from what the balancer itself sees
(:class:`BalancerView`): per worker, the jobs it dispatched there and has not seen finish (those the worker has
not yet reported ``started`` are queued; the one reported started is in service), and the completions it
observes.

One event loop (``selectors``, one thread), so decisions see a consistent view: a job arrives -> ``decide`` ->
sent to the worker; a worker reports ``started``/``finished`` -> the view changes and the client is told.

Every job gets a :class:`JobRecord` (received, dispatched to, started, finished, or failed with a reason) and
the client one answer (``finished`` or ``failed``). A worker that dies (its connection ends or breaks) is
marked dead at that moment: every job it held is failed with the reason, the run's ``events`` say so, and the
balancer keeps dispatching to the others — a decision for a dead worker goes to the live worker with the least
outstanding work (the job's record keeps ``chosen_worker``). A job that gets no answer within ``answer_timeout_s``
of the last event is failed too; nothing is lost silently.

Standard library only here (numpy/onnxruntime come with the policy).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from balancer.view import BalancerView, Decide, WorkerSpec, WorkerView
from balancer.wire import TIME_UNIT_MS, Decoder, ProtocolError, encode, job_id, job_size
from foundation.atomic import atomic_write_text
from foundation.errors import BadInputError, GenetRuntimeError

#: How long the balancer waits for the workers to accept its connections (s).
CONNECT_TIMEOUT_S = 20.0
#: A run ends, failing what is still unanswered, when nothing has happened for this long (s).
ANSWER_TIMEOUT_S = 60.0
#: A worker that takes no job for this long (its socket buffer full) counts as dead (s).
WORKER_SEND_TIMEOUT_S = 5.0
#: How long the balancer waits for its client to connect (s).
CLIENT_TIMEOUT_S = 60.0


@dataclass
class JobRecord:
    """One job as the balancer saw it (times in ms since the balancer's start, its own clock).

    status: "pending" (not yet answered), "finished" or "failed" (with ``reason``)
    worker: the worker it ran on (None: never dispatched); chosen_worker: the policy's choice when it was a dead
    worker (the job then went to ``worker``); service_ms / queue_wait_ms: as the worker measured them
    """

    id: int
    size: float
    received_ms: float
    worker: int | None = None
    chosen_worker: int | None = None
    dispatched_ms: float | None = None
    started_ms: float | None = None
    finished_ms: float | None = None
    service_ms: float | None = None
    queue_wait_ms: float | None = None
    status: str = "pending"
    reason: str | None = None


@dataclass
class RunRecord:
    """What a balancer run recorded: workers (with their state at the end), events, every job."""

    workers: list[dict]
    jobs: list[dict]
    events: list[dict]
    policy: str
    time_unit_ms: float
    wall_s: float
    decide_p99_us: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=None)


class Balancer:
    """Dispatch one client's jobs to ``workers`` with ``decide`` (see the module docstring).

    bind/port: where the client connects (port 0: any; see ``address`` after :meth:`listen`)
    """

    def __init__(self, workers: Sequence[WorkerSpec], decide: Decide, *, policy_name: str = "custom",
                 bind: str = "127.0.0.1", port: int = 0, time_unit_ms: float = TIME_UNIT_MS,
                 answer_timeout_s: float = ANSWER_TIMEOUT_S, log=None) -> None:
        if not workers:
            raise BadInputError("the balancer needs at least one --worker")
        self.specs = list(workers)
        self.decide = decide
        self.policy_name = policy_name
        self.time_unit_ms = time_unit_ms
        self.answer_timeout_s = answer_timeout_s
        self.t0 = time.monotonic()
        self.view = BalancerView([WorkerView(i, s) for i, s in enumerate(self.specs)], 0.0, time_unit_ms)
        self.jobs: dict[int, JobRecord] = {}
        self.events: list[dict] = []
        self.decide_us: list[float] = []
        self.listener = socket.create_server((bind, port))
        self.address = self.listener.getsockname()[:2]
        self.sel = selectors.DefaultSelector()
        self.worker_socks: list[socket.socket | None] = [None] * len(self.specs)
        self.client: socket.socket | None = None
        self.expected: int | None = None
        self.received = 0                                  # job messages from the client, valid or not
        self.n_pending = 0                                 # jobs received and not yet answered
        self.log = log or (lambda msg: print(f"balancer: {msg}", file=sys.stderr, flush=True))

    def now_ms(self) -> float:
        return (time.monotonic() - self.t0) * 1000.0

    # setup ----------------------------------------------------------------------------------------
    def connect_workers(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect to every worker (retrying until ``timeout_s``: they may still be starting)."""
        deadline = time.monotonic() + timeout_s
        for i, s in enumerate(self.specs):
            while True:
                try:
                    sock = socket.create_connection((s.host, s.port), timeout=2.0)
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise GenetRuntimeError(f"worker {i} at {s.host}:{s.port}: cannot connect "
                                                f"({exc.strerror or exc})") from None
                    time.sleep(0.05)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # blocking with a timeout: a job is sent whole (sendall); the loop reads only what select says is there
            sock.settimeout(WORKER_SEND_TIMEOUT_S)
            self.worker_socks[i] = sock
            self.sel.register(sock, selectors.EVENT_READ, ("worker", i, Decoder(f"worker {i} ({s.host}:{s.port})")))

    # the loop -----------------------------------------------------------------------------------------
    def run(self, client_timeout_s: float = CLIENT_TIMEOUT_S) -> RunRecord:
        """Serve one client until it has sent ``end`` and every job is answered (or the answer timeout)."""
        self.listener.settimeout(client_timeout_s)
        try:
            client, addr = self.listener.accept()
        except socket.timeout:
            raise GenetRuntimeError(f"no client connected within {client_timeout_s:g} s") from None
        finally:
            self.listener.close()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setblocking(False)
        self.client = client
        self._client_out = bytearray()
        self.sel.register(client, selectors.EVENT_READ, ("client", None, Decoder(f"client {addr[0]}:{addr[1]}")))
        self.log(f"client {addr[0]}:{addr[1]} connected; {len(self.specs)} workers, policy {self.policy_name}")
        t_start = time.monotonic()
        last_event = time.monotonic()
        client_open = True
        while True:
            if self.expected is not None and self.received >= self.expected and not self._pending():
                break
            if not client_open:
                break
            if not self.n_pending:  # nothing to answer: the timeout runs only while a job waits for its answer
                last_event = time.monotonic()
            timeout = self.answer_timeout_s - (time.monotonic() - last_event)
            if timeout <= 0:
                self._fail_pending(f"no answer within {self.answer_timeout_s:g} s (answer timeout)")
                self.events.append({"t_ms": self.now_ms(), "event": "answer timeout"})
                break
            ready = self.sel.select(timeout=min(timeout, 1.0))
            for key, mask in ready:
                kind, index, dec = key.data
                if mask & selectors.EVENT_WRITE:
                    self._flush_client()
                if not mask & selectors.EVENT_READ:
                    continue
                last_event = time.monotonic()
                try:
                    data = key.fileobj.recv(65536)
                except (ConnectionError, OSError) as exc:
                    data, err = b"", f"{type(exc).__name__}: {exc}"
                else:
                    err = "it closed the connection"
                if not data:
                    if kind == "worker":
                        self._worker_died(index, err)
                    else:
                        client_open = False
                        self.sel.unregister(key.fileobj)
                    continue
                try:
                    msgs = dec.feed(data)
                except ProtocolError as exc:
                    if kind == "worker":
                        self._worker_died(index, str(exc))
                        continue
                    self.log(f"client: {exc}")
                    client_open = False
                    self.sel.unregister(key.fileobj)
                    continue
                for msg in msgs:
                    if kind == "worker":
                        self._on_worker(index, msg)
                    else:
                        self._on_client(msg)
        if not client_open:
            self.events.append({"t_ms": self.now_ms(), "event": "client left",
                                "reason": "the client closed its connection before the run's end"})
            self._fail_pending("the client closed its connection before every job was answered")
        self._send_client({"type": "done", "finished": sum(j.status == "finished" for j in self.jobs.values()),
                           "failed": sum(j.status == "failed" for j in self.jobs.values())})
        self._flush_client(block=True)
        for s in self.worker_socks:
            if s is not None:
                s.close()
        if self.client is not None:
            self.client.close()
        return self.record(time.monotonic() - t_start)

    def _pending(self) -> bool:
        return self.n_pending > 0

    # client messages -----------------------------------------------------------------------------------
    def _on_client(self, msg: dict) -> None:
        if msg["type"] == "end":
            n = msg.get("n_jobs")
            self.expected = n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else self.received
            return
        if msg["type"] != "job":
            self._send_client({"type": "error", "reason": f"unknown message {msg['type']!r}"})
            return
        self.received += 1
        try:
            jid = job_id(msg, "client")
            size = job_size(msg, "client")
        except ProtocolError as exc:
            self._send_client({"type": "failed", "id": msg.get("id"), "worker": None, "reason": str(exc)})
            return
        if jid in self.jobs:
            self._send_client({"type": "failed", "id": jid, "worker": None, "reason": f"job id {jid} sent twice"})
            return
        rec = JobRecord(jid, size, self.now_ms())
        self.jobs[jid] = rec
        self.n_pending += 1
        self._dispatch(rec)

    def _dispatch(self, rec: JobRecord) -> None:
        while True:
            alive = [w for w in self.view.workers if w.alive]
            if not alive:
                self._fail(rec, "no live worker (every worker has died)")
                return
            self.view.now_ms = self.now_ms()
            t = time.perf_counter()
            try:
                choice = int(self.decide(self.view, rec.size))
            except Exception as exc:  # a policy that fails must not lose the job
                self._fail(rec, f"the policy failed: {type(exc).__name__}: {exc}")
                return
            self.decide_us.append((time.perf_counter() - t) * 1e6)
            if not 0 <= choice < len(self.view.workers):
                self._fail(rec, f"the policy chose worker {choice}, not one of 0..{len(self.view.workers) - 1}")
                return
            w = self.view.workers[choice]
            if not w.alive:
                rec.chosen_worker = choice
                w = min(alive, key=lambda v: (v.outstanding_work, v.index))
            try:
                self.worker_socks[w.index].sendall(encode({"type": "job", "id": rec.id, "size": rec.size}))
            except OSError as exc:  # reset, or not taking jobs for WORKER_SEND_TIMEOUT_S
                self._worker_died(w.index, f"sending failed: {exc}")
                continue
            rec.worker, rec.dispatched_ms = w.index, self.now_ms()
            w.queued[rec.id] = rec.size
            return

    # worker messages ------------------------------------------------------------------------------------
    def _on_worker(self, index: int, msg: dict) -> None:
        w = self.view.workers[index]
        rec = self.jobs.get(msg.get("id")) if isinstance(msg.get("id"), int) else None
        if rec is None or rec.worker != index or rec.status != "pending":
            self.events.append({"t_ms": self.now_ms(), "event": "unexpected message", "worker": index,
                                "message": str(msg)[:200]})
            return
        t = msg["type"]
        if t == "started":
            w.queued.pop(rec.id, None)
            w.in_service, w.in_service_size, w.in_service_since_ms = rec.id, rec.size, self.now_ms()
            rec.started_ms = w.in_service_since_ms
        elif t == "finished":
            w.queued.pop(rec.id, None)
            if w.in_service == rec.id:
                w.in_service, w.in_service_size, w.in_service_since_ms = None, 0.0, None
            rec.finished_ms = self.now_ms()
            rec.service_ms = _number(msg.get("service_ms"))
            rec.queue_wait_ms = _number(msg.get("queue_wait_ms"))
            rec.status = "finished"
            self.n_pending -= 1
            w.finished += 1
            w.busy_ms += rec.service_ms or 0.0
            self._send_client({"type": "finished", "id": rec.id, "worker": index, "service_ms": rec.service_ms,
                               "queue_wait_ms": rec.queue_wait_ms})
        elif t == "error":
            w.queued.pop(rec.id, None)
            self._fail(rec, f"worker {index} refused it: {msg.get('reason')}")
        else:
            self.events.append({"t_ms": self.now_ms(), "event": "unexpected message", "worker": index,
                                "message": str(msg)[:200]})

    def _worker_died(self, index: int, why: str) -> None:
        w = self.view.workers[index]
        if not w.alive:
            return
        sock = self.worker_socks[index]
        if sock is not None:
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
            self.worker_socks[index] = None
        w.alive = False
        w.died_ms = self.now_ms()
        s = w.spec
        w.died_reason = f"worker {index} ({s.host}:{s.port}) died: {why}"
        lost = [jid for jid, r in self.jobs.items() if r.worker == index and r.status == "pending"]
        for jid in lost:
            where = "in service" if w.in_service == jid else "queued"
            self._fail(self.jobs[jid], f"{w.died_reason} (the job was {where} there)")
        w.queued.clear()
        w.in_service, w.in_service_size, w.in_service_since_ms = None, 0.0, None
        self.events.append({"t_ms": w.died_ms, "event": "worker died", "worker": index, "reason": w.died_reason,
                            "jobs_failed": lost})
        self.log(f"{w.died_reason}; {len(lost)} jobs failed; dispatching to the "
                 f"{sum(v.alive for v in self.view.workers)} others")

    # answers -------------------------------------------------------------------------------------------
    def _fail(self, rec: JobRecord, reason: str) -> None:
        if rec.status != "pending":
            return
        rec.status, rec.reason = "failed", reason
        self.n_pending -= 1
        rec.finished_ms = self.now_ms()
        self._send_client({"type": "failed", "id": rec.id, "worker": rec.worker, "reason": reason})

    def _fail_pending(self, reason: str) -> None:
        for rec in self.jobs.values():
            if rec.status == "pending":
                self._fail(rec, reason)

    def _send_client(self, msg: dict) -> None:
        if self.client is None:
            return
        self._client_out += encode(msg)
        self._flush_client()

    def _flush_client(self, block: bool = False) -> None:
        """Send what the client has not yet taken (non-blocking: the rest waits for a writable socket)."""
        if self.client is None or self.client.fileno() < 0:
            return
        deadline = time.monotonic() + 5.0
        while self._client_out:
            try:
                n = self.client.send(self._client_out)
                del self._client_out[:n]
            except BlockingIOError:
                if not block or time.monotonic() > deadline:
                    break
                time.sleep(0.001)
            except OSError:
                self._client_out.clear()
                break
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._client_out else 0)
        try:
            key = self.sel.get_key(self.client)
            if key.events != want:
                self.sel.modify(self.client, want, key.data)
        except (KeyError, ValueError):
            pass

    # record --------------------------------------------------------------------------------------------
    def record(self, wall_s: float) -> RunRecord:
        workers = []
        for w in self.view.workers:
            workers.append({"index": w.index, "name": w.spec.name, "host": w.spec.host, "port": w.spec.port,
                            "rate": w.spec.rate, "alive": w.alive, "finished": w.finished,
                            "busy_ms": round(w.busy_ms, 3), "died_ms": w.died_ms, "died_reason": w.died_reason})
        p99 = None
        if self.decide_us:
            s = sorted(self.decide_us)
            p99 = round(s[min(len(s) - 1, int(0.99 * len(s)))], 1)
        return RunRecord(workers, [asdict(j) for j in sorted(self.jobs.values(), key=lambda j: j.id)], self.events,
                         self.policy_name, self.time_unit_ms, round(wall_s, 3), p99)


def _number(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def serve_main(workers: Sequence[WorkerSpec], policy: str, bind: str, port: int, record_path: str | None,
               time_unit_ms: float = TIME_UNIT_MS, ready_file: str | None = None, seed: int = 0,
               answer_timeout_s: float = ANSWER_TIMEOUT_S) -> int:
    """``genet balancer serve``: connect to the workers, serve one client, write the run record."""
    from balancer.decide import policy_decider
    decide = policy_decider(policy, workers, seed=seed)
    bal = Balancer(workers, decide, policy_name=policy, bind=bind, port=port, time_unit_ms=time_unit_ms,
                   answer_timeout_s=answer_timeout_s)
    bal.connect_workers()
    if ready_file:
        tmp = Path(f"{ready_file}.{os.getpid()}.tmp")
        tmp.write_text(str(bal.address[1]))
        os.replace(tmp, ready_file)
    rec = bal.run()
    if record_path:
        atomic_write_text(record_path, rec.to_json() + "\n")
    failed = sum(j["status"] == "failed" for j in rec.jobs)
    bal.log(f"{len(rec.jobs)} jobs: {len(rec.jobs) - failed} finished, {failed} failed")
    return 0


__all__ = ["WorkerSpec", "JobRecord", "WorkerView", "BalancerView", "Decide", "RunRecord", "Balancer",
           "serve_main", "CONNECT_TIMEOUT_S", "ANSWER_TIMEOUT_S", "CLIENT_TIMEOUT_S"]
