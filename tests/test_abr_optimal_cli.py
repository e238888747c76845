"""Offline optimum (bounds the baselines, plan replays exactly) and the `genet eval abr` command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import envivio_arg, envivio_video, shared_path
from genet.abr.evaluate import evaluate
from genet.abr.optimal import optimal_plan
from genet.abr.params import GENET_COMPAT, PENSIEVE
from app.cli import main
from traces import load_traces
from traces.trace import Trace


@pytest.fixture(scope="module")
def video():
    return envivio_video()


@pytest.mark.parametrize("conv", [PENSIEVE, GENET_COMPAT], ids=["pensieve", "genet"])
def test_optimum_bounds_bba_and_mpc_per_trace(conv, video):
    traces = load_traces(shared_path("traces", "abr", "norway-val"))[::3]
    opt = np.array([r.qoe for r in evaluate("optimal", traces, video, conv)])
    bba = np.array([r.qoe for r in evaluate("bba", traces, video, conv)])
    mpc = np.array([r.qoe for r in evaluate("mpc", traces, video, conv)])
    assert np.all(opt >= np.maximum(bba, mpc) - 1e-9)
    assert opt.mean() > mpc.mean() + 1.0


def test_plan_value_equals_replay_and_picks_top_on_fast_link(video):
    fast = Trace(np.arange(0, 600.0), np.full(600, 50.0), name="fast")
    plan, value = optimal_plan(fast, video, PENSIEVE)
    assert np.all(plan[1:] == 5)  # 50 Mbps: the top bitrate everywhere, no stalls
    res = evaluate("optimal", [fast], video, PENSIEVE)[0]
    assert res.qoe == pytest.approx(value, abs=1e-9)


def test_eval_cli_writes_all_outputs(tmp_path, capsys):
    traces = shared_path("traces", "abr", "norway-val")
    out = tmp_path / "out"
    rc = main(["eval", "abr", "--traces", str(traces), "--video", envivio_arg(),
               "--policy", "bba", "--policy", "mpc", "--compat", "genet", "--out", str(out), "--no-progress"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {"trace", "bitrate_mbps", "rebuffer_s", "bitrate_change_mbps", "qoe", "policy"} <= set(rows[0])
    n = len(load_traces(traces))
    assert len(rows) == 2 * n
    data = json.loads((out / "results.json").read_text())
    mean_bba = np.mean([float(r["qoe"]) for r in rows if r["policy"] == "bba"])
    assert abs(mean_bba - (-10.6703)) < 1e-3
    assert [s["policy"] for s in data["summary"]] == ["bba", "mpc"]
    assert (out / "qoe_cdf.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "bitrate_mbps" in printed and "mpc" in printed


def test_eval_cli_bad_inputs(tmp_path, capsys):
    rc = main(["eval", "abr", "--traces", str(tmp_path / "nope"), "--video", envivio_arg(),
               "--no-progress", "--out", str(tmp_path / "o")])
    assert rc == 1 and "nope" in capsys.readouterr().err
    rc = main(["eval", "abr", "--traces", str(shared_path("traces", "abr", "norway-val")), "--policy", "bogus",
               "--video", envivio_arg(), "--no-progress", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown ABR policy 'bogus'" in err and "bba" in err


def test_eval_cli_resumes_finished_policies(tmp_path, capsys):
    args = ["eval", "abr", "--traces", str(shared_path("traces", "abr", "norway-val")), "--video",
            envivio_arg(), "--no-progress", "--out", str(tmp_path)]
    assert main(args + ["--policy", "bba"]) == 0
    journal = (tmp_path / "results.jsonl").read_text().splitlines()
    # tamper with the stored bba rows: a resumed run must reuse them rather than recompute
    rows = [json.loads(x) for x in journal]
    for r in rows:
        r["qoe"] = 1.0
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"cut short')
    assert main(args + ["--policy", "bba,mpc"]) == 0
    out = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {float(r["qoe"]) for r in out if r["policy"] == "bba"} == {1.0}
    assert len([r for r in out if r["policy"] == "mpc"]) == len(rows)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert sum(1 for x in lines if '"policy": "mpc"' in x and x.startswith("{\"key\"")) == len(rows)
    assert main(args + ["--policy", "bba", "--compat", "genet"]) == 0  # other settings: recomputed
    out = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {float(r["qoe"]) for r in out} != {1.0}


def test_eval_cli_on_synthetic_config_traces(tmp_path):
    rc = main(["eval", "abr", "--config", "rl2", "-n", "6", "--seed", "3", "--policy", "bba,mpc,optimal",
               "--video", envivio_arg(), "--no-progress", "--out", str(tmp_path)])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert len(rows) == 18
    chunks = {r["trace"]: int(r["chunks"]) for r in rows if r["policy"] == "bba"}
    assert len(set(chunks.values())) > 1  # video length / chunk length come from each trace's config
    for name in chunks:
        q = {r["policy"]: float(r["qoe"]) for r in rows if r["trace"] == name}
        assert q["optimal"] >= max(q["bba"], q["mpc"]) - 1e-9


def test_eval_cli_crash_while_journaling_then_two_reruns_keep_every_row_once(tmp_path, monkeypatch, capsys):
    """A crash while `genet eval abr` appended mpc's rows (one whole, the next torn): the first rerun
    recomputes mpc only and adds just its missing rows, each a whole line; the second recomputes nothing."""
    import genet.abr.evaluate as ev
    args = ["eval", "abr", "--config", "rl2", "-n", "3", "--seed", "3", "--policy", "bba,mpc",
            "--video", envivio_arg(), "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 6 and [json.loads(x)["policy"] for x in lines] == ["bba"] * 3 + ["mpc"] * 3
    path.write_text("".join(lines[:4]) + lines[4][:len(lines[4]) // 2])  # torn in the middle of mpc's 2nd row
    calls = []
    real = ev.evaluate
    monkeypatch.setattr(ev, "evaluate", lambda pol, *a, **kw: calls.append(pol) or real(pol, *a, **kw))
    for rerun, expected in enumerate((["mpc"], [])):
        calls.clear()
        assert main(args) == 0, rerun
        assert calls == expected, rerun
    rows = [json.loads(x) for x in path.read_text().splitlines()]  # every line a whole record
    assert sorted((r["policy"], r["trace"]) for r in rows) == sorted(
        {(r["policy"], r["trace"]) for r in rows}) and len(rows) == 6
    assert len(list(csv.DictReader(open(tmp_path / "results.csv")))) == 6
