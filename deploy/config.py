"""Inventory and campaign files (TOML), validated before anything connects.

Inventory (``examples/inventory-example.toml``)::

    [defaults]                       # optional; every host inherits these keys
    user = "genet"
    key_file = "~/.ssh/id_ed25519"   # relative paths are relative to the inventory file
    known_hosts = "known_hosts"
    [hosts.h1]
    address = "203.0.113.10"         # required
    port = 22
    work_dir = "genet-work"          # remote work directory (relative or ~/...: in the remote home)
    python = "python3"               # remote interpreter that creates the venv
    [paths.p1]
    server = "h1"                    # host names from [hosts]
    client = "h2"
    server_address = "10.0.0.1"      # optional: address the client uses to reach the server over this path
    description = "Stanford -> AWS Brazil"

Campaign (``examples/campaign-cc.toml``)::

    use_case = "cc"                  # abr | cc | lb (the use cases of foundation/usecase.py)
    schemes = ["cubic", "bbr"]       # cc: kernel algorithm names, const:MBPS, MODEL.onnx; abr: bba, mpc, MODEL.onnx;
                                     # lb: an LB policy of genet.lb.registry (least_work, ...) or MODEL.onnx
    repetitions = 5
    duration_s = 20                  # cc: length of one run (abr: unused; a session plays its video)
    paths = ["p1"]                   # optional: default every path of the inventory
    video = "envivio"                # abr: envivio (sized EnvivioDash3 content made on the server) or the
                                     # name of a video folder pushed by `genet deploy push --video DIR`
    chunks = 48                      # abr: play only the first N chunks (default: the whole video)
    seed = 1                         # shuffling of each round's order
    timeout_s = 60                   # one run ends (failed) after this (default: cc duration_s + 30,
                                     # abr 60 + 6 s per chunk)
    retry_limit = 2                  # failed runs are retried this many times by a rerun
    port = 5201                      # server port (iperf3, receiver, video server, balancer)
    # lb only: the workers and the balancer run on the path's server host, the client replays a workload
    service_rates = "0.5,1,2"        # one worker per rate (work units per ms)
    jobs = 2000                      # jobs of each run's workload (Genet's generator, drawn on the client host)
    job_interval_ms = 100            # mean inter-arrival time
    job_size_max_work = 10000        # largest job size
    workload_seed = 0                # round r replays the workload of seed workload_seed + r - 1, every scheme
    time_unit_ms = 1                 # wall-clock ms per workload ms

The keys of each file are declared once, as :data:`INVENTORY`, :data:`CAMPAIGN` and :data:`TESTBED_PATHS`
(:class:`foundation.config.Table` s of :class:`foundation.config.Key` s: type, unit, default, bounds, allowed values, help),
checked by the one config validator (:func:`foundation.config.fill`), and rendered as ``docs/deploy-config.md``
(:func:`render_markdown`: ``python -m deploy.config > docs/deploy-config.md``; a test checks the page is up to
date). This module adds the checks between keys (hosts of a path, schemes, paths of the inventory, files) and builds
the frozen dataclasses. Every error is a :class:`ConfigError` (the one :class:`foundation.config.ConfigError`) naming the
file, the key (``FILE: [hosts.h1] port``; ``FILE: schemes[0]`` at the top level) and what is allowed. Numbers are
finite and in their ranges; every string is one line of text (no control characters); the file is read by
:func:`foundation.tomlfile.read_toml` (size and nesting limits, one-line errors for non-UTF-8 or broken TOML).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from foundation.config import (CHUNKS_MAX, DELAY_MAX_MS, NAME_RE, RATE_MAX_MBPS, RUN_MAX_S, SEED_MAX, ConfigError, Key,
                          Table, bad_value, fill, markdown, read)
from foundation.usecase import USE_CASES as DECLARED_USE_CASES

__all__ = ["CAMPAIGN", "INVENTORY", "TESTBED_PATHS", "Campaign", "ConfigError", "HostSpec", "Inventory", "PathSpec",
           "Scheme", "load_campaign", "load_inventory", "parse_scheme", "render_markdown"]

KERNEL_CC_RE = re.compile(r"[a-z][a-z0-9_]{0,15}")
#: The use cases a campaign may run: every declared one (foundation/usecase.py; each names its scheme runner).
USE_CASES = tuple(DECLARED_USE_CASES.names())
#: Keys of an LB campaign only (the workers, the balancer and the workload of each run).
LB_KEYS = ("service_rates", "jobs", "job_interval_ms", "job_size_max_work", "workload_seed", "time_unit_ms")
LB_JOBS_MAX = 1_000_000    # traces/workload.py MAX_WORKLOAD_JOBS
LB_TIME_UNIT_MAX_MS = 1000.0
#: How a campaign's runs may overlap (``parallel``).
PARALLEL_MODES = ("none", "disjoint-paths")
MAX_LANES = 1000           # runs at once of a disjoint-paths campaign (one thread each in the controller)
TIMEOUT_MAX_S = 86400.0    # one run of a campaign
CONNECT_TIMEOUT_MAX_S = 600.0
KEEPALIVE_MAX_S = 3600.0
ABR_BASELINES = ("bba", "mpc")
ONE_WORD = r"\S+"          # an address, an interpreter: no spaces
LOGIN_RE = r"[A-Za-z_][A-Za-z0-9_.-]*"
TESTBED_PATH_RE = r"[A-Za-z0-9_-]{1,16}"
TESTBED_PATHS_MAX = 15  # path j of testbed K has the data net 100.66.(16K + j).0/24 (deploy/testbed.py)
# hosts of one local SSH testbed (deploy/testbed.py): host i's management link is the /30 100.65.K.4(i-1) inside
# the testbed's /24 100.65.K.0 (K = the testbed's index), so 64 hosts fill it; each host is one idle sshd
TESTBED_HOSTS_MAX = 64

# ------------------------------------------------------------------ the records
@dataclass(frozen=True)
class HostSpec:
    """One remote host.

    name: inventory name (e.g. h1)
    address: DNS name or IP the controller connects to (e.g. 203.0.113.10)
    port: SSH port (default 22)
    user: login user
    key_file: private key file (absolute path on this machine)
    known_hosts: known_hosts file that holds (and with --accept-new receives) the host keys
    work_dir: remote work directory (relative: to the remote home; ``~`` is expanded on the host)
    python: remote interpreter (default python3)
    connect_timeout_s: TCP connect / banner / auth timeout (default 10)
    keepalive_s: SSH keepalive interval on open sessions (default 5)
    """

    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str = ""
    work_dir: str = "genet-work"
    python: str = "python3"
    connect_timeout_s: float = 10.0
    keepalive_s: float = 5.0

    @property
    def label(self) -> str:
        return f"{self.name} ({self.user}@{self.address}:{self.port})"

    def to_json(self) -> dict:
        return {"name": self.name, "address": self.address, "port": self.port, "user": self.user,
                "work_dir": self.work_dir, "python": self.python}


@dataclass(frozen=True)
class PathSpec:
    """A wide-area path between two hosts.

    name: inventory name (e.g. p1)
    server: host that runs the server side (receiver, iperf3 -s, video server)
    client: host that runs the client side (sender, iperf3 -c, player)
    server_address: address the client uses to reach the server (default: the server's address)
    description: free text (e.g. "constant 12 Mbit/s, 20 ms")
    """

    name: str
    server: str
    client: str
    server_address: str
    description: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "server": self.server, "client": self.client,
                "server_address": self.server_address, "description": self.description}


@dataclass(frozen=True)
class Inventory:
    file: Path
    hosts: dict[str, HostSpec]
    paths: dict[str, PathSpec]

    def host(self, name: str) -> HostSpec:
        return self.hosts[name]


@dataclass(frozen=True)
class Scheme:
    """One scheme of a campaign.

    name: as written in the campaign (e.g. cubic, const:5, models/cc/genet.onnx)
    kind: ``kernel`` (iperf3 -C NAME), ``const`` / ``onnx`` (genet sender), ``abr-baseline`` / ``abr-onnx``
          (genet player), ``lb-baseline`` / ``lb-onnx`` (genet balancer: ``USECASE-baseline`` / ``USECASE-onnx``
          for the use cases besides CC)
    value: the kernel algorithm, the constant rate in Mbit/s, the model's local path, or the baseline name
    """

    name: str
    kind: str
    value: str

    @property
    def slug(self) -> str:
        """A file-name-safe label (run ids, log names)."""
        base = Path(self.value).stem if self.kind.endswith("onnx") else self.name
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "scheme"

    @property
    def needs(self) -> str | None:
        """The genet command the scheme needs on the remote side (None: only iperf3)."""
        if self.kind in ("const", "onnx"):
            return "sender"
        if self.kind in ("abr-baseline", "abr-onnx"):
            return "player"
        if self.kind in ("lb-baseline", "lb-onnx"):
            return "balancer"
        return None


@dataclass(frozen=True)
class Campaign:
    file: Path
    use_case: str
    schemes: tuple[Scheme, ...]
    repetitions: int = 5
    duration_s: float = 20.0
    paths: tuple[str, ...] = ()
    video: str = "envivio"
    seed: int = 1
    timeout_s: float = 50.0
    retry_limit: int = 2
    port: int = 5201
    name: str = field(default="")
    chunks: int | None = None
    parallel: str = "none"
    #: parallel = "disjoint-paths": at most this many runs at once (None: one per lane, every lane at once)
    max_lanes: int | None = None
    service_rates: tuple[float, ...] = (0.5, 1.0, 2.0)
    jobs: int = 2000
    job_interval_ms: float = 100.0
    job_size_max_work: float = 10000.0
    workload_seed: int = 0
    time_unit_ms: float = 1.0

    def to_json(self) -> dict:
        out = {"file": str(self.file), "name": self.name, "use_case": self.use_case,
               "schemes": [s.name for s in self.schemes], "repetitions": self.repetitions,
               "duration_s": self.duration_s, "paths": list(self.paths), "video": self.video, "seed": self.seed,
               "timeout_s": self.timeout_s, "retry_limit": self.retry_limit, "port": self.port,
               "chunks": self.chunks, "parallel": self.parallel, "max_lanes": self.max_lanes}
        if self.use_case == "lb":
            out.update({k: getattr(self, k) for k in LB_KEYS}, service_rates=list(self.service_rates))
        return out

    def lb_run_s(self) -> float:
        """LB: about how long one run lasts (s): the workload's arrivals, then its expected work drained by all
        the workers, in wall-clock time."""
        mean_size = (min(10.0, self.job_size_max_work) + self.job_size_max_work) / 2
        ms = self.jobs * self.job_interval_ms + self.jobs * mean_size / sum(self.service_rates)
        return ms * self.time_unit_ms / 1000.0


@dataclass(frozen=True)
class TestbedPath:
    """One emulated path of the local SSH testbed (:mod:`deploy.testbed`; ``uplink`` is client -> server).

    uplink / downlink: a trace file or a constant rate in Mbit/s (e.g. 12)
    delay_ms: one-way delay per direction (RTT = 2 x delay_ms)
    *_queue, *_queue_args: mm-link queue (e.g. droptail, "packets=60")
    *_loss: Bernoulli loss per direction (0-1)
    """

    name: str
    server: str
    client: str
    uplink: str | float = 12.0
    downlink: str | float = 12.0
    delay_ms: float = 20.0
    uplink_queue: str = "droptail"
    uplink_queue_args: str = "packets=60"
    downlink_queue: str = "droptail"
    downlink_queue_args: str = "packets=60"
    uplink_loss: float = 0.0
    downlink_loss: float = 0.0
    description: str = ""


# ------------------------------------------------------------------ the schemas
def _defaults(record: type) -> dict:
    """A record's field defaults: a schema's defaults are its record's (one definition)."""
    return {f.name: f.default for f in fields(record)}


_HOST, _PATH, _CAMPAIGN, _TESTBED = (_defaults(r) for r in (HostSpec, PathSpec, Campaign, TestbedPath))

_HOST_KEYS = {
    "address": Key("str", None, "DNS name or IP address the controller connects to (one word, without spaces)",
                   required=True, pattern=ONE_WORD, pattern_help="a host name or IP address without spaces"),
    "port": Key("int", _HOST["port"], "SSH port", minimum=1, maximum=65535),
    "user": Key("str", _HOST["user"], "login user on the host", pattern=LOGIN_RE,
                pattern_help="a login name (letters, digits, _ . -)"),
    "key_file": Key("path", _HOST["key_file"], "private key file (relative: to the inventory's folder; `~` "
                                               "expanded; not given: the SSH agent and the default keys)"),
    "known_hosts": Key("path", "known_hosts", "known_hosts file that holds (and with `--accept-new` receives) the "
                                              "host keys (relative: to the inventory's folder)"),
    "work_dir": Key("str", _HOST["work_dir"], "remote work directory (relative or `~/...`: in the remote home, "
                                              "expanded on the host)", pattern=r".+",
                    pattern_help="a non-empty directory path"),
    "python": Key("str", _HOST["python"], "remote interpreter (>= 3.11) that creates WORK_DIR/venv: a name or "
                                          "path, without spaces", pattern=ONE_WORD,
                  pattern_help="an interpreter name or path without spaces"),
    "connect_timeout_s": Key("float", _HOST["connect_timeout_s"], "TCP connect / banner / authentication timeout",
                             unit="s", minimum=0, min_exclusive=True, maximum=CONNECT_TIMEOUT_MAX_S),
    "keepalive_s": Key("float", _HOST["keepalive_s"], "SSH keepalive interval on open sessions", unit="s",
                       minimum=0, min_exclusive=True, maximum=KEEPALIVE_MAX_S),
}

INVENTORY = Table(help="An inventory (TOML): the hosts the controller reaches over SSH and the paths between them.",
                  keys={
    "defaults": Table(partial=True, keys={k: v for k, v in _HOST_KEYS.items() if k != "address"},
                      help="Keys every host inherits unless it sets its own: every key of `[hosts.NAME]` but "
                           "`address` (optional)."),
    "hosts": Table(named=True, partial=True, keys=_HOST_KEYS,
                   help="The hosts, one sub-table each (at least one): `[hosts.NAME]`. NAME labels the host in "
                        "paths, tables and logs."),
    "paths": Table(named=True, help="Wide-area paths between two hosts, one sub-table each: `[paths.NAME]` (a "
                                    "campaign runs on them).", keys={
        "server": Key("str", None, "host (a NAME from `[hosts]`) that runs the server side: receiver, "
                                   "`iperf3 -s`, video server", required=True),
        "client": Key("str", None, "host (a NAME from `[hosts]`) that runs the client side: sender, "
                                   "`iperf3 -c`, player", required=True),
        "server_address": Key("str", None, "address the client uses to reach the server over this path (not given: "
                                           "the server host's `address`)", pattern=ONE_WORD,
                              pattern_help="an address without spaces"),
        "description": Key("str", _PATH["description"], "free text (e.g. `Stanford -> AWS Brazil`)"),
    }),
})

CAMPAIGN = Table(help="A campaign (TOML): which schemes run how often on which paths.", keys={
    "use_case": Key("str", None, "use case", allowed=USE_CASES, required=True),
    "schemes": Key("list[str]", None, "schemes to run (at least one, distinct): cc: a kernel algorithm name "
                                      "(`iperf3 -C NAME`, e.g. bbr, cubic), `const:MBPS` (a constant rate, > 0 and "
                                      f"<= {RATE_MAX_MBPS:g} Mbit/s) or `MODEL.onnx`; abr: bba, mpc or "
                                      "`MODEL.onnx`; lb: an LB policy (least_work, sed, jsq, power_of_two, "
                                      "round_robin, random) or `MODEL.onnx` (relative: to the campaign's folder)",
                   required=True),
    "repetitions": Key("int", _CAMPAIGN["repetitions"], "rounds; every round runs every scheme on every path, "
                                                        "shuffled", unit="count", minimum=1, maximum=1000),
    "duration_s": Key("float", _CAMPAIGN["duration_s"], "cc: length of one run (abr: unused; a session plays its "
                                                        "video)", unit="s", minimum=1, maximum=RUN_MAX_S),
    "paths": Key("list[str]", [], "path names of the inventory to run on, distinct (not given: every path)",
                 pattern=NAME_RE, pattern_help="path names (letters, digits, _ . -)"),
    "video": Key("str", _CAMPAIGN["video"], "abr: `envivio` (sized EnvivioDash3 content made on the server) or the "
                                            "name of a video folder pushed by `genet deploy push --video DIR`",
                 pattern=NAME_RE, pattern_help="a video name (letters, digits, _ . -)"),
    "seed": Key("int", _CAMPAIGN["seed"], "seed of each round's shuffled order", minimum=0, maximum=SEED_MAX),
    "chunks": Key("int", _CAMPAIGN["chunks"], "abr only: play only the first N chunks (4 s each; not given: the "
                                              "whole video)", unit="count", minimum=1, maximum=CHUNKS_MAX),
    "timeout_s": Key("float", None, "a run ends (failed) after this (not given: cc `duration_s` + 30, abr 60 + 6 s "
                                    "per chunk, lb 60 + 3 x the workload's arrivals and expected work drained by "
                                    "all the workers); cc: more than `duration_s`", unit="s", minimum=1,
                     maximum=TIMEOUT_MAX_S),
    "retry_limit": Key("int", _CAMPAIGN["retry_limit"], "failed runs are retried this many times by a rerun",
                       unit="count", minimum=0, maximum=100),
    "port": Key("int", _CAMPAIGN["port"], "server port (iperf3, receiver, video server, balancer)", minimum=1024,
                maximum=65535),
    "name": Key("str", None, "campaign name (not given: the file's name without `.toml`)", pattern=NAME_RE,
                pattern_help="a campaign name (letters, digits, _ . -)"),
    "parallel": Key("str", _CAMPAIGN["parallel"], "`none`: every run back to back; `disjoint-paths`: paths that "
                                                  "share no host run at once, each path's runs back to back in the "
                                                  "shuffled order", allowed=PARALLEL_MODES),
    "max_lanes": Key("int", None, "disjoint-paths only: at most this many runs at once (not given: every lane of "
                                  "disjoint paths at once); a local testbed's links share this machine's cores "
                                  "(12 links of 12 Mbit/s took 1.7 of 2 cores here)", unit="count", minimum=1,
                     maximum=MAX_LANES),
    "service_rates": Key("str", "0.5,1,2", "lb only: the workers' service rates, comma-separated: one worker "
                                           "each (1-64), all on the path's server host with the balancer",
                         unit="work units/ms", pattern=r"[0-9.eE+]+( *, *[0-9.eE+]+)*",
                         pattern_help="comma-separated positive numbers, e.g. 0.5,1,2"),
    "jobs": Key("int", _CAMPAIGN["jobs"], "lb only: jobs of each run's workload (Genet's generator, drawn on the "
                                          "client host)", unit="count", minimum=1, maximum=LB_JOBS_MAX),
    "job_interval_ms": Key("float", _CAMPAIGN["job_interval_ms"], "lb only: mean inter-arrival time of the jobs",
                           unit="ms", minimum=0, min_exclusive=True, maximum=1e6),
    "job_size_max_work": Key("float", _CAMPAIGN["job_size_max_work"], "lb only: largest job size (sizes uniform "
                                                                      "on [10, this])", unit="work units",
                             minimum=1, maximum=1e7),
    "workload_seed": Key("int", _CAMPAIGN["workload_seed"], "lb only: round r replays the workload of seed "
                                                            "`workload_seed` + r - 1, with every scheme", minimum=0,
                         maximum=SEED_MAX),
    "time_unit_ms": Key("float", _CAMPAIGN["time_unit_ms"], "lb only: wall-clock ms per workload ms (0.5: twice "
                                                            "as fast as real time)", unit="ms", minimum=0,
                        min_exclusive=True, maximum=LB_TIME_UNIT_MAX_MS),
})


def _link(direction: str) -> dict:
    """The keys of one direction of a testbed path."""
    return {
        direction: Key("float|path", _TESTBED[direction], "a trace file (relative: to this file's folder) or a "
                                                          "constant rate", unit="Mbit/s", minimum=0,
                       min_exclusive=True, maximum=RATE_MAX_MBPS),
        f"{direction}_queue": Key("str", _TESTBED[f"{direction}_queue"], f"mm-link queue of the {direction}"),
        f"{direction}_queue_args": Key("str", _TESTBED[f"{direction}_queue_args"], f"mm-link queue arguments of "
                                                                                   f"the {direction}"),
        f"{direction}_loss": Key("float", _TESTBED[f"{direction}_loss"], f"Bernoulli loss of the {direction}",
                                 unit="0-1", minimum=0, maximum=1),
    }


TESTBED_PATHS = Table(help="A testbed paths file (TOML): the emulated paths of the local SSH testbed.", keys={
    "paths": Table(named=True, name_pattern=TESTBED_PATH_RE, name_help="a path name of 1-16 letters, digits, '_', "
                                                                       "'-'",
                   help=f"The paths, one sub-table each (1 to {TESTBED_PATHS_MAX}): `[paths.NAME]`; the uplink is "
                        "client -> server, the downlink server -> client.", keys={
        "server": Key("str", None, "testbed host (`h1`, `h2`, ...) that runs the server side", required=True),
        "client": Key("str", None, "testbed host that runs the client side (not the server)", required=True),
        **_link("uplink"),
        **_link("downlink"),
        "delay_ms": Key("float", _TESTBED["delay_ms"], "one-way delay per direction (RTT = 2 x delay_ms)", unit="ms",
                        minimum=0, maximum=DELAY_MAX_MS),
        "description": Key("str", _TESTBED["description"], "free text"),
    }),
})


# ------------------------------------------------------------------ inventory
def load_inventory(path: str | os.PathLike) -> Inventory:
    """Read and validate an inventory file (nothing connects)."""
    path = Path(path)
    data, _ = read(path)
    if isinstance(data.get("defaults"), dict) and "address" in data["defaults"]:
        raise bad_value(path, "defaults", "address", "no address in [defaults] (each host has its own)")
    cfg = fill(INVENTORY, data, path)
    if not cfg["hosts"]:
        raise bad_value(path, "", "hosts", "at least one [hosts.NAME] section")
    inv_dir = path.resolve().parent
    base = {k: key.default for k, key in _HOST_KEYS.items() if not key.required}
    base.update(cfg["defaults"])
    hosts: dict[str, HostSpec] = {}
    for name, given in cfg["hosts"].items():
        spec = {**base, **given}
        for k in ("key_file", "known_hosts"):  # relative: to the inventory's folder
            if spec[k] is not None:
                p = Path(os.path.expanduser(spec[k]))
                spec[k] = str(p if p.is_absolute() else inv_dir / p)
        spec["work_dir"] = spec["work_dir"].rstrip("/") or "/"
        hosts[name] = HostSpec(name=name, **spec)
    paths: dict[str, PathSpec] = {}
    for name, p in cfg["paths"].items():
        for k in ("server", "client"):
            if p[k] not in hosts:
                raise bad_value(path, f"paths.{name}", k, f"one of the hosts {', '.join(hosts)}", p[k])
        address = p["server_address"] if p["server_address"] is not None else hosts[p["server"]].address
        paths[name] = PathSpec(name, p["server"], p["client"], address, p["description"])
    return Inventory(path, hosts, paths)


# ------------------------------------------------------------------ campaign
def parse_scheme(use_case: str, text: str, base_dir: Path, where: str, file: Path) -> Scheme:
    """One scheme of a campaign (``where``: its key, e.g. ``schemes[0]``)."""
    if not isinstance(text, str) or not text.strip():
        raise bad_value(file, "", where, "a scheme name", text)
    if text.endswith(".onnx"):
        p = Path(os.path.expanduser(text))
        p = p if p.is_absolute() else base_dir / p
        try:
            found = p.is_file() and p.resolve()
        except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
            raise bad_value(file, "", where, f"an existing ONNX model file "
                                             f"({getattr(exc, 'strerror', None) or exc})", str(p)) from None
        if not found:
            raise bad_value(file, "", where, "an existing ONNX model file", str(p))
        return Scheme(text, "onnx" if use_case == "cc" else f"{use_case}-onnx", str(found))
    if use_case == "abr":
        if text in ABR_BASELINES:
            return Scheme(text, "abr-baseline", text)
        raise bad_value(file, "", where, f"an ABR scheme: {', '.join(ABR_BASELINES)} or MODEL.onnx", text)
    if use_case != "cc":  # a policy of the use case's own registry, decided on by its real-server side
        from foundation.usecase import use_case as declared
        names = [n for n in declared(use_case).policy_registry().names() if not n.endswith(".onnx")]
        if text in names:
            return Scheme(text, f"{use_case}-baseline", text)
        raise bad_value(file, "", where, f"an {use_case.upper()} scheme: {', '.join(names)} or MODEL.onnx", text)
    if text.startswith("const:"):
        try:
            rate = float(text[6:])
        except ValueError:
            rate = float("nan")
        if not 0 < rate <= RATE_MAX_MBPS:  # (nan fails too)
            raise bad_value(file, "", where, f"const:MBPS with a rate in (0, {RATE_MAX_MBPS:g}] Mbit/s", text)
        return Scheme(text, "const", repr(rate))
    if KERNEL_CC_RE.fullmatch(text):
        return Scheme(text, "kernel", text)
    raise bad_value(file, "", where, "a CC scheme: a kernel algorithm name (bbr, cubic, ...), const:MBPS or "
                                     "MODEL.onnx", text)


def load_campaign(path: str | os.PathLike, inventory: Inventory | None = None) -> Campaign:
    """Read and validate a campaign file; with ``inventory``, check its path names too."""
    path = Path(path)
    raw = read(path)[0]
    c = fill(CAMPAIGN, raw, path)
    use_case = c["use_case"]
    if use_case != "lb":
        for k in LB_KEYS:
            if k in raw:
                raise bad_value(path, "", k, f"no {k} in a {use_case.upper()} campaign (LB campaigns only)", c[k])
    if not c["schemes"]:
        raise bad_value(path, "", "schemes", "a non-empty list of scheme names")
    base_dir = path.resolve().parent
    schemes = tuple(parse_scheme(use_case, s, base_dir, f"schemes[{i}]", path) for i, s in enumerate(c["schemes"]))
    slugs = [s.slug for s in schemes]
    dup = {s for s in slugs if slugs.count(s) > 1}
    if dup:
        raise bad_value(path, "", "schemes", "distinct schemes", sorted(dup)[0])
    paths = c["paths"]
    if inventory is not None:
        for i, p in enumerate(paths):
            if p not in inventory.paths:
                raise bad_value(path, "", f"paths[{i}]", f"a path of {inventory.file} "
                                                         f"({', '.join(inventory.paths) or 'none'})", p)
    if len(set(paths)) != len(paths):
        raise bad_value(path, "", "paths", "distinct path names", paths)
    if inventory is not None and not paths:
        if not inventory.paths:
            raise bad_value(inventory.file, "", "paths", "at least one [paths.NAME] section for a campaign")
        paths = list(inventory.paths)
    chunks = c["chunks"]
    if chunks is not None and use_case != "abr":
        raise bad_value(path, "", "chunks", "no chunks in a CC campaign (ABR campaigns only)", chunks)
    duration = c["duration_s"]
    timeout = c["timeout_s"]
    lb: dict = {}
    if use_case == "lb":
        from balancer.cluster import parse_rates
        from foundation.errors import BadInputError
        try:
            lb["service_rates"] = parse_rates(c["service_rates"], "service_rates")
        except BadInputError as exc:
            raise bad_value(path, "", "service_rates", str(exc).split(": ", 1)[-1], c["service_rates"]) from None
        lb.update({k: c[k] for k in LB_KEYS if k != "service_rates"})
    if timeout is None and use_case == "lb":
        run_s = Campaign(path, use_case, schemes, **lb).lb_run_s()
        timeout = min(TIMEOUT_MAX_S, 60.0 + 3.0 * run_s)
    elif timeout is None:  # an ABR session lasts about as long as its video (48 4-s chunks minus the 60-s buffer,
        timeout = duration + 30.0 if use_case == "cc" else 60.0 + 6.0 * (chunks or 49)  # plus stalls)
    elif use_case == "cc" and not timeout > duration:
        raise bad_value(path, "", "timeout_s", f"more seconds than duration_s ({duration:g})", timeout)
    if c["max_lanes"] is not None and c["parallel"] != "disjoint-paths":
        raise bad_value(path, "", "max_lanes", 'parallel = "disjoint-paths" (it caps how many of its lanes run at '
                                               "once)", c["max_lanes"])
    name = c["name"]
    if name is None:
        name = path.stem
        if not re.fullmatch(NAME_RE, name):
            raise bad_value(path, "", "name", "a campaign name (letters, digits, _ . -; not given: the file's name, "
                                              "which is not one)", name)
    return Campaign(path, use_case, schemes, c["repetitions"], duration, tuple(paths), c["video"], c["seed"], timeout,
                    c["retry_limit"], c["port"], name, chunks, c["parallel"], c["max_lanes"], **lb)


# ------------------------------------------------------------------ testbed paths
def load_testbed_paths(path: str | os.PathLike, hosts: list[str]) -> list[TestbedPath]:
    """A testbed paths file (:data:`TESTBED_PATHS`) whose paths join the testbed hosts ``hosts``."""
    path = Path(path)
    cfg = fill(TESTBED_PATHS, read(path)[0], path)
    out = []
    for name, p in cfg["paths"].items():
        where = f"paths.{name}"
        for k in ("server", "client"):
            if p[k] not in hosts:
                raise bad_value(path, where, k, f"a testbed host ({', '.join(hosts)})", p[k])
        if p["server"] == p["client"]:
            raise bad_value(path, where, "client", "a host other than the server", p["client"])
        for k in ("uplink", "downlink"):
            if isinstance(p[k], str):  # a trace file (relative: to this file's folder)
                trace = Path(p[k]) if Path(p[k]).is_absolute() else path.resolve().parent / p[k]
                if not os.path.exists(trace):  # (False, not OSError, for a name too long)
                    raise bad_value(path, where, k, "an existing trace file", str(trace))
                p[k] = str(trace)
        out.append(TestbedPath(name, **p))
    if not out:
        raise bad_value(path, "", "paths", "at least one path ([paths.NAME] sections)")
    if len(out) > TESTBED_PATHS_MAX:
        raise bad_value(path, "", "paths", f"at most {TESTBED_PATHS_MAX} paths", len(out))
    return out


# ------------------------------------------------------------------ the reference page
def render_markdown() -> str:
    """``docs/deploy-config.md``: every table and key of :data:`INVENTORY`, :data:`CAMPAIGN`, :data:`TESTBED_PATHS`."""
    lines = ["# Inventory, campaign and testbed paths reference", "",
             "<!-- generated from deploy/config.py by `python -m deploy.config > docs/deploy-config.md`; "
             "a test checks it is up to date -->", "",
             "`genet deploy` reads three kinds of TOML file, and validates each in full before anything connects "
             "(an error is one line naming the file, the key and what is allowed). Numbers are finite and within "
             "their bounds; names, paths and words are one line of printable text. Relative paths are relative to "
             "the file's folder. `genet run` writes the campaign of its deploy stage from the run config "
             "(docs/run-config.md).", ""]
    for title, table, use in (
            ("Inventory", INVENTORY, "`genet deploy check|push|run --inventory FILE`; `genet deploy testbed up` "
                                     "writes one. Example: `examples/inventory-example.toml`."),
            ("Campaign", CAMPAIGN, "`genet deploy run CAMPAIGN.toml`. Examples: `examples/campaign-cc.toml`, "
                                   "`examples/campaign-abr.toml`, `examples/campaign-lb.toml`."),
            ("Testbed paths", TESTBED_PATHS, "`genet deploy testbed up --paths FILE` (not given: the default "
                                             "paths, `genet deploy testbed up --help`).")):
        lines.extend([f"## {title}", "", f"{table.help} Read by {use}", ""])
        lines.extend(markdown(table, level=3))
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown())
