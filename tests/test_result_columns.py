"""One column list per use case (genet/cc/metrics.py COLUMNS, genet/abr/qoe.py COLUMNS): every results file
of the use case has those columns — the simulator's (``genet eval``, run here on two traces), the emulated
runs' (their writers, fed rows; the runs themselves need root and real time: tests/test_sender_emulation.py,
tests/test_player_emulate.py), the real paths' (the log checks and ``genet deploy report``, on a campaign folder
written here) — and the reports print the use case's table (TABLE7 / TABLE6) from that list."""

from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

from genet.abr import qoe
from genet.cc import metrics as cc_metrics
from app.cli import main
from foundation.metrics import Column, column_names

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "traces" / "samples"


def header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def in_order(names, cols) -> bool:
    """``names`` appear in ``cols`` in the same order (other columns may stand between)."""
    pos = [cols.index(n) for n in names if n in cols]
    return len(pos) == len(names) and pos == sorted(pos)


def test_each_use_case_declares_its_columns_once_with_units():
    for cols, table in ((cc_metrics.COLUMNS, cc_metrics.TABLE7), (qoe.COLUMNS, qoe.TABLE6)):
        assert all(isinstance(c, Column) and c.label and c.meaning for c in cols)
        assert len(set(column_names(cols))) == len(cols)
        assert table == tuple(c for c in cols if c.table)
        for c in cols:  # the unit is in the name's suffix (the project's naming rule)
            suffix = {"Mbit/s": "_mbps", "ms": "_ms", "s": "_s", "": ""}[c.unit]
            assert c.name.endswith(suffix) if suffix else not c.name.endswith(("_mbps", "_ms", "_s"))
    assert column_names(cc_metrics.TABLE7) == ("throughput_mbps", "p90_rtt_ms", "loss_rate", "reward")
    assert column_names(qoe.TABLE6) == ("bitrate_mbps", "rebuffer_s", "bitrate_change_mbps", "qoe")


def test_genet_eval_cc_results_have_the_cc_columns(tmp_path):
    traces = tmp_path / "traces"
    traces.mkdir()
    for i, d in enumerate(sorted((SAMPLES / "pantheon-cellular").iterdir())[:2]):
        shutil.copy(next(d.glob("*.json")), traces / f"link{i}.json")
    out = tmp_path / "out"
    assert main(["eval", "cc", "--policy", "bbr,cubic", "--traces", str(traces), "--out", str(out), "--no-plots",
                 "--no-progress"]) == 0
    head = header(out / "results.csv")
    assert head == [f.name for f in fields(cc_metrics.RunMetrics)]
    assert in_order(cc_metrics.COLUMN_NAMES, head)
    assert header(out / "summary.csv") == ["policy", "traces", *cc_metrics.COLUMN_NAMES, "reward_std"]
    with open(out / "results.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4


def test_genet_eval_abr_results_have_the_abr_columns(tmp_path):
    traces = tmp_path / "traces"
    traces.mkdir()
    for f in sorted((SAMPLES / "fcc-val").iterdir())[:2]:
        shutil.copy(f, traces / f.name)
    out = tmp_path / "out"
    assert main(["eval", "abr", "--policy", "bba,mpc", "--traces", str(traces), "--out", str(out),
                 "--no-progress"]) == 0
    head = header(out / "results.csv")
    video_fields = [f.name for f in fields(qoe.VideoQoe)]
    assert head == ["policy", "trace", *video_fields]
    # the simulator's record holds exactly the use case's columns (and the chunk count)
    assert set(video_fields) == set(qoe.COLUMN_NAMES) | {"chunks"}


def test_genet_emulate_cc_writers_use_the_cc_columns(tmp_path):
    from genet.cc.registry import parse_policies
    from sender.emulate import format_gap, gap_rows, sim_row, write_outputs
    from sender.runs import link_settings
    from traces import load_traces
    names = cc_metrics.COLUMN_NAMES
    const, tcp = parse_policies(["const:2", "tcp:reno"], real_packets=True)
    trace = load_traces(str(next((SAMPLES / "pantheon-cellular").iterdir())))[0]
    s = link_settings(trace, None, None, None, 2.0)
    sims = sim_row(const, trace, s, None)  # the simulator's figures beside an emulated run
    assert list(sims) == [f"sim_{k}" for k in names] and all(math.isfinite(v) for v in sims.values())
    sims = sim_row(tcp, trace, s, None)  # a kernel-only scheme has none: NaN
    assert list(sims) == [f"sim_{k}" for k in names] and all(math.isnan(v) for v in sims.values())
    base = {f.name: 1.0 for f in fields(cc_metrics.RunMetrics)}
    rows = [{**base, "trace": f"t{i}", "policy": p, "repeat": 0, "backend": "netns",
             **{f"sim_{k}": 2.0 for k in names}} for i in range(2) for p in ("a", "b")]
    write_outputs(rows, tmp_path, plots=False)
    head = header(tmp_path / "results.csv")
    assert in_order(names, head) and in_order([f"sim_{k}" for k in names], head)
    gap_head = header(tmp_path / "gap.csv")
    assert gap_head == ["policy", "runs", *[f"{w}_{k}" for k in names for w in ("emu", "sim", "gap")]]
    assert all(k in format_gap(gap_rows(rows)) for k in names)
    verdicts = (tmp_path / "gap_verdicts.csv").read_text().splitlines()
    assert verdicts[0].startswith("policy,metric,n,emulation,simulation,gap,low,high,relative,verdict")
    assert len(verdicts) == 1 + 2 * len(names)  # per policy, per column of the use case


def test_genet_emulate_abr_results_have_the_abr_columns():
    from player.emulate import COLUMNS, QOE_FIELDS, SIM_COLUMNS
    assert QOE_FIELDS == qoe.COLUMN_NAMES
    assert COLUMNS[3:3 + len(QOE_FIELDS)] == QOE_FIELDS
    # the simulator's figures beside each session: every column, in the simulator's record order
    assert SIM_COLUMNS == tuple(f"sim_{f.name}" for f in fields(qoe.VideoQoe) if f.name != "chunks")
    assert set(SIM_COLUMNS) == {f"sim_{k}" for k in qoe.COLUMN_NAMES} and in_order(SIM_COLUMNS, list(COLUMNS))


@pytest.mark.parametrize("use_case", ["cc", "abr"])
def test_real_path_logs_must_hold_the_table_and_the_report_prints_it(tmp_path, use_case):
    from deploy.report import write_report
    from deploy.schemes import LogCheckError, player_log_metrics, sender_log_metrics
    table = cc_metrics.TABLE7 if use_case == "cc" else qoe.TABLE6
    names = column_names(table)
    # a run's log whose summary lacks a column of the table does not count
    log = tmp_path / "run.jsonl"
    summary = {"type": "summary", "status": "complete", **{k: 1.0 for k in names}}
    check = (lambda p: sender_log_metrics(p, 10.0)) if use_case == "cc" else player_log_metrics
    log.write_text(json.dumps(summary) + "\n")
    assert all(check(log)[k] == 1.0 for k in names)
    log.write_text(json.dumps({k: v for k, v in summary.items() if k != names[1]}) + "\n")
    with pytest.raises(LogCheckError, match=f"summary lacks {names[1]}"):
        check(log)
    # genet deploy report: one column (and its interval) per column of the table, in order
    out = tmp_path / "campaign"
    out.mkdir()
    kind = "const" if use_case == "cc" else "abr-baseline"
    (out / "campaign.json").write_text(json.dumps({"campaign": {
        "name": "t", "use_case": use_case, "repetitions": 2, "paths": ["p1"], "schemes": ["s1"]}, "inventory": {}}))
    recs = [{"run_id": f"r{i}", "path": "p1", "scheme": "s1", "scheme_kind": kind, "status": "ok", "duration_s": 10,
             "dir": f"runs/r{i}", "metrics": {k: float(i + j) for j, k in enumerate(names)}} for i in (1, 2)]
    (out / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    rep = write_report(out)
    head = header(out / "report.csv")
    assert head[4:4 + 2 * len(names)] == [x for k in names for x in (k, f"{k}_ci95")]
    assert json.loads((out / "report.json").read_text())["columns"] == list(names)
    assert rep.rows[0][names[0]] == pytest.approx(1.5)
    for c in table:
        assert (f"{c.name} ({c.unit})" if c.unit else c.name) in rep.text


def test_the_run_report_prints_each_use_cases_table():
    from app.run.report import TABLE_COLS
    from foundation.usecase import use_case
    assert TABLE_COLS == {"abr": qoe.TABLE6, "cc": cc_metrics.TABLE7, "lb": use_case("lb").table_columns}
