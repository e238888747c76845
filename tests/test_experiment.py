"""The one experiment runner (foundation/experiment.py): the matrix, the journal, resume, skip, order, parallel."""

from __future__ import annotations

import threading

import pytest

from foundation.experiment import Cell, Experiment, Tier, in_parallel, matrix
from foundation.journal import Journal


class Counting(Tier):
    """A tier whose row is a function of the cell; records which cells ran; fails on request."""

    name = "test tier"

    def __init__(self, fail_at: str | None = None):
        self.ran: list[tuple] = []
        self.fail_at = fail_at

    def run_one(self, cell):
        if cell.environment == self.fail_at:
            raise RuntimeError(f"boom at {cell.environment}")
        self.ran.append(cell.key)
        return {"policy": cell.policy, "trace": cell.environment, "repeat": cell.repetition,
                "value": len(cell.policy) * 100 + int(cell.environment[1:]) * 10 + cell.repetition}


def test_matrix_orders_and_data():
    by_policy = matrix(["a", "b"], ["t0", "t1"], 2)
    assert [c.key for c in by_policy[:3]] == [("a", "t0", 0), ("a", "t0", 1), ("a", "t1", 0)]
    by_round = matrix(["a", "b"], ["t0", "t1"], 2, order="repetition", data=lambda p, i, r: (p, i, r))
    assert [c.key for c in by_round[:5]] == [("a", "t0", 0), ("a", "t1", 0), ("b", "t0", 0), ("b", "t1", 0),
                                             ("a", "t0", 1)]
    assert by_round[1].data == ("a", 1, 0)
    shuffled = matrix(["a", "b", "c"], ["t0", "t1", "t2"], 3, order="shuffled", seed=4)
    rounds = [[c.key[:2] for c in shuffled if c.repetition == r] for r in range(3)]
    assert all(sorted(r) == sorted((p, t) for p in "abc" for t in ("t0", "t1", "t2")) for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # drawn afresh each round
    assert [c.key for c in shuffled] == [c.key for c in matrix(["a", "b", "c"], ["t0", "t1", "t2"], 3,
                                                                 order="shuffled", seed=4)]
    assert Cell("a", "t", 0, data=1) == Cell("a", "t", 0, data=2)  # data is not identity
    with pytest.raises(ValueError):
        matrix(["a"], ["t"], 0)
    with pytest.raises(ValueError):
        matrix(["a"], ["t"], 1, order="trace")


def test_rows_in_matrix_order_journaled_and_a_rerun_reuses_every_one(tmp_path):
    cells = matrix(["aa", "b"], ["t1", "t2", "t3"], 1)
    tier = Counting()
    out = Experiment(tier, Journal(tmp_path / "results.jsonl")).run(cells)
    assert [(r["policy"], r["trace"]) for r in out.rows] == [c.key[:2] for c in cells]
    assert (out.ran, out.reused, out.planned) == (6, 0, 6)
    assert len(Journal(tmp_path / "results.jsonl")) == 6
    again = Counting()
    out2 = Experiment(again, Journal(tmp_path / "results.jsonl")).run(cells)
    assert again.ran == [] and out2.reused == 6 and out2.rows == out.rows
    assert len(Journal(tmp_path / "results.jsonl")) == 6


def test_a_crash_keeps_the_finished_cells_and_the_rerun_runs_only_the_rest(tmp_path):
    cells = matrix(["p"], ["t1", "t2", "t3", "t4"], 1)
    with pytest.raises(RuntimeError, match="boom at t3"):
        Experiment(Counting(fail_at="t3"), Journal(tmp_path / "j.jsonl")).run(cells)
    assert [r["trace"] for r in Journal(tmp_path / "j.jsonl")] == ["t1", "t2"]
    # a torn last line (a crash mid-write) is cut away, not a lost or a half record
    with open(tmp_path / "j.jsonl", "ab") as fh:
        fh.write(b'{"policy": "p", "trace": "t3", "rep')
    tier = Counting()
    out = Experiment(tier, Journal(tmp_path / "j.jsonl")).run(cells)
    assert tier.ran == [("p", "t3", 0), ("p", "t4", 0)]
    assert [r["trace"] for r in out.rows] == ["t1", "t2", "t3", "t4"] and (out.reused, out.ran) == (2, 2)
    assert [r["trace"] for r in Journal(tmp_path / "j.jsonl")] == ["t1", "t2", "t3", "t4"]


def test_records_of_other_experiments_are_ignored_and_skip_is_reported(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    j.append({"policy": "p", "trace": "t1", "repeat": 0, "value": -1, "key": "other settings"})
    j.append({"note": "not a row"})

    class Settings(Counting):
        def record_key(self, record):
            return None if record.get("key") == "other settings" else super().record_key(record)

        def skip(self, cell, records):
            return "not today" if cell.environment == "t2" else None

    tier = Settings()
    out = Experiment(tier, j).run(matrix(["p"], ["t1", "t2"], 1))
    assert tier.ran == [("p", "t1", 0)] and out.rows[0]["value"] != -1
    assert out.skipped == {("p", "t2", 0): "not today"} and out.planned == 2


def test_a_batch_is_journaled_in_one_write_and_on_row_sees_every_cell(tmp_path, monkeypatch):
    class Batched(Tier):
        def run(self, cells):
            yield [(c, {"policy": c.policy, "trace": c.environment}) for c in cells]

    j = Journal(tmp_path / "j.jsonl")
    writes = []
    real = j._write
    monkeypatch.setattr(j, "_write", lambda data: (writes.append(data), real(data)))
    seen = []
    out = Experiment(Batched(), j, on_row=lambda c, r, reused: seen.append((c.environment, reused))).run(
        matrix(["p"], ["t1", "t2", "t3"], 1))
    assert len(writes) == 1 and len(out.rows) == 3 and seen == [("t1", False), ("t2", False), ("t3", False)]
    seen.clear()
    Experiment(Batched(), Journal(tmp_path / "j.jsonl"),
               on_row=lambda c, r, reused: seen.append((c.environment, reused))).run(matrix(["p"], ["t1"], 1))
    assert seen == [("t1", True)]


def test_two_cells_with_one_key_are_refused(tmp_path):
    cells = [Cell("p", "t", 0), Cell("p", "t", 0)]
    with pytest.raises(ValueError, match="same key"):
        Experiment(Counting(), None).run(cells)


def test_in_parallel_runs_every_cell_at_once_and_raises_a_cells_error():
    cells = matrix(["p"], [f"t{i}" for i in range(6)], 1)
    barrier = threading.Barrier(3, timeout=30)

    def work(cell):
        if cell.environment in ("t0", "t1", "t2"):
            barrier.wait()  # three cells must be running together, or this times out
        return {"trace": cell.environment}

    got = sorted(c.environment for c, _ in in_parallel(cells, work, jobs=3))
    assert got == [f"t{i}" for i in range(6)]

    def bad(cell):
        if cell.environment == "t1":
            raise RuntimeError("cell failed")
        return {}

    with pytest.raises(RuntimeError, match="cell failed"):
        list(in_parallel(cells, bad, jobs=2))
    assert [c.environment for c, _ in in_parallel(cells[:3], lambda c: {}, jobs=1)] == ["t0", "t1", "t2"]
