"""The local SSH testbed (real sshd in namespaces, real emulated paths) and the SSH layer against it:
check, host-key refusal / --accept-new, command quoting against injection, background processes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root]

from conftest import require_ssh_testbed  # noqa: E402

require_ssh_testbed()

from deploy import testbed  # noqa: E402
from deploy.config import load_inventory  # noqa: E402
from deploy.ssh import HostKeyError, HostUnreachableError, Session  # noqa: E402


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    out = tmp_path_factory.mktemp("testbed")
    paths = [testbed.TestbedPath("p1", "h1", "h2", 12.0, 12.0, 5.0, description="12 Mbit/s, 5 ms")]
    inv_file = testbed.up(out, 2, paths)
    try:
        yield out, load_inventory(inv_file)
    finally:
        testbed.down(out)


def _fingerprint(pub_file: Path) -> str:
    return subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub_file)], capture_output=True,
                          text=True, check=True).stdout.split()[1]


def test_check_reports_every_host(bed):
    from deploy.check import check_inventory
    out, inv = bed
    rows = check_inventory(inv)
    assert [r.host for r in rows] == ["h1", "h2"]
    for r in rows:
        assert r.ok, r.problems
        assert r.iperf3 and "cubic" in r.allowed_cc
        assert r.host_key == _fingerprint(out / "hosts" / r.host / "ssh_host_ed25519_key.pub")
        # same kernel clock: the NTP-style estimate must be within its own error bound (half the round trip)
        assert abs(r.clock_offset_ms) <= r.clock_rtt_ms / 2 + 0.05, (r.clock_offset_ms, r.clock_rtt_ms)


def test_data_path_goes_through_the_emulated_link(bed):
    out, inv = bed
    p = inv.paths["p1"]
    with Session(inv.hosts[p.client]) as s:
        res = s.run(["ping", "-c", "3", "-i", "0.2", p.server_address], check=False, timeout_s=10) \
            if shutil.which("ping") else None
        if res is not None:
            assert res.exit_status == 0, res.stderr
            rtts = [float(x.split("time=")[1].split()[0]) for x in res.stdout.splitlines() if "time=" in x]
            assert min(rtts) >= 9.5  # 2 x 5 ms one-way delay of the link


def test_unknown_host_key_refused_with_fingerprint_then_accept_new(bed, tmp_path):
    from dataclasses import replace
    out, inv = bed
    h1 = replace(inv.hosts["h1"], known_hosts=str(tmp_path / "kh"))
    with pytest.raises(HostKeyError) as e:
        Session(h1).connect()
    assert _fingerprint(out / "hosts/h1/ssh_host_ed25519_key.pub") in str(e.value)
    assert "--accept-new" in str(e.value)
    assert not (tmp_path / "kh").exists()
    with Session(h1, accept_new=True) as s:
        assert s.run(["true"]).exit_status == 0
    assert h1.address in (tmp_path / "kh").read_text()
    with Session(h1) as s:  # now known: no --accept-new needed
        assert s.run(["echo", "ok"]).stdout == "ok\n"


def test_changed_host_key_refused_even_with_accept_new(bed, tmp_path):
    from dataclasses import replace
    out, inv = bed
    other = (out / "hosts/h2/ssh_host_ed25519_key.pub").read_text().split()[:2]
    (tmp_path / "kh").write_text(f"{inv.hosts['h1'].address} {' '.join(other)}\n")
    h1 = replace(inv.hosts["h1"], known_hosts=str(tmp_path / "kh"))
    for accept in (False, True):
        with pytest.raises(HostKeyError, match="CHANGED") as e:
            Session(h1, accept_new=accept).connect()
        assert _fingerprint(out / "hosts/h1/ssh_host_ed25519_key.pub") in str(e.value)


def test_unreachable_host_fails_fast(bed):
    from dataclasses import replace
    out, inv = bed
    h = replace(inv.hosts["h1"], port=2, connect_timeout_s=2)
    with pytest.raises(HostUnreachableError, match="unreachable"):
        Session(h).connect()


EVIL = ["a b", "x; touch CANARY1", "$(touch CANARY2)", "`touch CANARY3`", "'; rm -rf . '", '"; touch CANARY4 "',
        "\\ && touch CANARY5", "*"]


def test_no_injection_through_arguments_file_names_or_background(bed):
    out, inv = bed
    h = inv.hosts["h1"]
    work = Path(h.work_dir)
    weird_dir = work / "runs" / "dir with 'quotes' $(touch CANARY6); rm -rf x"
    with Session(h) as s:
        res = s.run(["printf", "%s\\n", *EVIL], cwd=h.work_dir)
        assert res.stdout.splitlines() == EVIL
        pid = s.start_background(["sh", "-c", 'printf "%s\\n" "$@" > args.txt', "sh", *EVIL], str(weird_dir),
                                 "evil; touch CANARY7 $(touch CANARY8)", 10)
        assert s.wait_pid(pid, 10)
        assert (weird_dir / "args.txt").read_text().splitlines() == EVIL
        assert (weird_dir / "evil; touch CANARY7 $(touch CANARY8).rc").read_text().strip() == "0"
        local = out / "fetched.txt"
        s.fetch(str(weird_dir / "args.txt"), local)
        assert local.read_text().splitlines() == EVIL
    canaries = [p for p in work.rglob("CANARY*")] + [p for p in Path("/").glob("CANARY*")]
    assert canaries == []


def test_background_processes_stopped_by_pid(bed):
    out, inv = bed
    h = inv.hosts["h2"]
    with Session(h) as s:
        pid = s.start_background(["sleep", "60"], str(Path(h.work_dir) / "runs" / "bg"), "sleeper", 30)
        assert any(p["pid"] == pid for p in s.our_processes())
        assert not s.wait_pid(pid, 0.2)
        s.stop(pid)
        assert s.wait_pid(pid, 5)
        assert s.our_processes() == []
        # the remote watchdog ends a process nobody stops (a controller that died)
        pid = s.start_background(["sleep", "60"], str(Path(h.work_dir) / "runs" / "bg"), "orphan", 1)
        assert s.wait_pid(pid, 10)
        assert s.our_processes() == []


def test_testbed_down_removes_everything(tmp_path):
    inv_file = testbed.up(tmp_path, 2, [testbed.TestbedPath("q", "h1", "h2", 5.0, 5.0, 1.0)])
    st = testbed.status(tmp_path)
    assert st["alive"]
    names = [f"gtd{st['index']}-h1", f"gtd{st['index']}-h2", *st["link_namespaces"].values()]
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert all(n in before for n in names)
    assert inv_file.exists() and (tmp_path / "known_hosts").exists()
    assert testbed.down(tmp_path) == []  # the supervisor removed everything itself
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in after for n in names)
    assert not os.path.exists(f"/sys/class/net/gtd{st['index']}m1")
    for pid in st["sshd_pids"].values():
        assert not testbed._alive(pid)


def test_check_command_exit_status_and_missing_known_hosts(bed, tmp_path, capsys):
    from app.cli import main
    out, inv = bed
    assert main(["deploy", "check", str(out / "inventory.toml")]) == 0
    table = capsys.readouterr().out
    assert "clock offset ms" in table and "h1" in table and "h2" in table
    # a host that is down makes the command fail, naming it; the other host is still checked
    text = (out / "inventory.toml").read_text().replace('key_file = "id_ed25519"',
                                                        f'key_file = "{out / "id_ed25519"}"')
    text = text.replace('known_hosts = "known_hosts"', f'known_hosts = "{out / "known_hosts"}"')
    bad = tmp_path / "inv.toml"
    bad.write_text(text.replace("port = 22", "port = 2", 1))
    assert main(["deploy", "check", str(bad)]) == 1
    res = capsys.readouterr().out
    assert "h1: h1" in res and "unreachable" in res
    # no known_hosts file: refused before connecting, with the way out
    nokh = tmp_path / "inv2.toml"
    nokh.write_text(text.replace(f'known_hosts = "{out / "known_hosts"}"', 'known_hosts = "absent"'))
    assert main(["deploy", "check", str(nokh)]) == 1
    assert "--accept-new" in capsys.readouterr().err


def test_a_24_host_testbed_comes_up_with_12_disjoint_paths(tmp_path):
    """Above the old 16-host cap: 24 hosts, 12 disjoint paths (benchmarks/deploy_parallel.py --paths 12). Each host
    answers over SSH from inside its own namespace (its management address is on its mgmt0), and each path's client
    reaches its server's data address through the path's emulated link, no other."""
    n_paths = 12
    paths = [testbed.TestbedPath(f"d{i}", f"h{2 * i + 1}", f"h{2 * i + 2}", 12.0, 12.0, 1.0)
             for i in range(n_paths)]
    inv = load_inventory(testbed.up(tmp_path, 2 * n_paths, paths))
    try:
        assert len(inv.hosts) == 24 and len(inv.paths) == n_paths
        assert len({h.address for h in inv.hosts.values()}) == 24
        for h in inv.hosts.values():
            with Session(h) as s:
                res = s.run(["ip", "-o", "-4", "addr", "show", "dev", "mgmt0"], timeout_s=10)
                assert f" {h.address}/30 " in res.stdout, (h.name, res.stdout)
        assert len({p.server_address for p in inv.paths.values()}) == n_paths
        if shutil.which("ping"):
            for p in inv.paths.values():
                with Session(inv.hosts[p.client]) as s:
                    res = s.run(["ping", "-c", "1", "-W", "2", p.server_address], check=False, timeout_s=10)
                    assert res.exit_status == 0, (p.name, res.stderr)
                    rtt = float(res.stdout.split("time=")[1].split()[0])
                    assert rtt >= 1.9, (p.name, rtt)  # 2 x 1 ms one-way delay: through the emulated link
                    # another path's server is not reachable from this client (its own link only)
                    other = next(q for q in inv.paths.values() if q.name != p.name)
                    res = s.run(["ping", "-c", "1", "-W", "1", other.server_address], check=False, timeout_s=10)
                    assert res.exit_status != 0, (p.name, other.name)
    finally:
        testbed.down(tmp_path)
