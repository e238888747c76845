"""The report of a ``genet run``: ``report/index.html`` (one self-contained file: figures embedded as
base64 PNG, no network needed) and ``report.md`` with the same tables (figures in ``report/figures/``).

Everything is read from the run folder's files (``plan.json``, ``status.json``, ``state/``, each
stage's ``results.csv``), so ``genet run CONFIG --only report`` redraws it from what exists:

- the headline: for each use case, each policy's reward (ABR: per-trace QoE; CC: Genet's reward) in
  simulation, emulation and on real/testbed paths side by side — the sim -> emulation -> real gap —
  with columns only for the stages that ran (the others are named with the reason: not run, not
  available in this build, failed);
- Table 6 (ABR: bitrate, rebuffering, bitrate change, QoE) and Table 7 (CC: throughput, p90 latency,
  loss, reward) per environment, as mean ± 95 % CI over traces/repetitions; for LB the LB table (reward,
  mean completion time, p95 slowdown, mean utilisation: genet/lb/metrics.py) per episode source / path;
- reward CDFs, the sim-vs-emulation scatter, per-path bars, learning curves and the curriculum's
  rounds (which configuration Genet promoted in which round), the stage commands' own figures;
- provenance: commit, versions, host, seeds, the config, and each item's exact commands.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import platform
from pathlib import Path

from genet.abr.qoe import TABLE6
from genet.cc.metrics import TABLE7
from foundation.stats import format_mean_ci, mean_ci95
from foundation.usecase import use_case
from app.run.schema import load_saved

USE_CASES = ("abr", "cc", "lb")
METRIC = {"abr": "qoe", "cc": "reward", "lb": "mean_completion_time_s"}
METRIC_NAME = {"abr": "QoE (per-trace total)", "cc": "reward (Genet)", "lb": "mean completion time (s)"}
#: Where each headline metric is defined (the one definition in simulation, emulation and on real paths).
METRIC_MODULE = {"abr": "genet/abr/qoe.py", "cc": "genet/cc/reward.py", "lb": "genet/lb/metrics.py"}
#: The columns of each use case's table: the one list of each (genet/abr/qoe.py, genet/cc/metrics.py,
#: genet/lb/metrics.py).
TABLE_COLS = {"abr": TABLE6, "cc": TABLE7, "lb": use_case("lb").table_columns}
TABLE_NAME = {"abr": "Table 6", "cc": "Table 7", "lb": "LB table"}
STAGE_LABEL = {"simulate": "simulation", "emulate": "emulation", "deploy": "real paths"}


def fmt_ci(values: list[float], digits: int = 2) -> str:
    """``mean ± 95 % half-width (n=N)`` of the finite values (:func:`foundation.stats.mean_ci95`); "—" for none."""
    m, ci, n = mean_ci95(values)
    return format_mean_ci(m, ci, digits, n=n)


def policy_label(value: str) -> str:
    """A policy as the tables name it: an ONNX path by its file stem, a baseline by its name."""
    return Path(value).stem if value.endswith(".onnx") else value


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def read_results(path: Path) -> list[dict]:
    """Rows of a results.csv, numbers as floats; the policy column (``policy`` or ``scheme``) as ``policy``."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        row = {k: (_float(v) if _float(v) is not None else v) for k, v in r.items()}
        pol = r.get("policy") or r.get("scheme") or ""
        row["policy"] = policy_label(str(pol))
        out.append(row)
    return out


def deploy_rows(campaign_dir: Path) -> list[dict]:
    """One row per finished run of a `genet deploy run` campaign (its journal: path, scheme, metrics), the
    scheme as ``policy``; [] when there is none."""
    try:
        from deploy.campaign import JOURNAL, open_journal
    except ImportError:
        return []
    if not (campaign_dir / JOURNAL).is_file():
        return []
    runs: dict[str, dict] = {}
    for r in open_journal(campaign_dir).records:
        if r.get("status") == "ok" and isinstance(r.get("metrics"), dict):
            runs[r.get("run_id", str(len(runs)))] = r  # a retried run counts once
    rows = []
    for r in runs.values():
        row = {k: _float(v) for k, v in r["metrics"].items() if _float(v) is not None}
        row.update(policy=policy_label(str(r.get("scheme", ""))), path=str(r.get("path", "")))
        rows.append(row)
    return rows


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


class Report:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.out = self.run_dir / "report"
        self.html: list[str] = []
        self.md: list[str] = []
        self.figures: list[tuple[str, bytes]] = []
        self.plan = _load_json(self.run_dir / "plan.json", {})
        self.status = _load_json(self.run_dir / "status.json", {}).get("items", {})
        self.cfg = load_saved(self.run_dir / "config.json")  # a RunConfig, None without a (readable) config.json
        self.stage_label = dict(STAGE_LABEL)
        if not (self.cfg and self.cfg.deploy.inventory):
            self.stage_label["deploy"] = "testbed paths"  # the local SSH testbed: emulated wide-area paths

    # output helpers ------------------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> None:
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md.extend(["#" * level + " " + text, ""])

    def para(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.extend([text, ""])

    def table(self, header: list[str], rows: list[list[str]], css_id: str = "") -> None:
        attr = f' id="{css_id}"' if css_id else ""
        h = [f"<div class='tw'><table{attr}><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr></thead><tbody>"]
        for r in rows:
            h.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
        h.append("</tbody></table></div>")
        self.html.append("".join(h))
        self.md.append("| " + " | ".join(header) + " |")
        self.md.append("|" + "---|" * len(header))
        for r in rows:
            self.md.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
        self.md.append("")

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.figures.append((name, png))
        b64 = base64.b64encode(png).decode()
        self.html.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        self.md.extend([f"![{caption}](figures/{name})", ""])

    # data ----------------------------------------------------------------------------------------
    def items(self, stage: str) -> list[dict]:
        return self.plan.get(stage, [])

    def item_status(self, stage: str, name: str) -> str:
        return self.status.get(f"{stage}/{name}", {}).get("status", "not run")

    def results(self, stage: str, uc: str) -> dict[str, list[dict]]:
        """{environment: rows} of one stage and use case."""
        found: dict[str, list[dict]] = {}
        for it in self.items(stage):
            if stage == "deploy":
                if it["name"] != uc:
                    continue
            elif not it["name"].startswith(uc + "-"):
                continue
            folder = Path(it["folder"])
            if stage == "deploy":
                if self.item_status(stage, it["name"]).startswith(("done", "up to")):
                    for r in sorted(deploy_rows(folder / "campaign"), key=lambda r: str(r.get("path", ""))):
                        found.setdefault(str(r.get("path", "all paths")), []).append(r)
            elif (folder / "results.csv").is_file() and self.item_status(stage, it["name"]).startswith(("done", "up to")):
                found[it["name"][len(uc) + 1:]] = read_results(folder / "results.csv")
        return found

    def stage_note(self, stage: str, uc: str) -> str:
        names = [it for it in self.items(stage) if (it["name"] == uc if stage == "deploy" else it["name"].startswith(uc + "-"))]
        if not names:
            return "not run (not in the config)"
        states = []
        for it in names:
            st = it["unavailable"] or self.item_status(stage, it["name"])
            if st == "failed":
                fail = _load_json(self.run_dir / "state" / stage / f"{it['name']}.failed.json", {})
                st = f"failed: {fail.get('error', '?')} (log: {fail.get('log', '?')})"
            if st not in states:
                states.append(st)
        return "; ".join(states)

    def use_case(self, uc: str):
        """The config's table of use case ``uc`` (``cfg.abr``, ``cfg.cc``); None when it has none."""
        return getattr(self.cfg, uc) if self.cfg else None

    def policies(self, uc: str, all_rows: list[list[dict]]) -> list[str]:
        u = self.use_case(uc)
        order = list(u.policies) + list(u.baselines) if u else []
        for rows in all_rows:
            for r in rows:
                if r["policy"] not in order:
                    order.append(r["policy"])
        return order

    def trace_sources(self) -> dict[str, str]:
        """{trace set: where its traces came from}, one line each (a shipped sample, a synthetic stand-in, a
        full local copy...), from the config, the plan and the set's ``SOURCE.json``."""
        sets = self.cfg.traces if self.cfg else {}
        folders = {it["name"]: Path(it["folder"]) for it in self.items("traces")}

        def describe(name: str) -> str:
            s = sets.get(name)
            folder = folders.get(name)
            if s is None:
                return "?"
            if s.dataset:
                rec = _load_json(folder / "SOURCE.json", {}) if folder else {}
                if rec.get("detail"):
                    return f"{s.dataset}: {rec['detail']}"
                if folder and folder.is_dir() and not _within(folder, self.run_dir):
                    return f"{s.dataset}: full set, local copy {folder}"
                return f"{s.dataset}: not obtained yet"
            if s.path:
                return f"folder {s.path}"
            if s.gen:
                seed = s.seed if s.seed is not None else self.cfg.run.seed
                return f"synthetic: {s.n} {s.gen} traces of range {s.range}, seed {seed}"
            if s.fetch:
                return f"downloaded: {s.fetch}"
            if s.from_:
                n = s.n
                if folder is not None and folder.is_dir():
                    got = sum(1 for f in folder.rglob("*") if f.is_file())
                    n = got if got == n else f"{got} (of {n} asked)"
                return f"first {n} files of {s.from_} ({describe(s.from_)})"
            return "?"

        return {name: describe(name) for name in sets}

    # sections ------------------------------------------------------------------------------------
    def section_traces(self) -> None:
        sources = self.trace_sources()
        if not sources:
            return
        self.heading("Trace sets")
        self.table(["set", "source"], [[n, d] for n, d in sources.items()], css_id="trace-sets")
        if any("shipped sample" in d or "synthetic stand-in" in d for d in sources.values()):
            self.para("Sets marked 'shipped sample' or 'synthetic stand-in' are not the full public sets (no full "
                      "copy and no download was at hand): fine for trying the tools, not for results to report. "
                      "`genet traces fetch NAME --dest DIR` and `GENET_TRACES_DIR=DIR` give the full sets.")

    def section_stages(self) -> None:
        self.heading("Stages")
        st = _load_json(self.run_dir / "status.json", {})
        walls, cpus = st.get("stage_wall_s", {}), st.get("stage_cpu_s", {})
        rows = []
        for stage, items in self.plan.items():
            if not items:
                rows.append([stage, "—", "nothing to do for this config", "—", "—"])
                continue
            states = sorted({it["unavailable"] or self.item_status(stage, it["name"]) for it in items})
            if stage == "report":
                states = ["this report"]
            w = walls.get(stage)
            c = cpus.get(stage)
            rows.append([stage, str(len(items)), "; ".join(states), f"{w:.1f}" if w is not None else "—",
                         f"{c:.1f}" if c is not None else "—"])
        self.table(["stage", "items", "status", "wall time (s, last run)", "CPU time (s, last run)"], rows)

    def section_headline(self, uc: str, data: dict) -> None:
        self.heading(f"{uc.upper()}: {METRIC_NAME[uc]} in simulation, emulation and on real paths", 3)
        metric = METRIC[uc]
        ran = [s for s in ("simulate", "emulate", "deploy") if data[s]]
        cols = []
        for s in ran:
            cols.append((s, f"{self.stage_label[s]} ({', '.join(data[s])})"))
            if s == "emulate" and any(f"sim_{metric}" in r for rows in data[s].values() for r in rows):
                cols.append(("emulate-sim", "simulation on the emulated traces"))
                cols.append(("emulate-gap", "gap: emulation − simulation, same traces"))
        allrows = [rows for s in ran for rows in data[s].values()]
        header = ["policy"] + [c[1] for c in cols]
        rows = []
        for pol in self.policies(uc, allrows):
            row = [pol]
            seen = False
            for key, _ in cols:
                if key == "emulate-sim":
                    vals = [r.get(f"sim_{metric}") for rows_ in data["emulate"].values() for r in rows_
                            if r["policy"] == pol]
                elif key == "emulate-gap":
                    vals = [r[metric] - r[f"sim_{metric}"] for rows_ in data["emulate"].values() for r in rows_
                            if r["policy"] == pol and isinstance(r.get(metric), float)
                            and isinstance(r.get(f"sim_{metric}"), float)]
                else:
                    vals = [r.get(metric) for rows_ in data[key].values() for r in rows_ if r["policy"] == pol]
                vals = [v for v in vals if isinstance(v, float)]
                seen = seen or bool(vals)
                row.append(fmt_ci(vals) if vals else "—")
            if seen or not cols:
                rows.append(row)
        if cols:
            self.table(header, rows, css_id=f"headline-{uc}")
        else:
            self.table(["policy"], [[p] for p in self.policies(uc, [])], css_id=f"headline-{uc}")
        for s in ("simulate", "emulate", "deploy"):
            if s not in ran:
                self.para(f"{self.stage_label[s].capitalize()}: {self.stage_note(s, uc)}.")
        over = "episodes / workloads (and repetitions)" if uc == "lb" else "traces (and repetitions)"
        self.para(f"Cells: mean ± 95 % CI over {over}, n = rows. {METRIC_NAME[uc]}: "
                  f"one definition ({METRIC_MODULE[uc]}) in simulation, emulation and on real paths.")

    def section_tables(self, uc: str, data: dict) -> None:
        cols = TABLE_COLS[uc]
        sources = self.trace_sources()
        for stage in ("simulate", "emulate", "deploy"):
            for env, rows in data[stage].items():
                self.heading(f"{TABLE_NAME[uc]} form — {uc.upper()}, {self.stage_label[stage]}: {env}", 3)
                if uc == "lb" and stage != "deploy":
                    self.para(_lb_source(stage, env))
                elif stage != "deploy" and env in sources:
                    self.para(f"Traces: {sources[env]}.")
                body = []
                for pol in self.policies(uc, [rows]):
                    prow = [r for r in rows if r["policy"] == pol]
                    if not prow:
                        continue
                    body.append([pol] + [fmt_ci([r.get(c.name) for r in prow if isinstance(r.get(c.name), float)], 3)
                                         for c in cols])
                self.table(["policy"] + [f"{c.heading} [{c.name}]" for c in cols], body)

    def section_cdfs(self, uc: str, data: dict) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        metric = METRIC[uc]
        envs = [(s, e, rows) for s in ("simulate", "emulate", "deploy") for e, rows in data[s].items()]
        if not envs:
            return
        self.heading(f"{uc.upper()}: {METRIC_NAME[uc]} CDFs", 3)
        for stage, env, rows in envs:
            fig, ax = plt.subplots(figsize=(6.4, 3.6))
            for pol in self.policies(uc, [rows]):
                vals = sorted(r[metric] for r in rows if r["policy"] == pol and isinstance(r.get(metric), float))
                if vals:
                    ax.step(vals, [(i + 1) / len(vals) for i in range(len(vals))], where="post", label=pol)
            ax.set_xlabel(METRIC_NAME[uc])
            ax.set_ylabel("CDF")
            ax.set_title(f"{self.stage_label[stage]}: {env}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            self.figure(f"cdf-{uc}-{stage}-{env}.png", _png(fig), f"{uc.upper()} {METRIC_NAME[uc]} CDF, "
                        f"{self.stage_label[stage]}, {env}")
        emu = [r for rows in data["emulate"].values() for r in rows if isinstance(r.get(f"sim_{metric}"), float)]
        if emu:
            fig, ax = plt.subplots(figsize=(5, 4.2))
            for pol in self.policies(uc, [emu]):
                pts = [(r[f"sim_{metric}"], r[metric]) for r in emu if r["policy"] == pol and isinstance(r.get(metric), float)]
                if pts:
                    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, label=pol)
            lo, hi = ax.get_xlim()
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xlabel(f"simulation {metric}")
            ax.set_ylabel(f"emulation {metric}")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            self.figure(f"scatter-{uc}.png", _png(fig), f"{uc.upper()}: simulation vs emulation per trace")
        if data["deploy"]:
            fig, ax = plt.subplots(figsize=(7, 3.8))
            paths = list(data["deploy"])
            pols = self.policies(uc, list(data["deploy"].values()))
            width = 0.8 / max(len(pols), 1)
            for k, pol in enumerate(pols):
                means, errs = [], []
                for p in paths:
                    m, ci, _ = mean_ci95([r.get(metric) for r in data["deploy"][p] if r["policy"] == pol
                                          and isinstance(r.get(metric), float)])
                    means.append(m)
                    errs.append(ci if math.isfinite(ci) else 0)
                ax.bar([i + k * width for i in range(len(paths))], means, width, yerr=errs, label=pol, capsize=2)
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(paths))], paths, fontsize=8)
            ax.set_ylabel(METRIC_NAME[uc])
            ax.legend(fontsize=8)
            self.figure(f"paths-{uc}.png", _png(fig), f"{uc.upper()} per path (Figure 16 style), mean ± 95 % CI")

    def section_training(self, uc: str) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        runs = [it for it in self.items("train") if it["name"].startswith(uc + "-")
                and (Path(it["folder"]) / "learning_curve.csv").is_file()]
        if not runs:
            return
        self.heading(f"{uc.upper()}: training", 3)
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        summary = []
        for it in runs:
            folder = Path(it["folder"])
            with open(folder / "learning_curve.csv", newline="") as fh:
                rows = list(csv.DictReader(fh))
            xs = [_float(r.get("env_steps")) for r in rows]
            ys = [_float(r.get("episode_reward_mean")) for r in rows]
            pts = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and math.isfinite(y)]
            name = it["name"][len(uc) + 1:]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
            run = _load_json(folder / "run.json", {})
            summary.append([name, str(run.get("method", "?")), str(run.get("range", "?")), str(run.get("seed", "?")),
                            str(int(xs[-1])) if xs and xs[-1] is not None else "—",
                            _short(rows[-1].get("wall_s", "")) if rows else "—"])
        ax.set_xlabel("environment steps")
        ax.set_ylabel("mean episode reward")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        self.table(["policy", "method", "range", "seed", "env steps", "train wall (s)"], summary)
        self.figure(f"learning-{uc}.png", _png(fig), f"{uc.upper()} learning curves")
        for it in runs:
            rounds = Path(it["folder"]) / "rounds.csv"
            if not rounds.is_file():
                continue
            with open(rounds, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows:
                continue
            name = it["name"][len(uc) + 1:]
            self.heading(f"{uc.upper()} {name}: curriculum rounds (the configuration BO promoted each round)", 4)
            header = list(rows[0].keys())
            self.table(header, [[_short(r.get(h, "")) for h in header] for r in rows])
            png = Path(it["folder"]) / "rounds.png"
            if png.is_file():
                self.figure(f"rounds-{uc}-{name}.png", png.read_bytes(), f"{uc.upper()} {name}: gap per BO trial, "
                            f"chosen configuration per round")

    def section_stage_figures(self) -> None:
        pngs = []
        for stage in ("simulate", "emulate", "deploy"):
            for it in self.items(stage):
                folder = Path(it["folder"])
                if folder.is_dir():
                    pngs += [(stage, it["name"], p) for p in sorted(folder.rglob("*.png"))
                             if "testbed" not in p.parts and p.stat().st_size < 3_000_000]
        if not pngs:
            return
        self.heading("Figures of the stage commands (time series, CDFs)")
        for stage, name, p in pngs:
            self.figure(f"{stage}-{name}-{p.stem}.png", p.read_bytes(), f"{stage} {name}: {p.name} "
                        f"(written by the stage's command)")

    def section_provenance(self) -> None:
        self.heading("Provenance")
        meta = _load_json(self.run_dir / "run-metadata.json", {})
        if not meta:
            meta = _fallback_meta()
        host = meta.get("host", {})
        versions = meta.get("versions", {})
        rows = [["commit", f"{meta.get('commit') or '—'}" + (" (uncommitted changes)" if meta.get("dirty") else "")],
                ["genet-testbed version", str(meta.get("version") or "—")],
                ["command", str(meta.get("command") or "—")],
                ["started (UTC)", str(meta.get("started_utc") or "—")],
                ["host", f"{host.get('hostname', '?')} · {host.get('platform', '?')} · "
                         f"{host.get('cpu_count', '?')} CPUs · {host.get('cpu_model') or ''}"],
                ["versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "—"],
                ["seed ([run] seed)", str(self.cfg.run.seed) if self.cfg else "—"]]
        self.table(["what", "value"], rows)
        seeds = []
        for name, s in (self.cfg.traces if self.cfg else {}).items():
            if s.gen:
                seeds.append([f"traces.{name}", str(s.seed if s.seed is not None else self.cfg.run.seed)])
        for uc in ("abr", "cc"):
            u = self.use_case(uc)
            for name, p in (u.policies if u else {}).items():
                if p.method:
                    seeds.append([f"{uc}.policies.{name}", str(p.seed if p.seed is not None else self.cfg.run.seed)])
        if seeds:
            self.heading("Seeds", 3)
            self.table(["item", "seed"], seeds)
        self.heading("Exact commands (rerun any table with these)", 3)
        rows = []
        for stage, items in self.plan.items():
            for it in items:
                rec = _load_json(self.run_dir / "state" / stage / f"{it['name']}.done.json", {})
                cmds = rec.get("commands") or it["steps"]
                rows.append([f"{stage}/{it['name']}", it["unavailable"] or self.item_status(stage, it["name"]),
                             "\n".join(cmds)])
        self.html.append("<table><thead><tr><th>item</th><th>status</th><th>commands</th></tr></thead><tbody>" +
                         "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td><pre>{html.escape(c)}"
                                 f"</pre></td></tr>" for a, b, c in rows) + "</tbody></table>")
        self.md.extend(["| item | status | commands |", "|---|---|---|"] +
                       [f"| {a} | {b} | " + "<br>".join(f"`{x}`" for x in c.splitlines()) + " |" for a, b, c in rows] + [""])
        cfg_text = (self.run_dir / "config.toml").read_text() if (self.run_dir / "config.toml").is_file() else ""
        self.heading("Config", 3)
        self.html.append(f"<pre>{html.escape(cfg_text)}</pre>")
        self.md.extend(["```toml", cfg_text.rstrip(), "```", ""])

    def build(self) -> Path:
        title = (self.cfg and (self.cfg.report.title or self.cfg.run.name)) or "genet run"
        self.heading(f"genet run: {title}", 1)
        self.para(f"Run folder: {self.run_dir}. Reward: ABR — per-trace total QoE (bitrate − rebuffer penalty − "
                  f"bitrate change); CC — Genet's reward (500·throughput/link bandwidth − 1000·latency − 2000·loss)."
                  + (" LB — mean job completion time (finish − arrival, s; 1 Genet time unit = 1 ms), beside the "
                     "paper's reward (−Σ Δt × jobs in the system, ms × jobs)." if self.use_case("lb") else ""))
        data = {uc: {s: self.results(s, uc) for s in ("simulate", "emulate", "deploy")}
                for uc in USE_CASES if self.use_case(uc)}
        self.heading("Headline: the sim → emulation → real gap per policy")
        for uc, d in data.items():
            self.section_headline(uc, d)
        self.section_stages()
        self.section_traces()
        for uc, d in data.items():
            self.heading(f"{uc.upper()} in detail")
            self.section_tables(uc, d)
            self.section_cdfs(uc, d)
            self.section_training(uc)
        self.section_stage_figures()
        self.section_provenance()
        return self.write(title)

    def write(self, title: str) -> Path:
        from foundation.atomic import atomic_write_bytes, atomic_write_text
        self.out.mkdir(parents=True, exist_ok=True)
        for name, png in self.figures:
            atomic_write_bytes(self.out / "figures" / name, png)
        css = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
               "table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;"
               "font-size:14px;text-align:left;vertical-align:top;overflow-wrap:break-word}th{background:#f3f3f3}"
               "figure{display:inline-block;margin:.5em;max-width:100%}img{max-width:100%;height:auto}figcaption{font-size:13px;color:#555}"
               ".tw{overflow-x:auto;max-width:100%}pre{font-size:12px;white-space:pre-wrap;word-break:break-all;margin:0}h1{margin-bottom:.2em}")
        page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{css}</style></head><body>" + "\n".join(self.html) + "</body></html>\n")
        atomic_write_text(self.out / "index.html", page)
        atomic_write_text(self.out / "report.md", "\n".join(self.md) + "\n")
        return self.out / "index.html"


def _lb_source(stage: str, env: str) -> str:
    """Where an LB table's episodes came from (its item's name)."""
    if stage == "emulate":
        return "Workloads: generated by `genet emulate lb -n` (Genet's generator); sim_* beside each row."
    if env == "workloads":
        return "Episodes: one per workload file of [lb.simulate] workloads."
    if env == "default":
        return "Episodes: the [lb.simulate] setting itself (Genet's or Park's), seeded."
    return f"Episodes: settings drawn from range {env} of traces/spaces/lb.json, seeded."


def _within(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _short(v) -> str:
    f = _float(v)
    return f"{f:.3g}" if f is not None else str(v)


def _load_json(path: Path, default):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def _fallback_meta() -> dict:
    """Provenance when foundation.runmeta (the one run-metadata record) is not part of this build."""
    import os
    import subprocess
    from importlib import metadata
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    versions = {"python": platform.python_version()}
    for d in ("genet-testbed", "numpy", "torch", "onnxruntime", "numba", "matplotlib"):
        try:
            versions[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return {"commit": commit, "versions": versions,
            "host": {"hostname": platform.node(), "platform": platform.platform(), "cpu_count": os.cpu_count()}}


def write_report_action(item) -> None:
    """The report stage's step: build the report of the run folder the item belongs to."""
    path = Report(Path(item.folder).parent).build()
    print(f"wrote {path} and {path.with_name('report.md')}")


write_report_action.describe = "write report/index.html and report/report.md from the run folder"
