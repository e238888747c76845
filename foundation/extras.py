"""Optional parts of the install (pip extras) and the check a command makes before it needs one.

A runtime install (``pip install genet-testbed``, no extras) carries numpy, onnxruntime, flask and
tqdm: enough for the ``genet`` command line, trace tools, the emulator, ONNX policies, the sender and
the player. The rest comes with extras, as pyproject.toml defines them:

- ``sim``: the simulators and ``genet eval``, ``genet demo`` (numba, gymnasium; plus ``plots``);
- ``plots``: PNG figures (matplotlib; Pillow for the CDF figures): ``genet traces plot``, ``genet emulate link-stats --png``;
- ``train``: ``genet train``, ``genet export``, ``genet import-tf-checkpoint`` (torch, onnx,
  scikit-optimize; plus ``sim``);
- ``deploy``: runs on remote hosts over SSH (paramiko);
- ``all``: every one of them (what ``scripts/provision.sh`` installs, with ``test``).

``require("sim", "genet eval abr")`` raises :class:`foundation.errors.MissingExtraError` naming the extra
and the missing distributions when any distribution of that extra is not installed; the command line
prints it as one line. Which distributions make up an extra is read from the installed project's
metadata (so it is pyproject.toml's list, including extras that name other extras); nothing is
imported. Standard library only.
"""

from __future__ import annotations

import re
from functools import lru_cache

from foundation.errors import MissingExtraError

#: The distribution name of this project.
DISTRIBUTION = "genet-testbed"

_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _name_and_extras(req: str) -> tuple[str, tuple[str, ...]]:
    """``'genet-testbed[sim,plots] ; extra == "all"'`` -> ``("genet-testbed", ("sim", "plots"))``."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    if not m:
        return "", ()
    extras = tuple(e.strip() for e in (m.group(2) or "").split(",") if e.strip())
    return m.group(1), extras


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=None)
def extra_distributions(extra: str) -> tuple[str, ...] | None:
    """The distributions an extra installs, extras it names expanded (e.g. ``sim`` -> numba,
    gymnasium, matplotlib); None when the project's metadata is not installed (a bare source tree:
    nothing can be checked). An extra the project does not define raises ValueError (a bug)."""
    from importlib import metadata
    try:
        reqs = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    by_extra: dict[str, list[str]] = {}
    for req in reqs:
        marker = _EXTRA_MARKER.search(req)
        if marker:
            by_extra.setdefault(marker.group(1), []).append(req.split(";", 1)[0])
    if extra not in by_extra:
        raise ValueError(f"{DISTRIBUTION} defines no extra {extra!r} (it has: {', '.join(sorted(by_extra))})")
    out: list[str] = []
    seen: set[str] = set()

    def expand(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for req in by_extra.get(name, []):
            dist, sub = _name_and_extras(req)
            if _normalise(dist) == DISTRIBUTION:
                for s in sub:
                    expand(s)
            elif dist and dist not in out:
                out.append(dist)

    expand(extra)
    return tuple(out)


def missing_distributions(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed (``[]``: the extra is complete, or the
    project's metadata is not there to say)."""
    from importlib import metadata
    missing = []
    for dist in extra_distributions(extra) or ():
        try:
            metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            missing.append(dist)
    return missing


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every distribution of ``extra`` is installed.

    extra: the extra's name in pyproject.toml ("sim", "train", "plots", "deploy")
    what: the command or feature that needs it, for the message (e.g. "genet eval cc")
    """
    missing = missing_distributions(extra)
    if missing:
        raise MissingExtraError(extra, what, ", ".join(missing))


__all__ = ["require", "missing_distributions", "extra_distributions"]
