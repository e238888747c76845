"""The one config validator (foundation/config.py): one ConfigError for every config file, the schema engine's checks
(types, bounds, exclusive bounds, allowed values, separators, patterns, required keys, partial and optional tables,
named tables), and its place at the bottom of the import graph."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from foundation import config
from foundation.config import ConfigError, Key, Table, fill
from foundation.errors import BadInputError

REPO = Path(__file__).resolve().parents[1]


def test_one_error_class_for_every_config_file():
    from deploy import config as deploy_config
    from app.run import schema
    assert schema.ConfigError is config.ConfigError is deploy_config.ConfigError
    assert issubclass(ConfigError, BadInputError)


def test_the_validator_imports_only_the_standard_library_and_the_foundation():
    tree = ast.parse((REPO / "foundation" / "config.py").read_text())
    imported = {a.name.split(".")[0] if isinstance(node, ast.Import) else node.module
                for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for a in (node.names if isinstance(node, ast.Import) else [node])}
    ours = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__"}
    assert ours == {"foundation.errors", "foundation.tomlfile"}, ours


SCHEMA = Table(help="test", keys={
    "n": Key("int", 3, "a count", unit="count", minimum=1, maximum=10),
    "rate": Key("float", 1.0, "a rate", unit="Mbit/s", minimum=0, min_exclusive=True, maximum=100),
    "mode": Key("str", "a", "a mode", allowed=("a", "b")),
    "modes": Key("str", "", "modes", allowed=("a", "b"), separator=","),
    "word": Key("str", "w", "a word", pattern=r"[a-z]+", pattern_help="lower-case letters"),
    "link": Key("float|path", 2.0, "a rate or a file", minimum=0, maximum=5),
    "need": Key("str", None, "must be given", required=True),
    "sub": Table(help="sub", keys={"x": Key("bool", False, "a flag")}),
    "opt": Table(help="optional", optional=True, keys={"y": Key("int", 0, "y")}),
    "part": Table(help="partial", partial=True, keys={"z": Key("int", 7, "z")}),
    "named": Table(help="named", named=True, keys={"v": Key("list[str]", [], "v")}),
})


def test_defaults_are_filled_and_numbers_converted():
    cfg = fill(SCHEMA, {"need": "x", "rate": 5, "link": 3, "named": {"a1": {}}}, "f.toml")
    assert cfg == {"n": 3, "rate": 5.0, "mode": "a", "modes": "", "word": "w", "link": 3.0, "need": "x",
                   "sub": {"x": False}, "opt": None, "part": {}, "named": {"a1": {"v": []}}}
    assert isinstance(cfg["rate"], float) and isinstance(cfg["link"], float)
    assert fill(SCHEMA, {"need": "x", "link": "trace.txt", "part": {"z": 1}, "opt": {}}, "f.toml")["part"] == {"z": 1}


@pytest.mark.parametrize("data, needles", [
    ({}, ["f.toml: need: missing", "must be given"]),
    ({"n": 0}, ["f.toml: n: expected an integer >= 1 and <= 10 (count), got 0"]),
    ({"n": True}, ["n: expected an integer", "got True"]),
    ({"n": 10**400}, ["n: expected an integer >= 1 and <= 10", "..."]),
    ({"rate": 0}, ["rate: expected a number > 0 and <= 100 (Mbit/s), got 0"]),
    ({"rate": float("nan")}, ["rate: expected a number", "got nan (numbers are finite)"]),
    ({"mode": "c"}, ["mode: 'c' is not allowed; allowed: 'a', 'b'"]),
    ({"modes": "a,c"}, ["modes: 'c' is not allowed; allowed: 'a', 'b'"]),
    ({"word": "W"}, ["word: expected lower-case letters, got 'W'"]),
    ({"word": "a\nb"}, ["word: 'a\\nb' contains the control character '\\n'"]),
    ({"link": -1}, ["link: expected a number or a path (string) >= 0 and <= 5, got -1"]),
    ({"link": [1]}, ["link: expected a number or a path"]),
    ({"sub": {"x": 1}}, ["f.toml: [sub] x: expected true or false, got 1"]),
    ({"sub": {"y": 1}}, ["f.toml: [sub]: unknown key 'y'; allowed: x"]),
    ({"sub": 3}, ["f.toml: [sub] must be a table, got 3"]),
    ({"nope": 1}, ["f.toml: the top level: unknown key 'nope'; allowed: n, rate, mode"]),
    ({"named": {"a b": {}}}, ["f.toml: [named] 'a b': expected a name of 1-63 letters"]),
    ({"named": {"a": {"v": ["x", 2]}}}, ["f.toml: [named.a] v: expected a list of strings"]),
])
def test_errors_are_one_line_naming_file_key_and_what_is_allowed(data, needles):
    data = {"need": "x", **data} if "need" not in data and data else data
    with pytest.raises(ConfigError) as info:
        fill(SCHEMA, data, "f.toml")
    msg = str(info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def test_reference_page_rows():
    page = "\n".join(config.markdown(SCHEMA))
    assert "| `need` | str | — | required | — | must be given |" in page
    assert "| `rate` | float | Mbit/s | 1 | > 0, <= 100 | a rate |" in page
    assert "| `link` | float or path | — | 2 | >= 0, <= 5 | a rate or a file |" in page
    assert "| `word` | str | — | \"w\" | lower-case letters | a word |" in page
    assert "## `[named.NAME]`" in page and "NAME: a name of 1-63" in page and "## `[sub]`" in page
