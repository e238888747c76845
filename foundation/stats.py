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
"""

from __future__ import annotations

import math
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


__all__ = ["T975", "Z975", "MAX_BOOTSTRAP_RESAMPLES", "t975", "finite", "mean", "mean_ci95", "bootstrap_ci95",
           "jain_index", "format_mean_ci"]
