"""Shared fixtures. ``shared_dir`` is ``../shared`` beside the repository (CI puts it there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENET_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared, skipping the calling test (with the reason) when absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared material {p} not present (CI provides ../shared beside the repository)")
    return p


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO
