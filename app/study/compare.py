"""Settling a study comparison with statistics (issue 30): preset A against preset B (or a rule-based baseline)
on each evaluation set, from the study's records (``results/<preset>-s<seed>.json``).

Per set:

* each side's **mean over seeds** of the set's mean reward and the **seed std** (ddof 1);
* a **paired test over the set's traces**: each trace's reward averaged over A's seeds against the same over B's
  (a baseline: its reward on the trace, the same for every seed); the mean paired difference with its 95 %
  interval and a verdict in words (:func:`foundation.stats.paired_gap`, the function the emulation gap uses:
  "A higher than B by X % [lo, hi]", "A within ±10 % of B", "not enough runs to tell: need about N traces"),
  and the two-sided **Wilcoxon signed-rank** p-value of the per-trace differences (scipy). With fewer than 6
  traces no Wilcoxon p can fall below 0.05 (n = 5: its smallest p is 0.0625), which the report says instead of
  a misleading p. The trace-level test leaves the seeds' spread out (each trace's reward is a mean over the
  seeds), so a **two-level bootstrap** (seeds and traces resampled) gives a second interval; a verdict it does not
  bear out is reported as "not settled by the seeds". (The validation sets hold 74 to 177 traces:
  pantheon-ethernet 90, pantheon-cellular 177, rl3-synthetic 100, fcc-val 150, norway-val 74.)

A record has per-trace figures (``per_trace``) when its run was evaluated by a study of this version; older
records (from before 2026-12-07) have only the set means: their comparison gives the seed statistics and says
the paired test needs the runs re-evaluated.

:func:`median_seed` is the seed a preset ships (issue 30: the variant's median seed, not its best): the seed
whose mean rank over the evaluation sets is the median of the preset's seeds (ties: the lower seed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from foundation.errors import BadInputError

if TYPE_CHECKING:  # numpy behind foundation.stats: loaded when a comparison runs, not by `genet --help`
    import numpy as np

    from foundation.stats import PairedGap

#: The comparisons ``results.md`` settles (A, B): B a preset or a baseline of the records; a pair whose
#: presets have no record is left out.
COMPARISONS = (
    ("cc-genet-faithful", "cc-udr3-faithful"),
    ("cc-genet-faithful", "bbr"),
    ("cc-udr3-faithful", "cc-udr3"),
    ("cc-genet-faithful", "cc-genet"),
    ("cc-genet-faithful-loss1", "cc-genet-faithful"),
    ("cc-genet-faithful-loss1", "cc-udr3-faithful"),
    ("cc-genet-faithful-loss1", "cc-udr3-faithful-loss1"),
    ("cc-genet-faithful-loss1", "bbr"),
    ("cc-genet-faithful-positive", "cc-genet-faithful"),
    ("cc-genet-faithful-positive", "cc-udr3-faithful"),
    ("cc-genet-faithful-positive", "bbr"),
    ("cc-genet-faithful-positive-w0.1", "cc-genet-faithful-positive"),
    ("cc-genet-faithful-positive-w0.1", "cc-udr3-faithful"),
    ("cc-genet", "cc-udr3"),
    ("abr-genet", "abr-udr1"),
    ("abr-genet", "abr-udr2"),
    ("abr-genet", "mpc"),
    # the shipped ABR Genet variant (issue 30's ABR target: not worse than the best UDR on either set, better on one,
    # and at least RobustMPC on one)
    ("abr-genet-paperdims-w0.1", "abr-udr1"),
    ("abr-genet-paperdims-w0.1", "abr-udr2"),
    ("abr-genet-paperdims-w0.1", "mpc"),
    # the agents study (issue 28): DAgger from RobustMPC against its teacher; imitation + PPO fine-tune against its
    # teacher and plain PPO at the same total steps
    ("abr-agent-dagger-mpc", "mpc"),
    ("abr-agent-bc-mpc-ppo", "mpc"),
    ("abr-agent-bc-mpc-ppo", "abr-agent-ppo"),
    ("abr-agent-bc-mpc-ppo-warm", "mpc"),
    ("abr-agent-bc-mpc-ppo-warm", "abr-agent-ppo"),
    ("abr-agent-bc-mpc-ppo-warm", "abr-agent-bc-mpc-ppo"),
    ("abr-agent-bc-mpc-ppo-warm", "abr-agent-bc-mpc-25"),
    ("abr-agent-bc-mpc-ppo-anchor", "mpc"),
    ("abr-agent-bc-mpc-ppo-anchor", "abr-agent-ppo"),
    ("abr-agent-bc-mpc-ppo-anchor", "abr-agent-bc-mpc-ppo"),
    ("abr-agent-bc-mpc-ppo-anchor", "abr-agent-bc-mpc-25"),
    ("abr-agent-bc-mpc-ppo-anchor", "abr-agent-bc-mpc-ppo-warm"),
    ("cc-agent-dagger-cubic-ppo", "cubic"),
    ("cc-agent-dagger-cubic-ppo", "cc-agent-ppo"),
)
#: Below this many paired traces a two-sided Wilcoxon signed-rank test cannot reach p < 0.05.
WILCOXON_MIN_TRACES = 6


@dataclass(frozen=True)
class SetComparison:
    """A against B on one evaluation set: seed statistics of each side, the paired per-trace test (None when a
    record lacks per-trace figures), the Wilcoxon p (None below :data:`WILCOXON_MIN_TRACES` traces or without
    per-trace figures) and a note saying why a figure is missing."""

    set_name: str
    mean_a: float
    std_a: float
    seeds_a: int
    mean_b: float
    std_b: float
    seeds_b: int
    paired: "PairedGap | None"
    wilcoxon_p: float | None
    note: str = ""
    #: the two-level bootstrap's 95 % interval of the mean difference (seeds and traces resampled), None without
    #: per-trace figures; ``settled``: whether the trace-level verdict's decision survives it
    seeds_low: float | None = None
    seeds_high: float | None = None
    settled: bool = True


def load_records(study_dir: Path) -> list[dict]:
    """Every record of the study directory (``results/*.json``)."""
    return [json.loads(p.read_text()) for p in sorted((Path(study_dir) / "results").glob("*.json"))]


def _side(records: list[dict], name: str) -> tuple[list[dict], str]:
    """(records, label) of side ``name``: a preset's records (label 'model') or, for a baseline name, every
    record that evaluated that baseline (label the name; :func:`compare` then reads it from A's records)."""
    mine = [r for r in records if r["preset"] == name]
    if mine:
        return sorted(mine, key=lambda r: r["seed"]), "model"
    baseline = [r for r in records if any(name in v for v in r["evaluation"].values())]
    if baseline:
        return baseline, name
    presets = sorted({r["preset"] for r in records})
    raise BadInputError(f"no record of preset or baseline {name!r} in the study; presets with records: "
                        f"{', '.join(presets) or 'none'}")


def _seed_stats(records: list[dict], label: str, set_name: str) -> tuple[float, float, int]:
    if label != "model":  # a baseline: deterministic, one figure however many records hold it
        v = [records[0]["evaluation"][set_name][label]]
    else:
        v = [r["evaluation"][set_name]["model"] for r in records]
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd, len(v)


def _per_trace_mean(records: list[dict], label: str, set_name: str) -> dict[str, float] | None:
    """{trace: reward averaged over the records} on the traces every record has; None if one lacks them."""
    tables = []
    for r in records if label == "model" else records[:1]:
        t = r.get("per_trace", {}).get(set_name, {}).get(label)
        if not t:
            return None
        tables.append(t)
    common = set(tables[0]).intersection(*tables[1:])
    return {k: sum(t[k] for t in tables) / len(tables) for k in sorted(common)}


def _per_trace_table(records: list[dict], label: str, set_name: str, traces: list[str]) -> "np.ndarray":
    """(seeds, traces) rewards of ``label`` (a baseline: one row, the same for every seed)."""
    import numpy as np
    rows = records if label == "model" else records[:1]
    return np.array([[r["per_trace"][set_name][label][t] for t in traces] for r in rows], dtype=np.float64)


def two_level_ci95(a: "np.ndarray", b: "np.ndarray", resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """The 95 % percentile interval of mean(A) - mean(B) when seeds and traces are both resampled: each resample
    draws each side's seeds (rows) with replacement and the traces (columns, shared by both sides: the pairing)
    with replacement. With one seed a side contributes trace variation only. What a trace-level test leaves out:
    a seed that collapsed makes the interval wide however many traces agree."""
    import numpy as np
    rng = np.random.default_rng(seed)
    n_t = a.shape[1]
    out = np.empty(resamples)
    for k in range(resamples):
        t = rng.integers(0, n_t, n_t)
        ra = a[rng.integers(0, a.shape[0], a.shape[0])][:, t]
        rb = b[rng.integers(0, b.shape[0], b.shape[0])][:, t]
        out[k] = ra.mean() - rb.mean()
    low, high = np.percentile(out, [2.5, 97.5])
    return float(low), float(high)


def wilcoxon_p(differences: list[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p of the paired differences (zero differences dropped, scipy's
    'wilcox' rule); None below :data:`WILCOXON_MIN_TRACES` non-zero differences; 1.0 when all are zero."""
    d = [x for x in differences if x != 0.0]
    if not d and differences:
        return 1.0
    if len(d) < WILCOXON_MIN_TRACES:
        return None
    from scipy.stats import wilcoxon
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def compare(records: list[dict], a: str, b: str, sets: list[str] | None = None,
            tolerance: float = 0.10) -> list[SetComparison]:
    """A against B on each evaluation set both sides have (``sets``: those only, in that order)."""
    ra, la = _side(records, a)
    rb, lb = _side(records, b)
    if la != "model":
        raise BadInputError(f"{a!r} is a baseline; the first side of a comparison is a preset")
    if lb != "model":  # a baseline: its figures from A's own evaluations (the same sets, traces and version)
        if not all(lb in v for v in ra[0]["evaluation"].values()):
            raise BadInputError(f"{b!r}: not a baseline {a}'s records evaluated")
        rb = ra
    common = [s for s in ra[0]["evaluation"] if s in rb[0]["evaluation"]]
    if sets:
        unknown = [s for s in sets if s not in common]
        if unknown:
            raise BadInputError(f"--sets: {', '.join(unknown)} not evaluated for both {a} and {b}; sets: "
                                f"{', '.join(common)}")
        common = list(sets)
    out = []
    for s in common:
        ma, sa, na = _seed_stats(ra, la, s)
        mb, sb, nb = _seed_stats(rb, lb, s)
        ta, tb = _per_trace_mean(ra, la, s), _per_trace_mean(rb, lb, s)
        if ta is None or tb is None:
            out.append(SetComparison(s, ma, sa, na, mb, sb, nb, None, None,
                                     "no per-trace figures in some records (evaluated before the study kept "
                                     "them): no paired test"))
            continue
        from foundation.stats import paired_gap
        traces = [k for k in ta if k in tb]
        xa, xb = [ta[k] for k in traces], [tb[k] for k in traces]
        gap = paired_gap(xa, xb, tolerance=tolerance, names=(a, b))
        p = wilcoxon_p([x - y for x, y in zip(xa, xb)])
        note = "" if p is not None else (f"{len(traces)} traces: a Wilcoxon test needs "
                                         f"{WILCOXON_MIN_TRACES} or more to reach p < 0.05")
        low, high = two_level_ci95(_per_trace_table(ra, la, s, traces), _per_trace_table(rb, lb, s, traces))
        scale = sum(abs(y) for y in xb) / len(xb) if xb else 0.0
        if gap.decision == "differs":
            settled = low > 0 or high < 0
        elif gap.decision == "agree":
            settled = scale > 0 and -tolerance <= low / scale and high / scale <= tolerance
        else:
            settled = True  # undecided either way
        out.append(SetComparison(s, ma, sa, na, mb, sb, nb, gap, p, note, low, high, settled))
    return out


def format_comparison(a: str, b: str, rows: list[SetComparison]) -> list[str]:
    """Markdown lines: one table row per set."""
    lines = [f"### {a} vs {b}", "",
             f"| set | {a} (mean ± seed std, seeds) | {b} | paired gap per trace [95 %] | seeds and traces [95 %] "
             f"| Wilcoxon p | verdict |",
             "|---|---|---|---|---|---|---|"]
    for c in rows:
        side_b = f"{c.mean_b:.2f} ± {c.std_b:.2f} ({c.seeds_b})" if c.seeds_b > 1 else f"{c.mean_b:.2f}"
        both = "—"
        if c.paired is None:
            gap, verdict = "—", c.note
        else:
            g = c.paired
            gap = f"{g.gap:+.2f} [{g.low:+.2f}, {g.high:+.2f}] (n={g.n})"
            both = f"[{c.seeds_low:+.2f}, {c.seeds_high:+.2f}]"
            verdict = g.verdict if c.settled else (f"not settled by the seeds: the traces say \"{g.verdict}\", "
                                                   f"but resampling the seeds too the interval is {both}")
            verdict += f"; {c.note}" if c.note else ""
        p = "—" if c.wilcoxon_p is None else f"{c.wilcoxon_p:.3g}"
        lines.append(f"| {c.set_name} | {c.mean_a:.2f} ± {c.std_a:.2f} ({c.seeds_a}) | {side_b} | {gap} | {both} | "
                     f"{p} | {verdict} |")
    return lines + [""]


def machines_note(records: list[dict], presets: list[str]) -> str | None:
    """A line when the records of ``presets`` were trained on more than one kind of machine (their ``host``'s
    CPU model and count; records from before the study kept it count as unknown), else None: CC training does
    not repeat across CPU models, so seed statistics that mix machines mix two sources of spread."""
    kinds: dict[str, int] = {}
    for r in records:
        if r["preset"] in presets:
            host = r.get("host") or {}
            kind = (f"{host.get('cpu_model') or 'unknown CPU'} x{host.get('cpu_count') or '?'}" if host
                    else "unknown (recorded before the study kept the host)")
            kinds[kind] = kinds.get(kind, 0) + 1
    if len(kinds) < 2:
        return None
    return ("records from more than one kind of machine: " + "; ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
            + " (a training may not repeat across CPU models: compare like with like where it matters)")


def comparisons_section(records: list[dict]) -> list[str]:
    """``results.md``'s paired-comparison section: every pair of :data:`COMPARISONS` whose sides have records."""
    names = {r["preset"] for r in records}
    lines: list[str] = []
    for a, b in COMPARISONS:
        if a not in names:
            continue
        try:
            rows = compare(records, a, b)
        except BadInputError:
            continue
        lines += format_comparison(a, b, rows)
        note = machines_note(records, [a, b])
        if note:
            lines += [f"Note: {note}.", ""]
    if not lines:
        return []
    return ["## Paired comparisons (issue 30)", "",
            "Mean over seeds ± seed std per side; the paired gap compares each trace's reward averaged over the "
            "seeds (`genet study compare A B`; foundation.stats.paired_gap, bootstrap widened to Student's t; "
            "tolerance ±10 %); Wilcoxon signed-rank on the same per-trace differences; 'seeds and traces' "
            "resamples both (a collapsed seed widens it); a verdict the seeds do not bear out says so.", ""] + lines


def median_seed(records: list[dict], preset: str) -> int:
    """The seed preset ``preset`` ships: the median seed by mean rank over the evaluation sets (ranks 1 = best;
    the seed whose mean rank is closest to the median of the mean ranks; ties: the lower seed)."""
    rs, _ = _side(records, preset)
    if not rs or rs[0]["preset"] != preset:
        raise BadInputError(f"no record of preset {preset!r}")
    sets = list(rs[0]["evaluation"])
    rank = {r["seed"]: 0.0 for r in rs}
    for s in sets:
        ordered = sorted(rs, key=lambda r: (-r["evaluation"][s]["model"], r["seed"]))
        for i, r in enumerate(ordered):
            rank[r["seed"]] += (i + 1) / len(sets)
    values = sorted(rank.values())
    mid = values[(len(values) - 1) // 2] if len(values) % 2 else (values[len(values) // 2 - 1]
                                                                   + values[len(values) // 2]) / 2
    return min(rank, key=lambda seed: (abs(rank[seed] - mid), seed))


__all__ = ["COMPARISONS", "SetComparison", "WILCOXON_MIN_TRACES", "compare", "comparisons_section",
           "format_comparison", "load_records", "median_seed", "two_level_ci95", "wilcoxon_p"]
