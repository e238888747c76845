"""The report of a ``genet run``: ``report/index.html`` (one self-contained file: figures embedded as
base64 PNG, no network needed) and ``report.md`` with the same tables (figures in ``report/figures/``).

:class:`Report` gathers the data into a list of blocks (headings, paragraphs, tables of :class:`Cell`,
figures, preformatted text); the page is the Jinja2 template ``app/run/templates/report.html.j2``
(:data:`TEMPLATE`, loaded from the installed package, autoescaped) and ``report.md`` is the same blocks as
Markdown.

Everything is read from the run folder's files (``plan.json``, ``status.json``, ``state/``, each
stage's ``results.csv``), so ``genet run CONFIG --only report`` redraws it from what exists:

- the headline: for each use case, each policy's reward (ABR: per-trace QoE; CC: Genet's reward) in
  simulation, emulation and on real/testbed paths side by side — the sim -> emulation -> real gap —
  with columns only for the stages that ran (the others are named with the reason: not run, not
  available in this build, failed). Rows: the models the config names with ``use`` (shipped) and the
  rule-based baselines first, then the policies the run trained itself, labelled with their budget
  ("trained here, 150k steps"). Each cell is mean ± 95 % CI (n); the gap column is the paired gap of
  emulation against the simulator on the same traces (:func:`foundation.stats.paired_gap`: mean paired
  difference, its 95 % CI, a verdict in words), or says why it is not measured;
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
import io
import json
import math
import platform
from dataclasses import dataclass
from pathlib import Path

from genet.abr.qoe import TABLE6
from genet.agents.registry import DEFAULT_AGENT
from genet.cc.metrics import TABLE7
from foundation.stats import format_mean_ci, mean_ci95, paired_gap
from foundation.usecase import use_case
from app.run.schema import load_saved, policy_agent

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
#: The page's template (a file of this package's ``templates/`` folder; pyproject.toml ships it as package data).
TEMPLATE = "report.html.j2"
#: The tolerance of the headline's gap verdicts: emulation "within ±10 % of simulation" (foundation.stats.paired_gap).
GAP_TOLERANCE = 0.10
#: Where the shipped models live (a ``use`` under it is labelled "shipped model").
SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "models"
#: A CC baseline that is two implementations (the CC registry's kernel TCP kinds): the simulator's model
#: (Genet's) in simulation, the kernel's (iperf3 -C NAME) on packets, so its sim -> emulation gap is partly by
#: design (docs/fidelity.md).
KERNEL_BASELINE_LABEL = "kernel baseline: the simulator's model of it in simulation, Linux's on packets"

#: Row order of the headline and every table: shipped/given models, rule-based baselines, trained here, others.
GROUP_MODEL, GROUP_BASELINE, GROUP_TRAINED, GROUP_OTHER = range(4)


@dataclass(frozen=True)
class Cell:
    """One table cell: ``text``, an optional second line ``note`` (smaller, on the page; in parentheses or after
    ``md_sep`` in Markdown), a CSS class ``kind`` (the gap verdicts: agree, differs, undecided, unmeasured; the
    policy column: policy) and ``pre`` for preformatted text (the commands)."""

    text: str
    note: str = ""
    kind: str = ""
    pre: bool = False
    md_sep: str = ""  # "": the note in parentheses

    @property
    def md(self) -> str:
        """The cell in report.md."""
        if self.pre:
            return "<br>".join(f"`{x}`" for x in self.text.splitlines())
        if not self.note:
            return self.text
        return f"{self.text}{self.md_sep}{self.note}" if self.md_sep else f"{self.text} ({self.note})"


def fmt_ci(values: list[float], digits: int = 2) -> str:
    """``mean ± 95 % half-width (n=N)`` of the finite values (:func:`foundation.stats.mean_ci95`); "—" for none."""
    m, ci, n = mean_ci95(values)
    return format_mean_ci(m, ci, digits, n=n)


def agent_label(p) -> str:
    """The agent of a trained policy's recipe as its label says it, "" for ppo (the default): "bc from bba, ",
    "dt, "."""
    agent = policy_agent(p)
    if agent == DEFAULT_AGENT:
        return ""
    teacher = getattr(p, "teacher", "")
    return f"{agent} from {teacher}, " if teacher else f"{agent}, "


def format_steps(steps) -> str:
    """A training budget as the labels print it: 768, 1.2k, 150k, 6M, 5.99M."""
    n = float(steps)
    if n < 1000:
        return f"{n:g}"
    if n < 1e6:
        return f"{float(f'{n / 1e3:.3g}'):g}k"
    return f"{float(f'{n / 1e6:.3g}'):g}M"


def gap_cell(emulated: list, simulated: list) -> Cell:
    """The headline's gap cell of one policy from its (emulation, simulation) values on the same traces (one pair a
    row; a pair with a missing value is left out): :func:`foundation.stats.paired_gap`'s verdict in words, then the
    gap with its 95 % interval (bootstrap, widened to t for few traces), absolute and relative to simulation, and
    n. The cell's class is the gap's decision: ``agree`` (within the tolerance), ``undecided`` (not enough runs),
    ``differs``."""
    g = paired_gap(emulated, simulated, tolerance=GAP_TOLERANCE, names=("emulation", "simulation"))
    if g.n == 0:
        return Cell("gap not measured", "no trace has both an emulated and a simulated value", "unmeasured",
                    md_sep="; ")
    detail = f"gap {g.gap:+.2f} [{g.low:+.2f}, {g.high:+.2f}]"
    if math.isfinite(g.relative):
        detail += f" = {g.relative * 100:+.1f} % [{g.rel_low * 100:+.1f}, {g.rel_high * 100:+.1f}]"
    detail += f", n={g.n} traces"
    return Cell(g.verdict, detail, g.decision, md_sep="; ")


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


def _is_kernel_tcp(name: str) -> bool:
    """Whether a CC policy name is a kernel TCP algorithm (genet.cc.registry: bbr, cubic, tcp:NAME)."""
    from genet.cc.registry import parse_policy
    try:
        return parse_policy(name, real_packets=True).is_kernel_tcp
    except (ValueError, OSError):  # not a policy the registry knows: not a kernel one
        return False


class Report:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.out = self.run_dir / "report"
        self.blocks: list[dict] = []
        self.figures: list[tuple[str, bytes]] = []
        self.plan = _load_json(self.run_dir / "plan.json", {})
        self.status = _load_json(self.run_dir / "status.json", {}).get("items", {})
        self.cfg = load_saved(self.run_dir / "config.json")  # a RunConfig, None without a (readable) config.json
        self.stage_label = dict(STAGE_LABEL)
        if not (self.cfg and self.cfg.deploy.inventory):
            self.stage_label["deploy"] = "testbed paths"  # the local SSH testbed: emulated wide-area paths

    # output helpers: blocks the template (HTML) and _markdown (report.md) render --------------------
    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append({"kind": "heading", "level": level, "text": text})

    def para(self, text: str, css: str = "") -> None:
        self.blocks.append({"kind": "para", "text": text, "css": css})

    def table(self, header: list[str], rows: list[list], css_id: str = "", row_keys: list[str] | None = None) -> None:
        """A table; cells are :class:`Cell` or anything ``str()`` turns into text; ``row_keys`` become the rows'
        ``data-policy`` attributes (the headline: the policy's name without its label)."""
        cells = [[c if isinstance(c, Cell) else Cell(str(c)) for c in r] for r in rows]
        self.blocks.append({"kind": "table", "header": list(header), "rows": cells, "id": css_id,
                            "row_keys": list(row_keys) if row_keys else [""] * len(cells)})

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.figures.append((name, png))
        self.blocks.append({"kind": "figure", "name": name, "caption": caption,
                            "src": "data:image/png;base64," + base64.b64encode(png).decode()})

    def pre(self, text: str, lang: str = "") -> None:
        self.blocks.append({"kind": "pre", "text": text, "lang": lang})

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

    def policy_origin(self, uc: str, name: str) -> tuple[int, str]:
        """(group, label) of a policy: a model the config names with ``use`` (the shipped ones, with their training
        budget when the model's metadata file says it), a rule-based baseline, a policy this run trained (its
        budget from the config: "trained here, 150k steps"; another agent than ppo named: "trained here, bc from
        bba, 300k steps"), or something only the results name (group last)."""
        u = self.use_case(uc)
        p = u.policies.get(name) if u else None
        if p is not None and getattr(p, "use", ""):
            path = Path(p.use)
            if _within(path, SHIPPED_MODELS):
                where = f"shipped model {path.relative_to(SHIPPED_MODELS.parent).as_posix()}"
            else:
                where = f"model {path.parent.name}/{path.name}"
            steps = _load_json(path.with_suffix(".json"), {}).get("steps")
            if isinstance(steps, (int, float)) and not isinstance(steps, bool) and steps > 0:
                where += f", {format_steps(steps)} steps"
            return GROUP_MODEL, where
        if p is not None:
            return GROUP_TRAINED, f"trained here, {agent_label(p)}{format_steps(p.steps)} steps"
        if u is not None and name in getattr(u, "baselines", ()):
            if uc == "cc" and _is_kernel_tcp(name):
                return GROUP_BASELINE, KERNEL_BASELINE_LABEL
            return GROUP_BASELINE, "rule-based baseline"
        return GROUP_OTHER, ""

    def policies(self, uc: str, all_rows: list[list[dict]]) -> list[str]:
        """The policies of the config and of the rows, in the tables' order: shipped/given models, then the
        baselines, then the policies trained by this run, then any other (config order within a group)."""
        u = self.use_case(uc)
        order = list(u.policies) + list(u.baselines) if u else []
        for rows in all_rows:
            for r in rows:
                if r["policy"] not in order:
                    order.append(r["policy"])
        return sorted(order, key=lambda name: self.policy_origin(uc, name)[0])  # stable: config order within

    def policy_cell(self, uc: str, name: str) -> Cell:
        """A policy's first cell: its name, and what it is (:meth:`policy_origin`) below it."""
        group, label = self.policy_origin(uc, name)
        return Cell(name, label, "policy trained" if group == GROUP_TRAINED else "policy")

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
        metric, sim_metric = METRIC[uc], f"sim_{METRIC[uc]}"
        ran = [s for s in ("simulate", "emulate", "deploy") if data[s]]
        emulated = [r for rows in data["emulate"].values() for r in rows]
        twins = any(sim_metric in r for r in emulated)
        cols = [(s, f"{self.stage_label[s]} ({', '.join(data[s])})") for s in ran if s != "deploy"]
        if ran:  # the gap beside the emulation it is of (or saying why there is none)
            cols.append(("gap", "sim → emulation gap, same traces (paired, 95 % CI)"))
        if "deploy" in ran:
            cols.append(("deploy", f"{self.stage_label['deploy']} ({', '.join(data['deploy'])})"))
        allrows = [rows for s in ran for rows in data[s].values()]
        rows, keys = [], []
        for pol in self.policies(uc, allrows):
            row: list = [self.policy_cell(uc, pol)]
            seen = False
            for key, _ in cols:
                if key == "gap":
                    row.append(self.headline_gap_cell(pol, emulated, metric, sim_metric, "emulate" in ran, twins))
                    continue
                vals = [r.get(metric) for rows_ in data[key].values() for r in rows_ if r["policy"] == pol]
                vals = [v for v in vals if isinstance(v, float)]
                seen = seen or bool(vals)
                note = ""
                if key == "emulate" and twins:  # the paired gap's other side
                    sims = [r.get(sim_metric) for r in emulated if r["policy"] == pol]
                    sims = [v for v in sims if isinstance(v, float) and math.isfinite(v)]
                    note = f"simulator, same traces: {fmt_ci(sims)}" if sims else ""
                row.append(Cell(fmt_ci(vals) if vals else "—", note, kind="num", md_sep="; "))
            if seen or not cols:
                rows.append(row)
                keys.append(pol)
        if cols:
            self.table(["policy"] + [c[1] for c in cols], rows, css_id=f"headline-{uc}", row_keys=keys)
        else:
            pols = self.policies(uc, [])
            self.table(["policy"], [[self.policy_cell(uc, p)] for p in pols], css_id=f"headline-{uc}", row_keys=pols)
        for s in ("simulate", "emulate", "deploy"):
            if s not in ran:
                self.para(f"{self.stage_label[s].capitalize()}: {self.stage_note(s, uc)}.")
        if "deploy" in ran:
            self.para(f"{self.stage_label['deploy'].capitalize()}: the gap to them is not measured (no simulated "
                      f"or emulated run of the same paths); their cells are mean ± 95 % CI (n).", "note")
        over = "episodes / workloads (and repetitions)" if uc == "lb" else "traces (and repetitions)"
        self.para(f"Cells: mean ± 95 % CI over {over}, n = rows. {METRIC_NAME[uc]}: "
                  f"one definition ({METRIC_MODULE[uc]}) in simulation, emulation and on real paths.", "note")

    @staticmethod
    def headline_gap_cell(pol: str, emulated: list[dict], metric: str, sim_metric: str, emulate_ran: bool,
                  twins: bool) -> Cell:
        """The gap cell of one policy: the paired gap of its emulated rows against the simulator on the same traces,
        or why there is none."""
        mine = [r for r in emulated if r["policy"] == pol]
        why = ""
        if not emulate_ran:
            why = "emulation not run"
        elif not mine:
            why = "not emulated"
        elif not twins or not any(isinstance(r.get(sim_metric), float) and math.isfinite(r[sim_metric])
                                  for r in mine):
            why = "no simulator run of this policy on the emulated traces"
        if why:
            return Cell("gap not measured", why, "unmeasured", md_sep="; ")
        return gap_cell([r.get(metric) if isinstance(r.get(metric), float) else None for r in mine],
                        [r.get(sim_metric) if isinstance(r.get(sim_metric), float) else None for r in mine])

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
                    body.append([self.policy_cell(uc, pol)]
                                + [fmt_ci([r.get(c.name) for r in prow if isinstance(r.get(c.name), float)], 3)
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
        for uc in USE_CASES:
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
        self.table(["item", "status", "commands"], [[a, b, Cell(c, pre=True)] for a, b, c in rows])
        cfg_text = (self.run_dir / "config.toml").read_text() if (self.run_dir / "config.toml").is_file() else ""
        self.heading("Config", 3)
        self.pre(cfg_text.rstrip(), "toml")

    def build(self) -> Path:
        title = (self.cfg and (self.cfg.report.title or self.cfg.run.name)) or "genet run"
        self.heading(f"genet run: {title}", 1)
        self.para(f"Run folder: {self.run_dir}.", "meta")
        data = {uc: {s: self.results(s, uc) for s in ("simulate", "emulate", "deploy")}
                for uc in USE_CASES if self.use_case(uc)}
        self.heading("Headline: the sim → emulation → real gap per policy")
        self.para("Rows: shipped models and rule-based baselines, then the policies this run trained on its short "
                  "budget, marked \"trained here\" (a check of the pipeline, not a result). Gap: emulation − simulation "
                  "of the same policy on the same traces — mean paired difference, 95 % CI (bootstrap, widened to Student t for a handful of traces) and a verdict at "
                  f"±{GAP_TOLERANCE * 100:g} % (foundation/stats.py paired_gap).", "note")
        for uc, d in data.items():
            self.section_headline(uc, d)
        self.para("Reward: ABR — per-trace total QoE (bitrate − rebuffer penalty − bitrate change); CC — Genet's "
                  "reward (500·throughput/link bandwidth − 1000·latency − 2000·loss)."
                  + (" LB — mean job completion time (finish − arrival, s; 1 Genet time unit = 1 ms), beside the "
                     "paper's reward (−Σ Δt × jobs in the system, ms × jobs)." if self.use_case("lb") else ""), "note")
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
        atomic_write_text(self.out / "index.html", render_page(title, self.blocks))
        atomic_write_text(self.out / "report.md", render_markdown(self.blocks))
        return self.out / "index.html"


def page_template():
    """The page's Jinja2 template, loaded from this package's ``templates/`` folder wherever the package is
    installed (a wheel, an editable install, this checkout), every value autoescaped."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader(__package__ or "app.run", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE)


def render_page(title: str, blocks: list[dict]) -> str:
    """``index.html``: the blocks through :data:`TEMPLATE`."""
    return page_template().render(title=title, blocks=blocks)


def render_markdown(blocks: list[dict]) -> str:
    """``report.md``: the same blocks as Markdown (figures as links into ``figures/``)."""
    md: list[str] = []
    for b in blocks:
        if b["kind"] == "heading":
            md += ["#" * b["level"] + " " + b["text"], ""]
        elif b["kind"] == "para":
            md += [b["text"], ""]
        elif b["kind"] == "table":
            md.append("| " + " | ".join(b["header"]) + " |")
            md.append("|" + "---|" * len(b["header"]))
            md += ["| " + " | ".join(c.md.replace("|", "\\|") for c in r) + " |" for r in b["rows"]]
            md.append("")
        elif b["kind"] == "figure":
            md += [f"![{b['caption']}](figures/{b['name']})", ""]
        elif b["kind"] == "pre":
            md += ["```" + b["lang"], b["text"], "```", ""]
    return "\n".join(md) + "\n"


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
