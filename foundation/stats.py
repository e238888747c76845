"""The one statistics module of genet-testbed: means, 95 % intervals, Jain's fairness index.

Used by the reports (:mod:`app.run.report`, :mod:`deploy.report`) and the competing-flows runs
(:mod:`sender.flows`). Foundation: imports only the standard library and numpy.

* :func:`mean_ci95`: mean and half-width of the two-sided 95 % Student-t interval of the finite values,
  ``t_{0.975, n-1} * s / sqrt(n)`` (``s``: sample standard deviation, n - 1 in the denominator). The
  quantile comes from :data:`T975` (three decimals, df = 1..30; equal to ``scipy.stats.t.ppf(0.975, df)``
  rounded) and is 1.96 (the normal quantile) beyond 30 degrees of freedom — the rule of both reports
  before they shared this module, kept so that every printed figure stays the same (for df 31..~200
  the exact t quantile is 0.1-4 % larger).
* :func:`bootstrap_ci95`: a seeded percentile-bootstrap interval of the mean (reproducible for a seed).
* :func:`jain_index`: Jain's fairness index.
* :func:`format_mean_ci`: ``mean ± half-width (n=N)`` as the report tables print it.
* :func:`paired_gap`: the gap between two tiers on the same runs (emulation - simulation for the same policy
  and trace): the mean paired difference with its bootstrap 95 % interval, relative to the second tier's mean,
  a verdict in words and the number of traces a 10 % gap needs to be told apart (:class:`PairedGap`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

#: Two-sided 95 % Student-t quantiles t_{0.975, df} for df = 1..30 (three decimals).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
#: The quantile used beyond :data:`T975` (df > 30): the normal distribution's.
Z975 = 1.96
#: The most bootstrap resamples :func:`bootstrap_ci95` draws (bounds its time and memory).
MAX_BOOTSTRAP_RESAMPLES = 1_000_000
_BOOTSTRAP_BATCH_VALUES = 1 << 22  # values drawn per batch of resamples (32 MiB of float64)


def t975(df: int) -> float:
    """The two-sided 95 % Student-t quantile for ``df`` degrees of freedom (:data:`Z975` beyond 30)."""
    return T975[df - 1] if 1 <= df <= len(T975) else Z975


def finite(values: Iterable) -> list[float]:
    """The values that are numbers and finite, as floats (None, NaN and infinities dropped)."""
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


def mean(values: Iterable) -> float:
    """The mean of the finite values (:func:`finite`); NaN when there is none."""
    x = finite(values)
    return sum(x) / len(x) if x else math.nan


def mean_ci95(values: Iterable) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % Student-t interval, n) of the finite values (see the module docstring).

    n = 0: (NaN, NaN, 0); n = 1: (the value, NaN, 1) — one value gives no interval."""
    x = finite(values)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    m = sum(x) / n
    if n < 2:
        return m, math.nan, n
    sd = math.sqrt(sum((v - m) ** 2 for v in x) / (n - 1))
    return m, t975(n - 1) * sd / math.sqrt(n), n


def bootstrap_ci95(values: Iterable, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """(low, high): the 95 % percentile-bootstrap interval of the mean of the finite values.

    ``resamples`` resamples of n values drawn with replacement by ``numpy.random.default_rng(seed)``; the
    2.5th and 97.5th percentiles (numpy's linear rule) of their means. The same values, ``resamples`` and
    ``seed`` give the same interval. (NaN, NaN) for no value; (v, v) for one."""
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) \
            or not 1 <= resamples <= MAX_BOOTSTRAP_RESAMPLES:
        raise ValueError(f"resamples must be an integer in 1..{MAX_BOOTSTRAP_RESAMPLES}, got {resamples!r}")
    x = np.asarray(finite(values), dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(int(resamples))
    batch = max(1, _BOOTSTRAP_BATCH_VALUES // n)
    for start in range(0, int(resamples), batch):
        k = min(batch, int(resamples) - start)
        means[start:start + k] = x[rng.integers(0, n, size=(k, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 = equal shares, 1/n = one flow takes all; NaN for no
    value or when none is positive."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or not np.any(x > 0):
        return math.nan
    return float(x.sum() ** 2 / (x.size * np.square(x).sum()))


def format_mean_ci(m: float, half_width: float, digits: int = 2, n: int | None = None, missing: str = "—") -> str:
    """``m ± half_width`` with ``digits`` decimals (no ``±`` part when the half-width is not finite), then
    `` (n=N)`` when ``n`` is given; ``missing`` when ``m`` is not finite."""
    if not math.isfinite(m):
        return missing
    text = f"{m:.{digits}f}"
    if math.isfinite(half_width):
        text += f" ± {half_width:.{digits}f}"
    return text if n is None else text + f" (n={n})"


#: Normal quantiles of the traces-needed estimate: two-sided 5 % level, 80 % power.
Z_ALPHA, Z_POWER = 1.96, 0.8416


@dataclass(frozen=True)
class PairedGap:
    """The gap between tier A and tier B over n pairs (the same policy and trace in both), gap = A - B.

    mean_a / mean_b: the tiers' means over the pairs; gap, low, high: the mean paired difference and its
    95 % interval — the percentile bootstrap's (:func:`bootstrap_ci95`), widened to Student's t interval where
    that is wider: with a handful of pairs the bootstrap only spans the differences seen (two pairs: their
    range), so a verdict from 2-4 traces would be overconfident; relative, rel_low, rel_high: the same over
    the mean magnitude of B's values (``|mean_b|`` when they keep one sign; a reward positive on some traces and
    negative on others has a mean near 0, which would make any gap look huge; NaN when every B is 0); verdict:
    what the interval says at the tolerance; traces_needed: about how many pairs tell a gap of ``tolerance x``
    that magnitude from none (two-sided 5 %, 80 % power: the smallest m with ``m >= ((t975(m - 1) + Z_POWER)
    sd / (tolerance x magnitude))^2``, sd the pairs' differences'; more than n when undecided at n; None without
    an sd);
    decision: the verdict as one word for code to branch on — ``agree`` (within the tolerance), ``differs``
    (the interval excludes 0), ``undecided`` (not enough runs), ``none`` (no pairs)."""

    n: int
    mean_a: float
    mean_b: float
    gap: float
    low: float
    high: float
    relative: float
    rel_low: float
    rel_high: float
    verdict: str
    traces_needed: int | None
    decision: str = "undecided"


def _pairs_needed(sd_over_gap: float) -> int:
    """The smallest m >= 2 with m >= ((t975(m - 1) + Z_POWER) x sd_over_gap)^2 (Student's t for small m; beyond
    30 pairs the normal quantile, as t975 is then within 2 % of it)."""
    normal = max(2, math.ceil(((Z_ALPHA + Z_POWER) * sd_over_gap) ** 2))
    if normal > 30:
        return normal
    m = 2
    while m < ((t975(m - 1) + Z_POWER) * sd_over_gap) ** 2:
        m += 1
    return m


def paired_gap(a: Sequence, b: Sequence, tolerance: float = 0.10, names: tuple[str, str] = ("emulation",
               "simulation"), resamples: int = 10_000, seed: int = 0) -> PairedGap:
    """The paired gap of ``a`` against ``b`` (equal lengths; a pair with a missing value is left out) and its
    verdict: "A within ±T % of B" when the relative interval lies inside ±tolerance; "A higher (lower) than B by
    X % [lo, hi]" when the interval excludes 0; otherwise "not enough runs to tell: need about N traces"."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, b)
             if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    n = len(pairs)
    na, nb = names
    if n == 0:
        return PairedGap(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                         f"no pairs: nothing to compare {na} and {nb} on", None, "none")
    ma = sum(x for x, _ in pairs) / n
    mb = sum(y for _, y in pairs) / n
    d = [x - y for x, y in pairs]
    gap = sum(d) / n
    low, high = bootstrap_ci95(d, resamples=resamples, seed=seed)
    if n > 1:
        _, half, _ = mean_ci95(d)
        low, high = min(low, gap - half), max(high, gap + half)
    scale = sum(abs(y) for _, y in pairs) / n  # |mean_b| when B keeps one sign; never ~0 for values straddling 0
    rel = (lambda v: v / scale) if scale > 0 else (lambda v: math.nan)
    sd = math.sqrt(sum((v - gap) ** 2 for v in d) / (n - 1)) if n > 1 else math.nan
    needed = None
    if math.isfinite(sd) and scale > 0:
        needed = _pairs_needed(sd / (tolerance * scale)) if sd > 0 else 2
    r, rl, rh = rel(gap), rel(low), rel(high)
    pct = tolerance * 100
    decision = "undecided"
    if n < 2:
        verdict = "not enough runs to tell: one pair (no spread to size the runs needed; run 3 or more traces)"
    elif math.isfinite(rl) and -tolerance <= rl and rh <= tolerance:
        verdict, decision = f"{na} within ±{pct:g} % of {nb}", "agree"
    elif low > 0 or high < 0:
        word = "higher" if gap > 0 else "lower"
        verdict = (f"{na} {word} than {nb} by {abs(r) * 100:.1f} % [{rl * 100:+.1f}, {rh * 100:+.1f}]"
                   if math.isfinite(r) else f"{na} {word} than {nb} by {abs(gap):.4g} [{low:+.4g}, {high:+.4g}]")
        decision = "differs"
    else:
        if needed is not None:
            needed = max(needed, n + 1)  # undecided at n: the estimate (normal quantiles) never says n will do
        verdict = f"not enough runs to tell: need about {needed} traces" if needed else "not enough runs to tell"
    return PairedGap(n, ma, mb, gap, low, high, r, rl, rh, verdict, needed, decision)


def gap_verdicts(rows: Sequence[dict], names: Sequence[str], key: str = "policy", prefix: str = "sim_",
                 tolerance: float = 0.10) -> list[dict]:
    """Per ``key`` value (policy), per metric in ``names``: the paired gap of each row's ``metric`` against its
    ``prefix + metric`` (emulation against the simulator on the same trace) — ``{key, metric, n, emulation,
    simulation, gap, low, high, relative, verdict, traces_needed}`` rows, in first-seen order."""
    out = []
    for value in dict.fromkeys(r[key] for r in rows):
        mine = [r for r in rows if r[key] == value]
        for m in names:
            g = paired_gap([r.get(m) for r in mine], [r.get(prefix + m) for r in mine], tolerance)
            out.append({key: value, "metric": m, "n": g.n, "emulation": g.mean_a, "simulation": g.mean_b,
                        "gap": g.gap, "low": g.low, "high": g.high, "relative": g.relative, "verdict": g.verdict,
                        "traces_needed": g.traces_needed, "decision": g.decision})
    return out


def format_gap_verdicts(verdicts: Sequence[dict], key: str = "policy") -> str:
    """The verdicts as lines: ``policy  metric: verdict (n pairs; gap G [lo, hi])``."""
    lines = ["paired gap, emulation - simulator on the same traces (mean, bootstrap 95 % CI; verdict at ±10 %):"]
    for v in verdicts:
        interval = (f"gap {v['gap']:+.4g} [{v['low']:+.4g}, {v['high']:+.4g}]" if math.isfinite(v["gap"])
                    else "no gap")
        lines.append(f"  {str(v[key])[:24]:<24} {v['metric']:<22} {v['verdict']} ({v['n']} pairs; {interval})")
    return "\n".join(lines)


__all__ = ["PairedGap", "paired_gap", "gap_verdicts", "format_gap_verdicts", "T975", "Z975", "MAX_BOOTSTRAP_RESAMPLES", "t975", "finite", "mean", "mean_ci95", "bootstrap_ci95",
           "jain_index", "format_mean_ci"]
