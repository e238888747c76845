"""The first page of a `genet run` report (app/run/report.py, app/run/templates/report.html.j2), built from a small
synthetic run folder (a config, plan.json, status.json and hand-written results.csv files; no real run):

- row order: the shipped model and the rule-based baselines before the policies the run trained itself, which are
  labelled with their budget from the config ("trained here, 150k steps");
- a headline gap cell (emulated rows with the simulator's value on the same trace) shows n, the bootstrap 95 % CI
  and the verdict of foundation.stats.paired_gap (checked against a direct call); a policy with one tier says the
  gap is not measured and why;
- everything on the page is escaped (a policy named with ``<`` in a results file, a title with ``<`` and ``&``);
- the template is found from the installed package (the files pyproject.toml's package data ships), not from
  the checkout or the working directory.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from app.run import report as rep
from app.run import schema
from foundation.config import thaw
from foundation.stats import paired_gap

EVIL = "<img src=x onerror=alert(1)>"

CONFIG = """
[run]
name = "synthetic"
seed = 1

[report]
title = "Gap <check> & co"

[traces.abr-syn]
gen = "abr"
range = "rl2"
n = 2
[traces.abr-emu]
gen = "abr"
range = "rl2"
n = 2

[abr]
baselines = ["bba", "mpc"]
[abr.policies.udr]
method = "udr"
range = "rl3"
steps = 150000
[abr.policies.shipped]
use = "{repo}/models/abr/genet.onnx"
[abr.simulate]
traces = ["abr-syn"]
[abr.emulate]
traces = ["abr-emu"]
policies = ["udr", "shipped", "bba", "mpc"]
"""

#: Seeded synthetic per-trace QoE, simulation and emulation on the same traces. bba: emulation equals the
#: simulator within 1 % on 12 traces (the verdict decides: within ±10 %); mpc: emulation 30 % lower on 12 traces
#: (decides: lower); shipped: 3 noisy traces (cannot decide: "need about N traces"); udr: simulated only.
RNG = np.random.default_rng(5)
SIM = {"bba": 40 + RNG.uniform(-5, 5, 12), "mpc": 50 + RNG.uniform(-5, 5, 12), "shipped": 30 + RNG.uniform(-5, 5, 3)}
EMU = {"bba": SIM["bba"] * (1 + RNG.uniform(-0.01, 0.01, 12)), "mpc": SIM["mpc"] * 0.7 + RNG.uniform(-1, 1, 12),
       "shipped": SIM["shipped"] + np.array([-40.0, 35.0, -5.0])}


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def make_run(run: Path) -> Path:
    """A run folder as `genet run` leaves it after the simulate and emulate stages, with synthetic results."""
    run.mkdir(parents=True)
    (run / "c.toml").write_text(CONFIG.format(repo=REPO))
    cfg, _ = schema.load(run / "c.toml")
    (run / "config.json").write_text(json.dumps({"source": "c.toml", "config": thaw(cfg)}, default=str))
    sim, emu = run / "simulate" / "abr-abr-syn", run / "emulate" / "abr-abr-emu"
    plan = {"simulate": [{"name": "abr-abr-syn", "folder": str(sim), "steps": ["genet eval abr ..."],
                          "unavailable": ""}],
            "emulate": [{"name": "abr-abr-emu", "folder": str(emu), "steps": ["genet emulate abr ..."],
                         "unavailable": ""}]}
    (run / "plan.json").write_text(json.dumps(plan))
    (run / "status.json").write_text(json.dumps({"items": {"simulate/abr-abr-syn": {"status": "done"},
                                                           "emulate/abr-abr-emu": {"status": "done"}}}))
    sim_rows = [{"policy": "/x/export/abr-udr/udr.onnx", "trace": f"t{i}", "qoe": 20.0 + i} for i in range(4)]
    sim_rows += [{"policy": p, "trace": f"t{i}", "qoe": float(v)} for p in SIM for i, v in enumerate(SIM[p])]
    sim_rows += [{"policy": EVIL, "trace": "t0", "qoe": 1.0}]
    _write_csv(sim / "results.csv", sim_rows)
    emu_rows = [{"policy": p, "trace": f"t{i}", "qoe": float(e), "sim_qoe": float(s)}
                for p in EMU for i, (e, s) in enumerate(zip(EMU[p], SIM[p]))]
    emu_rows += [{"policy": "/x/export/abr-udr/udr.onnx", "trace": "t0", "qoe": 12.0, "sim_qoe": ""}]
    _write_csv(emu / "results.csv", emu_rows)
    return run


class _Tables(HTMLParser):
    """The tables of a page: {table id: [(data-policy, [(cell class, cell text)])]}."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list] = {}
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id") or f"#{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = (a.get("data-policy"), [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = [a.get("class") or "", ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row[1].append((self._cell[0], " ".join(self._cell[1].split())))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("report") / "run")
    page = rep.Report(run).build()
    text = page.read_text()
    parser = _Tables()
    parser.feed(text)
    return text, (run / "report" / "report.md").read_text(), parser.tables


def test_shipped_and_baselines_come_before_the_policies_trained_here_with_their_budget(built):
    _, md, tables = built
    rows = tables["headline-abr"][1:]  # [0]: the header
    assert [key for key, _ in rows] == ["shipped", "bba", "mpc", "udr", EVIL]
    labels = {key: cells[0][1] for key, cells in rows}
    assert labels["udr"] == "udr trained here, 150k steps"
    assert labels["shipped"].startswith("shipped shipped model models/abr/genet.onnx, ")  # + the model's own steps
    steps = json.loads((REPO / "models/abr/genet.json").read_text())["steps"]
    assert labels["shipped"].endswith(f", {rep.format_steps(steps)} steps")
    assert labels["bba"] == "bba rule-based baseline"
    headline = md.split("### ABR")[1].split("\n\n")[1]  # the heading, then the table
    lines = headline.splitlines()[2:]  # after the header and the |---| line
    assert [ln.split(" | ")[0] for ln in lines] == [
        "| shipped (shipped model models/abr/genet.onnx, " + f"{rep.format_steps(steps)} steps)",
        "| bba (rule-based baseline)", "| mpc (rule-based baseline)", "| udr (trained here, 150k steps)", f"| {EVIL}"]
    # the detail tables list the policies in the same order
    detail = md.split("Table 6 form")[1]
    assert detail.index("| shipped (") < detail.index("| bba (") < detail.index("| udr (trained here")


def test_the_kernel_baselines_say_their_simulated_and_emulated_figures_are_two_implementations(tmp_path):
    from types import SimpleNamespace
    report = rep.Report(tmp_path)
    report.cfg = SimpleNamespace(cc=SimpleNamespace(policies={}, baselines=("bbr", "cubic", "const:2")),
                                 abr=SimpleNamespace(policies={}, baselines=("bba",)))
    for name in ("bbr", "cubic"):
        group, label = report.policy_origin("cc", name)
        assert group == rep.GROUP_BASELINE and "simulator's model" in label and "Linux's on packets" in label
    assert report.policy_origin("cc", "const:2")[1] == "rule-based baseline"  # one implementation in both tiers
    assert report.policy_origin("abr", "bba")[1] == "rule-based baseline"


@pytest.mark.parametrize("policy,kind", [("bba", "agree"), ("mpc", "differs"), ("shipped", "undecided")])
def test_a_gap_cell_shows_n_the_ci_and_the_verdict_of_paired_gap(built, policy, kind):
    _, md, tables = built
    header = [text for _, text in tables["headline-abr"][0][1]]
    col = next(i for i, h in enumerate(header) if h.startswith("sim → emulation gap, same traces"))
    (cells,) = [cells for key, cells in tables["headline-abr"] if key == policy]
    css, text = cells[col]
    g = paired_gap(list(EMU[policy]), list(SIM[policy]), tolerance=0.10, names=("emulation", "simulation"))
    assert css == kind
    assert text.startswith(g.verdict), (text, g.verdict)
    assert f"gap {g.gap:+.2f} [{g.low:+.2f}, {g.high:+.2f}]" in text
    assert f"{g.relative * 100:+.1f} % [{g.rel_low * 100:+.1f}, {g.rel_high * 100:+.1f}]" in text
    assert f"n={g.n} traces" in text and g.n == len(SIM[policy])
    if kind == "agree":
        assert g.verdict == "emulation within ±10 % of simulation"
    elif kind == "differs":
        assert g.verdict.startswith("emulation lower than simulation by ")
    else:
        assert g.verdict == f"not enough runs to tell: need about {g.traces_needed} traces" and g.traces_needed > 3
    # the emulation cell: mean ± CI with n, and the simulator's on the same traces below it
    assert cells[header.index("emulation (abr-emu)")][1] == (f"{rep.fmt_ci(EMU[policy])} simulator, same traces: "
                                                             f"{rep.fmt_ci(SIM[policy])}")
    assert rep.fmt_ci(EMU[policy]).endswith(f"(n={g.n})")
    row = next(ln for ln in md.splitlines() if ln.startswith(f"| {policy} ("))
    assert f"{g.verdict}; gap {g.gap:+.2f} [{g.low:+.2f}, {g.high:+.2f}]" in row


def test_a_policy_with_one_tier_has_n_and_its_ci_and_says_the_gap_is_not_measured(built):
    _, _, tables = built
    header = [text for _, text in tables["headline-abr"][0][1]]
    gap = next(i for i, h in enumerate(header) if h.startswith("sim → emulation gap"))
    rows = dict(tables["headline-abr"][1:])
    assert rows["udr"][header.index("simulation (abr-syn)")][1] == rep.fmt_ci([20.0, 21.0, 22.0, 23.0])
    assert rows["udr"][header.index("simulation (abr-syn)")][1].endswith("(n=4)")
    # udr's emulated row has no simulator value: one tier
    assert rows["udr"][gap] == ("unmeasured", "gap not measured no simulator run of this policy on the emulated "
                                              "traces")
    assert rows[EVIL][gap] == ("unmeasured", "gap not measured not emulated")


def test_every_value_on_the_page_is_escaped(built):
    html, md, tables = built
    assert EVIL not in html and "<check>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<title>Gap &lt;check&gt; &amp; co</title>" in html and "<h1>genet run: Gap &lt;check&gt; &amp; co</h1>" in html
    assert EVIL in dict(tables["headline-abr"][1:])  # the attribute, unescaped by the parser, is the name
    assert "genet run: Gap <check> & co" in md  # Markdown keeps the text as it is


def test_format_steps():
    assert [rep.format_steps(s) for s in (768, 1200, 72000, 150000, 5990400, 6_000_000)] == [
        "768", "1.2k", "72k", "150k", "5.99M", "6M"]


def test_the_template_is_found_from_an_installed_package(tmp_path):
    """The package files a wheel holds (the .py files, and the package data pyproject.toml names) copied into a
    site folder; from another working directory the page renders from the copy, not from this checkout."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = cfg["tool"]["setuptools"].get("package-data", {})
    site = tmp_path / "site"
    for pkg in ("app", "app.run"):
        src = REPO.joinpath(*pkg.split("."))
        dest = site.joinpath(*pkg.split("."))
        dest.mkdir(parents=True)
        for f in src.glob("*.py"):
            shutil.copy2(f, dest / f.name)
        for pattern in data.get(pkg, []):
            for f in src.glob("**/*"):
                if f.is_file() and fnmatch(f.relative_to(src).as_posix(), pattern):
                    (dest / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest / f.relative_to(src))
    assert (site / "app" / "run" / "templates" / rep.TEMPLATE).is_file(), \
        f"pyproject.toml's package data does not ship app/run/templates/{rep.TEMPLATE}"
    code = ("import app.run.report as r, sys; t = r.page_template(); print(r.__file__); print(t.filename); "
            "print(r.render_page('<t>', [{'kind': 'para', 'text': '<p>', 'css': ''}]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    module, template, page = res.stdout.split("\n", 2)
    assert Path(module).is_relative_to(site) and Path(template).is_relative_to(site), (module, template)
    assert "<title>&lt;t&gt;</title>" in page and "<p>&lt;p&gt;</p>" in page
