"""`genet eval cc`, the CC policy choices and ONNX Aurora policies."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import shared_path
from genet.cc.env import AuroraConfig
from genet.cc.link import LinkConfig
from genet.cc.policies import cc_policy_spec, load_aurora_policy, parse_policy, run_policy
from genet.cc.senders import RateSender
from genet.cc.simulator import Simulation
from app.cli import main
from traces import Trace


def export_constant_policy(path, action, obs_size=30, use_case="cc", delta_scale=None):
    """A tiny torch net whose mean action is ``action`` whatever it sees, exported via genet.policy."""
    torch = pytest.importorskip("torch")
    from genet.policy import PolicySpec, export_onnx

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(obs_size, 1)
            torch.nn.init.zeros_(self.lin.weight)
            torch.nn.init.constant_(self.lin.bias, action)

        def forward(self, x):
            return self.lin(x)

    spec = cc_policy_spec()
    spec = PolicySpec(use_case=use_case, observation_layout=spec.observation_layout, observation_shape=(obs_size,),
                      action_semantics=spec.action_semantics, n_actions=1, action_type="continuous", output="mean")
    extra = {"delta_scale": delta_scale} if delta_scale is not None else None
    return export_onnx(Net(), spec, path, extra_metadata=extra, check_observations=np.ones((4, obs_size), np.float32))


def test_parse_policy_forms_and_errors(tmp_path):
    assert parse_policy("bbr").kind == "bbr" and parse_policy("cubic").kind == "cubic"
    p = parse_policy("const:2.5")
    assert (p.kind, p.rate_mbps, p.label) == ("const", 2.5, "const:2.5")
    for bad, msg in [("vegas", "unknown CC policy; known: bbr, cubic"), ("const:x", "must be a number"), ("const:-1", "> 0 Mbps"),
                     (str(tmp_path / "missing.onnx"), "not found")]:
        with pytest.raises((ValueError, FileNotFoundError), match=msg):
            parse_policy(bad)


def test_onnx_zero_action_policy_matches_the_constant_rate_sender(tmp_path):
    path = export_constant_policy(tmp_path / "zero.onnx", 0.0)
    trace = Trace.constant(3.0, 10.0, delay_ms=25, queue_packets=30)
    link = LinkConfig.from_trace(trace)
    log = run_policy(parse_policy(str(path)), trace, link)
    ref = Simulation(link, RateSender(10 / 0.05 * 12000 / 1e6)).run()
    assert abs(log.packets_sent - ref.packets_sent) <= 2
    n = min(len(log), len(ref))
    np.testing.assert_allclose(log.time_s[:n], ref.time_s[:n], rtol=1e-12)


def test_onnx_delta_scale_metadata_is_used(tmp_path):
    path = export_constant_policy(tmp_path / "up.onnx", 1.0, delta_scale=0.05)
    policy, cfg = load_aurora_policy(str(path))
    assert cfg.delta_scale == 0.05
    trace = Trace.constant(50.0, 3.0, delay_ms=10, queue_packets=500)
    log = run_policy(parse_policy(str(path)), trace, LinkConfig.from_trace(trace))
    sent_t = log.time_s[log.kind == 0]
    gaps = np.diff(sent_t)
    # rate grows by 5 % per interval: the last gaps are much shorter than the first
    assert gaps[:10].mean() > 3 * gaps[-10:].mean()


def test_onnx_with_wrong_observation_size_is_a_clear_error(tmp_path):
    from genet.policy import PolicyMismatchError
    path = export_constant_policy(tmp_path / "small.onnx", 0.0, obs_size=20)
    with pytest.raises(PolicyMismatchError, match="takes 20 observation values.*gives 30"):
        load_aurora_policy(str(path))
    # a matching history length is accepted
    path = export_constant_policy(tmp_path / "h5.onnx", 0.0, obs_size=15)
    _, cfg = load_aurora_policy(str(path), AuroraConfig(history_length=5))
    assert cfg.observation_size == 15
    path = export_constant_policy(tmp_path / "abr.onnx", 0.0, use_case="abr")
    with pytest.raises(PolicyMismatchError, match="'abr' policy, not a CC"):
        load_aurora_policy(str(path))


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_rows_summary_and_plots_and_resumes(tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "cc", "--policy", "bbr,cubic", "--policy", "const:2", "--config", "rl1", "-n", "3",
            "--seed", "5", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "bbr" in printed and "p95 RTT (ms)" in printed
    rows = read_csv(out / "results.csv")
    assert len(rows) == 9
    for col in ("trace", "throughput_mbps", "p90_rtt_ms", "p95_rtt_ms", "loss_rate", "reward"):
        assert col in rows[0]
    assert len(json.loads((out / "results.json").read_text())) == 9
    summary = read_csv(out / "summary.csv")
    assert [s["policy"] for s in summary] == ["bbr", "cubic", "const:2"]
    bbr_rows = [r for r in rows if r["policy"] == "bbr"]
    assert float(summary[0]["throughput_mbps"]) == pytest.approx(
        np.mean([float(r["throughput_mbps"]) for r in bbr_rows]))
    for png in ("timeseries.png", "reward_cdf.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # the constant sender's throughput is its rate when the link is faster
    for r in rows:
        if r["policy"] == "const:2" and float(r["trace_mean_bandwidth_mbps"]) > 3:
            assert float(r["throughput_mbps"]) == pytest.approx(2.0, rel=0.02)
    # a rerun reuses the journal instead of appending the same rows again
    assert main(args + ["--no-plots"]) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 9
    assert read_csv(out / "results.csv") == rows
    # ... but not when the link settings differ; another reward form only changes the reward column
    assert main(args + ["--no-plots", "--queue-packets", "7", "--reward-form", "aurora"]) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 18
    again = read_csv(out / "results.csv")
    assert all(float(r["queue_packets"]) == 7 and r["reward"] == r["reward_aurora"] for r in again)


def test_cli_on_pantheon_traces(tmp_path, capsys):
    link_dir = sorted(shared_path("traces", "cc", "pantheon-cellular").iterdir())[0]
    assert main(["eval", "cc", "--policy", "cubic", "--traces", str(link_dir), "--out", str(tmp_path),
                 "--no-plots", "--no-progress"]) == 0
    rows = read_csv(tmp_path / "results.csv")
    assert len(rows) >= 3
    assert all(float(r["queue_packets"]) == 10 for r in rows)  # Pantheon placeholder default
    assert all(float(r["throughput_mbps"]) > 0 for r in rows)


@pytest.mark.parametrize("extra,message", [
    (["--queue-packets", "0"], "queue_packets must be >= 1"),
    (["--loss-rate", "1.5"], r"loss_rate must be in \[0, 1\)"),
    (["--delay-ms", "-5"], "delay_ms must be >= 0"),
    (["--policy", "reno"], "unknown CC policy"),
])
def test_cli_bad_input_is_one_clear_line(tmp_path, capsys, extra, message):
    args = ["eval", "cc", "--policy", "bbr", "--config", "rl1", "-n", "1", "--no-progress"] + extra
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("genet: error:")
    assert __import__("re").search(message, err)


def test_cli_rejects_onnx_with_wrong_observation_size(tmp_path, capsys):
    path = export_constant_policy(tmp_path / "bad.onnx", 0.0, obs_size=12)
    assert main(["eval", "cc", "--policy", str(path), "--config", "rl1", "-n", "1", "--no-progress"]) == 1
    assert "takes 12 observation values" in capsys.readouterr().err


def test_cli_rejects_a_trace_with_zero_bandwidth_throughout(tmp_path, capsys):
    from traces import write_trace
    path = write_trace(Trace(np.array([0.0, 1.0, 2.0]), np.zeros(3), name="dead", delay_ms=10),
                       tmp_path / "dead.json")
    assert main(["eval", "cc", "--policy", "bbr", "--traces", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "dead.json" in err and "zero for the whole trace" in err


def test_cli_crash_while_journaling_then_two_reruns_keep_every_run_once(tmp_path, monkeypatch):
    """A crash tore the journal's last row: the first rerun redoes that run only and journals it as a whole
    line (not glued onto the fragment, where it was lost and redone on every rerun), the second redoes
    nothing; every run is in the journal exactly once."""
    import genet.cc.evaluate as ev
    out = tmp_path / "eval"
    args = ["eval", "cc", "--policy", "bbr,cubic", "--config", "rl1", "-n", "3", "--seed", "5", "--out", str(out),
            "--no-progress", "--no-plots"]
    assert main(args) == 0
    path = out / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 6
    path.write_text("".join(lines[:5]) + lines[5][:40])
    calls = []
    real = ev.run_policy
    monkeypatch.setattr(ev, "run_policy", lambda policy, trace, *a, **kw: calls.append(
        (policy.label, trace.name)) or real(policy, trace, *a, **kw))
    lost = json.loads(lines[5])
    for rerun, expected in enumerate(([(lost["policy"], lost["trace"])], [])):
        calls.clear()
        assert main(args) == 0, rerun
        assert calls == expected, rerun
    rows = [json.loads(x) for x in path.read_text().splitlines()]  # every line a whole record
    assert len(rows) == 6 and len({(r["policy"], r["trace"]) for r in rows}) == 6
    assert len(read_csv(out / "results.csv")) == 6


def test_a_rerun_with_another_duration_is_not_served_from_the_journal(tmp_path):
    """The resume key holds the run's length: `--duration-s 2` then `--duration-s 4` on one --out runs again
    (throughput of a constant link is the same, packets sent double), and a third call at 4 s reuses rows."""
    from genet.cc.evaluate import compare_policies
    from foundation.journal import Journal
    trace = Trace([0.0, 10.0], [6.0, 6.0], name="const6", delay_ms=10.0)
    policy = [parse_policy("const:3")]
    two = compare_policies(policy, [trace], tmp_path, plots=False, progress=False, duration_s=2.0)
    four = compare_policies(policy, [trace], tmp_path, plots=False, progress=False, duration_s=4.0)
    assert four[0].packets_sent > 1.8 * two[0].packets_sent
    assert len(Journal(tmp_path / "results.jsonl").records) == 2
    again = compare_policies(policy, [trace], tmp_path, plots=False, progress=False, duration_s=4.0)
    assert again[0].packets_sent == four[0].packets_sent
    assert len(Journal(tmp_path / "results.jsonl").records) == 2
