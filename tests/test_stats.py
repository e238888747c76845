"""foundation/stats.py, the one statistics module: the Student-t 95 % interval (against scipy where installed, and
by hand), the percentile bootstrap (reproducible for a seed), Jain's fairness index and the table formatter;
and that the reports use it (no copy of the interval left in them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from foundation import stats


def test_student_t_interval_of_1_to_4_by_hand():
    m, h, n = stats.mean_ci95([1, 2, 3, 4])
    # mean 2.5; sample sd sqrt(5/3); t_{0.975, 3} = 3.182
    assert (m, n) == (2.5, 4)
    assert h == pytest.approx(3.182 * math.sqrt(5 / 3) / 2, rel=1e-12)


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0], [5.0, 5.5, 7.25, 3.0, 9.0, 1.0],
                                    list(np.linspace(-3.0, 40.0, 31))])
def test_student_t_interval_matches_scipy(values):
    sps = pytest.importorskip("scipy.stats")
    m, h, n = stats.mean_ci95(values)
    x = np.asarray(values)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert n == len(x) and m == pytest.approx(x.mean(), rel=1e-12)
    # the table's quantiles have three decimals: at most 5e-4 off each, relative to t >= 2.04
    assert h == pytest.approx((hi - lo) / 2, rel=2.5e-4)


def test_quantile_table_is_scipys_rounded_and_normal_beyond_30():
    sps = pytest.importorskip("scipy.stats")
    for df in range(1, 31):
        assert stats.t975(df) == round(float(sps.t.ppf(0.975, df)), 3), df
    assert stats.t975(31) == stats.t975(10_000) == 1.96
    assert stats.t975(0) == 1.96  # no degrees of freedom: never used (mean_ci95 gives NaN below 2 values)


def test_interval_drops_what_is_not_a_finite_number():
    assert stats.mean_ci95([1.0, None, math.nan, math.inf, 3.0]) == stats.mean_ci95([1.0, 3.0])
    m, h, n = stats.mean_ci95([5.0])
    assert (m, n) == (5.0, 1) and math.isnan(h)  # one value: no interval
    m, h, n = stats.mean_ci95([None, math.nan])
    assert n == 0 and math.isnan(m) and math.isnan(h)
    assert math.isnan(stats.mean([])) and stats.mean([2, None, 4.0, -math.inf]) == 3.0


def test_bootstrap_is_reproducible_with_a_seed_and_brackets_the_mean():
    rng = np.random.default_rng(11)
    x = list(rng.normal(10.0, 2.0, 40))
    a = stats.bootstrap_ci95(x, resamples=2000, seed=3)
    assert a == stats.bootstrap_ci95(x, resamples=2000, seed=3)
    assert a != stats.bootstrap_ci95(x, resamples=2000, seed=4)
    lo, hi = a
    assert lo < float(np.mean(x)) < hi
    # the percentile bootstrap of the mean is close to the t interval for 40 normal values
    m, h, _ = stats.mean_ci95(x)
    assert hi - lo == pytest.approx(2 * h, rel=0.2)


def test_bootstrap_edges_and_bounds():
    assert all(math.isnan(v) for v in stats.bootstrap_ci95([], seed=0))
    assert stats.bootstrap_ci95([7.0, math.nan], seed=0) == (7.0, 7.0)
    # the same interval whether the resamples are drawn in one batch or several
    x = [float(v) for v in range(50)]
    one = stats.bootstrap_ci95(x, resamples=300, seed=1)
    old, stats._BOOTSTRAP_BATCH_VALUES = stats._BOOTSTRAP_BATCH_VALUES, 50 * 7
    try:
        assert stats.bootstrap_ci95(x, resamples=300, seed=1) == one
    finally:
        stats._BOOTSTRAP_BATCH_VALUES = old
    for bad in (0, -1, stats.MAX_BOOTSTRAP_RESAMPLES + 1, 2.5, True):
        with pytest.raises(ValueError, match="resamples"):
            stats.bootstrap_ci95(x, resamples=bad)


def test_jain_index():
    assert stats.jain_index([3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert stats.jain_index([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)  # one flow takes all: 1/n
    assert stats.jain_index([1.0, 3.0]) == pytest.approx(16 / (2 * 10))
    assert math.isnan(stats.jain_index([])) and math.isnan(stats.jain_index([0.0, 0.0]))


def test_format_mean_ci():
    assert stats.format_mean_ci(2.5, 0.123456, 3, n=4) == "2.500 ± 0.123 (n=4)"
    assert stats.format_mean_ci(2.5, math.nan, 2, n=1) == "2.50 (n=1)"
    assert stats.format_mean_ci(math.nan, math.nan, 2, n=0) == "—"
    assert stats.format_mean_ci(0.01234, 0.001, 4, missing="-") == "0.0123 ± 0.0010"
    assert stats.format_mean_ci(math.nan, 1.0, 2, missing="-") == "-"


def test_both_reports_use_the_one_interval():
    """The run report and the deploy report print the figures of foundation.stats (no copy of their own)."""
    from deploy import report as deploy_report
    from app.run import report as run_report
    values = [3.0, 4.5, 1.25, 8.0]
    m, h, n = stats.mean_ci95(values)
    assert run_report.fmt_ci(values, 3) == f"{m:.3f} ± {h:.3f} (n={n})"
    assert run_report.fmt_ci([]) == "—"
    for module in (deploy_report, run_report):
        assert not [name for name in vars(module) if name.lstrip("_").lower() in ("t975", "t95", "mean_ci")]


def test_paired_gap_verdicts_on_known_distributions():
    from foundation.stats import paired_gap
    rng = np.random.default_rng(1)
    sim = rng.normal(100.0, 5.0, 40)
    higher = paired_gap(sim * 1.2 + rng.normal(0, 1, 40), sim)
    assert higher.verdict.startswith("emulation higher than simulation by ")
    assert higher.rel_low < 0.2 < higher.rel_high and higher.rel_low > 0.1
    close = paired_gap(sim + rng.normal(0, 0.5, 40), sim)
    assert close.verdict == "emulation within ±10 % of simulation" and abs(close.relative) < 0.02
    lower = paired_gap(sim * 0.7, sim, names=("real", "emulation"))
    assert lower.verdict.startswith("real lower than emulation by 30.0 %")
    few = paired_gap([100.0, 60.0, 140.0], [100.0, 100.0, 100.0])
    sd = np.std([0.0, -40.0, 40.0], ddof=1)
    assert few.verdict == f"not enough runs to tell: need about {few.traces_needed} traces"
    assert few.traces_needed == int(np.ceil(((1.96 + 0.8416) * sd / 10.0) ** 2))
    one = paired_gap([5.0, float("nan")], [4.0, 3.0])
    assert one.n == 1 and one.verdict.startswith("not enough runs to tell: one pair")
    assert "N " not in one.verdict and one.traces_needed is None  # no placeholder left in the words
    assert paired_gap([], []).n == 0
    with pytest.raises(ValueError):
        paired_gap([1.0], [1.0, 2.0])


def test_paired_gap_interval_covers_the_true_gap_about_95_percent_of_the_time():
    from foundation.stats import paired_gap
    rng = np.random.default_rng(7)
    hits = 0
    for i in range(200):
        b = rng.normal(50.0, 10.0, 25)
        a = b + 3.0 + rng.normal(0.0, 4.0, 25)  # true mean paired difference: 3
        g = paired_gap(a, b, resamples=2000, seed=i)
        hits += g.low <= 3.0 <= g.high
    assert 0.88 <= hits / 200 <= 0.99, hits


def test_paired_gap_is_relative_to_the_reference_s_magnitude_when_it_straddles_zero():
    """Genet's CC reward is positive on fast links and negative on slow ones: over both, the simulator's mean can
    sit near 0. The relative gap is over the mean magnitude of the reference values, so a 5 % miss on each trace
    reads as 5 %, not as thousands."""
    from foundation.stats import paired_gap
    sim = [200.0, -190.0, 210.0, -200.0]
    emu = [s - 0.05 * abs(s) for s in sim]
    g = paired_gap(emu, sim)
    assert abs(sum(sim) / 4) == 5.0  # |mean| would give a 200 % gap
    assert g.relative == pytest.approx(-0.05)
    assert g.verdict == "emulation within ±10 % of simulation"
    positive = paired_gap([95.0, 190.0], [100.0, 200.0])
    assert positive.relative == pytest.approx(-7.5 / 150.0)  # one sign: the same as over |mean|


def test_a_verdict_from_a_handful_of_pairs_uses_the_wider_t_interval():
    """Two pairs: the percentile bootstrap spans only the two differences (-6, -5) and would call a gap
    "lower by 5.5 % [-6, -5]"; Student's t interval with 1 degree of freedom (12.7 x sd / sqrt 2) includes 0."""
    from foundation.stats import bootstrap_ci95, paired_gap
    g = paired_gap([94.0, 95.0], [100.0, 100.0])
    assert bootstrap_ci95([-6.0, -5.0]) == (-6.0, -5.0)
    assert g.low == pytest.approx(-5.5 - 12.706 * math.sqrt(0.5) / math.sqrt(2), abs=1e-3)
    assert g.low < -6.0 and g.high > 0.0
    assert g.decision == "undecided" and g.verdict.startswith("not enough runs to tell")
    many = paired_gap([84.0, 85.0] * 10, [100.0] * 20)
    assert many.decision == "differs" and many.verdict.startswith("emulation lower than simulation by 15.5 %")
    assert paired_gap([101.0, 99.0] * 10, [100.0] * 20).decision == "agree"
    assert paired_gap([], []).decision == "none"


def test_traces_needed_uses_student_t_for_small_counts_and_exceeds_the_pairs_when_undecided():
    from foundation.stats import Z_POWER, _pairs_needed, paired_gap, t975
    # sd = the 10 % gap: the normal formula says 8 pairs; with Student's t it takes 10 ((t975(9) + 0.84)^2 = 9.6)
    assert _pairs_needed(1.0) == 10
    assert 10 >= (t975(9) + Z_POWER) ** 2 and 9 < (t975(8) + Z_POWER) ** 2
    # 4 pairs, undecided: the estimate is never "n or fewer"
    g = paired_gap([93.0, 107.0, 95.0, 104.0], [100.0] * 4)
    assert g.decision == "undecided" and g.traces_needed > 4
    assert g.verdict == f"not enough runs to tell: need about {g.traces_needed} traces"
