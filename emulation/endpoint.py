"""The two sides of an emulated link, on which the caller runs commands or Python callables.

Three tiers of process control, as Mininet's nodes: :meth:`Endpoint.run`
(blocking, optional ``timeout_s``), :meth:`Endpoint.popen` (a real
``subprocess.Popen`` inside the side's namespace) and :meth:`Endpoint.call`
(a Python callable run in a forked child that entered the namespace; its
return value comes back pickled). Every process an endpoint starts is
tracked and ended (its whole process group) when the link closes.
"""

from __future__ import annotations

from foundation.errors import BadInputError, GenetRuntimeError

import os
import pickle
import signal
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from emulation.sysnet import setns


class RemoteCallError(GenetRuntimeError):
    """A callable run with :meth:`Endpoint.call` raised; the message carries its traceback."""


@dataclass
class Endpoint:
    """One side of a link.

    name: ``emulated`` or ``host``
    address: this side's IPv4 address on the link (e.g. 100.64.1.2)
    netns_path: the network namespace file to enter (None: the root namespace)
    env: environment added to every command (the emulated side gets MAHIMAHI_BASE)
    """

    name: str
    address: str
    netns_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------ commands
    def command(self, cmd: Sequence[str] | str) -> list[str]:
        """The argv that runs ``cmd`` on this side (a string runs under ``sh -c``)."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else [str(c) for c in cmd]
        if not argv:
            raise BadInputError("empty command")
        if self.netns_path:
            argv = ["nsenter", f"--net={self.netns_path}", "--"] + argv
        return argv

    def popen(self, cmd: Sequence[str] | str, *, env: dict[str, str] | None = None, new_session: bool = True,
              **kwargs: Any) -> subprocess.Popen:
        """Start ``cmd`` on this side; tracked and ended when the link closes.

        new_session: put it in its own process group (default True) so the whole group can be ended
        kwargs: passed to ``subprocess.Popen`` (stdout=, stderr=, cwd=, text=...)
        """
        full_env = {**os.environ, **self.env, **(env or {})}
        p = subprocess.Popen(self.command(cmd), env=full_env, start_new_session=new_session, **kwargs)
        p._genet_new_session = new_session  # type: ignore[attr-defined]
        self.processes.append(p)
        return p

    def run(self, cmd: Sequence[str] | str, *, timeout_s: float | None = None, check: bool = False,
            capture: bool = True, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run ``cmd`` to completion; stdout/stderr captured as text unless ``capture=False``.

        timeout_s: end the command (its whole process group) after this many seconds and raise
                   ``subprocess.TimeoutExpired`` (None: wait forever)
        check: raise ``subprocess.CalledProcessError`` on a non-zero exit status
        """
        if capture:
            kwargs.setdefault("stdout", subprocess.PIPE)
            kwargs.setdefault("stderr", subprocess.PIPE)
            kwargs.setdefault("text", True)
        p = self.popen(cmd, env=env, **kwargs)
        try:
            out, err = p.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            end_process(p)
            out, err = p.communicate()
            raise subprocess.TimeoutExpired(p.args, timeout_s, out, err) from None
        finally:
            if p.poll() is not None and p in self.processes:
                self.processes.remove(p)
        res = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        if check:
            res.check_returncode()
        return res

    def call(self, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in a forked child inside this side's namespace; return its result.

        The child sees this side's network only (sockets it opens bind there). The result and any
        exception travel back pickled; an exception is re-raised as :class:`RemoteCallError`.
        """
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(rfd)
            code = 0
            try:
                if self.netns_path:
                    fd = os.open(self.netns_path, os.O_RDONLY)
                    setns(fd)
                    os.close(fd)
                os.environ.update(self.env)
                payload = pickle.dumps(("ok", fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
                code = 1
            try:
                with os.fdopen(wfd, "wb") as fh:
                    fh.write(payload)
            finally:
                os._exit(code)
        os.close(wfd)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        chunks = []
        with os.fdopen(rfd, "rb") as fh:
            import select
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not select.select([fh], [], [], remaining)[0]:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise TimeoutError(f"{getattr(fn, '__name__', fn)} on the {self.name} side did not finish "
                                       f"within {timeout_s} s")
                chunk = fh.read1(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        os.waitpid(pid, 0)
        status, value = pickle.loads(b"".join(chunks)) if chunks else ("error", "child died without a result")
        if status == "error":
            raise RemoteCallError(f"{getattr(fn, '__name__', fn)} on the {self.name} side raised {value}")
        return value

    def close(self) -> None:
        """End every process this endpoint started that is still running."""
        for p in self.processes:
            end_process(p)
        self.processes.clear()


def end_process(p: subprocess.Popen, grace_s: float = 2.0) -> None:
    """SIGTERM then SIGKILL a started process (its process group when it has its own)."""
    if p.poll() is not None:
        return
    group = getattr(p, "_genet_new_session", False)

    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(p.pid, sig)
            else:
                p.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        p.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        p.wait()
