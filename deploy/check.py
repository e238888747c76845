"""``genet deploy check``: can each host of an inventory run campaigns?

Per host: reachable (TCP + SSH banner + key authentication), host key verified against the
inventory's known_hosts, python version, free disk in the work directory, iperf3 present, the
kernel congestion controls allowed, the genet installed by ``deploy push`` (if any), and the
clock offset to this machine (NTP-style exchange over the SSH channel, :meth:`Session.clock_offset`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from deploy.config import HostSpec, Inventory
from deploy.ssh import RemoteError, Session

MIN_PYTHON = (3, 11)
MIN_FREE_DISK_BYTES = 1 << 30


@dataclass
class HostCheck:
    host: str
    address: str
    ok: bool = False
    reachable: bool = False
    host_key: str = ""
    python: str = ""
    free_disk_gib: float = float("nan")
    iperf3: str = ""
    allowed_cc: list[str] = field(default_factory=list)
    genet: str = ""
    clock_offset_ms: float = float("nan")
    clock_rtt_ms: float = float("nan")
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def check_host(host: HostSpec, accept_new: bool = False, need_cc: tuple[str, ...] = ()) -> HostCheck:
    r = HostCheck(host.name, f"{host.user}@{host.address}:{host.port}")
    try:
        with Session(host, accept_new=accept_new) as s:
            r.reachable = True
            r.host_key = s.host_key_fingerprint or ""
            info = s.helper("probe", s.work_dir)
            r.python = info["python"]
            r.free_disk_gib = info["free_disk_bytes"] / 2 ** 30
            r.iperf3 = info["iperf3"] or ""
            r.allowed_cc = info["allowed_cc"]
            r.genet = info["genet"] or ""
            off = s.clock_offset()
            r.clock_offset_ms, r.clock_rtt_ms = off.offset_ms, off.rtt_ms
            if tuple(int(x) for x in r.python.split(".")[:2]) < MIN_PYTHON:
                r.problems.append(f"python {r.python} < {'.'.join(map(str, MIN_PYTHON))} (genet needs it for "
                                  f"`deploy push`)")
            if info["free_disk_bytes"] < MIN_FREE_DISK_BYTES:
                r.problems.append(f"only {r.free_disk_gib:.2f} GiB free in {s.work_dir}")
            if not r.iperf3:
                r.problems.append("iperf3 missing (kernel CC schemes need it: apt-get install iperf3)")
            for tool in ("timeout", "setsid"):
                if not info[tool]:
                    r.problems.append(f"`{tool}` missing (coreutils/util-linux)")
            for cc in need_cc:
                if cc not in r.allowed_cc:
                    r.problems.append(f"congestion control {cc} not allowed "
                                      f"(net.ipv4.tcp_allowed_congestion_control = {' '.join(r.allowed_cc)})")
    except RemoteError as exc:
        r.problems.append(str(exc))
    r.ok = r.reachable and not r.problems
    return r


def check_inventory(inv: Inventory, accept_new: bool = False, need_cc: tuple[str, ...] = ()) -> list[HostCheck]:
    hosts = list(inv.hosts.values())
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as ex:
        return list(ex.map(lambda h: check_host(h, accept_new, need_cc), hosts))


def format_table(rows: list[HostCheck]) -> str:
    head = ["host", "ok", "python", "free GiB", "iperf3", "allowed CC", "genet", "clock offset ms", "rtt ms",
            "host key"]
    body = []
    for r in rows:
        body.append([r.host, "yes" if r.ok else "NO", r.python or "-",
                     f"{r.free_disk_gib:.1f}" if r.free_disk_gib == r.free_disk_gib else "-",
                     "yes" if r.iperf3 else "no", " ".join(r.allowed_cc) or "-", "yes" if r.genet else "no",
                     f"{r.clock_offset_ms:+.3f}" if r.clock_offset_ms == r.clock_offset_ms else "-",
                     f"{r.clock_rtt_ms:.3f}" if r.clock_rtt_ms == r.clock_rtt_ms else "-", r.host_key or "-"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + body]
    for r in rows:
        for p in r.problems:
            lines.append(f"{r.host}: {p}")
    return "\n".join(lines)
