"""Deploy inputs and remote surprises (issue 25 items 9, 11, 12, 15): inventory / campaign / testbed-paths files
refuse NaN, inf, out-of-range numbers and control characters in one line naming file and key; the testbed writes
an inventory that always parses; a wrong remote `python` is reported with what the host said; a `~` work
directory is expanded once, on the host, for SFTP uploads and helper commands alike (real sshd, local testbed)."""

from __future__ import annotations

import os
import pwd
import shutil
import tomllib
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import hypothesis_examples
from deploy import testbed
from deploy.config import ConfigError, load_campaign, load_inventory

INV = """
[defaults]
user = "genet"
[hosts.h1]
address = "192.0.2.1"
[hosts.h2]
address = "192.0.2.2"
[paths.p1]
server = "h1"
client = "h2"
"""


def refused(path: Path, loader, *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        loader(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    for n in needles:  # (not in the file's name: the test's folder is named after the test)
        assert n in msg.replace(str(path), ""), (n, msg)
    return msg


# ------------------------------------------------------------------ item 9: the deploy files
@pytest.mark.parametrize("extra, key", [
    ("connect_timeout_s = inf", "[hosts.h2] connect_timeout_s"),
    ("connect_timeout_s = nan", "[hosts.h2] connect_timeout_s"),
    ("keepalive_s = 1e400", "[hosts.h2] keepalive_s"),        # TOML reads it as inf
    ("keepalive_s = 100000", "[hosts.h2] keepalive_s"),
    ('work_dir = "w\\u001b[2J"', "[hosts.h2] work_dir"),
    ('python = "python3\\u0000"', "[hosts.h2] python"),
    ('key_file = "id\\nx"', "[hosts.h2] key_file"),
])
def test_inventory_refuses_non_finite_out_of_range_and_control_characters(tmp_path, extra, key):
    f = tmp_path / "inv.toml"
    f.write_text(INV.replace('address = "192.0.2.2"', f'address = "192.0.2.2"\n{extra}'))
    refused(f, load_inventory, key)


def test_inventory_path_description_and_names_with_newlines(tmp_path):
    f = tmp_path / "inv.toml"
    f.write_text(INV + 'description = "line one\\nline two"\n')
    refused(f, load_inventory, "[paths.p1] description", "control character")
    f.write_text(INV.replace("[hosts.h2]", '[hosts."h2\\n"]'))
    refused(f, load_inventory, "[hosts] 'h2\\n'")  # the message quotes the name: still one line


@pytest.mark.parametrize("text, key, expected", [
    ('use_case = "cc"\nschemes = ["cubic"]\nduration_s = nan\n', "duration_s", ">= 1 and <= 3600 (s)"),
    ('use_case = "cc"\nschemes = ["cubic"]\nduration_s = ' + "9" * 400 + "\n", "duration_s", ">= 1 and <= 3600"),
    ('use_case = "cc"\nschemes = ["cubic"]\ntimeout_s = inf\n', "timeout_s", "finite"),
    ('use_case = "cc"\nschemes = ["cubic"]\ntimeout_s = 1e9\n', "timeout_s", ">= 1 and <= 86400 (s)"),
    ('use_case = "abr"\nschemes = ["bba"]\ntimeout_s = -5\n', "timeout_s", ">= 1 and <= 86400"),
    ('use_case = "abr"\nschemes = ["bba"]\ntimeout_s = nan\n', "timeout_s", "finite"),
    ('use_case = "cc"\nschemes = ["cubic"]\nseed = 1099511627776\n', "seed", ">= 0 and <= 4294967295"),
    # (an ABR campaign's default timeout is computed from chunks: a huge one was an OverflowError traceback)
    ('use_case = "abr"\nschemes = ["bba"]\nchunks = ' + "9" * 400 + "\n", "chunks", ">= 1 and <= 10000"),
    ('use_case = "cc"\nschemes = ["cubic"]\npaths = ["p1\\n"]\n', "paths", "control character"),
    ('use_case = "cc"\nschemes = ["cubic\\n"]\n', "schemes", "control character"),
    ('use_case = "cc"\nschemes = ["' + "m" * 5000 + '.onnx"]\n', "schemes[0]", "ONNX"),
    ('use_case = "cc"\nschemes = ["cubic"]\nx = ' + "[" * 3000 + "]" * 3000 + "\n", "", "arrays nested"),
])
def test_campaign_refuses_non_finite_out_of_range_and_control_characters(tmp_path, text, key, expected):
    f = tmp_path / "c.toml"
    f.write_text(text)
    msg = refused(f, load_campaign, key, expected)
    assert len(msg) < 400, msg


def test_testbed_paths_refuse_nan_and_a_description_with_a_newline(tmp_path):
    f = tmp_path / "paths.toml"
    base = '[paths.p1]\nserver = "h1"\nclient = "h2"\n'
    for extra, key in (("delay_ms = nan", "[paths.p1] delay_ms"), ("uplink = inf", "[paths.p1] uplink"),
                       ("downlink_loss = nan", "[paths.p1] downlink_loss"),
                       ('description = "a\\nb"', "[paths.p1] description")):
        f.write_text(base + extra + "\n")
        refused(f, lambda p: testbed.load_paths(p, ["h1", "h2"]), key)


VALUES = ["nan", "inf", "-inf", "1e400", "0", "-1", "5", "70000", "9" * 30, "9" * 400, '"x"', '""', '"a\\nb"',
          '"h1"', '"p1"', '"~/w"', '"w\\u0000"', "[]", '["p1"]', '["cubic"]', '["cubic\\n"]', "true", "{}",
          "[" * 40 + "]" * 40, '"' + "m" * 300 + '.onnx"', '"const:nan"', '"const:5"']
INV_KEYS = ["address", "port", "user", "key_file", "work_dir", "python", "connect_timeout_s", "keepalive_s",
            "server", "client", "server_address", "description", "nope"]
CAMPAIGN_KEYS = ["use_case", "schemes", "repetitions", "duration_s", "paths", "video", "chunks", "seed",
                 "timeout_s", "retry_limit", "port", "name", "nope"]


def _loads_or_one_line_error(path: Path, data: bytes, loader) -> None:
    path.write_bytes(data)
    try:
        loader(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)


@st.composite
def deploy_files(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["inventory", "campaign"]))
    lines = (INV if kind == "inventory" else 'use_case = "cc"\nschemes = ["cubic"]\n').splitlines()
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(INV_KEYS if kind == "inventory" else CAMPAIGN_KEYS))
        line = f"{key} = {draw(st.sampled_from(VALUES))}"
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, line)
    data = bytearray("\n".join(lines).encode() + b"\n")
    if draw(st.booleans()):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return kind, bytes(data)


@settings(max_examples=hypothesis_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(st.tuples(st.sampled_from(["inventory", "campaign"]), st.binary(max_size=400)), deploy_files()))
def test_fuzz_inventory_and_campaign_files_never_traceback(tmp_path, case):
    kind, data = case
    loader = load_inventory if kind == "inventory" else load_campaign
    _loads_or_one_line_error(tmp_path / f"{kind}.toml", data, loader)


# ------------------------------------------------------------------ item 12: the inventory the testbed writes
def test_testbed_inventory_always_parses_and_round_trips(tmp_path):
    out = tmp_path / 'bed "quoted" \\ dir'
    out.mkdir()
    desc = 'trace "x"\\y\nsecond line\ttab \u2028 \x7f end'
    plan = testbed.TestbedPlan(str(out), 1, ["h1", "h2"],
                               [asdict(testbed.TestbedPath("p1", "h1", "h2", 12.0, 12.0, 5.0, description=desc))])
    python = '/opt/py "3"\\bin/python3'
    testbed._write_inventory(plan, out, python)
    data = tomllib.loads((out / "inventory.toml").read_text())
    assert data["paths"]["p1"]["description"] == desc
    assert data["defaults"]["python"] == python
    assert data["hosts"]["h1"]["work_dir"] == str(out / "hosts" / "h1" / "work")


@settings(max_examples=hypothesis_examples(300), deadline=None)
@given(st.text())
def test_toml_string_round_trips_any_text(text):
    from foundation.tomlfile import toml_string  # the one TOML string writer (testbed inventory, `genet run` campaigns)
    assert tomllib.loads(f"x = {toml_string(text)}\n")["x"] == text


def test_testbed_up_refuses_a_description_it_could_not_hand_on(tmp_path):
    p = testbed.TestbedPath("p1", "h1", "h2", 12.0, 12.0, 5.0, description="one\ntwo")
    if os.geteuid() != 0 or not os.path.exists(testbed.SSHD):
        pytest.skip("testbed.up checks root and sshd first")
    try:
        with pytest.raises(testbed.BadInputError, match="description"):
            testbed.up(tmp_path, 2, [p])
        assert not (tmp_path / "inventory.toml").exists()
    finally:
        if (tmp_path / "testbed-plan.json").exists():  # (a build that brought one up: take it down)
            testbed.down(tmp_path)


# ------------------------------------------------------------------ items 11 and 15: real sshd (local testbed)
needs_testbed = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd"),
                                   reason="the SSH testbed needs root (network namespaces) and sshd")


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    out = tmp_path_factory.mktemp("testbed")
    inv_file = testbed.up(out, 2, [])  # two hosts, no emulated paths (under a second to bring up)
    try:
        yield out, load_inventory(inv_file)
    finally:
        testbed.down(out)


@needs_testbed
@pytest.mark.root
@pytest.mark.parametrize("python, said", [
    ("/nonexistent/python3", ["status 127", "check `python` in the inventory", "/nonexistent/python3"]),
    ("/bin/sh", ["exited with status 2", "Illegal option"]),   # an interpreter that is not Python: its own complaint
])
def test_wrong_remote_python_shows_what_the_host_said(bed, python, said):
    from deploy.check import check_host
    from deploy.ssh import HostUnreachableError, Session
    _, inv = bed
    h = replace(inv.hosts["h1"], python=python)
    with Session(h) as s:
        with pytest.raises(HostUnreachableError) as info:
            s.helper("probe", h.work_dir)
        for n in said:
            assert n in str(info.value), (n, str(info.value))
        with pytest.raises(HostUnreachableError) as again:  # a later call says the same, not "cannot reach"
            s.helper("ours", h.work_dir)
        assert said[0] in str(again.value)
    row = check_host(h)
    assert not row.ok and any(said[0] in p for p in row.problems), row.problems
    from deploy.push import _push_host  # `genet deploy push`, up to its first remote step
    pushed = _push_host(h, Path("/nonexistent/genet.whl"), "0" * 64, [("models", {})], {}, False, False, False)
    assert not pushed.ok and said[0] in pushed.error, pushed.error


@needs_testbed
@pytest.mark.root
def test_tilde_work_dir_uploads_land_where_the_helper_looks(bed, tmp_path):
    from deploy.check import check_host
    from deploy.ssh import Session
    _, inv = bed
    home = pwd.getpwuid(os.geteuid()).pw_dir  # the remote login's home (same machine, same user)
    rel = os.path.relpath(tmp_path / "work", home)  # "../tmp/...": expanded, the work dir is in tmp_path
    want = os.path.abspath(tmp_path / "work")
    # where a literal "~" would put things (what the old code did): removed afterwards if this test made them
    literal = Path(home, "~")
    stray = Path(home, os.path.relpath(os.path.normpath(os.path.join(home, "~", rel)), home).split(os.sep)[0])
    before = {p: p.exists() for p in (literal, stray)}
    h = replace(inv.hosts["h1"], work_dir=f"~/{rel}")
    try:
        with Session(h) as s:
            local = tmp_path / "genet"
            local.write_text("#!/bin/sh\necho genet\n")
            target = s.remote_path("venv", "bin", "genet")   # as `genet deploy push` installs it
            s.put(local, target)
            s.sftp().chmod(target, 0o755)
            assert (tmp_path / "work" / "venv" / "bin" / "genet").is_file(), target
            assert "genet" in s.helper("manifest", s.remote_path("venv", "bin"))  # push's idempotency check
            assert s.work_dir == want and s.remote_path("models") == f"{want}/models"
        row = check_host(h)  # `genet deploy check` finds what push installed
        assert row.genet == f"{want}/venv/bin/genet", (row.genet, row.problems)
    finally:
        for p, existed in before.items():
            if not existed and p.is_dir() and p != Path(home):
                shutil.rmtree(p)
