"""Backend ``mahimahi``: the real ``mm-delay``, ``mm-loss`` and ``mm-link`` shells, nested as Genet does.

Command (testbeds.md §1.4; Genet's ABR driver order, delay outermost, link innermost)::

    mm-delay D [mm-loss uplink P] [mm-loss downlink P] mm-link UP DOWN [--once] [--uplink-log=F]
        [--uplink-queue=droptail --uplink-queue-args=packets=20] ... -- CMD

Mahimahi's requirements (§1.7) are checked first and explained: the three
commands on PATH (or in ``$GENET_MAHIMAHI_BIN``, or ``/opt/mahimahi/bin`` where
``scripts/provision.sh`` builds them), setuid root, a non-root real user (when we
are root, the shell runs as ``$GENET_MAHIMAHI_USER``, ``$SUDO_USER`` or the user
``mahimahi`` that provisioning creates, through ``setpriv``), and IP forwarding on
(we never change that host setting ourselves).

What runs inside runs as that user, so it must be able to execute CMD: a
virtual environment whose interpreter lives under ``/root`` (pyenv) is not
runnable by it; we check ``CMD[0]`` (and the working directory) as that user
before starting, and say so. Use system binaries (iperf3, ping) or an
interpreter the user can read.

Differences of real Mahimahi that this backend hides, so that
``genet emulate shell --backend mahimahi`` behaves as ``--backend netns``:

* exit status: Mahimahi turns a non-zero status of CMD into 1 (plus "Died on"
  lines) and exits 0 when a ``--once`` trace ends. CMD runs under a small
  ``sh`` wrapper that writes its status to a file in our private run directory;
  the shell then reports CMD's own status, 77 when the trace ended first
  (Mahimahi ended without CMD finishing), or Mahimahi's own status when it
  failed before CMD ran (:meth:`MahimahiLink.command_status`).
* log files: mm-link opens ``--uplink-log``/``--downlink-log`` after dropping
  to the non-root user, so a path that user cannot write (a 0700 pytest
  ``tmp_path``, a root-only folder) kills it. When we are root, mm-link writes
  into the run directory (owned by that user) and the logs are copied to the
  requested paths when the link closes, their ``> LOG_PATH`` header naming the
  requested path (the ``# command line:`` header keeps mm-link's real argv).
  When we are not root, the requested folder must be writable by us (checked first).

Traces: a Mahimahi file is passed as is; anything else is written to a
temporary Mahimahi file from its :class:`~emulation.config.Schedule`.
``mm-delay`` takes whole milliseconds, so a fractional ``delay_ms`` is refused.

Two modes: with ``command`` (``genet emulate shell --backend mahimahi``) CMD
is mm-link's inner command, exactly as with Mahimahi. Without it (the Python
API) the inner command is a holder process; ``emulated`` commands enter its
network namespace with ``nsenter`` (root), and ``host`` is the root namespace.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import dataclasses
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings

from emulation.config import EmulationError, LinkSpec, Schedule, TraceLike
from emulation.endpoint import Endpoint, end_process
from emulation.resources import RunRecord, new_run_name, release, state_lock
from emulation.sysnet import is_root, process_start_time
from emulation.backend_base import ProcessLink

MM_TOOLS = ("mm-delay", "mm-loss", "mm-link")
READY_TIMEOUT_S = 20.0
#: where scripts/provision.sh installs Mahimahi (built from ../shared/vendor), searched after PATH
DEFAULT_BIN_DIRS = ("/opt/mahimahi/bin",)
#: the runtime user scripts/provision.sh creates (MM_RUNTIME_USER), used when we are root and nothing else is set
DEFAULT_USER = "mahimahi"
#: CMD's wrapper inside mm-link: run it, write its exit status to $1, end normally (Mahimahi would say 1)
_STATUS_WRAPPER = ('f=$1; shift; readlink /proc/$$/ns/net > "$f.netns"; "$@"; s=$?; echo "$s" > "$f"; exit 0')


def mahimahi_search_path() -> str:
    """PATH, then $GENET_MAHIMAHI_BIN, then the provisioned prefix."""
    extra = [os.environ["GENET_MAHIMAHI_BIN"]] if os.environ.get("GENET_MAHIMAHI_BIN") else []
    return os.pathsep.join([os.environ.get("PATH", os.defpath)] + extra + list(DEFAULT_BIN_DIRS))


def mahimahi_bin_dir() -> str | None:
    """The folder holding mm-link (None: not installed)."""
    path = shutil.which("mm-link", path=mahimahi_search_path())
    return os.path.dirname(path) if path else None


def mahimahi_user() -> str | None:
    """The non-root user to run Mahimahi as when we are root."""
    user = os.environ.get("GENET_MAHIMAHI_USER") or os.environ.get("SUDO_USER")
    if user:
        return user
    try:
        pwd.getpwnam(DEFAULT_USER)
        return DEFAULT_USER
    except KeyError:
        return None


def mahimahi_problem() -> str | None:
    """Why Mahimahi cannot run here, with what to do (None: it can)."""
    search = mahimahi_search_path()
    missing = [t for t in MM_TOOLS if shutil.which(t, path=search) is None]
    if missing:
        return (f"Mahimahi is not installed ({', '.join(missing)} not on PATH nor in "
                f"{', '.join(DEFAULT_BIN_DIRS)}): scripts/provision.sh builds it when ../shared/vendor has "
                "its source, or apt-get install mahimahi where packaged; or use --backend netns")
    for t in MM_TOOLS:
        path = shutil.which(t, path=search)
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
                    f"GENET_MAHIMAHI_USER=<user> (or create the user {DEFAULT_USER!r}, as scripts/provision.sh "
                    "does) so genet runs the mm shells as that user")
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
            raise BadInputError(f"mm-delay takes whole milliseconds; got delay_ms={spec.delay_ms} "
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


def runnable_problem(user: str, argv0: str, cwd: str, search_path: str) -> str | None:
    """Why ``user`` cannot run ``argv0`` from ``cwd`` (None: it can). We are root; checked as that user."""
    pw = pwd.getpwnam(user)
    check = ['setpriv', f'--reuid={pw.pw_uid}', f'--regid={pw.pw_gid}', '--init-groups', '--',
             'sh', '-c', 'cd "$1" || exit 3; case "$2" in */*) p=$2;; *) p=$(command -v "$2") || exit 4;; esac; '
             '[ -x "$p" ] || exit 5; '
             'r=$(readlink -f "$p"); [ -x "$r" ] && [ -r "$r" -o ! -f "$r" ] || exit 6', 'sh', cwd, argv0]
    res = subprocess.run(check, env={**os.environ, "PATH": search_path}, capture_output=True)
    if res.returncode == 0:
        return None
    real = os.path.realpath(os.path.join(cwd, argv0) if "/" in argv0 else shutil.which(argv0, path=search_path)
                            or argv0)
    shown = argv0 if real in (argv0, os.path.join(cwd, argv0)) else f"{argv0} (= {real})"
    why = {3: f"cannot enter the working directory {cwd}",
           4: f"does not find {argv0!r} on PATH", 5: f"cannot execute {shown}", 6: f"cannot execute {shown}"}
    hint = ""
    if res.returncode in (5, 6) and real.startswith("/root"):
        hint = (" (a virtual environment or interpreter under /root, as pyenv's, is not readable by other users: "
                "run a system binary, /usr/bin/python3 with PYTHONPATH, or a venv outside /root)")
    if res.returncode == 3:
        hint = " (cd to a folder that user can read, e.g. /tmp)"
    return f"CMD runs inside Mahimahi as the non-root user {user!r}, who {why.get(res.returncode, 'cannot run it')}{hint}"


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
        self._status_path: str | None = None
        self._log_copies: list[tuple[str, str]] = []  # (where mm-link writes, where the caller wants it)
        self._header_names: list[tuple[str, str]] = []  # run-directory paths -> names for the log headers

    def _trace_path(self, source: TraceLike, schedule: Schedule) -> str:
        """The trace file mm-link reads: a Mahimahi file as is (copied into the run directory when we are
        root, so the non-root user can read it wherever it is), anything else written from its schedule."""
        if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
            from traces.io import detect_format
            if detect_format(source) == "mahimahi":
                if not is_root():
                    return os.path.abspath(source)
                fd, path = tempfile.mkstemp(prefix="gt-", suffix=".mahi", dir=self._tmpdir)
                os.close(fd)
                shutil.copyfile(source, path)
                os.chmod(path, 0o644)
                self._header_names.append((path, os.path.abspath(source)))
                return path
        path = schedule_file(schedule, self._tmpdir)
        self._header_names.append((path, schedule.source or path))
        return path

    def _logs_through_run_dir(self) -> LinkSpec:
        """The spec mm-link gets: as root, its logs go to the run directory (the user's) and are copied later."""
        directions = {}
        for name in ("uplink", "downlink"):
            d = getattr(self.spec, name)
            if not d.log_path:
                continue
            want = os.path.abspath(d.log_path)
            if not is_root():
                if not os.access(os.path.dirname(want), os.W_OK | os.X_OK):
                    raise EmulationError(f"mm-link cannot write its {name} log {want}: the folder is not "
                                         "writable by this user")
                continue
            tmp = os.path.join(self._tmpdir, f"{name}.log")
            self._log_copies.append((tmp, want))
            directions[name] = dataclasses.replace(d, log_path=tmp)
        return dataclasses.replace(self.spec, **directions)

    def start(self) -> "MahimahiLink":
        problem = mahimahi_problem()
        if problem:
            raise EmulationError(problem)
        if self.command is None and not is_root():
            raise EmulationError("the Python API's emulated endpoint enters mm-link's namespace with nsenter, "
                                 "which needs root; as a normal user use `genet emulate shell --backend mahimahi "
                                 "-- CMD`")
        search = mahimahi_search_path()
        user = pwd.getpwnam(mahimahi_user()) if is_root() else None
        if user is not None and self.command is not None:
            problem = runnable_problem(user.pw_name, self.command[0], os.getcwd(), search)
            if problem:
                raise EmulationError(problem)
        self._tmpdir = tempfile.mkdtemp(prefix=f"{self.run_name}-")
        if user is not None:  # the run directory belongs to the Mahimahi user: its logs and CMD's status land here
            os.chown(self._tmpdir, user.pw_uid, user.pw_gid)
        os.chmod(self._tmpdir, 0o755)
        up = self._trace_path(self.sources[0], self.spec.uplink.schedule)
        down = self._trace_path(self.sources[1], self.spec.downlink.schedule)
        if self.command is not None:
            self._status_path = os.path.join(self._tmpdir, "status")
            inner = ["sh", "-c", _STATUS_WRAPPER, "genet-status", self._status_path] + list(self.command)
        else:
            inner = ["sh", "-c", 'echo "GENET-READY $$ $MAHIMAHI_BASE"; exec sleep 2147483647']
        argv = mm_command(self._logs_through_run_dir(), up, down, inner)
        if user is not None:
            argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"] + argv
        env = {**os.environ, "PATH": search}
        self.record = RunRecord(self.run_name, "mahimahi")
        with state_lock():
            self.record.save()
        try:
            if self.command is not None:
                self.proc = subprocess.Popen(argv, env=env)
            else:
                self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                             start_new_session=True, env=env)
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

    def command_status(self) -> int | None:
        """CMD's exit status as netns reports it (after Mahimahi ended; None while it runs).

        CMD's own status when it finished (128+N when a signal N ended it), 77 when the ``once``
        trace ended first (Mahimahi itself exits 0 then), otherwise Mahimahi's status (it failed
        before or around CMD: its message is on stderr)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        if self._status_path:
            try:
                with open(self._status_path) as fh:
                    return int(fh.read().strip())
            except (OSError, ValueError):
                pass
        rc = self.proc.returncode
        if rc == 0 and self.spec.once and self.command is not None:
            return 77
        return rc if rc >= 0 else 128 - rc

    def _end_leftovers(self) -> None:
        """End what CMD left running in mm-link's namespace after Mahimahi ended (Mahimahi signals only its
        direct child, so e.g. the ``sleep`` of ``sh -c 'sleep 30; ...'`` would outlive it, holding stdout);
        the netns backend ends everything in its namespace the same way."""
        if not (self._status_path and is_root()):
            return
        try:
            with open(self._status_path + ".netns") as fh:
                netns = fh.read().strip()
        except OSError:
            return
        if not netns.startswith("net:["):
            return
        uid = pwd.getpwnam(mahimahi_user()).pw_uid
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == netns and os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                continue

    def _copy_logs(self) -> None:
        for tmp, want in self._log_copies:
            try:
                src = open(tmp, errors="surrogateescape")
            except OSError:
                warnings.warn(f"mm-link wrote no log {tmp} (for {want})", RuntimeWarning, stacklevel=3)
                continue
            with src, open(want, "w", errors="surrogateescape") as dst:
                names = [(tmp, want)] + self._header_names
                for i in range(6):  # header: the requested log path and the caller's trace, as netns writes them
                    line = src.readline()
                    if not line.startswith("#"):
                        dst.write(line)
                        break
                    if i == 0:  # "# mahimahi mm-link (Uplink) [TRACE] > LOG" (the command line stays mm-link's)
                        for a, b in names:
                            line = line.replace(a, b)
                    dst.write(line)
                shutil.copyfileobj(src, dst, 1 << 20)
        self._log_copies = []

    def close(self) -> None:
        self.close_endpoints()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc._genet_new_session = self.command is None  # type: ignore[attr-defined]
                end_process(self.proc, grace_s=5.0)
            self.stats = {"exit_status": self.proc.returncode, "command_status": self.command_status()}
            self._end_leftovers()
            self._copy_logs()
        if self.record is not None:
            with state_lock():
                release(self.record)
            self.record = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
