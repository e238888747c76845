"""Backend ``mahimahi``: the real ``mm-delay``, ``mm-loss`` and ``mm-link`` shells, nested as Genet does.

Command (testbeds.md §1.4; Genet's ABR driver order, delay outermost, link innermost)::

    mm-delay D [mm-loss uplink P] [mm-loss downlink P] mm-link UP DOWN [--once] [--uplink-log=F]
        [--uplink-queue=droptail --uplink-queue-args=packets=20] ... -- CMD

Mahimahi's requirements (§1.7) are checked first and explained: the three
commands on PATH, setuid root, a non-root real user (when we are root, the
shell runs as ``$GENET_MAHIMAHI_USER`` or ``$SUDO_USER`` through ``setpriv``),
and IP forwarding on (we never change that host setting ourselves).

Traces: a Mahimahi file is passed as is; anything else is written to a
temporary Mahimahi file from its :class:`~emulation.config.Schedule`.
``mm-delay`` takes whole milliseconds, so a fractional ``delay_ms`` is refused.

Two modes: with ``command`` (``genet emulate shell --backend mahimahi``) CMD
is mm-link's inner command, exactly as with Mahimahi. Without it (the Python
API) the inner command is a holder process; ``emulated`` commands enter its
network namespace with ``nsenter`` (root), and ``host`` is the root namespace.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time

from emulation.config import EmulationError, LinkSpec, Schedule, TraceLike
from emulation.endpoint import Endpoint, end_process
from emulation.resources import RunRecord, new_run_name, release, state_lock
from emulation.sysnet import is_root, process_start_time
from emulation.backend_base import ProcessLink

MM_TOOLS = ("mm-delay", "mm-loss", "mm-link")
READY_TIMEOUT_S = 20.0


def mahimahi_user() -> str | None:
    """The non-root user to run Mahimahi as when we are root."""
    return os.environ.get("GENET_MAHIMAHI_USER") or os.environ.get("SUDO_USER") or None


def mahimahi_problem() -> str | None:
    """Why Mahimahi cannot run here, with what to do (None: it can)."""
    missing = [t for t in MM_TOOLS if shutil.which(t) is None]
    if missing:
        return (f"Mahimahi is not installed ({', '.join(missing)} not on PATH): apt-get install mahimahi "
                "(the Vagrant VM has it), or use --backend netns")
    for t in MM_TOOLS:
        path = shutil.which(t)
        st = os.stat(path)
        if not (st.st_mode & stat.S_ISUID and st.st_uid == 0):
            return f"{path} must be setuid root: sudo chown root {path} && sudo chmod u+s {path}"
    try:
        forwarding = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    except OSError:
        forwarding = "?"
    if forwarding != "1":
        return "Mahimahi needs IP forwarding on: sudo sysctl -w net.ipv4.ip_forward=1"
    if is_root():
        user = mahimahi_user()
        if not user:
            return ("Mahimahi refuses to run as root ('please run as non-root'): run as a normal user, or set "
                    "GENET_MAHIMAHI_USER=<user> so genet runs the mm shells as that user")
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"GENET_MAHIMAHI_USER/SUDO_USER names an unknown user {user!r}"
        if shutil.which("setpriv") is None:
            return "running Mahimahi as another user needs `setpriv` (util-linux)"
    return None


def schedule_file(schedule: Schedule, directory: str) -> str:
    """Write ``schedule`` as a Mahimahi file (one line per opportunity) and return its path."""
    fd, path = tempfile.mkstemp(prefix="gt-", suffix=".mahi", dir=directory)
    with os.fdopen(fd, "w") as fh:
        for ms, n in zip(schedule.slot_ms, schedule.slot_count):
            fh.write(f"{ms}\n" * n)
    os.chmod(path, 0o644)
    return path


def mm_command(spec: LinkSpec, uplink_path: str, downlink_path: str, inner: list[str]) -> list[str]:
    """The nested mm-* argv for ``spec`` around ``inner`` (pure; see the module docstring)."""
    argv: list[str] = []
    if spec.delay_ms:
        if spec.delay_ms != int(spec.delay_ms):
            raise ValueError(f"mm-delay takes whole milliseconds; got delay_ms={spec.delay_ms} "
                             "(use the netns backend for fractional delays)")
        argv += ["mm-delay", str(int(spec.delay_ms))]
    if spec.uplink.loss_rate:
        argv += ["mm-loss", "uplink", repr(float(spec.uplink.loss_rate))]
    if spec.downlink.loss_rate:
        argv += ["mm-loss", "downlink", repr(float(spec.downlink.loss_rate))]
    argv += ["mm-link", uplink_path, downlink_path]
    if spec.once:
        argv.append("--once")
    for name, d in (("uplink", spec.uplink), ("downlink", spec.downlink)):
        if d.log_path:
            argv.append(f"--{name}-log={d.log_path}")
        if d.queue.kind != "infinite":
            argv += [f"--{name}-queue={d.queue.kind}", f"--{name}-queue-args={d.queue.args_string()}"]
    return argv + ["--"] + list(inner)


class MahimahiLink(ProcessLink):
    """A running Mahimahi shell; use through :class:`emulation.emulator.LinkEmulator`.

    command: run this as mm-link's inner command (stdio inherited) instead of a holder
    """

    backend = "mahimahi"

    def __init__(self, spec: LinkSpec, uplink: TraceLike, downlink: TraceLike, command: list[str] | None = None):
        self.spec = spec
        self.sources = (uplink, downlink)
        self.command = command
        mm_command(spec, "UP", "DOWN", ["true"])  # validates (e.g. fractional delay) before anything runs
        self.run_name = new_run_name()
        self.proc: subprocess.Popen | None = None
        self.record: RunRecord | None = None
        self.emulated: Endpoint | None = None
        self.host: Endpoint | None = None
        self.stats: dict = {}
        self._tmpdir: str | None = None

    def _trace_path(self, source: TraceLike, schedule: Schedule) -> str:
        if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
            from traces.io import detect_format
            if detect_format(source) == "mahimahi":
                return os.path.abspath(source)
        return schedule_file(schedule, self._tmpdir)

    def start(self) -> "MahimahiLink":
        problem = mahimahi_problem()
        if problem:
            raise EmulationError(problem)
        if self.command is None and not is_root():
            raise EmulationError("the Python API's emulated endpoint enters mm-link's namespace with nsenter, "
                                 "which needs root; as a normal user use `genet emulate shell --backend mahimahi "
                                 "-- CMD`")
        self._tmpdir = tempfile.mkdtemp(prefix=f"{self.run_name}-")
        os.chmod(self._tmpdir, 0o755)
        up = self._trace_path(self.sources[0], self.spec.uplink.schedule)
        down = self._trace_path(self.sources[1], self.spec.downlink.schedule)
        inner = self.command or ["sh", "-c", 'echo "GENET-READY $$ $MAHIMAHI_BASE"; exec sleep 2147483647']
        argv = mm_command(self.spec, up, down, inner)
        if is_root():
            user = pwd.getpwnam(mahimahi_user())
            argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"] + argv
        self.record = RunRecord(self.run_name, "mahimahi")
        with state_lock():
            self.record.save()
        try:
            if self.command is not None:
                self.proc = subprocess.Popen(argv)
            else:
                self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                             start_new_session=True)
            self.record.pids.append([self.proc.pid, process_start_time(self.proc.pid) or 0])
            with state_lock():
                self.record.save()
            if self.command is None:
                self._attach_holder()
        except BaseException:
            self.close()
            raise
        return self

    def _attach_holder(self) -> None:
        import select
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.1)[0]:
                line = self.proc.stdout.readline()
                if line.startswith("GENET-READY"):
                    _, pid, base = line.split()
                    netns = f"/proc/{pid}/ns/net"
                    addr = subprocess.run(["nsenter", f"--net={netns}", "ip", "-4", "-o", "addr", "show",
                                           "dev", "ingress"], capture_output=True, text=True).stdout.split()
                    emu = addr[3].split("/")[0] if len(addr) > 3 else ""
                    self.host = Endpoint("host", base, None)
                    self.emulated = Endpoint("emulated", emu, netns, env={"MAHIMAHI_BASE": base})
                    return
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        raise EmulationError(f"Mahimahi did not start: {err.strip() or 'no output'}")

    def close(self) -> None:
        self.close_endpoints()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc._genet_new_session = self.command is None  # type: ignore[attr-defined]
                end_process(self.proc, grace_s=5.0)
            self.stats = {"exit_status": self.proc.returncode}
        if self.record is not None:
            with state_lock():
                release(self.record)
            self.record = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
