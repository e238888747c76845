"""The balancer's parts that need no clock: the wire format, the worker addresses, the observation the balancer
builds from its view, the run's accounting and figures, the command's input checks (balancer/)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from balancer.client import ClientJob
from balancer.decide import policy_decider, state_of
from balancer.summary import accounting_problems, summarize
from balancer.view import BalancerView, WorkerSpec, WorkerView
from balancer.wire import MAX_MESSAGE_BYTES, Decoder, ProtocolError, encode
from foundation.errors import BadInputError
from foundation.metrics import percentile


def test_decoder_reassembles_messages_split_anywhere():
    data = encode({"type": "job", "id": 1, "size": 5.0}) + encode({"type": "end", "n_jobs": 2})
    for cut in range(len(data) + 1):
        dec = Decoder()
        got = dec.feed(data[:cut]) + dec.feed(data[cut:])
        assert got == [{"type": "job", "id": 1, "size": 5.0}, {"type": "end", "n_jobs": 2}]
        assert dec.pending_bytes == 0


@pytest.mark.parametrize("raw, what", [
    ((MAX_MESSAGE_BYTES + 1).to_bytes(4, "big"), "exceeds"),
    (len(b"[1]").to_bytes(4, "big") + b"[1]", "'type'"),
    (len(b"\xff\xfe").to_bytes(4, "big") + b"\xff\xfe", "UTF-8 JSON"),
])
def test_decoder_rejects_what_is_not_a_message(raw, what):
    with pytest.raises(ProtocolError, match=what):
        Decoder("worker 0").feed(raw)


@pytest.mark.parametrize("text", ["127.0.0.1:7000", "127.0.0.1:x:1", ":7000:1", "h:70000:1", "h:7000:0",
                                  "h:7000:nan"])
def test_worker_address_errors_are_one_line(text):
    with pytest.raises(BadInputError, match="--worker") as e:
        WorkerSpec.parse(text)
    assert "\n" not in str(e.value)


def _view(now_ms=100.0):
    specs = [WorkerSpec("h", 1, 0.5, "w0"), WorkerSpec("h", 2, 1.0, "w1"), WorkerSpec("h", 3, 2.0, "w2")]
    ws = [WorkerView(i, s) for i, s in enumerate(specs)]
    ws[0].queued = {4: 300.0, 5: 200.0}                       # two waiting, one in service since t=60 ms
    ws[0].in_service, ws[0].in_service_size, ws[0].in_service_since_ms = 3, 100.0, 60.0
    ws[1].in_service, ws[1].in_service_size, ws[1].in_service_since_ms = 6, 50.0, 90.0
    return BalancerView(ws, now_ms)


def test_the_balancers_state_is_what_it_has_seen():
    st = state_of(_view(), 700.0)
    np.testing.assert_allclose(st.queued_work, [[500.0, 0.0, 0.0]])      # waiting work only
    np.testing.assert_allclose(st.jobs_in_system, [[3, 1, 0]])
    # worker 0: 100 / 0.5 = 200 ms of service, 40 ms done; worker 1: 50 ms, 10 done
    np.testing.assert_allclose(st.in_service_remaining_ms, [[160.0, 40.0, 0.0]])
    np.testing.assert_allclose(st.service_rates, [[0.5, 1.0, 2.0]])
    np.testing.assert_allclose(st.job_size, [700.0])
    # a job in service longer than expected has no remainder left, not a negative one
    assert state_of(_view(now_ms=10_000.0), 1.0).in_service_remaining_ms.min() == 0.0


@pytest.mark.parametrize("policy, expected", [("least_work", 1), ("sed", 2), ("jsq", 2)])
def test_baselines_decide_on_the_balancers_view(policy, expected):
    view = _view()
    decide = policy_decider(policy, [w.spec for w in view.workers])
    assert decide(view, 700.0) == expected


def _job(i, status, worker=None, sent=0.0, answered=None, size=10.0, reason=None, service_ms=None):
    return ClientJob(i, size, sent, sent_ms=sent, answered_ms=answered, status=status, worker=worker, reason=reason,
                     service_ms=service_ms)


def test_summary_accounts_for_every_job():
    jobs = [_job(0, "finished", 0, 0.0, 30.0, service_ms=20.0), _job(1, "finished", 1, 10.0, 30.0, service_ms=10.0),
            _job(2, "failed", 0, 20.0, 25.0, reason="worker 0 (h:1) died: reset"),
            _job(3, "failed", None, None, None, reason="never sent: gone")]
    jobs[3].arrival_ms = 40.0
    assert accounting_problems(jobs, 4) == []
    row = summarize(jobs, None, 2)
    assert (row["jobs"], row["jobs_finished"], row["jobs_failed"]) == (4, 2, 2)
    assert row["jobs_per_worker"] == "1 1"
    assert "worker 0 (h:1) died" in row["failure_reasons"] and "never sent" in row["failure_reasons"]
    # genet.lb.metrics' definitions: completion 30 and 20 ms; slowdown = completion / measured service
    assert row["mean_completion_time_s"] == pytest.approx(0.025)
    assert row["p95_slowdown"] == pytest.approx(percentile(np.array([30 / 20, 20 / 10]), 95))
    assert row["reward"] == pytest.approx(-50.0)
    # span: the first arrival (0) to the last answer (30 ms); worker 0 served 20 ms of it
    assert row["worker_utilisation"].split()[0] == f"{20 / 30:.4f}"
    # the balancer's record of the workers' busy time wins when there is one
    rec = {"workers": [{"index": 0, "busy_ms": 15.0}, {"index": 1, "busy_ms": 3.0, "alive": False,
                                                       "died_reason": "worker 1 (h:2) died: gone"}]}
    row = summarize(jobs, rec, 2)
    assert row["worker_utilisation"] == f"{15 / 30:.4f} {3 / 30:.4f}" and "worker 1" in row["dead_workers"]
    # the accounting sees a lost, a doubled and an unexplained job
    assert accounting_problems(jobs[:3], 4)
    assert accounting_problems(jobs + [jobs[0]], 4)
    assert accounting_problems([_job(0, "failed", reason=None)], 1)


def test_real_and_simulated_rows_have_the_lb_columns():
    from genet.lb.metrics import COLUMN_NAMES
    from genet.lb.simulator import LbSetting
    from traces.workload import Workload

    from balancer.emulate import LbRunSettings, sim_row
    wl = Workload("w", np.array([0.0, 0.0, 5.0]), np.array([10.0, 20.0, 4.0]))
    sim = sim_row("round_robin", wl, LbRunSettings(rates=(1.0, 2.0), worker_delay_ms=(0.0, 0.0)))
    # round robin: job 0 -> w0 (10 ms), job 1 -> w1 (10 ms), job 2 -> w0 at 5 ms, waits until 10, done at 14
    assert sim["sim_mean_completion_time_s"] == pytest.approx((10 + 10 + 9) / 3 / 1000)
    assert sim["sim_reward"] == pytest.approx(-29.0)
    assert LbSetting().queue_shuffle_prob > 0       # the simulator's default shuffles; sim_row runs FIFO queues
    real = summarize([_job(0, "finished", 0, 0.0, 10.0, service_ms=10.0)], None, 2)
    assert set(COLUMN_NAMES) <= set(real) and {f"sim_{k}" for k in COLUMN_NAMES} <= set(sim)


def _args(**kw):
    base = dict(rates="0.5,1,2", worker_delay_ms=None, delay_ms=0.0, client_delay_ms=0.0, bandwidth_mbps=100.0,
                time_unit_ms=1.0, kill_worker=None, backend="loopback", enforce="pacing", seed=0)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("kw, what", [
    (dict(rates="1,0"), "--rates"), (dict(rates="a"), "--rates"), (dict(worker_delay_ms="1,2"), "3 workers"),
    (dict(delay_ms=-1.0), "delays"), (dict(kill_worker="3:10"), "--kill-worker"),
    (dict(kill_worker="x"), "--kill-worker"), (dict(time_unit_ms=0.0), "--time-unit-ms"),
])
def test_emulate_settings_errors_are_one_line(kw, what):
    from balancer.emulate import settings_from_args
    with pytest.raises(BadInputError, match=what) as e:
        settings_from_args(_args(**kw))
    assert "\n" not in str(e.value)


def test_emulate_settings_tag_follows_the_settings():
    from balancer.emulate import settings_from_args
    a, b = settings_from_args(_args()), settings_from_args(_args(delay_ms=5.0))
    assert a.worker_delay_ms == (0.0, 0.0, 0.0) and b.worker_delay_ms == (5.0, 5.0, 5.0)
    assert a.tag() == settings_from_args(_args()).tag() != b.tag()


def test_a_journaled_row_of_an_older_layout_is_run_again_not_reused(tmp_path):
    from balancer.emulate import ROW_KEYS, LbEmulated, LbRunSettings
    from foundation.experiment import Cell
    s = LbRunSettings(rates=(1.0, 2.0), worker_delay_ms=(0.0, 0.0))
    tier = LbEmulated(s, tmp_path, with_sim=False)
    cell = Cell("least_work", "seed-1", 0)
    old = {"policy": "least_work", "workload": "seed-1", "repeat": 0, "settings": s.tag(), "n_jobs": 40}
    assert tier.reuse(cell, [old]) is None  # an older version's row: rerun
    new = {**old, **{k: 1.0 for k in ROW_KEYS}}
    assert tier.reuse(cell, [old, new]) is new
    assert tier.reuse(cell, [{**new, "settings": "other"}]) is None
