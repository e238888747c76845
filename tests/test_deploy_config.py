"""Inventory and campaign validation (no network): every error names the file, the key and what was expected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.config import ConfigError, load_campaign, load_inventory

REPO = Path(__file__).resolve().parents[1]

GOOD_INV = """
[defaults]
user = "genet"
key_file = "id_test"
[hosts.h1]
address = "192.0.2.1"
work_dir = "/srv/genet work"
[hosts.h2]
address = "192.0.2.2"
port = 2222
python = "/usr/bin/python3"
[paths.p1]
server = "h1"
client = "h2"
description = "test path"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_inventory_loads_with_defaults_and_relative_paths(tmp_path):
    inv = load_inventory(write(tmp_path, "inv.toml", GOOD_INV))
    h1, h2 = inv.hosts["h1"], inv.hosts["h2"]
    assert (h1.user, h1.port, h1.work_dir) == ("genet", 22, "/srv/genet work")
    assert h1.key_file == str(tmp_path.resolve() / "id_test")
    assert h1.known_hosts == str(tmp_path.resolve() / "known_hosts")
    assert (h2.port, h2.python) == (2222, "/usr/bin/python3")
    p = inv.paths["p1"]
    assert (p.server, p.client, p.server_address) == ("h1", "h2", "192.0.2.1")


@pytest.mark.parametrize("edit, key, expected", [
    (('port = 2222', 'port = "22"'), "[hosts.h2] port", "expected an integer"),
    (('port = 2222', 'port = 70000'), "[hosts.h2] port", ">= 1 and <= 65535"),
    (('address = "192.0.2.1"', 'adress = "192.0.2.1"'), "[hosts.h1]", "unknown key 'adress'; allowed: address,"),
    (('client = "h2"', 'client = "h9"'), "[paths.p1] client", "one of the hosts h1, h2"),
    (('address = "192.0.2.2"', 'address = "a b"'), "[hosts.h2] address", "without spaces"),
    (('user = "genet"', 'user = "x;rm"'), "[defaults] user", "login name"),
    (('[paths.p1]', '[paths."p 1"]'), "[paths] 'p 1'", "a name of 1-63 letters"),
    (('[hosts.h1]\naddress = "192.0.2.1"', '[hosts.h1]'), "[hosts.h1] address", "missing"),
    (('port = 2222', 'port = 2222\nconnect_timeout_s = 0'), "[hosts.h2] connect_timeout_s", "> 0 and <= 600 (s)"),
])
def test_inventory_errors_name_file_key_and_expectation(tmp_path, edit, key, expected):
    f = write(tmp_path, "inv.toml", GOOD_INV.replace(*edit))
    with pytest.raises(ConfigError) as e:
        load_inventory(f)
    msg = str(e.value)
    assert str(f) in msg and key in msg and expected in msg, msg


def test_inventory_not_toml_and_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"inv\.toml: not valid TOML"):
        load_inventory(write(tmp_path, "inv.toml", "[hosts\n"))
    with pytest.raises(ConfigError, match="no such file"):
        load_inventory(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match=r"hosts: expected at least one"):
        load_inventory(write(tmp_path, "inv2.toml", "[hosts]\n"))


def test_campaign_validation(tmp_path):
    inv = load_inventory(write(tmp_path, "inv.toml", GOOD_INV))
    c = load_campaign(write(tmp_path, "c.toml", 'use_case = "cc"\nschemes = ["cubic", "bbr", "const:5"]\n'
                                                'duration_s = 3\n'), inv)
    assert [s.kind for s in c.schemes] == ["kernel", "kernel", "const"]
    assert c.paths == ("p1",) and c.repetitions == 5 and c.timeout_s == 33.0 and c.max_lanes is None
    capped = load_campaign(write(tmp_path, "c2.toml", 'use_case = "cc"\nschemes = ["cubic"]\n'
                                                      'parallel = "disjoint-paths"\nmax_lanes = 6\n'), inv)
    assert capped.max_lanes == 6 and capped.to_json()["max_lanes"] == 6
    assert c.schemes[2].needs == "sender" and c.schemes[0].needs is None
    cases = [
        ('use_case = "video"\nschemes = ["bba"]\n', "use_case", "allowed: 'abr', 'cc', 'lb'"),
        ('schemes = ["bba"]\n', "use_case", "missing"),
        ('use_case = "cc"\nschemes = ["cubic; rm -rf /"]\n', "schemes[0]", "kernel algorithm name"),
        ('use_case = "cc"\nschemes = ["$(reboot)"]\n', "schemes[0]", "CC scheme"),
        ('use_case = "cc"\nschemes = ["const:-1"]\n', "schemes[0]", "const:MBPS"),
        ('use_case = "abr"\nschemes = ["bbr"]\n', "schemes[0]", "ABR scheme"),
        ('use_case = "cc"\nschemes = ["missing.onnx"]\n', "schemes[0]", "existing ONNX model"),
        ('use_case = "cc"\nschemes = []\n', "schemes", "non-empty"),
        ('use_case = "cc"\nschemes = ["cubic"]\nrepetitions = 0\n', "repetitions", ">= 1 and <= 1000"),
        ('use_case = "cc"\nschemes = ["cubic"]\npaths = ["p9"]\n', "paths[0]", "a path of"),
        ('use_case = "cc"\nschemes = ["cubic"]\nduration_s = 10\ntimeout_s = 5\n', "timeout_s", "more seconds"),
        ('use_case = "cc"\nschemes = ["cubic", "cubic"]\n', "schemes", "distinct"),
        ('use_case = "cc"\nschemes = ["cubic"]\nrepetition = 3\n', "repetition", "unknown key"),
        ('use_case = "cc"\nschemes = ["cubic"]\nchunks = 3\n', "chunks", "ABR campaigns only"),
        ('use_case = "abr"\nschemes = ["bba"]\nvideo = "a/b"\n', "video", "a video name"),
        ('use_case = "lb"\nschemes = ["bba"]\n', "schemes[0]", "an LB scheme: least_work"),
        ('use_case = "lb"\nschemes = ["least_work"]\nservice_rates = "0.5,0,2"\n', "service_rates",
         "finite rates > 0"),
        ('use_case = "lb"\nschemes = ["least_work"]\nservice_rates = "1;2"\n', "service_rates",
         "comma-separated positive numbers"),
        ('use_case = "lb"\nschemes = ["least_work"]\njobs = 0\n', "jobs", ">= 1"),
        ('use_case = "lb"\nschemes = ["least_work"]\ntime_unit_ms = 0\n', "time_unit_ms", "> 0"),
        ('use_case = "cc"\nschemes = ["cubic"]\njobs = 30\n', "jobs", "LB campaigns only"),
        ('use_case = "abr"\nschemes = ["bba"]\nservice_rates = "1"\n', "service_rates", "LB campaigns only"),
        ('use_case = "cc"\nschemes = ["cubic"]\nmax_lanes = 2\n', "max_lanes", 'parallel = "disjoint-paths"'),
        ('use_case = "cc"\nschemes = ["cubic"]\nparallel = "disjoint-paths"\nmax_lanes = 0\n', "max_lanes",
         ">= 1"),
    ]
    for text, key, expected in cases:
        f = write(tmp_path, "bad.toml", text)
        with pytest.raises(ConfigError) as e:
            load_campaign(f, inv)
        msg = str(e.value)
        assert str(f) in msg and key in msg and expected in msg, (text, msg)


def test_lb_campaign(tmp_path):
    """An LB campaign: policies of the LB registry and models as schemes, the workers' rates and the workload; its
    runs' timeout follows from the workload."""
    inv = load_inventory(write(tmp_path, "inv.toml", GOOD_INV))
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    c = load_campaign(write(tmp_path, "c.toml", 'use_case = "lb"\nschemes = ["least_work", "round_robin", '
                                                '"m.onnx"]\nservice_rates = "1, 2"\njobs = 30\n'
                                                'job_interval_ms = 20\njob_size_max_work = 200\n'), inv)
    assert [s.kind for s in c.schemes] == ["lb-baseline", "lb-baseline", "lb-onnx"]
    assert [s.needs for s in c.schemes] == ["balancer"] * 3 and c.schemes[2].slug == "m"
    assert (c.service_rates, c.jobs, c.job_interval_ms, c.job_size_max_work) == ((1.0, 2.0), 30, 20.0, 200.0)
    # 30 jobs every 20 ms, 30 x 105 work units drained at 3 per ms: 1.65 s; 60 + 3 x that
    assert c.timeout_s == pytest.approx(60 + 3 * 1.65)
    assert c.to_json()["service_rates"] == [1.0, 2.0] and "jobs" not in load_campaign(
        write(tmp_path, "cc.toml", 'use_case = "cc"\nschemes = ["cubic"]\n')).to_json()
    from deploy.schemes import RunContext, runner_for, scheme_context
    ctx = RunContext(c, inv.paths["p1"], c.schemes[2], "python3", "/c/venv/bin/genet", "/s/venv/bin/genet",
                     "/c/models", "/s/videos", server_models="/s/models", round=2)
    runner = runner_for(c.schemes[2], "lb")
    sides = scheme_context(ctx)
    server, client = runner.server(sides), runner.client(sides)
    assert server.argv[:3] == ["/s/venv/bin/genet", "balancer", "cluster"]
    assert server.argv[server.argv.index("--policy") + 1].startswith("/s/models/")  # the balancer runs the model
    assert server.argv[server.argv.index("--rates") + 1] == "1.0,2.0"
    assert client.argv[:3] == ["/c/venv/bin/genet", "balancer", "replay"]
    assert client.argv[client.argv.index("--generate") + 1] == "1"  # round 2: workload_seed 0 + 1
    assert client.argv[client.argv.index("--to") + 1] == f"192.0.2.1:{c.port}"


def test_shipped_examples_validate():
    for f in sorted((REPO / "examples").glob("campaign-*.toml")):
        c = load_campaign(f)
        assert c.schemes, f
    for f in sorted((REPO / "examples").glob("inventory*.toml")):
        assert load_inventory(f).hosts, f


def test_remote_command_quoting():
    from deploy.ssh import shell_command
    evil = "a b; rm -rf /tmp/x $(touch y) `id` 'q' \"d\""
    line = shell_command(["printf", "%s\n", evil], cwd="/tmp/dir with space", env={"K": "v; echo"})
    import shlex
    words = shlex.split(line)
    assert words == ["cd", "/tmp/dir with space", "&&", "env", "K=v; echo", "printf", "%s\n", evil]


@pytest.mark.parametrize("damage", [b'{"campaign": {"file": "/c.toml", "name": "c", "use_ca', b"", b"\xff\xfe\x00",
                                    b"[1, 2]", b'{"campaign": {"name": "c"}}', b"[" * 100_000])
def test_a_damaged_campaign_json_is_one_line_naming_it(tmp_path, capsys, damage):
    """`genet deploy run` on a folder whose campaign.json is truncated or damaged, and `genet deploy report` of
    it: one line naming the file, no traceback, nothing contacted or changed."""
    from app.cli import main
    inv = write(tmp_path, "inv.toml", GOOD_INV.replace("192.0.2.", "127.0.0."))  # loopback, were it contacted
    camp = write(tmp_path, "c.toml", 'name = "c"\nuse_case = "cc"\nschemes = ["cubic"]\nrepetitions = 1\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "campaign.json").write_bytes(damage)
    (out / "journal.jsonl").write_text("")
    for argv in (["deploy", "run", str(camp), "--inventory", str(inv), "--accept-new", "--out", str(out)],
                 ["deploy", "report", str(out)]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"genet: error: {out / 'campaign.json'} is damaged (") and err.count("\n") == 1, err
    assert (out / "campaign.json").read_bytes() == damage
    assert sorted(os.listdir(out)) == [".genet.lock", "campaign.json", "journal.jsonl"]


def test_docs_page_is_the_schema_rendering():
    """docs/deploy-config.md is generated from the inventory, campaign and testbed-paths schemas."""
    from deploy import config
    page = (REPO / "docs" / "deploy-config.md").read_text()
    assert page.strip() == config.render_markdown().strip(), \
        "docs/deploy-config.md is stale: python -m deploy.config > docs/deploy-config.md"
    for key in ("address", "known_hosts", "connect_timeout_s", "server_address", "use_case", "schemes", "timeout_s",
                "retry_limit", "uplink_queue_args", "downlink_loss"):
        assert f"| `{key}` |" in page, key
    for heading in ("### `[defaults]`", "### `[hosts.NAME]`", "### `[paths.NAME]`", "## Campaign", "## Testbed paths"):
        assert heading in page, heading


def test_help_points_at_the_schema_page(capsys):
    from app.cli import main
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    assert "docs/deploy-config.md" in capsys.readouterr().out


def test_schema_defaults_are_the_records_defaults(tmp_path):
    """A key left out gets the record's default (one definition): a minimal inventory, campaign and testbed paths
    file give the dataclasses' defaults."""
    from dataclasses import fields

    from deploy.config import Campaign, HostSpec, TestbedPath, load_testbed_paths
    inv = load_inventory(write(tmp_path, "inv.toml", '[hosts.h1]\naddress = "192.0.2.1"\n'))
    h = inv.hosts["h1"]
    for f in fields(HostSpec):
        if f.name not in ("name", "address", "known_hosts"):
            assert getattr(h, f.name) == f.default, f.name
    assert h.known_hosts == str(tmp_path.resolve() / "known_hosts") and inv.paths == {}
    c = load_campaign(write(tmp_path, "c.toml", 'use_case = "cc"\nschemes = ["cubic"]\n'))
    for f in fields(Campaign):
        if f.name not in ("file", "use_case", "schemes", "name", "timeout_s"):
            assert getattr(c, f.name) == (tuple(f.default) if f.name == "paths" else f.default), f.name
    assert c.name == "c" and c.timeout_s == c.duration_s + 30
    (p,) = load_testbed_paths(write(tmp_path, "p.toml", '[paths.p1]\nserver = "h1"\nclient = "h2"\n'), ["h1", "h2"])
    for f in fields(TestbedPath):
        if f.name not in ("name", "server", "client"):
            assert getattr(p, f.name) == f.default, f.name


def test_defaults_are_inherited_and_hosts_override_them(tmp_path):
    inv = load_inventory(write(tmp_path, "inv.toml", '[defaults]\nport = 2200\nuser = "u"\nwork_dir = "/w/"\n'
                                                     '[hosts.h1]\naddress = "a"\n[hosts.h2]\naddress = "b"\nport = 22\n'
                                                     'work_dir = "~/x//"\n'))
    assert (inv.hosts["h1"].port, inv.hosts["h1"].user, inv.hosts["h1"].work_dir) == (2200, "u", "/w")
    assert (inv.hosts["h2"].port, inv.hosts["h2"].user, inv.hosts["h2"].work_dir) == (22, "u", "~/x")
    with pytest.raises(ConfigError, match=r"\[defaults\] address: expected no address"):
        load_inventory(write(tmp_path, "inv2.toml", '[defaults]\naddress = "a"\n[hosts.h1]\naddress = "a"\n'))


def test_parallel_lanes_join_paths_that_share_a_host(tmp_path):
    from types import SimpleNamespace

    from deploy.campaign import CampaignTier
    from foundation.experiment import Cell
    inv = SimpleNamespace(paths={"a": SimpleNamespace(server="h1", client="h2"),
                                 "b": SimpleNamespace(server="h3", client="h4"),
                                 "c": SimpleNamespace(server="h5", client="h1"),
                                 "d": SimpleNamespace(server="h4", client="h6")})
    cells = [Cell("cubic", p, r, SimpleNamespace(path=p)) for r in (1, 2) for p in "abcd"]
    lanes = CampaignTier.lanes(SimpleNamespace(inventory=inv), cells)
    assert [[(c.environment, c.repetition) for c in lane] for lane in lanes] == [
        [("a", 1), ("c", 1), ("a", 2), ("c", 2)], [("b", 1), ("d", 1), ("b", 2), ("d", 2)]]


def test_testbed_addressing_fits_its_limits():
    """Every host of the largest testbed gets its own management /30 inside the testbed's /24 (neither the /30's
    network nor its broadcast address), every path of the last testbed index a data net that exists: raising
    TESTBED_HOSTS_MAX (64), TESTBED_PATHS_MAX or TESTBED_INDEX_MAX past what the addressing holds fails here."""
    import ipaddress

    from deploy.config import TESTBED_HOSTS_MAX, TESTBED_PATHS_MAX
    from deploy.testbed import TESTBED_INDEX_MAX, TestbedPlan
    assert TESTBED_HOSTS_MAX >= 24  # 12 disjoint paths (benchmarks/deploy_parallel.py)
    for k in (1, TESTBED_INDEX_MAX):
        plan = TestbedPlan("/nonexistent", k, [f"h{i}" for i in range(1, TESTBED_HOSTS_MAX + 1)], [])
        mgmt = ipaddress.ip_network(f"100.65.{k}.0/24")
        seen = set()
        for i in range(1, TESTBED_HOSTS_MAX + 1):
            local, remote = (ipaddress.ip_address(a) for a in plan.mgmt_addresses(i))
            net = ipaddress.ip_interface(f"{local}/30").network
            assert net.subnet_of(mgmt) and remote in net and {local, remote}.isdisjoint(
                {net.network_address, net.broadcast_address}), (k, i)
            assert net not in seen, (k, i)
            seen.add(net)
            assert len(plan.mgmt_veth(i) + "x") <= 15  # IFNAMSIZ - 1
        nets = [ipaddress.ip_network(f"{plan.data_net(j)}.0/24") for j in range(1, TESTBED_PATHS_MAX + 1)]
        assert len(set(nets)) == TESTBED_PATHS_MAX
    last = TestbedPlan("/nonexistent", TESTBED_INDEX_MAX, [], []).data_net(TESTBED_PATHS_MAX)
    first_of_next = TestbedPlan("/nonexistent", 1, [], []).data_net(1)
    assert int(last.split(".")[2]) <= 255 and first_of_next != last


def test_testbed_above_its_limits_is_one_line_naming_the_limit(tmp_path):
    """Too many hosts or paths: refused before anything is created (root or not), one line naming the limit."""
    from deploy import testbed
    from deploy.config import TESTBED_HOSTS_MAX, TESTBED_PATHS_MAX
    from foundation.errors import BadInputError
    with pytest.raises(BadInputError) as e:
        testbed.up(tmp_path / "bed", TESTBED_HOSTS_MAX + 1, [])
    assert "\n" not in str(e.value) and f"2-{TESTBED_HOSTS_MAX} hosts" in str(e.value)
    assert "TESTBED_HOSTS_MAX" in str(e.value) and f"got {TESTBED_HOSTS_MAX + 1}" in str(e.value)
    paths = [testbed.TestbedPath(f"q{j}", "h1", "h2", 5.0, 5.0, 1.0) for j in range(TESTBED_PATHS_MAX + 1)]
    with pytest.raises(BadInputError) as e:
        testbed.up(tmp_path / "bed", 2, paths)
    assert "\n" not in str(e.value) and f"at most {TESTBED_PATHS_MAX}" in str(e.value)
    assert "TESTBED_PATHS_MAX" in str(e.value)
    assert not (tmp_path / "bed").exists()
