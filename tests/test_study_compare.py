"""`genet study compare` and the study table's paired comparisons (issue 30): seed statistics, a paired test over
the validation traces (bootstrap interval + Wilcoxon signed-rank) and the median seed a variant ships."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main as genet_main
from app.study.compare import (WILCOXON_MIN_TRACES, compare, comparisons_section, median_seed, wilcoxon_p)
from foundation.errors import BadInputError


def record(preset, seed, per_trace: dict[str, float] | None, baseline: dict[str, float] | None = None,
           set_name="val", extra_set: float | None = None):
    rec = {"preset": preset, "use_case": "cc", "seed": seed, "env_steps": 100,
           "evaluation": {set_name: {"model": float(np.mean(list(per_trace.values())))}}}
    if baseline is not None:
        rec["evaluation"][set_name]["bbr"] = float(np.mean(list(baseline.values())))
    if extra_set is not None:
        rec["evaluation"]["other"] = {"model": extra_set}
    if per_trace is not None:
        rec["per_trace"] = {set_name: {"model": per_trace, **({"bbr": baseline} if baseline else {})}}
    return rec


def traces(values):
    return {f"t{i:03d}": float(v) for i, v in enumerate(values)}


def test_a_known_shift_is_found_with_its_interval_and_wilcoxon_p():
    rng = np.random.default_rng(3)
    base = rng.uniform(80, 120, size=40)
    # B's seeds: base + noise; A's seeds: base + 15 (15 % of B's ~100 mean) + noise
    recs = [record("B", s, traces(base + rng.normal(0, 2, 40))) for s in range(3)]
    recs += [record("A", s, traces(base + 15 + rng.normal(0, 2, 40))) for s in range(3)]
    (c,) = compare(recs, "A", "B")
    assert c.seeds_a == c.seeds_b == 3 and c.paired.n == 40
    assert c.paired.low < 15 < c.paired.high and c.paired.low > 10  # the true shift inside, 0 far outside
    assert c.paired.decision == "differs" and c.paired.verdict.startswith("A higher than B by 1")
    # the Wilcoxon p is scipy's on the per-trace differences of the seed means, and tiny for a 40/40 sign split
    from scipy.stats import wilcoxon
    a = np.mean([[r["per_trace"]["val"]["model"][k] for k in sorted(r["per_trace"]["val"]["model"])]
                 for r in recs[3:]], axis=0)
    b = np.mean([[r["per_trace"]["val"]["model"][k] for k in sorted(r["per_trace"]["val"]["model"])]
                 for r in recs[:3]], axis=0)
    assert c.wilcoxon_p == pytest.approx(wilcoxon(a - b).pvalue) and c.wilcoxon_p < 1e-6
    # the seed statistics: mean over seeds of the set means, seed std with ddof 1
    means = [r["evaluation"]["val"]["model"] for r in recs[3:]]
    assert c.mean_a == pytest.approx(np.mean(means)) and c.std_a == pytest.approx(np.std(means, ddof=1))


def test_no_shift_agrees_and_a_few_traces_give_no_wilcoxon_p():
    rng = np.random.default_rng(5)
    base = rng.uniform(90, 110, size=60)
    recs = [record("A", s, traces(base + rng.normal(0, 1, 60))) for s in range(2)]
    recs += [record("B", 0, traces(base + rng.normal(0, 1, 60)))]
    (c,) = compare(recs, "A", "B")
    assert c.paired.decision == "agree" and "within ±10 %" in c.paired.verdict
    assert c.wilcoxon_p is not None and c.wilcoxon_p > 0.01
    few = [record("A", 0, traces([1, 2, 3, 4, 5])), record("B", 0, traces([0, 1, 2, 3, 4]))]
    (c,) = compare(few, "A", "B")
    assert c.wilcoxon_p is None and f"needs {WILCOXON_MIN_TRACES}" in c.note
    assert wilcoxon_p([0.0, 0.0]) == 1.0 and wilcoxon_p([1.0] * 5) is None
    assert wilcoxon_p([1.0] * 6) == pytest.approx(0.03125)  # all six positive: 2 / 2^6


def test_a_baseline_side_and_records_without_per_trace_figures():
    base = traces(range(10, 30))
    bbr = traces(range(5, 25))
    recs = [record("A", s, base, baseline=bbr) for s in range(2)]
    (c,) = compare(recs, "A", "bbr")
    assert c.seeds_b == 1 and c.mean_b == pytest.approx(14.5) and c.paired.gap == pytest.approx(5.0)
    # the baseline's figures come from A's own records, not from another preset's older evaluation
    other = dict(record("Z", 0, base, baseline=traces(range(100, 120))), per_trace={})
    (c,) = compare([other] + recs, "A", "bbr")
    assert c.mean_b == pytest.approx(14.5) and c.paired is not None and c.paired.gap == pytest.approx(5.0)
    old = [dict(record("A", 0, base), per_trace={}), record("B", 0, base)]
    (c,) = compare(old, "A", "B")
    assert c.paired is None and "no paired test" in c.note and c.mean_a == pytest.approx(19.5)
    with pytest.raises(BadInputError, match="no record of preset or baseline 'C'.*A, B"):
        compare(old, "A", "C")
    with pytest.raises(BadInputError, match="--sets: nope"):
        compare(recs, "A", "bbr", sets=["nope"])


def test_median_seed_is_the_middle_seed_by_mean_rank_not_the_best():
    recs = [record("A", s, traces([v]), extra_set=o) for s, v, o in
            ((0, 10, 10), (1, 50, 50), (2, 30, 30), (3, 20, 40), (4, 40, 20))]
    # mean ranks: s1 1, s0 5, s2 3, s3 (4+2)/2 = 3, s4 (2+4)/2 = 3 -> the median 3; ties: the lower seed
    assert median_seed(recs, "A") == 2
    recs[2]["evaluation"]["val"]["model"] = 60.0  # s2 now best on val: ranks s2 (1+3)/2 = 2 ...
    assert median_seed(recs, "A") == 3


def test_the_table_section_and_the_command(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = rng.uniform(50, 60, size=12)
    (tmp_path / "results").mkdir()
    for s in range(3):
        for name, shift in (("cc-genet-faithful", 10.0), ("cc-udr3-faithful", 0.0)):
            rec = record(name, s, traces(base + shift + rng.normal(0, 0.5, 12)))
            (tmp_path / "results" / f"{name}-s{s}.json").write_text(json.dumps(rec))
    from app.study.compare import load_records
    section = "\n".join(comparisons_section(load_records(tmp_path)))
    assert "### cc-genet-faithful vs cc-udr3-faithful" in section and "cc-genet-faithful higher than" in section
    assert genet_main(["study", "compare", "cc-genet-faithful", "cc-udr3-faithful", "--study-dir", str(tmp_path),
                       "--median-seed"]) == 0
    out = capsys.readouterr().out
    assert "| val | " in out and "(n=12)" in out and "cc-udr3-faithful: median seed" in out
    assert genet_main(["study", "compare", "cc-genet-faithful", "x", "--study-dir", str(tmp_path)]) != 0
    assert "no record of preset or baseline 'x'" in capsys.readouterr().err


def test_a_collapsed_seed_unsettles_what_the_traces_decide():
    """Per trace, A's seed mean is 5 above B on every trace (the trace test decides), but one of A's two seeds
    collapsed (-100) and the other is +110: resampling the seeds, the interval spans 0 and the verdict says the
    seeds do not settle it. With two good seeds it is settled."""
    base = np.linspace(20, 30, 30)  # a gap of 5 is 20 % of B's mean: the trace test says "differs"
    b = [record("B", s, traces(base)) for s in range(3)]
    bad = [record("A", 0, traces(base - 100)), record("A", 1, traces(base + 110))]
    (c,) = compare(b + bad, "A", "B")
    assert c.paired.decision == "differs" and c.paired.gap == pytest.approx(5.0)
    assert c.seeds_low < 0 < c.seeds_high and not c.settled
    from app.study.compare import format_comparison
    assert "not settled by the seeds" in "\n".join(format_comparison("A", "B", [c]))
    good = [record("A", 0, traces(base + 4)), record("A", 1, traces(base + 6))]
    (c,) = compare(b + good, "A", "B")
    assert c.settled and c.seeds_low > 0 and "A higher than B" in c.paired.verdict



def test_records_from_two_kinds_of_machine_are_named_in_the_comparison(tmp_path, capsys):
    """A record keeps the host its run trained on (the run's run-metadata.json); a comparison whose records
    come from more than one CPU model says so (CC training does not repeat across CPU models), one that does
    not stays silent."""
    from app.study.compare import load_records, machines_note
    from app.study.invoke import training_host
    run = tmp_path / "run"
    run.mkdir()
    (run / "run-metadata.json").write_text(json.dumps({"host": {"hostname": "a", "cpu_model": "AMD EPYC",
                                                                "cpu_count": 2, "kernel": "6"}}))
    assert training_host(run) == {"hostname": "a", "cpu_model": "AMD EPYC", "cpu_count": 2}
    assert training_host(tmp_path / "none") == {"hostname": None, "cpu_model": None, "cpu_count": None}
    rng = np.random.default_rng(2)
    (tmp_path / "results").mkdir()
    for s, cpu in enumerate(("AMD EPYC", "AMD EPYC", "Intel Xeon")):
        for name in ("cc-genet-faithful", "cc-udr3-faithful"):
            rec = record(name, s, traces(rng.uniform(50, 60, size=8)))
            rec["host"] = {"hostname": "h", "cpu_model": cpu, "cpu_count": 2}
            (tmp_path / "results" / f"{name}-s{s}.json").write_text(json.dumps(rec))
    records = load_records(tmp_path)
    note = machines_note(records, ["cc-genet-faithful", "cc-udr3-faithful"])
    assert note is not None and "AMD EPYC x2: 4" in note and "Intel Xeon x2: 2" in note
    assert machines_note([r for r in records if r["host"]["cpu_model"] == "AMD EPYC"],
                         ["cc-genet-faithful", "cc-udr3-faithful"]) is None
    assert "Note: records from more than one kind of machine" in "\n".join(comparisons_section(records))
    assert genet_main(["study", "compare", "cc-genet-faithful", "cc-udr3-faithful", "--study-dir",
                       str(tmp_path)]) == 0
    assert "note: records from more than one kind of machine" in capsys.readouterr().out
