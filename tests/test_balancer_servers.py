"""Real worker servers, the balancer and the client on loopback (balancer/): a worker serves at its rate, in
FIFO order; the balancer dispatches with a baseline and with an ONNX policy, answering every job; a worker killed
mid-run has its jobs failed with the reason while the others finish. Real time: each test replays a short
workload (a few hundred ms to 2 s)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from balancer.client import replay
from balancer.decide import policy_decider
from balancer.server import Balancer
from balancer.summary import accounting_problems, summarize
from balancer.view import WorkerSpec
from balancer.wire import encode, messages
from balancer.worker import WorkerConfig, WorkerServer

REPO = Path(__file__).resolve().parents[1]


def _workers(rates, enforce="pacing"):
    servers = [WorkerServer(WorkerConfig(r, enforce=enforce, name=f"w{i}")) for i, r in enumerate(rates)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    specs = [WorkerSpec("127.0.0.1", s.address[1], r, f"w{i}") for i, (s, r) in enumerate(zip(servers, rates))]
    return servers, threads, specs


def _stop(servers, threads):
    for s in servers:
        s.stop()
    for t in threads:
        t.join(timeout=5)


def _serve_jobs(worker_port, sizes):
    """Send ``sizes`` to a worker at once; returns its messages in order (until every job finished)."""
    with socket.create_connection(("127.0.0.1", worker_port), timeout=30) as sock:
        for i, s in enumerate(sizes):
            sock.sendall(encode({"type": "job", "id": i, "size": s}))
        sock.sendall(encode({"type": "job", "id": 99, "size": -1}))      # refused with a reason
        got = []
        for msg in messages(sock):
            got.append(msg)
            if sum(m["type"] in ("finished", "error") for m in got) == len(sizes) + 1:
                return got


def _worker_process(tmp_path, rate, name="w0", enforce="pacing"):
    """``genet balancer worker`` as a process of its own (its cgroup, its death); returns (process, port)."""
    ready = tmp_path / f"{name}.port"
    proc = subprocess.Popen([sys.executable, "-m", "balancer", "worker", "--rate", str(rate), "--name",
                             name, "--enforce", enforce, "--ready-file", str(ready)], env=_env(),
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _end(proc)
            raise AssertionError(f"the worker did not start (exit status {proc.returncode})")
        time.sleep(0.02)
    return proc, int(ready.read_text())


def _end(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("enforce", ["pacing", "cgroup"])
def test_worker_serves_fifo_at_its_rate(enforce, tmp_path):
    if enforce == "cgroup":
        from balancer.cpuquota import cpu_mount
        if os.geteuid() != 0 or cpu_mount() is None:
            pytest.skip("cgroup enforcement needs root and a cgroup v1 cpu controller")
    rate, sizes = 2.0, [200.0, 100.0, 60.0]              # 100, 50 and 30 ms of service
    proc, port = _worker_process(tmp_path, rate, enforce=enforce)
    try:
        got = _serve_jobs(port, sizes)
    finally:
        _end(proc)
    err = [m for m in got if m["type"] == "error"]
    assert len(err) == 1 and err[0]["id"] == 99 and "size" in err[0]["reason"]
    order = [(m["type"], m["id"]) for m in got if m["type"] in ("started", "finished")]
    assert order == [("started", 0), ("finished", 0), ("started", 1), ("finished", 1), ("started", 2),
                     ("finished", 2)]                     # one at a time, first come first served
    fin = {m["id"]: m for m in got if m["type"] == "finished"}
    # never faster than the rate; the upper bounds only catch a rate not enforced at all (cgroup: the quota is
    # granted per 10 ms period, and a busy machine may give the worker less than its quota)
    slack = 2.0 if enforce == "pacing" else 3.0
    for i, s in enumerate(sizes):
        want = s / rate
        assert want * (0.999 if enforce == "pacing" else 0.75) <= fin[i]["service_ms"] <= want * slack + 50
        assert fin[i]["queue_wait_ms"] >= 0.0


def _run(specs, decide, arrivals, sizes, name="custom", answer_timeout_s=20.0, **kw):
    bal = Balancer(specs, decide, policy_name=name, answer_timeout_s=answer_timeout_s)
    bal.connect_workers(timeout_s=10)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("record", bal.run(client_timeout_s=20)))
    th.start()
    jobs = replay(arrivals, sizes, tuple(bal.address), answer_timeout_s=20.0, **kw)
    th.join(timeout=60)
    return jobs, out["record"]


def _recording(decide):
    log = []

    def wrapped(view, size):
        choice = decide(view, size)
        log.append(([w.queued_work for w in view.workers], choice))
        return choice
    return wrapped, log


def _workload(n=30, seed=3, interval_ms=25.0, size_max=120.0):
    from traces.workload import WorkloadConfig, generate_workload
    wl = generate_workload(WorkloadConfig(num_jobs=n, job_interval_ms=interval_ms, job_size_max_work=size_max), seed)
    return wl.arrival_times_ms, wl.job_sizes_work


def test_balancer_dispatches_with_least_work_and_answers_every_job():
    rates = [0.5, 1.0, 2.0]
    servers, threads, specs = _workers(rates)
    arrivals, sizes = _workload()
    decide, log = _recording(policy_decider("least_work", specs))
    try:
        jobs, record = _run(specs, decide, arrivals, sizes, "least_work")
    finally:
        _stop(servers, threads)
    assert accounting_problems(jobs, len(sizes)) == []
    assert all(j.status == "finished" for j in jobs)
    # every decision went to the worker with the least waiting work the balancer saw (ties: the lowest index)
    assert len(log) == len(sizes)
    assert all(choice == int(np.argmin(q)) for q, choice in log)
    assert any(max(q) > 0 for q, _ in log)             # queues did build up: the rule was exercised
    by_id = {j["id"]: j for j in record.jobs}
    for j in jobs:                                     # the client's and the balancer's records agree
        r = by_id[j.id]
        assert r["status"] == "finished" and r["worker"] == j.worker
        assert r["dispatched_ms"] <= r["started_ms"] <= r["finished_ms"]
        assert j.completion_ms >= j.size / rates[j.worker] - 1e-6   # no job is served faster than its rate
    row = summarize(jobs, {"workers": record.workers}, 3)
    assert row["jobs_finished"] == row["jobs"] == len(sizes) and row["jobs_failed"] == 0
    per_worker = [int(x) for x in row["jobs_per_worker"].split()]
    util = [float(x) for x in row["worker_utilisation"].split()]
    assert sum(per_worker) == len(sizes) and all(0 < u <= 1 for u, k in zip(util, per_worker) if k)


def _tiny_onnx_least_work(path: Path) -> Path:
    """An ONNX LB policy (layout lb.genet-3w, logits) whose argmax is the least waiting work: -1000 x queue."""
    import onnx
    from onnx import TensorProto, helper

    from genet.lb.observations import policy_spec
    w = np.zeros((4, 3), dtype=np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = -1000.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["observation", "W"], ["output"])], "lb",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("W", TensorProto.FLOAT, [4, 3], w.ravel().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in policy_spec("lb.genet-3w", output="logits").to_metadata().items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_an_onnx_policy_dispatches_through_the_balancer(tmp_path):
    rates = [0.5, 1.0, 2.0]
    onnx_path = _tiny_onnx_least_work(tmp_path / "lwl.onnx")
    servers, threads, specs = _workers(rates)
    arrivals, sizes = _workload(n=25, seed=5)
    inner = policy_decider(str(onnx_path), specs)
    assert type(inner.policy).__name__ == "OnnxPolicy"
    decide, log = _recording(inner)
    try:
        jobs, record = _run(specs, decide, arrivals, sizes, str(onnx_path))
    finally:
        _stop(servers, threads)
    assert accounting_problems(jobs, len(sizes)) == [] and all(j.status == "finished" for j in jobs)
    # the network's choice, read through genet.lb.observations' Genet layout, is the least waiting work
    assert all(choice == int(np.argmin(q)) for q, choice in log) and any(max(q) > 0 for q, _ in log)
    assert record.decide_p99_us is not None


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def test_a_killed_worker_fails_its_jobs_with_the_reason_and_the_others_finish(tmp_path):
    proc, port = _worker_process(tmp_path, 0.5)
    try:
        servers, threads, others = _workers([1.0])
        specs = [WorkerSpec("127.0.0.1", port, 0.5, "w0"), others[0]]
        n = 24
        arrivals, sizes = np.arange(n) * 30.0, np.full(n, 40.0)    # w0 needs 80 ms a job: its queue grows
        decide, log = _recording(policy_decider("round_robin", specs))
        timer = threading.Timer(0.35, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            jobs, record = _run(specs, decide, arrivals, sizes, "round_robin")
        finally:
            timer.cancel()
            _stop(servers, threads)
    finally:
        _end(proc)
    assert accounting_problems(jobs, n) == []
    failed = [j for j in jobs if j.status == "failed"]
    assert failed, "the killed worker held no job"
    for j in failed:                                   # exactly the jobs the dead worker held, with the reason
        assert j.worker == 0 and "worker 0" in j.reason and "died" in j.reason
    died = [e for e in record.events if e["event"] == "worker died"]
    assert len(died) == 1 and died[0]["worker"] == 0 and sorted(died[0]["jobs_failed"]) == sorted(j.id for j in failed)
    assert not record.workers[0]["alive"] and "died" in record.workers[0]["died_reason"]
    t_died = died[0]["t_ms"]
    by_id = {r["id"]: r for r in record.jobs}
    later = [r for r in record.jobs if r["received_ms"] > t_died]
    assert later, "no job arrived after the worker died"
    # after the death every job went to the live worker and finished; round robin's picks of the dead one were
    # redirected (and say so)
    assert all(r["worker"] == 1 and r["status"] == "finished" for r in later)
    assert any(r["chosen_worker"] == 0 for r in later)
    assert all(by_id[j.id]["status"] == "finished" for j in jobs if j.worker == 1)
    row = summarize(jobs, {"workers": record.workers}, 2)
    assert row["jobs_finished"] + row["jobs_failed"] == row["jobs"] == n and row["jobs_failed"] == len(failed)
    assert "worker 0" in row["dead_workers"]


def test_a_bad_job_is_failed_with_the_reason_and_the_run_still_ends_when_all_are_answered():
    servers, threads, specs = _workers([2.0])
    try:
        jobs, record = _run(specs, lambda view, size: 0, [0.0, 5.0, 10.0], [10.0, -1.0, 10.0])
    finally:
        _stop(servers, threads)
    assert [j.status for j in jobs] == ["finished", "failed", "finished"]
    assert "size must be a number" in jobs[1].reason and jobs[1].worker is None
    # it ended on the last answer: no answer timeout, and the client did not have to give up and leave
    assert not any(e["event"] in ("answer timeout", "client left") for e in record.events)


def test_a_pause_in_the_workload_longer_than_the_answer_timeout_is_no_timeout():
    servers, threads, specs = _workers([1.0])
    try:   # nothing is pending during the 600 ms pause: the 0.2 s answer timeout must not end the run
        jobs, record = _run(specs, lambda view, size: 0, [0.0, 600.0], [5.0, 5.0], answer_timeout_s=0.2)
    finally:
        _stop(servers, threads)
    assert [j.status for j in jobs] == ["finished", "finished"]
    assert not any(e["event"] == "answer timeout" for e in record.events)
