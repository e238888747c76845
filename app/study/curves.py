"""The study's learning curves (Figure 18): ``curves-<use case>[-TAG].png``, validation reward against
environment steps, mean and min-max band over seeds, one line per preset (from ``curves/*.csv``); presets with
more records than curves (runs restored from elsewhere) as their final models' mean and min-max at their
steps; the baselines as dashed lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from app.study.presets import Preset


def plot_curves(study_dir: Path, presets: dict[str, Preset], tag: str = "") -> list[Path]:
    """Draw the curves of every use case with curve files in ``study_dir``; the PNG files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    out = []
    for uc in ("abr", "cc", "lb"):
        files = sorted((study_dir / "curves").glob(f"{uc}-*.csv"))
        if not files:
            continue
        by_preset: dict[str, list[list[dict]]] = {}
        for f in files:
            with open(f) as fh:
                rows = list(csv.DictReader(fh))
            if rows:
                by_preset.setdefault(f.stem.rsplit("-s", 1)[0], []).append(rows)
        fig, ax = plt.subplots(figsize=(8.5, 4.5))
        for name, runs in by_preset.items():
            n = min(len(r) for r in runs)
            x = np.mean([[float(r["env_steps"]) for r in run[:n]] for run in runs], axis=0)
            y = np.array([[float(r["reward"]) for r in run[:n]] for run in runs])
            line, = ax.plot(x, y.mean(axis=0), label=f"{name} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
            if len(runs) > 1:
                ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=line.get_color(), alpha=0.15)
        set_name = next(iter(by_preset.values()))[0][0]["set"]
        # the finished runs of presets with fewer curves than records (runs elsewhere): the final model's
        # reward on the same set, mean and min-max over seeds, at its steps; the baselines as lines
        recs = [json.loads(f.read_text()) for f in sorted((study_dir / "results").glob(f"{uc}-*.json"))]
        recs = [r for r in recs if set_name in r.get("evaluation", {})]
        finals: dict[str, list[dict]] = {}
        for r in recs:
            finals.setdefault(r["preset"], []).append(r)
        # a preset's final models as a marker unless its curves cover all its seeds (e.g. one seed retrained
        # for its curve beside seeds restored from elsewhere: the marker shows every seed's final model)
        finals = {k: v for k, v in finals.items() if len(v) > len(by_preset.get(k, []))}
        order = list(presets)
        for k, (name, rs) in enumerate(sorted(finals.items(), key=lambda kv: order.index(kv[0])
                                              if kv[0] in order else len(order))):
            v = np.array([r["evaluation"][set_name]["model"] for r in rs])
            # spread side by side around their steps (most presets share one budget), 1 % of it apart
            x = float(np.mean([r["env_steps"] for r in rs])) * (1 + 0.01 * (k - (len(finals) - 1) / 2))
            ax.errorbar([x], [v.mean()], yerr=[[v.mean() - v.min()], [v.max() - v.mean()]],
                        fmt="osD^v<>ph"[k % 9], ms=5, capsize=3,
                        label=f"{name} (final, {len(rs)} seed{'s' if len(rs) > 1 else ''})")
        if recs:
            for b in [k for k in recs[0]["evaluation"][set_name] if k != "model"]:
                ax.axhline(float(np.mean([r["evaluation"][set_name][b] for r in recs])), ls="--", lw=1,
                           color="grey", alpha=0.7)
                ax.annotate(b, (0.0, float(np.mean([r["evaluation"][set_name][b] for r in recs]))),
                            xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                            xytext=(2, 2), textcoords="offset points")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"validation reward ({set_name})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        path = study_dir / f"curves-{uc}{'-' + tag if tag else ''}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append(path)
    return out
