"""How the study and the shipping run a ``genet`` command (a subprocess, as a user types it) and read its result.

Standard library only.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from foundation.errors import GenetRuntimeError
from foundation.runmeta import PROJECT_ROOT


def genet_executable() -> str:
    """The ``genet`` entry point beside this interpreter (the virtual environment's)."""
    return str(Path(sys.executable).parent / "genet")


def relative_to_root(path: str | Path, root: Path = PROJECT_ROOT) -> Path:
    """``path`` relative to ``root`` (where the commands run), so that the commands recorded in metadata stay
    portable (``../shared/...``)."""
    return Path(os.path.relpath(Path(path).resolve(), root))


def sh(cmd: list[str], log: Path | None = None, cwd: Path = PROJECT_ROOT) -> str:
    """Run a genet command in ``cwd``; append the command and its output to ``log``; raise
    :class:`GenetRuntimeError` with the end of its stderr on failure. Returns its stdout."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if log is not None:
        with open(log, "a") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise GenetRuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


#: The columns of an LB ``summary.csv`` the study reports: the return / 1e9 (as Genet's LB README) and the mean
#: job completion time; each is one "set" of an LB record (the second as ``<set> completion (s)``).
LB_COLUMNS = (("", "reward_1e9"), (" completion (s)", "mean_completion_time_s"))


def read_summary(use_case: str, out: Path, column: str | None = None) -> dict[str, float]:
    """{policy label: mean reward} of a ``genet eval`` output directory, in --policy order; the first (the
    model) is labelled 'model'. ABR: ``results.json``'s summary QoE; CC: ``summary.csv``'s reward; LB:
    ``summary.csv``'s ``column`` (default ``reward_1e9``, the episode return / 1e9)."""
    if use_case == "abr":
        pairs = [(s["policy"], float(s["qoe"])) for s in json.loads((out / "results.json").read_text())["summary"]]
    else:
        column = column or ("reward_1e9" if use_case == "lb" else "reward")
        with open(out / "summary.csv") as fh:
            pairs = [(s["policy"], float(s[column])) for s in csv.DictReader(fh)]
    return {("model" if i == 0 else k): v for i, (k, v) in enumerate(pairs)}


def read_per_trace(use_case: str, out: Path, column: str | None = None) -> dict[str, dict[str, float]]:
    """{policy label: {trace: value}} of a ``genet eval`` output directory's ``results.csv`` (ABR: ``qoe``; CC:
    ``reward``; LB: ``column``, default ``reward_1e9``), labelled as :func:`read_summary` (the first policy in
    --policy order is 'model'). What the study's paired tests compare trace by trace."""
    value = {"abr": "qoe", "cc": "reward"}.get(use_case) or column or "reward_1e9"
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    trace_key = "trace" if rows and "trace" in rows[0] else next(
        (k for k in ("episode", "seed") if rows and k in rows[0]), "trace")
    labels = list(dict.fromkeys(r["policy"] for r in rows))
    per: dict[str, dict[str, float]] = {}
    for r in rows:
        label = "model" if r["policy"] == labels[0] else r["policy"]
        per.setdefault(label, {})[r[trace_key]] = float(r[value])
    return per


def training_host(run: Path) -> dict:
    """The machine run ``run`` trained on, from its ``run-metadata.json``: hostname, CPU model and count (None
    each where the run kept no metadata: the machine that evaluates it need not be the one that trained it). CC
    training does not repeat across CPU models (FINDINGS.md), so a study's records say where they ran."""
    try:
        host = json.loads((run / "run-metadata.json").read_text())["host"]
    except (OSError, ValueError, KeyError, TypeError):
        host = {}
    return {k: host.get(k) if isinstance(host, dict) else None for k in ("hostname", "cpu_model", "cpu_count")}
