"""``genet study run --publish`` / ``--restore``: the study's outputs into a folder kept with the code
(default ``models/study``), and back into a new study directory on another machine."""

from __future__ import annotations

import shutil
from pathlib import Path

from foundation.errors import BadInputError, GenetRuntimeError
from foundation.runmeta import PROJECT_ROOT

#: Where ``--publish`` and ``--restore`` go without a folder.
DEFAULT_PUBLISHED = PROJECT_ROOT / "models" / "study"
#: The per-run files published beside the table (small): a restore rebuilds the study from them.
PER_RUN = (("results", "*.json"), ("curves", "*.csv"))


def publish(study_dir: Path, plots: list[Path], dest: Path) -> None:
    """Copy ``results.md``, ``results.json``, the curve plots and the per-run records and curves
    (``results/``, ``curves/``) of ``study_dir`` to ``dest``. A folder that cannot be written is one error
    (:class:`GenetRuntimeError`); the study's own outputs stay where they are."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for f in [study_dir / "results.md", study_dir / "results.json", *plots]:
            shutil.copy2(f, dest / f.name)
        for sub, pattern in PER_RUN:
            files = sorted((study_dir / sub).glob(pattern))
            if files:
                (dest / sub).mkdir(exist_ok=True)
            for f in files:
                shutil.copy2(f, dest / sub / f.name)
    except OSError as exc:
        raise GenetRuntimeError(f"--publish {dest}: cannot write there ({exc.strerror}); "
                                f"the results are in {study_dir}") from None


def restore(src: Path, study_dir: Path) -> int:
    """Copy the per-run records and curves a :func:`publish` left in ``src`` (``results/*.json``,
    ``curves/*.csv``) into ``study_dir`` where it has none of its own: a new checkout rebuilds the table and
    plots, and a rerun skips the runs that have a record. Returns how many files it copied; a ``src`` that is
    not a folder is :class:`BadInputError`."""
    if not src.is_dir():
        raise BadInputError(f"--restore {src}: no such folder (a folder that `genet study run --publish` wrote)")
    copied = 0
    for sub, pattern in PER_RUN:
        for f in sorted((src / sub).glob(pattern)):
            if not (study_dir / sub / f.name).exists():
                (study_dir / sub).mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, study_dir / sub / f.name)
                copied += 1
    return copied
