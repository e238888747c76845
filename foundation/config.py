"""The one config validator of genet-testbed: TOML files checked against declared schemas, with one error type.

Every config file (a ``genet run`` config, ``app/run/schema.py``; an inventory, a campaign and a testbed paths
file, ``deploy/config.py``) is declared here as a :class:`Table` of :class:`Key` s — type, default, unit, minimum
and maximum, allowed values or pattern, and the help text — and checked by :func:`fill`, which returns the file's
data with every default filled in. The callers then check what a schema cannot say (cross-references between
tables, files that must exist) and build their frozen dataclasses from the checked dicts — by hand
(``deploy/config.py``) or with :func:`freeze`, which makes them from the declaration itself: one frozen dataclass
per :class:`Table` (:func:`config_class`), its docstring the table's help, its fields the keys (units stay in the
key names: ``delay_ms``); :func:`thaw` is the way back (``app/run/schema.py``). The same declarations render the
reference pages (:func:`markdown`: ``docs/run-config.md``, ``docs/deploy-config.md``).

Every error is a :class:`ConfigError` (a :class:`foundation.errors.BadInputError`): one line naming the file, the
key (``FILE: [cc.emulate] delay_ms``; ``FILE: use_case`` at the top level) and what is allowed. Numbers are finite
and within their bounds (before any conversion: a huge integer does not overflow); every string is one line of
printable text (:func:`foundation.tomlfile.control_char`); files are read by :func:`foundation.tomlfile.read_toml` (size,
nesting, encoding and digit limits).

Standard library only; imports nothing of genet but :mod:`foundation.errors` and :mod:`foundation.tomlfile`.
"""

from __future__ import annotations

import copy
import keyword
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Optional

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
# Typed configs: frozen dataclasses made from the declarations

_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "path": str, "list[str]": tuple[str, ...],
          "float|path": float | str}
_CLASSES: dict[int, tuple[Table, type]] = {}  # id(table) -> (table, its class): the table kept, so no id is reused


def field_name(key: str) -> str:
    """The attribute a key becomes: the key itself, with a trailing underscore when it is a Python keyword
    (``[traces.NAME] from`` is ``.from_``)."""
    return key + "_" if keyword.iskeyword(key) else key


def _camel(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", key))


def config_class(table: Table, name: str = "Config") -> type:
    """The frozen dataclass of ``table``: one field per key (:func:`field_name`), in the declared order; a
    sub-table's field holds an instance of the sub-table's class (named ``name`` + the key in CamelCase:
    ``RunConfigAbrSimulate``), ``None`` for an optional table left out, or a read-only mapping NAME -> instance
    for a ``named`` table. The docstring is the table's help, then one line per key (type, unit, meaning).

    Made once per :class:`Table` object and cached (a later call with another ``name`` gets the same class). For
    a ``named`` table this is the class of one of its entries. Instances are immutable (assigning raises
    :class:`dataclasses.FrozenInstanceError`) and compare by value; they are not picklable (the class is made at
    run time)."""
    return _make_class(table, name, "")


def _make_class(table: Table, name: str, where: str) -> type:
    cached = _CLASSES.get(id(table))
    if cached is not None:
        return cached[1]
    specs, doc = [], [table.help, ""]
    for key, item in table.keys.items():
        attr = field_name(key)
        assert attr.isidentifier() and attr not in {s[0] for s in specs}, (name, key)
        if isinstance(item, Table):
            sub_where = f"{where}.{key}" if where else key
            sub = _make_class(item, name + _camel(key), sub_where + (".NAME" if item.named else ""))
            kind: Any = Mapping[str, sub] if item.named else Optional[sub] if item.optional else sub
            what = (f"NAME -> the [{sub_where}.NAME] table" if item.named else
                    f"the [{sub_where}] table" + (" (None when left out)" if item.optional else ""))
            doc.append(f"{attr}: {what}, {sub.__name__}")
        else:
            kind = _TYPES[item.kind] if item.default is not None or item.required else Optional[_TYPES[item.kind]]
            unit = f", {item.unit}" if item.unit else ""
            doc.append(f"{attr} ({item.kind}{unit}): {item.help}")
        specs.append((attr, kind, field(metadata={"key": key})))
    cls = make_dataclass(name, specs, frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = "\n".join(doc)
    cls.__config_table__ = table
    _CLASSES[id(table)] = (table, cls)
    return cls


def _shape_error(source: str | os.PathLike, where: str, what: str) -> ConfigError:
    return ConfigError(f"{at(source, where)}: {what} (does not match the declared tables)")


def freeze(table: Table, data: Any, name: str = "Config", source: str | os.PathLike = "config",
           where: str = "", defaults: bool = False) -> Any:
    """``data`` as :func:`fill` returns it (or as :func:`thaw` wrote it, read back from JSON), as an instance of
    :func:`config_class` ``(table, name)``: lists become tuples, a ``named`` table a read-only mapping (name ->
    instance), an optional table left out ``None``; a ``partial`` table's keys left out are ``None``.

    Values are taken as they are (:func:`fill` checked them); what does not have the tables' shape (a key missing
    or unknown, a table that is not one) is a :class:`ConfigError` naming ``source`` and the table (``where``: the
    table's dotted name, ``""`` at the top level). ``defaults``: a key missing takes its declared default instead
    (a config saved by a version that did not have the key yet)."""
    cls = config_class(table, name)
    if table.named:
        if not isinstance(data, Mapping):
            raise _shape_error(source, where, f"expected a table of named tables, got {show(data)}")
        one = replace(table, named=False)
        return MappingProxyType({n: _freeze_one(cls, one, v, source, f"{where}.{n}" if where else n, defaults)
                                 for n, v in data.items()})
    return _freeze_one(cls, table, data, source, where, defaults)


def _freeze_one(cls: type, table: Table, data: Any, source: str | os.PathLike, where: str,
                defaults: bool = False) -> Any:
    if not isinstance(data, Mapping):
        raise _shape_error(source, where, f"expected a table, got {show(data)}")
    unknown = [k for k in data if k not in table.keys]
    if unknown:
        raise _shape_error(source, where, f"unknown key {show(unknown[0])}")
    values = {}
    for key, item in table.keys.items():
        sub_where = f"{where}.{key}" if where else key
        if key not in data:
            if defaults and not isinstance(item, Table) and not table.partial:
                value = tuple(item.default) if isinstance(item.default, list) else item.default
                values[field_name(key)] = value
                continue
            if not table.partial:
                raise _shape_error(source, where, f"key {show(key)} missing")
            value = None
        elif isinstance(item, Table):
            value = None if data[key] is None and item.optional else \
                freeze(item, data[key], source=source, where=sub_where, defaults=defaults)
        else:
            value = data[key]
            if isinstance(value, list):
                value = tuple(value)
        values[field_name(key)] = value
    return cls(**values)


def thaw(value: Any) -> Any:
    """The plain data of a frozen config (:func:`freeze`), or of any part of one: instances become dicts keyed by
    the declared keys (``from``, not ``from_``) in the declared order, mappings dicts, tuples lists — what
    :func:`fill` returned, so ``json.dumps(thaw(cfg))`` writes what ``json.dumps`` of the checked dict wrote. Any
    other value is returned as it is."""
    if hasattr(type(value), "__config_table__"):
        return {f.metadata["key"]: thaw(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


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
