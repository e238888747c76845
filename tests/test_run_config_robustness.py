"""`genet run` config reader against hostile input: every bad file is one ConfigError line naming the file (never a
traceback), NaN/inf and out-of-range numbers are refused, names and strings with control characters are refused.
Regression tests of issue 25 item 9, and Hypothesis fuzzing over bytes and over near-valid configs."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import hypothesis_examples
from foundation.config import thaw
from foundation.errors import BadInputError
from app.run import schema

MINIMAL = """
[traces.t]
gen = "cc"
n = 2
[cc]
[cc.simulate]
traces = ["t"]
"""


def load_bytes(tmp_path, data: bytes, name: str = "c.toml"):
    p = tmp_path / name
    p.write_bytes(data)
    return p, schema.load(p)


def refused(tmp_path, text: str | bytes, *needles: str) -> str:
    data = text.encode() if isinstance(text, str) else text
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    with pytest.raises(schema.ConfigError) as info:
        schema.load(path)
    msg = str(info.value)
    assert isinstance(info.value, BadInputError)
    assert "\n" not in msg and str(path) in msg, msg
    for n in needles:  # (not in the file's name: the test's folder is named after the test)
        assert n in msg.replace(str(path), ""), (n, msg)
    return msg


# ------------------------------------------------------------------ the file itself
def test_non_utf8_file_is_one_line_naming_the_file(tmp_path):
    refused(tmp_path, MINIMAL.encode() + b"# caf\xe9\n", "not UTF-8", "0xe9", "line 8")


@pytest.mark.parametrize("depth", [40, 3000])
def test_deeply_nested_toml_is_refused(tmp_path, depth):
    refused(tmp_path, MINIMAL + "[cc.emulate]\nextra_args = " + "[" * depth + "]" * depth + "\n",
            "tables or arrays nested")
    refused(tmp_path, MINIMAL + "x = " + "{a = " * depth + "1" + "}" * depth + "\n",
            "tables or arrays nested")


def test_integer_past_the_digit_limit_is_refused(tmp_path):
    refused(tmp_path, MINIMAL + "[run]\nseed = " + "9" * 5000 + "\n", "not valid TOML")


def test_oversized_and_unreadable_files(tmp_path):
    refused(tmp_path, MINIMAL + "#" * (1 << 20) + "\n", "larger than 1 MiB")
    with pytest.raises(schema.ConfigError, match="is a directory"):
        schema.load(tmp_path)
    with pytest.raises(schema.ConfigError, match="no such file"):
        schema.load(tmp_path / "absent.toml")


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize("table, key, value", [
    ("cc.emulate", "delay_ms", "nan"),
    ("cc.emulate", "delay_ms", "-nan"),
    ("cc.emulate", "delay_ms", "inf"),
    ("cc.simulate", "delay_ms", "+inf"),
    ("cc.emulate", "duration_s", "inf"),
    ("cc.emulate", "duration_s", "nan"),
    ("cc.deploy", "duration_s", "inf"),
    ("cc.deploy", "timeout_s", "nan"),
    ("cc.deploy", "timeout_s", "1e400"),   # TOML reads this as inf
])
def test_nan_and_inf_fail_every_numeric_check(tmp_path, table, key, value):
    head = "" if table == "cc.simulate" else f"[{table}]\n"  # MINIMAL ends in [cc.simulate]
    refused(tmp_path, MINIMAL + f"{head}{key} = {value}\n", f"[{table}] {key}", "expected a number")


@pytest.mark.parametrize("text, needles", [
    ("[cc.policies.p]\nmethod = 'udr'\nreal_prob = 5.0\n", ["[cc.policies.p] real_prob", "<= 1", "got 5.0"]),
    ("[cc.policies.p]\nmethod = 'udr'\nreal_prob = -0.1\n", ["real_prob", ">= 0"]),
    ("[traces.u]\ngen = 'cc'\nn = 100000000000000000000000\n", ["[traces.u] n", "<= 100000"]),
    ("[traces.u]\ngen = 'cc'\nn = 1e23\n", ["[traces.u] n", "an integer"]),
    ("[run]\nseed = 4294967296\n", ["[run] seed", "<= 4294967295"]),
    ("[cc.policies.p]\nmethod = 'udr'\nsteps = 1000000000000\n", ["[cc.policies.p] steps", "<= 1000000000"]),
    ("[cc.emulate]\nduration_s = 1e9\n", ["[cc.emulate] duration_s", "<= 3600"]),
    ("[cc.emulate]\ndelay_ms = " + "9" * 400 + "\n", ["[cc.emulate] delay_ms", "<= 10000"]),  # no OverflowError
    ("[cc.emulate]\njobs = 100000\n", ["[cc.emulate] jobs", "<= 64"]),
    ("[cc.deploy]\nrepetitions = 5000\n", ["[cc.deploy] repetitions", "<= 1000"]),
    ("[deploy]\ntestbed_hosts = 99\n", ["[deploy] testbed_hosts", "<= 64"]),
])
def test_numbers_have_maximums(tmp_path, text, needles):
    refused(tmp_path, MINIMAL + text, *needles)


@pytest.mark.parametrize("rate", ["0", "1.2.3", "99999", "."])
def test_const_baselines_need_a_rate_in_range(tmp_path, rate):
    refused(tmp_path, MINIMAL.replace("[cc]\n", f"[cc]\nbaselines = ['bbr', 'const:{rate}']\n"),
            "[cc] baselines", f"const:{rate}", "rate > 0")


def test_numbers_at_their_bounds_are_accepted(tmp_path):
    text = (MINIMAL.replace("[cc]\n", "[cc]\nbaselines = ['bbr', 'const:12.5']\n")
            + "[cc.emulate]\ndelay_ms = 0\nduration_s = 3600\n[cc.policies.p]\nmethod = 'udr'\nreal_prob = 1\n"
              "[run]\nseed = 4294967295\n")
    _, (cfg, _) = load_bytes(tmp_path, text.encode())
    assert cfg.cc.emulate.delay_ms == 0.0 and cfg.cc.emulate.duration_s == 3600.0
    assert cfg.cc.policies["p"].real_prob == 1.0 and isinstance(cfg.cc.policies["p"].real_prob, float)


def test_dry_run_with_infinite_duration_is_one_line(tmp_path, capsys):
    from app.cli import main
    p = tmp_path / "c.toml"
    p.write_text(MINIMAL + "[cc.emulate]\ntraces = ['t']\nduration_s = inf\ndelay_ms = nan\n")
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(p) in err and "[cc.emulate]" in err, err


# ------------------------------------------------------------------ names and strings
@pytest.mark.parametrize("text, where", [
    ('[run]\nname = "run\\n"\n', "[run] name"),
    ('[traces."t2\\n"]\ngen = "cc"\n', "[traces]"),
    ('[cc.policies."p\\n"]\nmethod = "udr"\n', "[cc.policies]"),
    ('[cc.policies."p\\tq"]\nmethod = "udr"\n', "[cc.policies]"),
    ('[traces."' + "x" * 64 + '"]\ngen = "cc"\n', "[traces]"),     # a folder name: at most 63 characters
    ('[traces.u]\nfrom = "t\\n"\n', "[traces.u] from"),
    ('[cc.deploy]\npaths = ["p1\\n"]\n', "[cc.deploy] paths"),
    ('[cc.emulate]\ntraces = ["t\\u0000"]\n', "[cc.emulate] traces"),
    ('[cc.emulate]\nextra_args = ["--x", "a\\u001bb"]\n', "[cc.emulate] extra_args"),
    ('[cc.deploy]\ncampaign = "c.toml\\n"\n', "[cc.deploy] campaign"),
    ('[report]\ntitle = "a\\u2028b"\n', "[report] title"),
])
def test_names_and_strings_with_control_characters_are_refused(tmp_path, text, where):
    msg = refused(tmp_path, MINIMAL + text, where)
    assert "\n" not in msg and "\t" not in msg and "\x00" not in msg


def test_baseline_with_a_trailing_newline_is_refused(tmp_path):
    refused(tmp_path, MINIMAL.replace("[cc]\n", '[cc]\nbaselines = ["bbr\\n"]\n'), "[cc] baselines")


def test_path_values_that_cannot_be_looked_up_are_one_line(tmp_path):
    refused(tmp_path, MINIMAL + '[cc.policies.p]\nuse = "~no_such_user_genet/m.onnx"\n', "[cc.policies.p] use")
    refused(tmp_path, MINIMAL + '[cc.policies.p]\nuse = "' + "a" * 5000 + '.onnx"\n', "[cc.policies.p] use")


# ------------------------------------------------------------------ fuzzing
def _outcome(path, data: bytes) -> schema.RunConfig | None:
    """Load ``data`` from ``path``: the config, or None after a proper ConfigError (anything else fails the test)."""
    path.write_bytes(data)
    try:
        cfg, _ = schema.load(path)
    except schema.ConfigError as exc:
        msg = str(exc)
        assert "\n" not in msg and "\r" not in msg, msg
        assert msg.startswith(str(path)), msg
        return None
    _check_accepted(cfg)
    return cfg


def _check_accepted(node) -> None:
    """What validation lets through: finite numbers, strings without control characters."""
    stack = [thaw(node)]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float):
            assert math.isfinite(v), v
        elif isinstance(v, str):
            assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", v), v


@settings(max_examples=hypothesis_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=600),
                      st.binary(max_size=200).map(lambda b: MINIMAL.encode() + b),
                      st.binary(max_size=200).map(lambda b: b + MINIMAL.encode())))
def test_fuzz_bytes_never_traceback(tmp_path, data):
    _outcome(tmp_path / "fuzz.toml", data)


TOML_VALUES = st.sampled_from([
    "nan", "-nan", "inf", "-inf", "+inf", "1e400", "-1e400", "0", "-1", "1", "0.5", "1.0", "5.0", "3600", "3601",
    "4294967296", "9" * 30, "9" * 400, "-" + "9" * 30, "0x7fffffffffffffff", "true", "false", '""', '"x"',
    '"run\\n"', '"t"', '"t\\u0000"', '"bbr"', '"const:5"', '"const:0"', '"const:nan"', '"const:1e999"',
    '"~nobody_genet/x"', '"' + "a" * 300 + '"', "[]", '["t"]', '["t\\n"]', "[[[]]]", "[1, 2]", '["bbr", 3]',
    "2", "10", "20.0", "'udr'", "'netns'", "{}", "{a = 1}", '{gen = "cc"}', "1979-05-27", "12:00:00",
    "[" * 50 + "]" * 50, '"\\u2028"', "'\\\\'",
])
TABLES = ["cc.emulate", "cc.simulate", "cc.deploy", "cc.policies.p", "traces.t", "traces.u", "run", "deploy", "cc",
          "abr", "report", 'traces."a\\nb"', "cc.policies.bbr", "traces.t.x"]


def _keys(table: str) -> list[str]:
    """The schema's keys of ``table`` (none for a table the schema does not know)."""
    node = schema.SCHEMA
    for part in table.split("."):
        if isinstance(node, schema.Table) and node.named:
            node = schema.Table(node.keys, node.help)  # part names a sub-table
            continue
        node = node.keys.get(part) if isinstance(node, schema.Table) else None
    return [k for k, v in node.keys.items() if isinstance(v, schema.Key)] if isinstance(node, schema.Table) else []


@st.composite
def near_valid(draw) -> bytes:
    """A valid config with a few keys (known and unknown, in known and odd tables) set to awkward values, then
    perhaps a line dropped or doubled or a byte changed."""
    tables = {"traces.t": {"gen": '"cc"', "n": "2"}, "cc": {}, "cc.simulate": {"traces": '["t"]'}}
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(TABLES))
        keys = _keys(name) + ["nope"]
        tables.setdefault(name, {})[draw(st.sampled_from(keys))] = draw(TOML_VALUES)
    if "cc.policies.p" in tables and draw(st.booleans()):
        tables["cc.policies.p"].setdefault("method", "'udr'")
    lines = [line for name, keys in tables.items()
             for line in [f"[{name}]"] + [f"{k} = {v}" for k, v in keys.items()]]
    edit = draw(st.sampled_from(["none", "none", "drop", "double", "byte"]))
    if edit == "drop":
        del lines[draw(st.integers(0, len(lines) - 1))]
    elif edit == "double":
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
    data = bytearray("\n".join(lines).encode() + b"\n")
    if edit == "byte":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=hypothesis_examples(400), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=near_valid())
def test_fuzz_near_valid_configs_never_traceback(tmp_path, data):
    _outcome(tmp_path / "fuzz.toml", data)
