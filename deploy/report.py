"""``genet deploy report DIR``: the paper's Tables 6 (ABR) and 7 (CC) from a campaign's journal.

Per path and scheme, over the finished repetitions (the journal's ``ok`` records; their metrics were
computed from the fetched logs by the project's metric definitions, :mod:`deploy.schemes`), for each column
of :data:`genet.cc.metrics.TABLE7` / :data:`genet.abr.qoe.TABLE6`: mean ± half-width of the 95 % confidence
interval (:func:`foundation.stats.mean_ci95`: Student's t with n - 1 degrees of freedom; n = 1 gives no
interval). Writes ``report.csv``, ``report.json``, ``report.txt`` and ``figure16.png`` (bars of each
column per path, schemes side by side, 95 % CI whiskers, as the paper's Figure 16).

With ``calibrated=EMU_DIR`` (``--calibrated``: a ``genet emulate cc --traces CALIBRATED_DIR`` folder over the
traces ``genet emulate calibrate`` fitted to this CC campaign, named after its paths): per path and scheme, the
calibrated emulation's figures of the same columns beside the real ones (``calibrated_runs``,
``calibrated_<column>``, ``calibrated_<column>_ci95``; each emulated run's logs read by the real runs' metric
definitions, :func:`deploy.calibrate.emulated_run_metrics`, matched by :func:`deploy.calibrate.calibrated_runs`),
and per scheme and column the paired gap calibrated emulation - real over the paths (a pair: the same scheme on
the same path, each side's mean; :func:`foundation.stats.paired_gap`), in ``report.txt``, ``report.json``
(``calibrated``) and ``report-calibrated-gap.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from foundation.atomic import atomic_text_writer, atomic_write_text
from foundation.errors import BadInputError
from foundation.metrics import Column, column_names
from foundation.stats import format_mean_ci, mean, mean_ci95, paired_gap

from deploy.campaign import CAMPAIGN_FILE, JOURNAL, open_journal, read_campaign_file


@dataclass
class Report:
    text: str
    rows: list[dict]
    files: list[Path]


#: The file of the per-scheme paired gaps, calibrated emulation - real (with ``calibrated``).
CALIBRATED_GAP_FILE = "report-calibrated-gap.csv"
#: The relative gap within which the calibrated emulation counts as reproducing the real runs (the verdicts').
CALIBRATED_TOLERANCE = 0.10


def write_report(out_dir: str | Path, calibrated: str | Path | None = None) -> Report:
    out = Path(out_dir)
    if not (out / JOURNAL).exists() or not (out / CAMPAIGN_FILE).exists():
        raise BadInputError(f"{out}: not a campaign directory (no {JOURNAL} / {CAMPAIGN_FILE}; "
                            f"`genet deploy run` writes them)")
    camp = read_campaign_file(out)
    c = camp["campaign"]
    use_case = c["use_case"]
    from foundation.usecase import use_case as declared
    described = declared(use_case)
    columns = described.table_columns
    journal = open_journal(out)
    ok: dict[tuple[str, str], dict[str, dict]] = {}
    failed: dict[tuple[str, str], int] = {}
    for r in journal.records:
        key = (r["path"], r["scheme"])
        if r.get("status") == "ok":
            ok.setdefault(key, {})[r["run_id"]] = r  # one result per run (a retried run counts once)
        elif r.get("status") == "failed":
            failed[key] = failed.get(key, 0) + 1
    from deploy.schemes import LogCheckError, log_metrics
    recomputed = 0  # runs whose logs are still there (the others keep the journal's metrics)
    for recs in ok.values():
        for r in recs.values():
            d = out / r.get("dir", "")
            try:  # the current metric definitions, from the fetched logs (the journal's copy if they are gone)
                r["metrics"] = log_metrics(r.get("scheme_kind", "kernel"), r["scheme"], float(r["duration_s"]), d)
                recomputed += 1
            except (LogCheckError, OSError, KeyError, ValueError):
                pass
    rows = []
    for p in c["paths"]:
        for s in c["schemes"]:
            recs = list(ok.get((p, s), {}).values())
            row = {"path": p, "scheme": s, "runs": len(recs), "failed_attempts": failed.get((p, s), 0)}
            for col in column_names(columns):
                m, h, _n = mean_ci95([r["metrics"].get(col) for r in recs])
                row[col] = m
                row[f"{col}_ci95"] = h
            offs = [abs(h["clock_offset_ms"]) for r in recs for h in r.get("hosts", {}).values()
                    if h.get("clock_offset_ms") is not None]
            row["max_abs_clock_offset_ms"] = max(offs) if offs else math.nan
            row["mean_overhead_s"] = mean(r["overhead_s"] for r in recs if "overhead_s" in r)
            rows.append(row)
    descr = camp.get("inventory", {}).get("paths", {})
    table_name = described.table_title
    text = _format(rows, columns, f"{table_name}: campaign {c['name']}, {c['repetitions']} repetitions; mean ± 95% "
                                  f"CI over finished runs", descr)
    cal = None
    if calibrated is not None:
        from deploy.calibrate import calibrated_runs
        emu = calibrated_runs(calibrated, camp, journal.records)
        gaps = _add_calibrated(rows, columns, c["schemes"], emu.metrics)
        cal = {"emulation_dir": str(emu.emu_dir.resolve()), "tolerance": CALIBRATED_TOLERANCE,
               "columns": ["calibrated_runs"] + [f"calibrated_{k}{x}" for k in column_names(columns)
                                                 for x in ("", "_ci95")],
               "policies": emu.labels, "skipped_runs": emu.skipped, "gaps": gaps}
        text += "\n" + _format_calibrated(rows, columns, gaps, emu.emu_dir, emu.skipped)
    files = []
    with atomic_text_writer(out / "report.csv") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["path", "scheme"])
        w.writeheader()
        w.writerows(rows)
    files.append(out / "report.csv")
    doc = {"campaign": c, "use_case": use_case, "columns": list(column_names(columns)), "rows": rows, "paths": descr}
    if cal is not None:
        doc["calibrated"] = cal
        with atomic_text_writer(out / CALIBRATED_GAP_FILE) as fh:
            w = csv.DictWriter(fh, fieldnames=list(GAP_FIELDS))
            w.writeheader()
            w.writerows(cal["gaps"])
        files.append(out / CALIBRATED_GAP_FILE)
    else:
        (out / CALIBRATED_GAP_FILE).unlink(missing_ok=True)  # an earlier --calibrated report's: no longer this one's
    atomic_write_text(out / "report.json", json.dumps(doc, indent=1, default=_nan_to_none) + "\n")
    files.append(out / "report.json")
    atomic_write_text(out / "report.txt", text + "\n")
    files.append(out / "report.txt")
    png = _figure(rows, columns, c["paths"], c["schemes"], out / "figure16.png", table_name)
    if png:
        files.append(png)
    return Report(text, rows, files)


def _nan_to_none(o):
    return None


#: The fields of a calibrated-emulation gap (``report.json``'s ``calibrated.gaps``, :data:`CALIBRATED_GAP_FILE`):
#: per scheme and column, over the paths where both sides have figures: n pairs, the sides' means, the mean
#: paired difference calibrated - real with its 95 % interval, the same relative to the real figures' mean
#: magnitude, the verdict at :data:`CALIBRATED_TOLERANCE` (:class:`foundation.stats.PairedGap`).
GAP_FIELDS = ("scheme", "metric", "n", "calibrated", "real", "gap", "low", "high", "relative", "rel_low", "rel_high",
              "verdict", "traces_needed", "decision")


def _add_calibrated(rows: list[dict], columns: tuple[Column, ...], schemes, metrics: dict) -> list[dict]:
    """Add the calibrated emulation's columns to ``rows`` (``metrics``: (path, scheme) -> each emulated run's
    metrics); return the per-scheme, per-column paired gaps (:data:`GAP_FIELDS`)."""
    names = column_names(columns)
    for row in rows:
        runs = metrics.get((row["path"], row["scheme"]), [])
        row["calibrated_runs"] = len(runs)
        for col in names:
            m, h, _n = mean_ci95([r.get(col) for r in runs])
            row[f"calibrated_{col}"] = m
            row[f"calibrated_{col}_ci95"] = h
    gaps = []
    for s in schemes:
        mine = [r for r in rows if r["scheme"] == s]  # one pair per path: the same scheme on the same path
        for col in names:
            g = paired_gap([r[f"calibrated_{col}"] for r in mine], [r[col] for r in mine], CALIBRATED_TOLERANCE,
                           names=("calibrated emulation", "real"))
            gaps.append({"scheme": s, "metric": col, "n": g.n, "calibrated": g.mean_a, "real": g.mean_b, "gap": g.gap,
                         "low": g.low, "high": g.high, "relative": g.relative, "rel_low": g.rel_low,
                         "rel_high": g.rel_high, "verdict": g.verdict, "traces_needed": g.traces_needed,
                         "decision": g.decision})
    return gaps


def _format_calibrated(rows: list[dict], columns: tuple[Column, ...], gaps: list[dict], emu_dir: Path,
                       skipped: dict) -> str:
    head = ["path", "scheme", "n real/cal"] + [f"{_title(c)} real | calibrated" for c in columns]
    body = []
    for r in rows:
        cells = []
        for c in columns:
            d = 4 if c.name == "loss_rate" else 2
            cells.append(f"{format_mean_ci(r[c.name], r[f'{c.name}_ci95'], d, missing='-')} | "
                         f"{format_mean_ci(r[f'calibrated_{c.name}'], r[f'calibrated_{c.name}_ci95'], d, missing='-')}")
        body.append([r["path"], r["scheme"], f"{r['runs']}/{r['calibrated_runs']}"] + cells)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = [f"calibrated emulation ({emu_dir}): mean ± 95% CI, real | calibrated emulation"]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + body]
    if skipped:
        lines.append(f"emulated runs left out: {', '.join(f'{k} ({v})' for k, v in skipped.items())}")
    lines.append(f"paired gap, calibrated emulation - real on the same paths (mean over paths, 95 % CI; verdict at "
                 f"±{CALIBRATED_TOLERANCE:.0%}):")
    title = {c.name: _title(c) for c in columns}
    for g in gaps:
        interval = (f"gap {g['gap']:+.4g} [{g['low']:+.4g}, {g['high']:+.4g}]" if math.isfinite(g["gap"])
                    else "no gap")
        lines.append(f"  {str(g['scheme'])[:24]:<24} {title[g['metric']]:<26} {g['verdict']} ({g['n']} pairs; "
                     f"{interval})")
    return "\n".join(lines)


def _title(c: Column) -> str:
    """A column as the report's header names it: ``name (unit)``."""
    return f"{c.name} ({c.unit})" if c.unit else c.name


def _format(rows: list[dict], columns: tuple[Column, ...], title: str, descr: dict) -> str:
    head = ["path", "scheme", "n"] + [_title(c) for c in columns] + ["failed"]
    body = [[r["path"], r["scheme"], str(r["runs"])]
            + [format_mean_ci(r[c.name], r[f"{c.name}_ci95"], 4 if c.name == "loss_rate" else 2, missing="-")
               for c in columns]
            + [str(r["failed_attempts"])] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = [title] + ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + body]
    for name, p in descr.items():
        if p.get("description"):
            lines.append(f"{name}: {p['server']} <- {p['client']}: {p['description']}")
    return "\n".join(lines)


def _figure(rows, columns, paths, schemes, dest: Path, title: str) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None  # the 'plots' extra is not installed: tables only
    fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3.6), squeeze=False)
    width = 0.8 / max(1, len(schemes))
    for ax, column in zip(axes[0], columns):
        col = column.name
        for k, s in enumerate(schemes):
            xs, ys, es = [], [], []
            for i, p in enumerate(paths):
                r = next((r for r in rows if r["path"] == p and r["scheme"] == s), None)
                if r is None:
                    continue
                xs.append(i + (k - (len(schemes) - 1) / 2) * width)
                ys.append(r[col] if math.isfinite(r[col]) else 0.0)
                es.append(r[f"{col}_ci95"] if math.isfinite(r[f"{col}_ci95"]) else 0.0)
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=s)
        ax.set_xticks(range(len(paths)))
        ax.set_xticklabels(paths)
        ax.set_title(_title(column))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}: mean ± 95% CI")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from foundation.atomic import atomic_write_bytes
    atomic_write_bytes(dest, buf.getvalue())
    return dest
