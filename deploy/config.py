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

    use_case = "cc"                  # abr | cc
    schemes = ["cubic", "bbr"]       # cc: kernel algorithm names, const:MBPS, MODEL.onnx; abr: bba, mpc, MODEL.onnx
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
    port = 5201                      # server port (iperf3, receiver, video server)

Every error names the file, the key and what was expected (:class:`ConfigError`). Numbers are finite and in
their ranges; every string is one line of text (no control characters); the file is read by
:func:`genet.tomlfile.read_toml` (size and nesting limits, one-line errors for non-UTF-8 or broken TOML).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genet.errors import BadInputError
from genet.tomlfile import control_char, read_toml, show

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
KERNEL_CC_RE = re.compile(r"[a-z][a-z0-9_]{0,15}")
USE_CASES = ("abr", "cc")
SEED_MAX = 2**32 - 1       # as `genet run` configs (genet/run/schema.py)
TIMEOUT_MAX_S = 86400.0    # one run of a campaign
CONNECT_TIMEOUT_MAX_S = 600.0
KEEPALIVE_MAX_S = 3600.0
ABR_BASELINES = ("bba", "mpc")


class ConfigError(BadInputError):
    """An inventory or campaign file is malformed; the message names file, key and what was expected."""


def _err(path: Path, key: str, expected: str, got: Any = None) -> ConfigError:
    extra = "" if got is None else f", got {show(got)}"
    return ConfigError(f"{path}: {key}: expected {expected}{extra}")


def _name(name: str) -> str:
    """A table or key name as an error shows it: as written, or quoted when it holds a control character or is
    long (the message stays one line)."""
    return name if control_char(name) is None and len(name) <= 64 else show(name)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _load_toml(path: str | os.PathLike) -> tuple[Path, dict]:
    path = Path(path)
    return path, read_toml(path, ConfigError)[0]


class _Table:
    """Typed access to one TOML table that remembers the key path for errors and rejects unknown keys."""

    def __init__(self, path: Path, prefix: str, data: Any):
        if not isinstance(data, dict):
            raise _err(path, prefix or "(top level)", "a table", data)
        self.path, self.prefix, self.data, self.used = path, prefix, data, set()

    def key(self, k: str) -> str:
        return f"{self.prefix}.{_name(k)}" if self.prefix else _name(k)

    def get(self, k: str, kind: type | tuple, default: Any = ..., expected: str | None = None) -> Any:
        self.used.add(k)
        if k not in self.data:
            if default is ...:
                raise _err(self.path, self.key(k), f"{expected or kind.__name__} (missing)")
            return default
        v = self.data[k]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(v, bool) and bool not in kinds:
            raise _err(self.path, self.key(k), expected or "/".join(t.__name__ for t in kinds), v)
        if not isinstance(v, kinds):
            raise _err(self.path, self.key(k), expected or "/".join(t.__name__ for t in kinds), v)
        # every value of these files: a finite number (nan fails every later comparison), one line of text
        if isinstance(v, float) and not math.isfinite(v):
            raise _err(self.path, self.key(k), f"a finite number ({expected or 'not nan or inf'})", v)
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, str) and control_char(item) is not None:
                raise _err(self.path, self.key(k), f"one line of printable text, without the control character "
                                                   f"{control_char(item)!r}", item)
        return v

    def number(self, k: str, lo: float, hi: float, default: Any = ..., kind: type | tuple = (int, float),
               unit: str = "") -> Any:
        """:meth:`get` of a number in [lo, hi] (``unit`` for the message)."""
        expected = f"a number {_num(lo)}-{_num(hi)}{unit}"
        v = self.get(k, kind, default, expected=expected)
        if not lo <= v <= hi:  # (before any float(): a huge integer would overflow)
            raise _err(self.path, self.key(k), expected, v)
        return v

    def finish(self, extra_known: tuple = ()) -> None:
        unknown = sorted(set(self.data) - self.used - set(extra_known))
        if unknown:
            known = ", ".join(sorted(self.used | set(extra_known)))
            raise ConfigError(f"{self.path}: {self.key(unknown[0])}: unknown key (known keys here: {known})")


# ------------------------------------------------------------------ inventory
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


_HOST_KEYS = ("address", "port", "user", "key_file", "known_hosts", "work_dir", "python", "connect_timeout_s",
              "keepalive_s")


def _host_fields(t: _Table, base: dict, inv_dir: Path, require_address: bool) -> dict:
    out = dict(base)
    if require_address or "address" in t.data:
        a = t.get("address", str, expected="a host name or IP address")
        if not a.strip() or any(c.isspace() for c in a):
            raise _err(t.path, t.key("address"), "a host name or IP address without spaces", a)
        out["address"] = a
    if "port" in t.data:
        p = t.get("port", int)
        if not 1 <= p <= 65535:
            raise _err(t.path, t.key("port"), "an integer port 1-65535", p)
        out["port"] = p
    if "user" in t.data:
        u = t.get("user", str)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", u):
            raise _err(t.path, t.key("user"), "a login name (letters, digits, _ . -)", u)
        out["user"] = u
    for k in ("key_file", "known_hosts"):
        if k in t.data:
            v = t.get(k, str, expected="a file path")
            p = Path(os.path.expanduser(v))
            out[k] = str(p if p.is_absolute() else (inv_dir / p))
    if "work_dir" in t.data:
        w = t.get("work_dir", str, expected="a directory path")
        if not w or "\n" in w or "\0" in w:
            raise _err(t.path, t.key("work_dir"), "a non-empty directory path", w)
        out["work_dir"] = w.rstrip("/") or "/"
    if "python" in t.data:
        py = t.get("python", str, expected="an interpreter name or path")
        if not py or any(c.isspace() for c in py):
            raise _err(t.path, t.key("python"), "an interpreter name or path without spaces", py)
        out["python"] = py
    for k, hi in (("connect_timeout_s", CONNECT_TIMEOUT_MAX_S), ("keepalive_s", KEEPALIVE_MAX_S)):
        if k in t.data:
            v = t.get(k, (int, float), expected=f"a number of seconds > 0 and <= {hi:g}")
            if not 0 < v <= hi:
                raise _err(t.path, t.key(k), f"a number of seconds > 0 and <= {hi:g}", v)
            out[k] = float(v)
    return out


def load_inventory(path: str | os.PathLike) -> Inventory:
    """Read and validate an inventory file (nothing connects)."""
    path, data = _load_toml(path)
    top = _Table(path, "", data)
    inv_dir = path.resolve().parent
    base: dict = {"known_hosts": str(inv_dir / "known_hosts")}
    if "defaults" in data:
        d = _Table(path, "defaults", top.get("defaults", dict, expected="a table"))
        base = _host_fields(d, base, inv_dir, require_address=False)
        for k in _HOST_KEYS:
            d.used.add(k)
        if "address" in d.data:
            raise _err(path, "defaults.address", "no address in [defaults] (each host has its own)")
        d.finish()
    hosts_t = top.get("hosts", dict, expected="a table of hosts ([hosts.NAME] sections)")
    if not hosts_t:
        raise _err(path, "hosts", "at least one [hosts.NAME] section")
    hosts: dict[str, HostSpec] = {}
    for name, raw in hosts_t.items():
        if not NAME_RE.fullmatch(name):
            raise _err(path, f"hosts.{_name(name)}", "a name of letters, digits, _ . - (at most 63)")
        t = _Table(path, f"hosts.{name}", raw)
        for k in _HOST_KEYS:
            t.used.add(k)
        t.finish()  # unknown keys first: a misspelt key explains a "missing" one
        fields = _host_fields(t, base, inv_dir, require_address=True)
        hosts[name] = HostSpec(name=name, **fields)
    paths: dict[str, PathSpec] = {}
    paths_t = top.get("paths", dict, default={}, expected="a table of paths ([paths.NAME] sections)")
    for name, raw in paths_t.items():
        if not NAME_RE.fullmatch(name):
            raise _err(path, f"paths.{_name(name)}", "a name of letters, digits, _ . - (at most 63)")
        t = _Table(path, f"paths.{name}", raw)
        server = t.get("server", str, expected="a host name from [hosts]")
        client = t.get("client", str, expected="a host name from [hosts]")
        for k, v in (("server", server), ("client", client)):
            if v not in hosts:
                raise _err(path, t.key(k), f"one of the hosts {', '.join(hosts)}", v)
        addr = t.get("server_address", str, default=hosts[server].address, expected="an address")
        if not addr or any(c.isspace() for c in addr):
            raise _err(path, t.key("server_address"), "an address without spaces", addr)
        desc = t.get("description", str, default="")
        t.finish()
        paths[name] = PathSpec(name, server, client, addr, desc)
    top.finish()
    return Inventory(path, hosts, paths)


# ------------------------------------------------------------------ campaign
@dataclass(frozen=True)
class Scheme:
    """One scheme of a campaign.

    name: as written in the campaign (e.g. cubic, const:5, models/cc/genet.onnx)
    kind: ``kernel`` (iperf3 -C NAME), ``const`` / ``onnx`` (genet sender), ``abr-baseline`` / ``abr-onnx``
          (genet player)
    value: the kernel algorithm, the constant rate in Mbit/s, the model's local path, or the baseline name
    """

    name: str
    kind: str
    value: str

    @property
    def slug(self) -> str:
        """A file-name-safe label (run ids, log names)."""
        base = Path(self.value).stem if self.kind in ("onnx", "abr-onnx") else self.name
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "scheme"

    @property
    def needs(self) -> str | None:
        """The genet command the scheme needs on the remote side (None: only iperf3)."""
        if self.kind in ("const", "onnx"):
            return "sender"
        if self.kind in ("abr-baseline", "abr-onnx"):
            return "player"
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

    def to_json(self) -> dict:
        return {"file": str(self.file), "name": self.name, "use_case": self.use_case,
                "schemes": [s.name for s in self.schemes], "repetitions": self.repetitions,
                "duration_s": self.duration_s, "paths": list(self.paths), "video": self.video, "seed": self.seed,
                "timeout_s": self.timeout_s, "retry_limit": self.retry_limit, "port": self.port,
                "chunks": self.chunks}


def parse_scheme(use_case: str, text: str, base_dir: Path, where: str, file: Path) -> Scheme:
    if not isinstance(text, str) or not text.strip():
        raise _err(file, where, "a scheme name", text)
    if text.endswith(".onnx"):
        p = Path(os.path.expanduser(text))
        p = p if p.is_absolute() else base_dir / p
        try:
            found = p.is_file() and p.resolve()
        except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
            raise _err(file, where, f"an existing ONNX model file ({getattr(exc, 'strerror', None) or exc})",
                       str(p)) from None
        if not found:
            raise _err(file, where, "an existing ONNX model file", str(p))
        return Scheme(text, "onnx" if use_case == "cc" else "abr-onnx", str(found))
    if use_case == "abr":
        if text in ABR_BASELINES:
            return Scheme(text, "abr-baseline", text)
        raise _err(file, where, f"an ABR scheme: {', '.join(ABR_BASELINES)} or MODEL.onnx", text)
    if text.startswith("const:"):
        try:
            rate = float(text[6:])
        except ValueError:
            rate = float("nan")
        if not 0 < rate <= 10000:
            raise _err(file, where, "const:MBPS with a rate in (0, 10000] Mbit/s", text)
        return Scheme(text, "const", repr(rate))
    if KERNEL_CC_RE.fullmatch(text):
        return Scheme(text, "kernel", text)
    raise _err(file, where, "a CC scheme: a kernel algorithm name (bbr, cubic, ...), const:MBPS or MODEL.onnx",
               text)


def load_campaign(path: str | os.PathLike, inventory: Inventory | None = None) -> Campaign:
    """Read and validate a campaign file; with ``inventory``, check its path names too."""
    path, data = _load_toml(path)
    t = _Table(path, "", data)
    base_dir = path.resolve().parent
    use_case = t.get("use_case", str, expected="abr or cc")
    if use_case not in USE_CASES:
        raise _err(path, "use_case", "abr or cc", use_case)
    raw_schemes = t.get("schemes", list, expected="a non-empty list of scheme names")
    if not raw_schemes:
        raise _err(path, "schemes", "a non-empty list of scheme names")
    schemes = tuple(parse_scheme(use_case, s, base_dir, f"schemes[{i}]", path) for i, s in enumerate(raw_schemes))
    slugs = [s.slug for s in schemes]
    dup = {s for s in slugs if slugs.count(s) > 1}
    if dup:
        raise _err(path, "schemes", "distinct schemes", sorted(dup)[0])
    reps = t.get("repetitions", int, default=5)
    if not 1 <= reps <= 1000:
        raise _err(path, "repetitions", "an integer 1-1000", reps)
    duration = float(t.number("duration_s", 1, 3600, default=20.0, unit=" s"))
    paths = t.get("paths", list, default=[], expected="a list of path names")
    for i, p in enumerate(paths):
        if not isinstance(p, str) or not NAME_RE.fullmatch(p):
            raise _err(path, f"paths[{i}]", "a path name", p)
        if inventory is not None and p not in inventory.paths:
            raise _err(path, f"paths[{i}]", f"a path of {inventory.file} ({', '.join(inventory.paths) or 'none'})",
                       p)
    if len(set(paths)) != len(paths):
        raise _err(path, "paths", "distinct path names", paths)
    if inventory is not None and not paths:
        if not inventory.paths:
            raise _err(inventory.file, "paths", "at least one [paths.NAME] section for a campaign")
        paths = list(inventory.paths)
    video = t.get("video", str, default="envivio", expected="a video name")
    if not NAME_RE.fullmatch(video):
        raise _err(path, "video", "a video name (letters, digits, _ . -)", video)
    seed = t.number("seed", 0, SEED_MAX, default=1, kind=int)
    chunks = t.get("chunks", int, default=None, expected="a number of chunks")
    # an ABR session lasts about as long as its video (48 4-s chunks minus the 60-s buffer, plus stalls)
    default_timeout = duration + 30.0 if use_case == "cc" else 60.0 + 6.0 * (chunks or 49)
    timeout = float(t.number("timeout_s", 1, TIMEOUT_MAX_S, default=default_timeout, unit=" s"))
    if use_case == "cc" and not timeout > duration:
        raise _err(path, "timeout_s", f"more seconds than duration_s ({duration:g})", timeout)
    retry = t.get("retry_limit", int, default=2)
    if not 0 <= retry <= 100:
        raise _err(path, "retry_limit", "an integer 0-100", retry)
    port = t.get("port", int, default=5201)
    if not 1024 <= port <= 65535:
        raise _err(path, "port", "an integer port 1024-65535", port)
    if chunks is not None and (use_case != "abr" or not 1 <= chunks <= 10000):
        raise _err(path, "chunks", "a number of chunks 1-10000 (ABR campaigns only)", chunks)
    name = t.get("name", str, default=path.stem)
    if not NAME_RE.fullmatch(name):
        raise _err(path, "name", "a campaign name (letters, digits, _ . -)", name)
    t.finish()
    return Campaign(path, use_case, schemes, reps, duration, tuple(paths), video, seed, timeout, retry, port, name,
                    chunks)
