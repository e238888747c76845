"""The local SSH testbed: "remote hosts" on this machine (``genet deploy testbed up/down``).

Each host is a network namespace ``gtd<k>-<host>`` running a real ``sshd`` (Debian's
openssh-server) with freshly generated host keys, reached from this machine over a management
veth pair (host ``i``: 100.65.k.(4i-2), this machine's side 100.65.k.(4i-3): one /30 per host in the
testbed's /24, hence at most ``TESTBED_HOSTS_MAX`` = 64 hosts; k = 1 to 15). A user key is
generated; its public half is the only authorized key. Each path is one of our trace-driven
emulated links (:class:`emulation.LinkEmulator`, netns backend, both sides in their own
namespaces), routed between the server host and the client host::

    server host  100.66.X.1 --veth-- .2 [link host side] ==TUN, emulated link== [link emulated side] .5 --veth-- 100.66.X.6  client host

(X = 16k + path index; ``uplink`` = client -> server, ``downlink`` = server -> client). This module
only adds forwarding and two veth pairs around a link; it uses the emulation package's public
``LinkEmulator`` and ``Endpoint.netns_path`` (a thin adapter, emulation/ is not changed).

``up`` writes ``inventory.toml``, ``known_hosts`` and ``id_ed25519`` under ``--out DIR``; the
inventory is an ordinary one (paths carry ``server_address`` = the data address), so every deploy
command runs against the testbed exactly as against real hosts. A supervisor process owns the
namespaces, sshds and link processes (emulated links need a live owner) until ``down``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from foundation.atomic import atomic_write_text
from foundation.errors import BadInputError, GenetRuntimeError
from foundation.tomlfile import control_char, show, toml_string

from deploy.config import TESTBED_HOSTS_MAX, TESTBED_PATHS_MAX, TestbedPath
from deploy.config import load_testbed_paths as load_paths  # noqa: F401  (`genet deploy testbed up --paths`)

STATE_DIR = Path(os.environ.get("GENET_DEPLOY_STATE_DIR", "/run/genet-deploy"))
HOST_NAME_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
SSHD = "/usr/sbin/sshd"
READY_TIMEOUT_S = 60.0
# testbeds up at once on this machine: testbed K's paths have the data nets 100.66.(16K + j) (j = 1 to
# TESTBED_PATHS_MAX), so K stops at 15; its hosts the management /24 100.65.K (TESTBED_HOSTS_MAX hosts)
TESTBED_INDEX_MAX = 15


class TestbedError(GenetRuntimeError):
    """The testbed cannot be created or removed (missing sshd, no root, ...)."""


def _trace_set(name: str) -> Path:
    """A public set's folder: a full local copy (``GENET_TRACES_DIR``, ``../shared/traces``), else the sample
    shipped in ``traces/samples/`` (traces/datasets.py)."""
    from traces.datasets import find_full_copy, sample_path
    return find_full_copy(name) or sample_path(name) or Path("/nonexistent")


def default_paths(n_hosts: int) -> list[TestbedPath]:
    """The paper-like default paths: a constant 12 Mbit/s / 20 ms path; an FCC trace at 40 ms; a cellular
    trace with a deep queue (Genet's Path-3 failure case: a deeper queue than in training). Without
    a full local copy of the sets the traces come from the shipped samples (the same first files)."""
    paths = [TestbedPath("p1", "h1", "h2", 12.0, 12.0, 20.0, description="constant 12 Mbit/s, 20 ms, 60-packet queue")]
    if n_hosts >= 3:
        fcc = sorted(_trace_set("fcc-val").glob("*"))
        cellular = _trace_set("pantheon-cellular")
        cell = sorted(cellular.glob("*AWS-India-1-to-India-cellular-3-runs/bbr_datalink_run1.json")) \
            or sorted(cellular.glob("*/*datalink_run1.json"))  # 6.6 Mbit/s mean
        if fcc:
            paths.append(TestbedPath("p2", "h1", "h3", str(fcc[0]), str(fcc[0]), 40.0,
                                     description=f"FCC trace {fcc[0].name}, 40 ms"))
        else:
            paths.append(TestbedPath("p2", "h1", "h3", 6.0, 6.0, 40.0,
                                     description="constant 6 Mbit/s, 40 ms (no FCC traces found)"))
        if cell:
            paths.append(TestbedPath("p3", "h2", "h3", str(cell[0]), str(cell[0]), 30.0,
                                     uplink_queue_args="packets=1000", downlink_queue_args="packets=1000",
                                     description=f"cellular trace {cell[0].parent.name}/{cell[0].name}, 30 ms, "
                                                 f"1000-packet queue"))
        else:
            paths.append(TestbedPath("p3", "h2", "h3", 3.0, 3.0, 30.0, uplink_queue_args="packets=1000",
                                     downlink_queue_args="packets=1000",
                                     description="constant 3 Mbit/s, 30 ms, 1000-packet queue (no cellular traces found)"))
    return paths


# ------------------------------------------------------------------ naming
@dataclass
class TestbedPlan:
    """Everything the supervisor creates (written to DIR/testbed.json)."""

    out_dir: str
    index: int
    hosts: list[str]
    paths: list[dict]
    supervisor_pid: int = 0
    sshd_pids: dict = field(default_factory=dict)
    link_runs: dict = field(default_factory=dict)
    link_namespaces: dict = field(default_factory=dict)

    def netns(self, host: str) -> str:
        return f"gtd{self.index}-{host}"

    def mgmt_addresses(self, i: int) -> tuple[str, str]:
        """(this machine's side, host side) of host number i (1-based)."""
        base = 4 * (i - 1)
        return f"100.65.{self.index}.{base + 1}", f"100.65.{self.index}.{base + 2}"

    def data_net(self, j: int) -> str:
        return f"100.66.{16 * self.index + j}"

    def mgmt_veth(self, i: int) -> str:
        return f"gtd{self.index}m{i}"


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    res = subprocess.run(argv, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise TestbedError(f"`{' '.join(argv)}` failed: {res.stderr.strip()}")
    return res


def _sysctl(netns: str, key: str, value: str) -> None:
    res = subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", f"{key}={value}"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise TestbedError(f"sysctl {key}={value} in {netns} failed: {res.stderr.strip()}")


def _netns_list() -> set[str]:
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return {line.split()[0] for line in res.stdout.splitlines() if line.strip()}


def _kill_netns_processes(ns: str) -> None:
    res = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    pids = [int(p) for p in res.stdout.split() if p.isdigit()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 2.0
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.02)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _check_requirements() -> None:
    if os.geteuid() != 0:
        raise TestbedError("the local SSH testbed needs root (network namespaces)")
    for tool, pkg in ((SSHD, "openssh-server"), (shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen", "openssh-client"),
                      (shutil.which("ip") or "/sbin/ip", "iproute2")):
        if not os.path.exists(tool):
            raise TestbedError(f"{tool} is missing: install {pkg} (scripts/provision.sh does)")
    if not os.path.exists("/dev/net/tun"):
        raise TestbedError("/dev/net/tun is missing: load the tun module (modprobe tun)")


def _keygen(path: Path, comment: str) -> str:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   capture_output=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def _live_indices() -> set[int]:
    used = set()
    if STATE_DIR.is_dir():
        for f in STATE_DIR.glob("testbed-*.json"):
            try:
                st = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if _alive(int(st.get("supervisor_pid", 0) or 0)):
                used.add(int(st["index"]))
            else:
                f.unlink(missing_ok=True)
    addrs = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    for k in range(1, TESTBED_INDEX_MAX + 1):
        if f"100.65.{k}." in addrs or any(n.startswith(f"gtd{k}-") for n in _netns_list()):
            used.add(k)
    return used


# ------------------------------------------------------------------ up / down (controller side)
def _up_locked(out: Path, hosts: list[str], paths: list[TestbedPath]) -> "TestbedPlan":
    free = [k for k in range(1, TESTBED_INDEX_MAX + 1) if k not in _live_indices()]
    if not free:
        raise TestbedError(f"{TESTBED_INDEX_MAX} testbeds are already up on this machine")
    plan = TestbedPlan(str(out), free[0], hosts, [asdict(p) for p in paths])
    user_pub = _keygen(out / "id_ed25519", "genet-testbed-user")
    (out / "authorized_keys").write_text(user_pub + "\n")
    known = []
    for i, h in enumerate(hosts, 1):
        hd = out / "hosts" / h
        (hd / "work").mkdir(parents=True, exist_ok=True)
        pub = _keygen(hd / "ssh_host_ed25519_key", f"genet-testbed-{h}")
        mgmt = plan.mgmt_addresses(i)[1]
        known.append(f"{mgmt} {' '.join(pub.split()[:2])}")
        (hd / "sshd_config").write_text("\n".join([
            "Port 22", f"ListenAddress {mgmt}", f"HostKey {hd / 'ssh_host_ed25519_key'}", "PidFile none",
            f"AuthorizedKeysFile {out / 'authorized_keys'}", "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "PrintMotd no", "UseDNS no", "MaxStartups 64:30:128",
            "MaxSessions 64", "Subsystem sftp internal-sftp", "LogLevel INFO", ""]))
    atomic_write_text(out / "known_hosts", "\n".join(known) + "\n")
    atomic_write_text(out / "testbed-plan.json", json.dumps(asdict(plan), indent=1))
    for f in ("ready.json", "error.txt", "testbed.json"):
        (out / f).unlink(missing_ok=True)
    log = open(out / "testbed.log", "ab")
    repo_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo_root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "deploy.testbed", "serve", str(out)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True, env=env, cwd="/")
    log.close()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if (out / "ready.json").exists():
            break
        if proc.poll() is not None or (out / "error.txt").exists():
            time.sleep(0.2)
            msg = (out / "error.txt").read_text().strip() if (out / "error.txt").exists() else \
                f"the testbed supervisor exited with status {proc.poll()} (see {out / 'testbed.log'})"
            proc.wait()
            raise TestbedError(msg)
        time.sleep(0.05)
    else:
        down(out)
        raise TestbedError(f"the testbed did not come up within {READY_TIMEOUT_S:g} s (see {out / 'testbed.log'})")
    return plan


def up(out_dir: str | os.PathLike, n_hosts: int = 3, paths: list[TestbedPath] | None = None,
       python: str | None = None) -> Path:
    """Create the testbed; returns the inventory file. Raises :class:`TestbedError` on failure."""
    if not 2 <= n_hosts <= TESTBED_HOSTS_MAX:
        raise BadInputError(f"--hosts: expected 2-{TESTBED_HOSTS_MAX} hosts (TESTBED_HOSTS_MAX: one management /30 "
                            f"each in a /24), got {n_hosts}")
    hosts = [f"h{i}" for i in range(1, n_hosts + 1)]
    paths = paths if paths is not None else default_paths(n_hosts)
    if len(paths) > TESTBED_PATHS_MAX:
        raise BadInputError(f"paths: expected at most {TESTBED_PATHS_MAX} (TESTBED_PATHS_MAX: one data net "
                            f"100.66.(16K + j) each), got {len(paths)}")
    for p in paths:
        if p.server not in hosts or p.client not in hosts:
            raise BadInputError(f"path {p.name}: hosts {p.server}, {p.client} must be among {', '.join(hosts)}")
        if control_char(p.description) is not None:  # the inventory's readers take one line of text
            raise BadInputError(f"path {p.name}: description {show(p.description)}: expected one line of "
                                f"printable text, without the control character {control_char(p.description)!r}")
    _check_requirements()  # after the input's checks: a wrong request is refused as such, root or not
    out = Path(out_dir).resolve()
    if (out / "testbed.json").exists():
        st = json.loads((out / "testbed.json").read_text())
        if _alive(int(st.get("supervisor_pid", 0))):
            raise TestbedError(f"a testbed is already up in {out} (genet deploy testbed down --out {out})")
    out.mkdir(parents=True, exist_ok=True)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    # one `up` at a time picks an index and brings its supervisor up (which records the index as live):
    # two at once would pick the same one
    import fcntl
    with open(STATE_DIR / "up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        plan = _up_locked(out, hosts, paths)
    _write_inventory(plan, out, python or sys.executable)
    return out / "inventory.toml"


def _write_inventory(plan: TestbedPlan, out: Path, python: str) -> None:
    q = toml_string  # every string value escaped (quotes, backslashes, newlines...): the file always parses
    lines = ["# Written by `genet deploy testbed up`: an ordinary inventory (hosts are namespaces with sshd).",
             "[defaults]", f"user = {q(_user())}", 'key_file = "id_ed25519"', 'known_hosts = "known_hosts"',
             f"python = {q(python)}", "connect_timeout_s = 5", ""]
    for i, h in enumerate(plan.hosts, 1):
        lines += [f"[hosts.{h}]", f"address = {q(plan.mgmt_addresses(i)[1])}", "port = 22",
                  f"work_dir = {q(str(out / 'hosts' / h / 'work'))}", ""]
    for j, p in enumerate(plan.paths, 1):
        lines += [f"[paths.{p['name']}]", f"server = {q(p['server'])}", f"client = {q(p['client'])}",
                  f"server_address = {q(plan.data_net(j) + '.1')}", f"description = {q(p['description'])}", ""]
    atomic_write_text(out / "inventory.toml", "\n".join(lines))


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.geteuid()).pw_name


def status(out_dir: str | os.PathLike) -> dict | None:
    f = Path(out_dir) / "testbed.json"
    if not f.exists():
        return None
    st = json.loads(f.read_text())
    st["alive"] = _alive(int(st.get("supervisor_pid", 0)))
    return st


def down(out_dir: str | os.PathLike) -> list[str]:
    """Stop the supervisor (which removes what it created) and sweep what a killed one left. Returns what
    the sweep had to remove."""
    out = Path(out_dir).resolve()
    plan_file = out / "testbed-plan.json"
    if not plan_file.exists():
        raise TestbedError(f"no testbed in {out} (no testbed-plan.json)")
    plan = json.loads(plan_file.read_text())
    st = status(out) or {}
    pid = int(st.get("supervisor_pid", 0) or 0)
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    swept = []
    k = plan["index"]
    for ns in sorted(_netns_list()):
        if ns.startswith(f"gtd{k}-") or ns in set(st.get("link_namespaces", {}).values()):
            _kill_netns_processes(ns)
            _ip("netns", "delete", ns, check=False)
            swept.append(ns)
    for i in range(1, len(plan["hosts"]) + 1):
        name = f"gtd{k}m{i}"
        if os.path.exists(f"/sys/class/net/{name}"):
            _ip("link", "delete", name, check=False)
            swept.append(name)
    for f in ("testbed.json", "ready.json"):
        (out / f).unlink(missing_ok=True)
    (STATE_DIR / f"testbed-{k}.json").unlink(missing_ok=True)
    return swept


# ------------------------------------------------------------------ the supervisor
class _Stop(Exception):
    pass


def _serve(out: Path) -> int:
    plan = TestbedPlan(**json.loads((out / "testbed-plan.json").read_text()))
    plan.supervisor_pid = os.getpid()
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True
        raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    created_ns: list[str] = []
    created_links: list[str] = []
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        try:
            _build(plan, out, stack, created_ns, created_links, procs)
            state = asdict(plan)
            atomic_write_text(out / "testbed.json", json.dumps(state, indent=1))
            atomic_write_text(STATE_DIR / f"testbed-{plan.index}.json", json.dumps(state))
            atomic_write_text(out / "ready.json", json.dumps({"pid": os.getpid()}))
            while not stop["now"]:
                for h, p in zip(plan.hosts, procs):
                    if p.poll() is not None and not getattr(p, "_reported", False):
                        print(f"sshd of {h} exited with status {p.returncode}", flush=True)
                        p._reported = True  # type: ignore[attr-defined]
                time.sleep(0.5)
        except (_Stop, SystemExit):  # SIGTERM/SIGINT (the links turn SIGTERM into SystemExit while open)
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to `up` through error.txt
            atomic_write_text(out / "error.txt", f"testbed: {type(exc).__name__}: {exc}")
            raise
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for ns in created_ns:
                _kill_netns_processes(ns)
                _ip("netns", "delete", ns, check=False)
            for name in created_links:
                if os.path.exists(f"/sys/class/net/{name}"):
                    _ip("link", "delete", name, check=False)
            for p in procs:
                with contextlib.suppress(Exception):
                    p.wait(timeout=2)
            (STATE_DIR / f"testbed-{plan.index}.json").unlink(missing_ok=True)
            # the ExitStack now closes the emulated links (their namespaces and link processes)
    return 0


def _build(plan: TestbedPlan, out: Path, stack: contextlib.ExitStack, created_ns: list, created_links: list,
           procs: list) -> None:
    from emulation import LinkEmulator

    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    for i, h in enumerate(plan.hosts, 1):
        ns = plan.netns(h)
        _ip("netns", "add", ns)
        created_ns.append(ns)
        _ip("link", "set", "lo", "up", netns=ns)
        local, remote = plan.mgmt_addresses(i)
        veth = plan.mgmt_veth(i)
        _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}x", "netns", ns)
        created_links.append(veth)
        _ip("addr", "add", f"{local}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("link", "set", f"{veth}x", "name", "mgmt0", netns=ns)
        _ip("addr", "add", f"{remote}/30", "dev", "mgmt0", netns=ns)
        _ip("link", "set", "mgmt0", "up", netns=ns)
    for j, p in enumerate(plan.paths, 1):
        link = stack.enter_context(LinkEmulator(
            _trace_arg(p["uplink"]), _trace_arg(p["downlink"]), delay_ms=p["delay_ms"],
            uplink_queue=p["uplink_queue"], uplink_queue_args=p["uplink_queue_args"] or None,
            downlink_queue=p["downlink_queue"], downlink_queue_args=p["downlink_queue_args"] or None,
            uplink_loss=p["uplink_loss"], downlink_loss=p["downlink_loss"], isolate_host=True))
        ns_h = os.path.basename(link.host.netns_path)       # the server side of the link
        ns_e = os.path.basename(link.emulated.netns_path)   # the client side of the link
        tun_h = _tun_device(ns_h, link.host.address)
        plan.link_runs[p["name"]] = link.run_name
        plan.link_namespaces[p["name"] + "-server-side"] = ns_h
        plan.link_namespaces[p["name"] + "-client-side"] = ns_e
        net = plan.data_net(j)
        server_ns, client_ns = plan.netns(p["server"]), plan.netns(p["client"])
        vs, vc = f"gtd{plan.index}p{j}s", f"gtd{plan.index}p{j}c"
        _ip("link", "add", vs, "netns", server_ns, "type", "veth", "peer", "name", vs + "x", "netns", ns_h)
        _ip("link", "add", vc, "netns", client_ns, "type", "veth", "peer", "name", vc + "x", "netns", ns_e)
        for ns, dev, addr in ((server_ns, vs, f"{net}.1/30"), (ns_h, vs + "x", f"{net}.2/30"),
                              (ns_e, vc + "x", f"{net}.5/30"), (client_ns, vc, f"{net}.6/30")):
            _ip("addr", "add", addr, "dev", dev, netns=ns)
            _ip("link", "set", dev, "up", netns=ns)
        for ns in (ns_h, ns_e):
            _sysctl(ns, "net.ipv4.ip_forward", "1")
            _sysctl(ns, "net.ipv4.conf.all.rp_filter", "0")
            _sysctl(ns, "net.ipv4.conf.default.rp_filter", "0")
        _ip("route", "add", f"{net}.6/32", "via", f"{net}.2", "dev", vs, netns=server_ns)
        _ip("route", "add", f"{net}.6/32", "via", link.emulated.address, "dev", tun_h, netns=ns_h)
        _ip("route", "add", f"{net}.1/32", "via", f"{net}.5", "dev", vc, netns=client_ns)
        # the link's emulated side already routes everything else (the server) into the link
    for i, h in enumerate(plan.hosts, 1):
        ns = plan.netns(h)
        cfg = out / "hosts" / h / "sshd_config"
        p = subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(cfg)],
                             stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=sys.stdout, start_new_session=True)
        procs.append(p)
        plan.sshd_pids[h] = p.pid
    for i, h in enumerate(plan.hosts, 1):
        _wait_listening(plan.netns(h), plan.mgmt_addresses(i)[1], 22, procs[i - 1], h)


def _trace_arg(v):
    return float(v) if isinstance(v, (int, float)) else v


def _tun_device(ns: str, address: str) -> str:
    res = _ip("-o", "-4", "addr", "show", netns=ns)
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[3].split("/")[0] == address:
            return parts[1].split("@")[0]
    raise TestbedError(f"no device with {address} in namespace {ns}")


def _wait_listening(ns: str, addr: str, port: int, proc: subprocess.Popen, host: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TestbedError(f"sshd of {host} exited with status {proc.returncode} (see testbed.log)")
        res = subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True)
        if addr in res.stdout:
            return
        time.sleep(0.05)
    raise TestbedError(f"sshd of {host} does not listen on {addr}:{port}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        sys.exit(_serve(Path(sys.argv[2])))
    raise SystemExit("usage: python -m deploy.testbed serve OUT_DIR")
