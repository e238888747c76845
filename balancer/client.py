"""The client: ``genet balancer replay`` sends a workload's jobs to the balancer open-loop — job i at its arrival
time (``arrival_times_ms[i]`` x ``time_unit_ms`` wall-clock ms after the start: one workload ms is one Genet time
unit, :data:`balancer.wire.TIME_UNIT_MS` ms by default), whatever the answers — and records every job: when it was sent, and its answer (finished on
worker k, or failed with the reason). A job with no answer when the run ends is recorded failed ("no answer"),
so the record accounts for every job of the workload (:class:`ClientJob`, one per job, in workload order).

Standard library (and the workload's numpy arrays) only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Sequence

from balancer.wire import TIME_UNIT_MS, ProtocolError, encode, messages
from foundation.errors import GenetRuntimeError

#: After its last job, the client waits this long for the balancer's last answers (s) beyond its answer timeout.
DONE_MARGIN_S = 10.0


@dataclass
class ClientJob:
    """One workload job as the client saw it (ms since the client's start; its own clock).

    arrival_ms: when the workload says it arrives (scaled to wall-clock ms); sent_ms: when it was sent;
    answered_ms: when its answer came; status "finished" / "failed" (reason) / "unanswered" while running
    """

    id: int
    size: float
    arrival_ms: float
    sent_ms: float | None = None
    answered_ms: float | None = None
    status: str = "unanswered"
    worker: int | None = None
    reason: str | None = None
    service_ms: float | None = None
    queue_wait_ms: float | None = None

    @property
    def completion_ms(self) -> float | None:
        """From its arrival (the time it was sent) to its answer."""
        if self.status != "finished" or self.sent_ms is None or self.answered_ms is None:
            return None
        return self.answered_ms - self.sent_ms


def replay(arrival_units: Sequence[float], sizes: Sequence[float], balancer: tuple[str, int], *,
           time_unit_ms: float = TIME_UNIT_MS, answer_timeout_s: float = 60.0,
           connect_timeout_s: float = 20.0, start_file: str | None = None) -> list[ClientJob]:
    """Send job i (size ``sizes[i]``) at ``arrival_units[i]`` time units after the start; return every job's
    record once each has its answer (or the run timed out: those are failed, "no answer"). ``start_file``:
    written when the workload's clock starts (after the connection is made)."""
    jobs = [ClientJob(i, float(s), float(t) * time_unit_ms) for i, (t, s) in enumerate(zip(arrival_units, sizes))]
    deadline = time.monotonic() + connect_timeout_s
    while True:
        try:
            sock = socket.create_connection(balancer, timeout=2.0)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise GenetRuntimeError(f"balancer {balancer[0]}:{balancer[1]}: cannot connect "
                                        f"({exc.strerror or exc})") from None
            time.sleep(0.05)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    send_lock = threading.Lock()
    t0 = time.monotonic()
    if start_file:  # when the workload's clock started (fault injection times itself from it)
        with open(start_file, "w") as fh:
            fh.write(f"{time.time():.6f}\n")
    send_error: list[str] = []

    def now_ms() -> float:
        return (time.monotonic() - t0) * 1000.0

    def sender() -> None:
        try:
            for j in jobs:
                wait = j.arrival_ms / 1000.0 - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
                j.sent_ms = now_ms()
                with send_lock:
                    sock.sendall(encode({"type": "job", "id": j.id, "size": j.size}))
            with send_lock:
                sock.sendall(encode({"type": "end", "n_jobs": len(jobs)}))
        except OSError as exc:
            send_error.append(f"sending to the balancer failed: {exc}")
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    th = threading.Thread(target=sender, name="client-sender", daemon=True)
    th.start()
    end_reason = "the balancer closed the connection before answering"
    last_arrival_s = jobs[-1].arrival_ms / 1000.0 if jobs else 0.0
    # the whole run's bound: every job sent, then the balancer's own answer timeout, then a margin
    sock.settimeout(max(1.0, last_arrival_s + answer_timeout_s + DONE_MARGIN_S))
    try:
        for msg in messages(sock, f"balancer {balancer[0]}:{balancer[1]}"):
            t = msg["type"]
            if t == "done":
                end_reason = "the balancer ended the run without answering it"
                break
            jid = msg.get("id")
            if t not in ("finished", "failed") or not isinstance(jid, int) or not 0 <= jid < len(jobs):
                continue
            j = jobs[jid]
            if j.status != "unanswered":
                continue
            j.answered_ms = now_ms()
            j.status = t
            j.worker = msg.get("worker")
            if t == "finished":
                j.service_ms, j.queue_wait_ms = msg.get("service_ms"), msg.get("queue_wait_ms")
            else:
                j.reason = str(msg.get("reason"))[:500]
    except socket.timeout:
        end_reason = "no answer within the run's time bound"
    except (OSError, ProtocolError) as exc:
        end_reason = f"the connection to the balancer failed: {exc}"
    finally:
        sock.close()
    th.join(timeout=5.0)
    if send_error:
        end_reason = send_error[0]
    for j in jobs:
        if j.status == "unanswered":
            j.status = "failed"
            j.reason = "never sent: " + end_reason if j.sent_ms is None else "no answer: " + end_reason
    return jobs


def generated_workload(seed: int, num_jobs: int | None = None, job_interval_ms: float | None = None,
                       job_size_max_work: float | None = None):
    """Genet's job stream from ``seed`` with the given settings (None: Genet's default; the smallest size is
    Genet's 10 work units, or the largest size when that is smaller), as ``genet emulate lb -n`` draws it."""
    from traces.workload import WorkloadConfig, generate_workload
    base = WorkloadConfig()
    size_max = job_size_max_work or base.job_size_max_work
    cfg = WorkloadConfig(num_jobs=num_jobs or base.num_jobs, job_interval_ms=job_interval_ms or base.job_interval_ms,
                         job_size_max_work=size_max, job_size_min_work=min(base.job_size_min_work, size_max))
    return generate_workload(cfg, seed)


def write_jobs(jobs: Sequence[ClientJob], path) -> None:
    """The client's record: one JSON line per job."""
    from foundation.atomic import atomic_write_text
    atomic_write_text(path, "".join(json.dumps(asdict(j)) + "\n" for j in jobs))


def read_jobs(path) -> list[ClientJob]:
    with open(path) as fh:
        return [ClientJob(**json.loads(line)) for line in fh if line.strip()]


__all__ = ["ClientJob", "replay", "generated_workload", "write_jobs", "read_jobs", "DONE_MARGIN_S"]
