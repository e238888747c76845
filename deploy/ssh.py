"""One SSH session per host (Paramiko), with its traps handled in one place.

* Host keys: the inventory's known_hosts only (never the user's ~/.ssh by surprise); an unknown key
  is refused (:class:`RejectWithFingerprint`, Paramiko's ``RejectPolicy`` plus the fingerprint in
  the error); a changed key is refused too. ``accept_new=True`` (``--accept-new``) trusts a key on
  first use and appends it to the known_hosts file (:class:`AcceptNewPolicy`); ``AutoAddPolicy``
  is never used.
* Commands are lists; :func:`shell_command` quotes every word with ``shlex.quote`` (no string
  concatenation of user input reaches the remote shell unquoted).
* :meth:`Session.run` reads stdout and stderr concurrently while waiting (a full channel window
  would otherwise block the remote side and ``recv_exit_status`` forever) and polls
  ``exit_status_ready()`` against a deadline (``recv_exit_status`` has no timeout).
* ``connect`` gets ``timeout``, ``banner_timeout`` and ``auth_timeout``; open sessions send
  keepalives.
* Background processes start in their own session under ``nohup``, stdin /dev/null, wrapped in
  ``timeout`` by :mod:`deploy.remote_helper` ``launch`` (one exec also holds the waits; so even
  a controller that dies leaves nothing running past the limit) and are stopped by their PID
  (process group) through :mod:`deploy.remote_helper`, which only signals processes whose working
  directory is inside the host's work directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from foundation.atomic import atomic_write_bytes
from foundation.errors import GenetRuntimeError

from deploy.config import HostSpec

_HELPER_SOURCE = (Path(__file__).with_name("remote_helper.py")).read_text()
AGENT_EXIT_WAIT_S = 2.0  # after the helper's output ends: how long to wait for its exit status
_known_hosts_lock = threading.Lock()


class RemoteError(GenetRuntimeError):
    """Something failed on or on the way to a remote host; ``host`` names it."""

    def __init__(self, host: str, message: str):
        self.host = host
        super().__init__(f"{host}: {message}")


class HostUnreachableError(RemoteError):
    """TCP connect, SSH banner or authentication failed, or the session died."""


class HostKeyError(RemoteError):
    """The host key is unknown or changed (refused)."""


class RemoteCommandError(RemoteError):
    """A remote command exited non-zero or ran past its deadline."""

    def __init__(self, host: str, command: str, message: str, result: "CommandResult | None" = None):
        self.command = command
        self.result = result
        super().__init__(host, f"{message} (command: {command})")


def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a Paramiko key (``SHA256:...``)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _paramiko():
    try:
        import paramiko
    except ImportError:
        from foundation.errors import MissingExtraError
        raise MissingExtraError("deploy", "genet deploy", "paramiko") from None
    return paramiko


def shell_command(argv: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None) -> str:
    """The remote shell line for ``argv`` (each word quoted), run in ``cwd`` with ``env`` added."""
    if not argv:
        raise ValueError("empty remote command")
    words = [shlex.quote(str(a)) for a in argv]
    if env:
        words = ["env"] + [shlex.quote(f"{k}={v}") for k, v in env.items()] + words
    line = " ".join(words)
    if cwd is not None:
        line = f"cd {shlex.quote(cwd)} && {line}"
    return line


@dataclass
class CommandResult:
    host: str
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float


class Session:
    """An SSH connection to one host (a context manager); reconnects lazily when the transport died.

    host: the inventory's host
    accept_new: trust unknown host keys on first use and write them to host.known_hosts (default False)
    """

    def __init__(self, host: HostSpec, accept_new: bool = False):
        self.host = host
        self.accept_new = accept_new
        self.client = None
        self._sftp = None
        self._agent: _Agent | None = None
        self._agent_lock = threading.Lock()
        self._work_dir: str | None = None
        self.host_key_fingerprint: str | None = None

    # ------------------------------------------------------------ connection
    def __enter__(self) -> "Session":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        t = self.client.get_transport() if self.client is not None else None
        return bool(t is not None and t.is_active())

    def connect(self) -> "Session":
        if self.alive:
            return self
        self.close()
        paramiko = _paramiko()
        h = self.host
        client = paramiko.SSHClient()
        if h.known_hosts and os.path.exists(h.known_hosts):
            try:
                client.load_host_keys(h.known_hosts)
            except (OSError, paramiko.SSHException) as exc:
                raise HostKeyError(h.label, f"cannot read known_hosts {h.known_hosts}: {exc}") from None
        client.set_missing_host_key_policy(AcceptNewPolicy(h) if self.accept_new else RejectWithFingerprint(h))
        try:
            client.connect(h.address, port=h.port, username=h.user, key_filename=h.key_file,
                           timeout=h.connect_timeout_s, banner_timeout=h.connect_timeout_s,
                           auth_timeout=h.connect_timeout_s, channel_timeout=h.connect_timeout_s,
                           allow_agent=False, look_for_keys=h.key_file is None)
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(h.label, f"host key CHANGED: the server offers {exc.key.get_name()} "
                                        f"{fingerprint(exc.key)}, {h.known_hosts} expects "
                                        f"{fingerprint(exc.expected_key)}; refused (if the change is expected, "
                                        f"remove the old line from {h.known_hosts})") from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise HostUnreachableError(h.label, f"authentication failed with key {h.key_file}: {exc}") from None
        except (OSError, socket.timeout, EOFError, paramiko.SSHException) as exc:
            client.close()
            raise HostUnreachableError(h.label, f"unreachable: {type(exc).__name__}: {exc}") from None
        transport = client.get_transport()
        transport.set_keepalive(max(1, int(round(h.keepalive_s))))
        self.host_key_fingerprint = fingerprint(transport.get_remote_server_key())
        self.client = client
        return self

    def close(self) -> None:
        agent, self._agent = self._agent, None
        if agent is not None:
            agent.close()
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # noqa: BLE001 - closing a dead channel
                pass
            self._sftp = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def _transport(self):
        if not self.alive:
            try:
                self.connect()
            except HostUnreachableError as exc:
                raise HostUnreachableError(self.host.label, f"session lost and reconnect failed: "
                                                            f"{str(exc).split(': ', 1)[-1]}") from None
        return self.client.get_transport()

    def _open_channel(self):
        paramiko = _paramiko()
        try:
            return self._transport().open_session(timeout=self.host.connect_timeout_s)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostUnreachableError(self.host.label, f"cannot open a channel: {exc}") from None

    # ------------------------------------------------------------ commands
    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
            timeout_s: float = 60.0, check: bool = True, stdin_data: bytes | None = None) -> CommandResult:
        """Run ``argv`` remotely and wait for it (stdout/stderr drained concurrently) until ``timeout_s``.

        Raises :class:`RemoteCommandError` on a non-zero exit (``check``) or at the deadline (the channel
        is closed; the remote command gets SIGHUP-free EOF and should be stopped by the caller if it is a
        background launcher), :class:`HostUnreachableError` when the session dies meanwhile.
        """
        paramiko = _paramiko()
        command = shell_command(argv, cwd, env)
        t0 = time.monotonic()
        chan = self._open_channel()
        out, err = bytearray(), bytearray()
        try:
            chan.settimeout(0.0)
            chan.exec_command(command)
            if stdin_data is not None:
                chan.settimeout(timeout_s)
                chan.sendall(stdin_data)
                chan.settimeout(0.0)
            chan.shutdown_write()
            deadline = t0 + timeout_s
            import select
            while True:
                got = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if chan.closed or not self.alive:
                    if chan.exit_status_ready():
                        break
                    raise HostUnreachableError(self.host.label, f"session died while running: {command}")
                if time.monotonic() > deadline:
                    raise RemoteCommandError(self.host.label, command, f"no exit within {timeout_s:g} s")
                if not got:
                    select.select([chan], [], [], min(0.05, max(0.0, deadline - time.monotonic())))
            status = chan.recv_exit_status()  # ready: returns at once
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostUnreachableError(self.host.label, f"session died while running {command}: {exc}") from None
        finally:
            chan.close()
        res = CommandResult(self.host.label, command, status, out.decode("utf-8", "replace"),
                            err.decode("utf-8", "replace"), time.monotonic() - t0)
        if check and status != 0:
            tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-3:]
            raise RemoteCommandError(self.host.label, command, f"exit status {status}: {' | '.join(tail)}", res)
        return res

    def helper(self, *args: str, timeout_s: float = 30.0) -> object:
        """A :mod:`deploy.remote_helper` command's JSON answer, from the host's agent: one helper process per
        session on one long-lived channel (started on first use, restarted if its channel died), so a
        command costs a round trip, not an SSH exec and an interpreter start. :class:`RemoteCommandError`
        past ``timeout_s`` or when the command failed there; :class:`HostUnreachableError` when the agent's
        channel or the session dies meanwhile."""
        with self._agent_lock:
            agent = self._agent
            if agent is None or agent.dead is not None:
                agent = self._agent = _Agent(self)
        return agent.call([str(a) for a in args], timeout_s)

    # ------------------------------------------------------------ background processes
    def start_background(self, argv: Sequence[str], run_dir: str, name: str, limit_s: float,
                         env: dict[str, str] | None = None, ready: tuple[str, int, float] | None = None):
        """Start ``argv`` in ``run_dir`` detached (own session, ``nohup``, stdin /dev/null, output to NAME.out /
        NAME.err), ended by ``timeout`` after ``limit_s`` even if nobody stops it; its exit status
        lands in NAME.rc, its PID (= process group) in NAME.pid. Returns the PID; with
        ``ready=(proto, port, timeout_s)`` also waits, in the same round trip, until something listens on
        that port and returns ``(pid, listening)``."""
        ans = self.launch(argv, run_dir, name, limit_s, env=env, ready=ready)
        return ans.pid if ready is None else (ans.pid, bool(ans.listening))

    def launch(self, argv: Sequence[str], run_dir: str, name: str, limit_s: float, *,
               env: dict[str, str] | None = None, port_free: tuple[str, int, float] | None = None,
               ready: tuple[str, int, float] | None = None, wait_exit_s: float | None = None) -> "Launched":
        """:meth:`start_background` with every wait of a run's side in the same round trip (one exec of
        :mod:`deploy.remote_helper`): first until nothing listens on ``port_free=(proto, port, timeout_s)``
        (the previous run's server is gone; if it is not, nothing is started and ``pid`` is None), then start,
        then until the process listens on ``ready=(proto, port, timeout_s)``, then until it exits
        (``wait_exit_s``)."""
        args = ["launch", run_dir, name, f"{limit_s:.0f}", shell_command(argv, env=env)]
        wait_s = 0.0
        for flag, spec in (("--port-free", port_free), ("--ready", ready)):
            if spec is not None:
                proto, port, t = spec
                args += [flag, proto, str(int(port)), f"{t:.3f}"]
                wait_s += t
        if wait_exit_s is not None:
            args += ["--wait-exit", f"{wait_exit_s:.3f}"]
            wait_s += wait_exit_s
        ans = self.helper(*args, timeout_s=max(10.0, self.host.connect_timeout_s) + wait_s)
        if not isinstance(ans, dict) or (ans.get("pid") is None and ans.get("port_free") is not False):
            raise RemoteCommandError(self.host.label, f"remote_helper launch {name}", f"no PID in {ans!r}")
        return Launched(ans.get("pid"), ans.get("listening"), ans.get("exited"), ans.get("port_free"))

    def wait_pid(self, pid: int, timeout_s: float) -> bool:
        """True when process ``pid`` ended within ``timeout_s``."""
        ans = self.helper("wait-pid", pid, f"{timeout_s:.3f}", timeout_s=timeout_s + 15)
        return bool(ans.get("exited"))

    def wait_port(self, proto: str, port: int, timeout_s: float) -> bool:
        ans = self.helper("wait-port", proto, port, f"{timeout_s:.3f}", timeout_s=timeout_s + 15)
        return bool(ans.get("listening"))

    def stop(self, *pids: int, grace_s: float = 0.0) -> dict:
        """Stop process groups (SIGTERM, then SIGKILL after 3 s) that are ours (cwd in the work dir); with
        ``grace_s``, first give them that long to end by themselves."""
        if not pids:
            return {"stopped": [], "killed": []}
        grace = ["--grace", f"{grace_s:.3f}"] if grace_s > 0 else []
        return self.helper("stop", self.work_dir, *grace, *pids, timeout_s=30.0 + grace_s)

    def our_processes(self) -> list[dict]:
        """Processes on the host whose working directory is inside the work directory."""
        return list(self.helper("ours", self.work_dir))

    # ------------------------------------------------------------ files
    def sftp(self):
        paramiko = _paramiko()
        if self._sftp is None or not self.alive:
            try:
                self._transport()
                self._sftp = self.client.open_sftp()
                self._sftp.get_channel().settimeout(max(30.0, self.host.connect_timeout_s))
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self.close()
                raise HostUnreachableError(self.host.label, f"cannot open SFTP: {exc}") from None
        return self._sftp

    @property
    def work_dir(self) -> str:
        """The host's work directory as an absolute path on the host: ``~`` (``~user``) and a relative path (to
        the login directory) expanded there, once per session, by the remote helper (``resolve``: the same
        expansion as every helper command), so SFTP uploads and the helper's commands name the same folder."""
        if self._work_dir is None:
            ans = self.helper("resolve", self.host.work_dir)
            path = ans.get("path") if isinstance(ans, dict) else None
            if not isinstance(path, str) or not path.startswith("/"):
                raise RemoteCommandError(self.host.label, "remote_helper resolve", f"no absolute path in {ans!r}")
            self._work_dir = path
        return self._work_dir

    def remote_path(self, *parts: str) -> str:
        """A path under the work directory (:attr:`work_dir`, expanded on the host)."""
        return str(PurePosixPath(self.work_dir, *parts))

    def fetch(self, remote: str, local: str | os.PathLike, max_bytes: int = 512 << 20) -> int:
        """Download ``remote`` to ``local`` atomically: the local file appears only complete, with the size
        the remote file had before and after the transfer. Returns the size."""
        paramiko = _paramiko()
        sftp = self.sftp()
        try:
            before = sftp.stat(remote).st_size
            if before > max_bytes:
                raise RemoteError(self.host.label, f"{remote} is {before} bytes (limit {max_bytes})")
            with sftp.open(remote, "rb") as fh:
                fh.prefetch(before)
                data = fh.read()
            after = sftp.stat(remote).st_size
        except FileNotFoundError:
            raise RemoteError(self.host.label, f"{remote}: no such file") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostUnreachableError(self.host.label, f"download of {remote} failed: {exc}") from None
        if len(data) != before or after != before:
            raise RemoteError(self.host.label, f"download of {remote} incomplete or file still growing "
                                               f"({len(data)} of {before} bytes, now {after})")
        atomic_write_bytes(local, data)
        return len(data)

    def put(self, local: str | os.PathLike, remote: str) -> int:
        """Upload ``local`` to ``remote`` via a temporary name, renamed when complete."""
        paramiko = _paramiko()
        sftp = self.sftp()
        tmp = f"{remote}.part"
        try:
            self.mkdirs(str(PurePosixPath(remote).parent))
            attrs = sftp.put(str(local), tmp, confirm=True)
            try:
                sftp.posix_rename(tmp, remote)
            except IOError:
                sftp.remove(remote) if _exists(sftp, remote) else None
                sftp.rename(tmp, remote)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise RemoteError(self.host.label, f"upload of {local} to {remote} failed: {exc}") from None
        return attrs.st_size

    def mkdirs(self, remote_dir: str) -> None:
        sftp = self.sftp()
        parts = PurePosixPath(remote_dir).parts
        cur = PurePosixPath(parts[0])
        for p in parts[1:]:
            cur = cur / p
            if not _exists(sftp, str(cur)):
                try:
                    sftp.mkdir(str(cur))
                except IOError:
                    if not _exists(sftp, str(cur)):
                        raise

    # ------------------------------------------------------------ clock
    def clock_offset(self, samples: int = 16, timeout_s: float = 20.0) -> "ClockOffset":
        """NTP-style estimate of (remote clock - local clock) over an SSH channel: the remote side answers
        each line with its time; offset = t_remote - (t_send + t_receive) / 2 of the sample with the
        smallest round trip (its error is at most half that round trip)."""
        paramiko = _paramiko()
        chan = self._open_channel()
        try:
            chan.settimeout(timeout_s)
            chan.exec_command(shell_command([self.host.python, "-u", "-I", "-S", "-c", _HELPER_SOURCE, "clock"]))
            best = None
            buf = b""
            for i in range(samples + 1):
                t0 = time.time_ns()
                chan.sendall(b"t\n")
                while b"\n" not in buf:
                    chunk = chan.recv(4096)
                    if not chunk:
                        raise RemoteError(self.host.label, "clock exchange: remote side closed: "
                                          + chan.recv_stderr(4096).decode(errors="replace")[-200:])
                    buf += chunk
                t1 = time.time_ns()
                line, buf = buf.split(b"\n", 1)
                if i == 0:
                    continue  # the first answer includes the interpreter's start-up
                remote = int(line)
                rtt = t1 - t0
                if best is None or rtt < best[0]:
                    best = (rtt, remote - (t0 + t1) / 2)
            chan.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError, socket.timeout, ValueError) as exc:
            raise RemoteError(self.host.label, f"clock exchange failed: {exc}") from None
        finally:
            chan.close()
        return ClockOffset(offset_ms=best[1] / 1e6, rtt_ms=best[0] / 1e6, samples=samples)


class _Agent:
    """``remote_helper agent`` on one channel: requests ``[id, COMMAND, ARGS...]``, answers ``[id, ok, answer]``
    (JSON lines); a reader thread hands each answer to its caller and drains stderr (a full window
    would stall the channel)."""

    def __init__(self, session: "Session"):
        paramiko = _paramiko()
        self.label = session.host.label
        self.python = session.host.python
        self.chan = session._open_channel()
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[threading.Event, dict]] = {}
        self.next_id = 0
        self.dead: str | None = None
        self.closing = False  # we closed the channel (no exit status to wait for)
        self.stderr = bytearray()
        try:
            self.chan.exec_command(shell_command([session.host.python, "-u", "-I", "-S", "-c", _HELPER_SOURCE,
                                                  "agent"]))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.chan.close()
            raise HostUnreachableError(self.label, f"cannot start the remote helper: {exc}") from None
        self.thread = threading.Thread(target=self._read, name=f"agent-{self.label}", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            self.chan.settimeout(0.2)
            while True:
                while self.chan.recv_stderr_ready():
                    self.stderr += self.chan.recv_stderr(65536)
                    del self.stderr[:-4000]
                try:
                    chunk = self.chan.recv(65536)
                except socket.timeout:
                    if self.chan.closed or (self.chan.exit_status_ready() and not self.chan.recv_ready()):
                        break
                    continue
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        rid, ok, ans = json.loads(line)
                    except (ValueError, TypeError):
                        continue
                    with self.lock:
                        slot = self.pending.pop(rid, None)
                    if slot is not None:
                        slot[1].update(ok=ok, answer=ans)
                        slot[0].set()
            reason = self._exit_reason()
        except Exception as exc:  # noqa: BLE001 - the session died
            reason = f"the remote helper's channel failed: {type(exc).__name__}: {exc}"
        with self.lock:
            self.dead = reason
            for ev, _ in self.pending.values():
                ev.set()
            self.pending.clear()

    def _exit_reason(self) -> str:
        """Why the helper's channel ended, from what the host said: its exit status and the end of its stderr (a
        wrong ``python`` in the inventory: ``sh: 1: python9: not found``, status 127). The stderr arrives before
        stdout's end of file, the exit status usually just after it: wait briefly for the status (unless we closed
        the channel or the session is gone), then drain stderr."""
        transport = self.chan.get_transport()
        waiting = not self.closing and transport is not None and transport.is_active()
        deadline = time.monotonic() + (AGENT_EXIT_WAIT_S if waiting else 0.0)
        while not self.chan.exit_status_ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        while self.chan.recv_stderr_ready():
            self.stderr += self.chan.recv_stderr(65536)
        del self.stderr[:-4000]
        status = self.chan.recv_exit_status() if self.chan.exit_status_ready() else None
        lines = [" ".join(line.split()) for line in self.stderr.decode("utf-8", "replace").splitlines()]
        tail = " | ".join(line for line in lines if line)[-300:]
        what = (f"the remote helper ({self.python} on the host) exited with status {status}" if status is not None
                else "the remote helper's channel closed")
        if status == 127:
            what += " (command not found: check `python` in the inventory)"
        return what + (f": {tail}" if tail else "")

    def call(self, args: list[str], timeout_s: float) -> object:
        paramiko = _paramiko()
        ev, slot = threading.Event(), {}
        with self.lock:
            if self.dead is not None:
                raise HostUnreachableError(self.label, self.dead)
            rid = self.next_id
            self.next_id += 1
            self.pending[rid] = (ev, slot)
            failed = None
            try:  # (a request is small: it fits the open window at once)
                self.chan.sendall(json.dumps([rid, *args]).encode() + b"\n")
            except (paramiko.SSHException, OSError, EOFError, socket.timeout) as exc:
                self.pending.pop(rid, None)
                failed = exc
        if failed is not None:  # the helper is gone: say why, as the reader thread learns it
            self.thread.join(AGENT_EXIT_WAIT_S + 1.0)
            raise HostUnreachableError(self.label, f"{self.dead or 'cannot reach the remote helper'} while "
                                                   f"running remote_helper {args[0]} ({failed})")
        if not ev.wait(timeout_s):
            with self.lock:
                self.pending.pop(rid, None)
            raise RemoteCommandError(self.label, f"remote_helper {' '.join(args[:1])}", f"no answer within {timeout_s:g} s")
        if "ok" not in slot:
            raise HostUnreachableError(self.label, f"{self.dead} while running remote_helper {args[0]}")
        if not slot["ok"]:
            raise RemoteCommandError(self.label, f"remote_helper {args[0]}", f"failed: {slot['answer']}")
        return slot["answer"]

    def close(self) -> None:
        self.closing = True
        try:
            self.chan.close()
        except Exception:  # noqa: BLE001 - closing a dead channel
            pass


@dataclass(frozen=True)
class Launched:
    """What :meth:`Session.launch` saw: the PID (None when the port never came free), and for the waits
    asked for (else None): whether it listened, whether it exited, whether the port was free first."""

    pid: int | None
    listening: bool | None
    exited: bool | None
    port_free: bool | None


@dataclass(frozen=True)
class ClockOffset:
    """remote clock - local clock (ms), and the round trip of the sample it comes from (ms)."""

    offset_ms: float
    rtt_ms: float
    samples: int

    def to_json(self) -> dict:
        return {"offset_ms": self.offset_ms, "rtt_ms": self.rtt_ms, "samples": self.samples}


def _exists(sftp, path: str) -> bool:
    try:
        sftp.stat(path)
        return True
    except IOError:
        return False


def _policy_base():
    return _paramiko().MissingHostKeyPolicy


class RejectWithFingerprint(_policy_base()):
    """Paramiko's RejectPolicy, with the offered key's fingerprint and the way to trust it in the error."""

    def __init__(self, host: HostSpec):
        self.host = host

    def missing_host_key(self, client, hostname, key):
        raise HostKeyError(self.host.label, f"unknown host key {key.get_name()} {fingerprint(key)} for {hostname} "
                                            f"(not in {self.host.known_hosts}); refused. Check the fingerprint "
                                            f"with the host's administrator, then rerun with --accept-new")


class AcceptNewPolicy(_policy_base()):
    """Trust on first use (``--accept-new``): accept an unknown key and append it to the known_hosts file.
    A changed key is still refused (Paramiko raises BadHostKeyException before asking the policy)."""

    def __init__(self, host: HostSpec):
        self.host = host

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        path = Path(self.host.known_hosts)
        with _known_hosts_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
