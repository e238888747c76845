"""Agent checkpoints of the training use cases: one torch-saved dict per file.

``save_checkpoint`` writes atomically (a crash never leaves half a
checkpoint); ``load_checkpoint`` checks the file's ``format`` tag and says
what the file is when it is another use case's checkpoint.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import io
from pathlib import Path

import torch

from foundation.atomic import atomic_write_bytes


def save_checkpoint(blob: dict, path: str | Path) -> None:
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def _read_blob(path: Path, label: str):
    """What ``torch.load`` reads from ``path``; FileNotFoundError / a one-line BadInputError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{label} checkpoint {path} does not exist")
    try:
        return torch.load(path, weights_only=False)
    except Exception as exc:  # torch raises several types for a bad file
        raise BadInputError(f"{path}: not a readable {label} checkpoint ({exc})") from None


def load_checkpoint(path: str | Path, expected_format: str, label: str) -> dict:
    """Load ``path``; raise FileNotFoundError / ValueError naming the file and what it holds."""
    path = Path(path)
    blob = _read_blob(path, label)
    fmt = blob.get("format") if isinstance(blob, dict) else None
    if fmt != expected_format:
        other = blob.get("use_case") if isinstance(blob, dict) else None
        hint = f"; it is a {other!r} checkpoint" if other else ""
        article = "an" if label[:1].upper() in "AEIOU" else "a"
        raise BadInputError(f"{path}: not {article} {label} agent checkpoint (format {fmt!r}, expected "
                         f"{expected_format!r}{hint})")
    return blob


def network_weights(path: str | Path, formats: tuple[str, ...], label: str) -> dict:
    """The network weights (``net``) of a checkpoint whose format is one of ``formats`` (any agent of a use case:
    PPO, A3C, BC, DAgger), for ``--init-from``; a one-line error naming the file when it is none."""
    path = Path(path)
    blob = _read_blob(path, label)
    fmt = blob.get("format") if isinstance(blob, dict) else None
    if fmt not in formats or not isinstance(blob.get("net"), dict):
        raise BadInputError(f"{path}: not {'an' if label[:1].upper() in 'AEIOU' else 'a'} {label} agent checkpoint "
                            f"(format {fmt!r}, expected one of {', '.join(formats)})")
    return blob["net"]

