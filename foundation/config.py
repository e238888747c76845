"""The one config validator of genet-testbed: TOML files checked against declared schemas, with one error type.

Every config file (a ``genet run`` config, ``app/run/schema.py``; an inventory, a campaign and a testbed paths
file, ``deploy/config.py``) is declared here as a :class:`Table` of :class:`Key` s — type, default, unit, minimum
and maximum, allowed values or pattern, and the help text — and checked by :func:`fill`, which returns the file's
data with every default filled in. The callers then check what a schema cannot say (cross-references between
tables, files that must exist) and build their frozen dataclasses from the checked dicts. The same declarations
render the reference pages (:func:`markdown`: ``docs/run-config.md``, ``docs/deploy-config.md``).

Every error is a :class:`ConfigError` (a :class:`foundation.errors.BadInputError`): one line naming the file, the
key (``FILE: [cc.emulate] delay_ms``; ``FILE: use_case`` at the top level) and what is allowed. Numbers are finite
and within their bounds (before any conversion: a huge integer does not overflow); every string is one line of
printable text (:func:`foundation.tomlfile.control_char`); files are read by :func:`foundation.tomlfile.read_toml` (size,
nesting, encoding and digit limits).

Standard library only; imports nothing of genet but :mod:`foundation.errors` and :mod:`foundation.tomlfile`.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from foundation.errors import BadInputError
from foundation.tomlfile import control_char, read_toml, show

# Limits shared by several config files (one definition each; docs/security.md lists them)
NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"  # names of runs, trace sets, policies, hosts, paths, campaigns, videos
NAME_HELP = "a name of 1-63 letters, digits, '_', '.', '-', starting with a letter or digit"
SEED_MAX = 2**32 - 1       # numpy's legacy seeding takes 32-bit seeds
RUN_MAX_S = 3600.0         # one emulated or deployed run
CHUNKS_MAX = 10_000        # video chunks of one session
RATE_MAX_MBPS = 10_000.0   # const:MBPS schemes and baselines, constant testbed path rates
DELAY_MAX_MS = 10_000.0    # one-way delay of an emulated link or a testbed path

KINDS = ("bool", "int", "float", "str", "path", "list[str]", "float|path")


class ConfigError(BadInputError):
    """A config file (run config, inventory, campaign, testbed paths) is malformed: the message names the file,
    the key and what is allowed."""


@dataclass(frozen=True)
class Key:
    """One config key.

    kind: ``bool``, ``int``, ``float``, ``str``, ``path`` (a file or folder, as a string), ``list[str]``, or
        ``float|path`` (a number or a path)
    default: the value when the key is not given (``None``: "not given", the help says what that means)
    required: the key must be given (``default`` is unused)
    unit: shown with the expected value and in the reference page (``ms``, ``s``, ``count``, ``0-1``)
    allowed: the only values a string (or each item of a list) may take
    separator: a string holding several values separated by this, each of them in ``allowed``
    minimum, maximum: bounds of a number (inclusive; ``min_exclusive``: the value must be above ``minimum``)
    pattern: regex the whole of a string (or of each item of a list) must match; ``pattern_help`` says what that
        is (``a login name (letters, digits, _ . -)``; not given: ``help``)
    """
    kind: str
    default: Any
    help: str
    unit: str = ""
    allowed: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str = ""
    required: bool = False
    min_exclusive: bool = False
    separator: str = ""
    pattern_help: str = ""

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


@dataclass(frozen=True)
class Table:
    """A table of known keys (:class:`Key` s and sub-tables).

    named: a table of user-named sub-tables (``[hosts.NAME]``), each with these keys; names match
        ``name_pattern`` (``name_help`` says what that is)
    optional: a sub-table left out of the file is ``None`` (not a table of defaults)
    partial: keys left out stay out of the result (their defaults are filled in by the caller, e.g. inherited
        from another table)
    """
    keys: dict
    help: str
    named: bool = False
    optional: bool = False
    partial: bool = False
    name_pattern: str = NAME_RE
    name_help: str = NAME_HELP


# ---------------------------------------------------------------------------------------------------
# Errors

def at(source: str | os.PathLike, table: str, key: str = "") -> str:
    """Where an error is: ``FILE: [table] key``, ``FILE: key`` (top level), ``FILE: [table]``."""
    if not table:
        return f"{source}: {key}" if key else f"{source}: the top level"
    return f"{source}: [{table}] {key}" if key else f"{source}: [{table}]"


_NOTHING = object()


def bad_value(source: str | os.PathLike, table: str, key: str, expected: str, got: Any = _NOTHING) -> ConfigError:
    """``FILE: [table] key: expected EXPECTED, got VALUE`` (for the checks a schema cannot declare)."""
    extra = "" if got is _NOTHING else f", got {show(got)}"
    return ConfigError(f"{at(source, table, key)}: expected {expected}{extra}")


# ---------------------------------------------------------------------------------------------------
# Validation

def _is_number(key: Key, value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and key.kind in ("int", "float",
                                                                                           "float|path")


def _kind_ok(key: Key, value: Any) -> bool:
    if key.kind == "bool":
        return isinstance(value, bool)
    if key.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if key.kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if key.kind in ("str", "path"):
        return isinstance(value, str)
    if key.kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if key.kind == "float|path":
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    raise AssertionError(key.kind)


def _bound(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def range_text(key: Key) -> str:
    """``>= 1``, ``<= 10``, ``>= 0 and <= 1``, ``> 0 and <= 600`` (empty without bounds)."""
    low = ">" if key.min_exclusive else ">="
    parts = ([f"{low} {_bound(key.minimum)}"] if key.minimum is not None else []) + \
            ([f"<= {_bound(key.maximum)}"] if key.maximum is not None else [])
    return " and ".join(parts)


def expected_text(key: Key) -> str:
    """What a key takes, as an error says it: ``an integer >= 1 and <= 64 (count)``, ``a string; allowed: ...``."""
    what = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
            "path": "a path (string)", "list[str]": "a list of strings",
            "float|path": "a number or a path (string)"}[key.kind]
    if range_text(key):
        what += " " + range_text(key)
    if key.unit:
        what += f" ({key.unit})"
    if key.allowed:
        what += "; allowed: " + ", ".join(repr(a) for a in key.allowed)
    return what


def check_value(key: Key, value: Any, where: str) -> Any:
    """``value`` checked against ``key`` (``where``: the ``FILE: [table] key`` of the messages); a ``float`` key's
    number is returned as a float."""
    if not _kind_ok(key, value):
        raise ConfigError(f"{where}: expected {expected_text(key)}, got {show(value)}")
    if _is_number(key, value):
        if isinstance(value, float) and not math.isfinite(value):  # nan fails every comparison: refuse it first
            raise ConfigError(f"{where}: expected {expected_text(key)}, got {show(value)} (numbers are finite)")
        if (key.minimum is not None and (value <= key.minimum if key.min_exclusive else value < key.minimum)) or \
                (key.maximum is not None and value > key.maximum):  # (compared before float(): no overflow)
            raise ConfigError(f"{where}: expected {expected_text(key)}, got {show(value)}")
        if key.kind in ("float", "float|path"):
            value = float(value)  # within its bounds: no overflow
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    for item in items:
        bad = control_char(item)
        if bad is not None:
            raise ConfigError(f"{where}: {show(item)} contains the control character {bad!r}; names, paths and "
                              f"words are one line of printable text")
    if key.allowed:
        for item in items:
            for part in (item.split(key.separator) if key.separator and item else [item]):
                if part not in key.allowed:
                    raise ConfigError(f"{where}: {show(part)} is not allowed; allowed: "
                                      + ", ".join(repr(a) for a in key.allowed))
    if key.pattern:
        for item in items:
            if not re.fullmatch(key.pattern, item):
                raise ConfigError(f"{where}: expected {key.pattern_help or key.help}, got {show(item)}")
    return value


def fill(table: Table, data: Any, source: str | os.PathLike, where: str = "") -> dict:
    """``data`` (parsed TOML) checked against ``table``, with defaults filled in (a new dict). ``source`` names
    the file in errors; ``where`` is the table's dotted name (``""``: the top level)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{at(source, where)} must be a table, got {show(data)}")
    if table.named:
        out = {}
        for name, sub in data.items():
            if not re.fullmatch(table.name_pattern, name):
                raise ConfigError(f"{at(source, where, show(name))}: expected {table.name_help}")
            out[name] = fill(replace(table, named=False), sub, source, f"{where}.{name}" if where else name)
        return out
    unknown = sorted(set(data) - set(table.keys))
    if unknown:
        raise ConfigError(f"{at(source, where)}: unknown key {show(unknown[0])}; allowed: {', '.join(table.keys)}")
    out = {}
    for name, key in table.keys.items():
        if isinstance(key, Table):
            sub_where = f"{where}.{name}" if where else name
            if name in data:
                out[name] = fill(key, data[name], source, sub_where)
            elif table.partial:
                continue
            elif key.named:
                out[name] = {}
            elif key.optional:
                out[name] = None
            else:
                out[name] = fill(key, {}, source, sub_where)
            continue
        if name not in data:
            if key.required:
                raise ConfigError(f"{at(source, where, name)}: missing; expected {expected_text(key)}: {key.help}")
            if not table.partial:
                out[name] = copy.deepcopy(key.default)
            continue
        out[name] = check_value(key, data[name], at(source, where, name))
    return out


def read(path: str | os.PathLike) -> tuple[dict, str]:
    """The TOML file ``path`` parsed, and its text; every problem with the file is a :class:`ConfigError`
    (:func:`foundation.tomlfile.read_toml`)."""
    return read_toml(Path(path), ConfigError)


def load(path: str | os.PathLike, table: Table) -> tuple[dict, str]:
    """Read ``path`` and :func:`fill` it against ``table``: (checked data with defaults, the file's text)."""
    data, text = read(path)
    return fill(table, data, str(path)), text


# ---------------------------------------------------------------------------------------------------
# Reference pages

def default_text(key: Key) -> str:
    if key.required:
        return "required"
    if key.default is None or key.default == "" or key.default == []:
        return "—"
    if isinstance(key.default, bool):
        return "true" if key.default else "false"
    if isinstance(key.default, str):
        return f'"{key.default}"'
    if isinstance(key.default, list):
        return "[" + ", ".join(f'"{v}"' for v in key.default) + "]"
    return f"{key.default:g}" if isinstance(key.default, float) else str(key.default)


def markdown(table: Table, where: str = "", level: int = 2) -> list[str]:
    """Reference-page lines of ``table``: a heading per (sub-)table (``level`` #s; none for the top level), its
    help, and a row per key (type, unit, default, allowed values or range, meaning)."""
    lines: list[str] = []
    title = f"{where}.NAME" if table.named else where
    if where:
        lines.extend([f"{'#' * level} `[{title}]`", "", table.help + (f" NAME: {table.name_help}." if table.named
                                                                          else ""), ""])
    rows = [(n, k) for n, k in table.keys.items() if isinstance(k, Key)]
    if rows:
        lines.extend(["| key | type | unit | default | allowed | meaning |", "|---|---|---|---|---|---|"])
        for n, k in rows:
            allowed = ", ".join(f"`{a}`" if a else '`""`' for a in k.allowed) or \
                (range_text(k).replace(" and ", ", ") if k.kind in ("int", "float", "float|path") else "") or \
                k.pattern_help
            lines.append(f"| `{n}` | {k.kind.replace('|', ' or ')} | {k.unit or '—'} | {default_text(k)} | "
                         f"{allowed or '—'} | {k.help} |")
        lines.append("")
    for n, k in table.keys.items():
        if isinstance(k, Table):
            lines.extend(markdown(k, f"{title}.{n}" if title else n, level))
    return lines
