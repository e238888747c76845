"""LB workloads (traces/workload.py): the file format, its reader's errors, the generator, and the LB config space."""

from __future__ import annotations

import numpy as np
import pytest

from traces.config_space import load_space
from traces.workload import (HEADER, Workload, WorkloadConfig, WorkloadFormatError, generate_workload,
                             park_workload_config, read_workload, read_workloads, write_workload)


def test_write_then_read_gives_the_same_jobs(tmp_path):
    w = Workload("w", [0, 5, 5, 12.5], [10, 2.25, 9000, 1])
    p = write_workload(w, tmp_path / "w.workload")
    assert p.read_text().splitlines()[0] == HEADER
    r = read_workload(p)
    assert r.name == "w" and r.n_jobs == 4
    assert np.array_equal(r.arrival_times_ms, w.arrival_times_ms) and np.array_equal(r.job_sizes_work,
                                                                                    w.job_sizes_work)
    g = generate_workload(WorkloadConfig(num_jobs=300), 4)
    assert np.array_equal(read_workload(write_workload(g, tmp_path / "g.workload")).job_sizes_work, g.job_sizes_work)


def test_comments_blank_lines_and_commas_are_accepted(tmp_path):
    p = tmp_path / "a.workload"
    p.write_text("# arrival_ms size\n\n0 100\n  3,  50  \r\n7 , 1e3\n")
    w = read_workload(p)
    assert w.arrival_times_ms.tolist() == [0, 3, 7] and w.job_sizes_work.tolist() == [100, 50, 1000]


@pytest.mark.parametrize("text, line, what", [
    ("0 100\n5\n", 2, "expected 2 fields"),
    ("0 100\n5 6 7\n", 2, "expected 2 fields"),
    ("0 100\n# c\nabc 5\n", 3, "arrival time (field 1) is not a number"),
    ("0 100\n1 big\n", 2, "job size (field 2) is not a number"),
    ("0 100\n1 nan\n", 2, "not a finite number"),
    ("0 100\n1 0\n", 2, "must be > 0"),
    ("0 100\n-1 3\n", 2, "negative"),
    ("5 100\n\n4 3\n", 3, "before the previous job's"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path, text, line, what):
    p = tmp_path / "bad.workload"
    p.write_text(text)
    with pytest.raises(WorkloadFormatError) as exc:
        read_workload(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:{line}: ") and what in msg and "\n" not in msg
    assert "big" not in msg and "abc" not in msg  # the line's content is never echoed


def test_empty_unreadable_and_binary_files_give_one_line_errors(tmp_path):
    empty = tmp_path / "e.workload"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(WorkloadFormatError, match="no jobs"):
        read_workload(empty)
    with pytest.raises(WorkloadFormatError, match="cannot read"):
        read_workload(tmp_path / "missing.workload")
    binary = tmp_path / "b.workload"
    binary.write_bytes(b"0 1\n\xff\xfe 2\n")
    with pytest.raises(WorkloadFormatError, match=r"b.workload:2: not UTF-8"):
        read_workload(binary)


def test_a_directory_reads_its_workload_files_in_name_order(tmp_path):
    for name in ("b", "a"):
        write_workload(Workload(name, [0], [1]), tmp_path / f"{name}.workload")
    (tmp_path / "notes.txt").write_text("not a workload")
    assert [w.name for w in read_workloads(tmp_path)] == ["a", "b"]
    with pytest.raises(WorkloadFormatError, match="not a directory of workload files"):
        read_workloads(tmp_path / "a.workload")
    other = tmp_path / "empty"
    other.mkdir()
    with pytest.raises(WorkloadFormatError, match="no \\*.workload files"):
        read_workloads(other)


def test_generator_is_seeded_and_follows_the_config():
    cfg = WorkloadConfig(num_jobs=5000, job_interval_ms=100, job_size_max_work=10000)
    a, b, c = generate_workload(cfg, 1), generate_workload(cfg, 1), generate_workload(cfg, 2)
    assert np.array_equal(a.arrival_times_ms, b.arrival_times_ms) and np.array_equal(a.job_sizes_work,
                                                                                    b.job_sizes_work)
    assert not np.array_equal(a.job_sizes_work, c.job_sizes_work)
    assert a.n_jobs == 5000 and a.job_sizes_work.min() >= 10 and a.job_sizes_work.max() < 10000
    assert np.all(a.job_sizes_work == np.floor(a.job_sizes_work))  # Genet's int() sizes and gaps
    gaps = np.diff(np.concatenate([[0], a.arrival_times_ms]))
    assert np.all(gaps == np.floor(gaps)) and 95 < gaps.mean() < 105 - 0.0  # int(Exp(100)) has mean ~99.5
    assert 4800 < a.job_sizes_work.mean() < 5200
    park = generate_workload(park_workload_config(), 3)
    assert park.n_jobs == 1000 and park.job_sizes_work.min() >= 100  # (Pareto + 1) x 100


def test_legacy_seed_draws_as_genet_after_np_random_seed():
    cfg = WorkloadConfig(num_jobs=50)
    w = generate_workload(cfg, 7, legacy_seed=True)
    np.random.seed(7)  # Genet's job_generator.generate_jobs, written out
    t, sizes, times = 0, [], []
    for _ in range(50):
        sizes.append(int(np.random.uniform(10.0, 10000.0)))
        t += int(np.random.exponential(100))
        times.append(t)
    assert w.job_sizes_work.tolist() == sizes and w.arrival_times_ms.tolist() == times


@pytest.mark.parametrize("field, value", [("num_jobs", 0), ("num_jobs", 2.5), ("job_interval_ms", -1),
                                          ("job_size_max_work", float("inf")), ("job_distribution", "normal"),
                                          ("job_size_min_work", 20000)])
def test_a_bad_config_names_the_field(field, value):
    with pytest.raises(WorkloadFormatError, match=f"field '{field}'"):
        WorkloadConfig(**{field: value})


def test_the_lb_space_has_units_nested_ranges_and_genets_udr_range_as_rl3():
    space = load_space("lb")
    assert space.use_case == "lb"
    rl3 = {"service_rate_per_ms": (0.1, 10), "job_size_max_work": (100, 10000), "job_interval_ms": (10, 1000),
           "num_jobs": (10, 10000), "queue_shuffle_prob": (0.1, 1)}
    assert space.ranges("rl3") == rl3
    for d in space.dimensions:
        assert d.unit
        lo3, hi3 = d.ranges["rl3"]
        for rn in ("rl1", "rl2"):
            lo, hi = d.ranges[rn]
            assert lo3 <= lo <= hi <= hi3
        assert d.ranges["rl1"][0] <= d.default <= d.ranges["rl1"][1]
