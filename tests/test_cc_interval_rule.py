"""The simulator's next-monitor-interval rule (genet/cc/aurora.py, ``AuroraConfig.interval_serialisation``):
"link" (Genet's: one packet at the link's true bandwidth at the interval's sends, an oracle) or "measured"
(one packet at the interval's delivery rate: what the real UDP sender does). They part ways where the link
changes under the sender; the rule a model was trained with travels in its metadata."""

from __future__ import annotations

import numpy as np
import pytest

from foundation.errors import BadInputError
from genet.cc.aurora import AuroraConfig, measured_serialisation_s
from genet.cc.policies import run_aurora
from traces import Trace

DELAY_MS = 50.0


def _outage_trace() -> Trace:
    """12 Mbit/s, then 0.5 s at 0.1 Mbit/s from t = 3 s, then 12 again."""
    return Trace(np.array([0.0, 3.0, 3.5, 6.0]), np.array([12.0, 0.1, 12.0, 12.0]), name="outage",
                 delay_ms=DELAY_MS, queue_packets=10)


def _intervals(rule: str):
    cfg = AuroraConfig(interval_serialisation=rule)
    _, env = run_aurora(lambda obs: 0.0, _outage_trace(), cfg, seed=0)
    return env.intervals


def test_each_rule_sets_the_next_interval_as_documented_and_they_differ_across_an_outage():
    """Next interval = the MI's mean latency + one packet's serialisation: at the MI's own delivery rate
    ("measured", the real sender's) or at the link's bandwidth at the MI's sends ("link", Genet's)."""
    lengths = {}
    for rule in ("link", "measured"):
        mis = _intervals(rule)
        starts = np.array([m.send_start_s for m in mis])
        lengths[rule] = np.diff(starts)
        checked = 0
        for mi, nxt in zip(mis[1:-2], np.diff(starts)[2:]):
            if mi.avg_latency_s <= 0 or mi.throughput_pps <= 0:
                continue
            if rule == "measured":
                expected = mi.avg_latency_s + measured_serialisation_s(mi)
            else:  # mean 1/bandwidth over the MI's sends: the link's rate wherever the MI lies within one sample
                if not (mi.send_end_s <= 3.0 or 3.5 <= mi.send_start_s):
                    continue
                expected = mi.avg_latency_s + 1.0 / (12.0 * 1e6 / 12000)
            # the simulator's MIs end at the first send at or after the nominal end: never early, and late by at
            # most one packet time (10 ms at this sender's 1.2 Mbit/s)
            assert expected - 1e-9 <= nxt <= expected + 0.0105, (rule, mi.send_start_s, nxt, expected)
            checked += 1
        assert checked > 10
    assert lengths["link"].size != lengths["measured"].size or not np.allclose(lengths["link"], lengths["measured"])


def test_the_measured_rule_is_the_real_senders_function():
    mis = _intervals("measured")
    mi = next(m for m in mis if m.throughput_pps > 0)
    assert measured_serialisation_s(mi) == pytest.approx(1.0 / mi.throughput_pps)


def test_an_unknown_rule_is_one_clear_error():
    with pytest.raises(BadInputError, match=r"interval_serialisation must be one of link, measured, got 'oracle'"):
        AuroraConfig(interval_serialisation="oracle")


@pytest.fixture(scope="module")
def measured_model(tmp_path_factory):
    from genet.cc.training import CcTrainConfig, CcUseCase, export_policy
    uc = CcUseCase(CcTrainConfig(n_envs=2, steps_per_update=200, minibatch=50, epochs=2,
                                 interval_serialisation="measured"))
    return export_policy(uc, uc.new_model(0), tmp_path_factory.mktemp("m") / "measured.onnx", n_check=10)


def test_the_rule_a_model_was_trained_with_travels_in_its_metadata(measured_model, repo_dir):
    from genet.cc.registry import load_aurora_policy
    _, cfg = load_aurora_policy(str(measured_model), AuroraConfig(interval_serialisation="link"))
    assert cfg.interval_serialisation == "measured"
    # a model exported before the rule existed takes the caller's (genet eval cc --interval-serialisation)
    old = str(repo_dir / "models" / "study" / "policies" / "cc-genet-ack-s0.onnx")
    assert load_aurora_policy(old, AuroraConfig())[1].interval_serialisation == "link"
    assert load_aurora_policy(old, AuroraConfig(interval_serialisation="measured"))[1].interval_serialisation \
        == "measured"
    # the shipped models record theirs (the real sender's rule)
    shipped = str(repo_dir / "models" / "cc" / "genet.onnx")
    assert load_aurora_policy(shipped, AuroraConfig(interval_serialisation="link"))[1].interval_serialisation \
        == "measured"


def test_genet_eval_cc_takes_the_rule_for_models_without_it(tmp_path, repo_dir):
    from traces.io import write_trace
    from app.cli import main
    trace = tmp_path / "outage.json"
    write_trace(_outage_trace(), trace)
    rewards = {}
    for rule in ("link", "measured"):
        out = tmp_path / rule
        old = repo_dir / "models" / "study" / "policies" / "cc-udr3-s0.onnx"  # exported before the rule existed
        assert main(["eval", "cc", "--policy", str(old), "--traces", str(trace),
                     "--interval-serialisation", rule, "--no-plots", "--no-progress", "--out", str(out)]) == 0
        rewards[rule] = (out / "results.csv").read_text()
    assert rewards["link"] != rewards["measured"]
    with pytest.raises(SystemExit):
        main(["eval", "cc", "--policy", "bbr", "--traces", str(trace), "--interval-serialisation", "oracle"])
