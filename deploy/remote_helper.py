"""The small program the controller runs on remote hosts as ``PYTHON -c SOURCE COMMAND ARGS...``.

Standard library only, Python >= 3.8, no files needed on the host (the source travels with each
command, so ``genet deploy check`` works before anything is pushed). Every command prints one JSON
line (except ``clock``, which answers line by line).

* ``probe WORK_DIR [--stop-stale]``: python version, free disk in WORK_DIR (created), iperf3 path and
  version, allowed kernel congestion controls, the genet installed in WORK_DIR/venv (if any); with
  ``--stop-stale`` also what ``stop-stale`` does
* ``wait-pid PID TIMEOUT_S``: wait until process PID is gone (or a zombie); {"exited": bool}
* ``wait-port tcp|udp PORT TIMEOUT_S``: wait until something listens on PORT (any address)
* ``launch RUN_DIR NAME LIMIT_S SHELL_COMMAND [--port-free PROTO PORT S] [--ready PROTO PORT S]
  [--wait-exit S]``: one round trip for a run's side: (wait until nothing listens on PORT: the previous
  run's server has gone,) start SHELL_COMMAND in RUN_DIR detached (own session, ``nohup``, stdin
  /dev/null, output to NAME.out / NAME.err) under ``timeout LIMIT_S``, PID in NAME.pid, exit status in
  NAME.rc; (wait until it listens on PORT;) (wait until it exits); {"pid", "listening", "exited"}
* ``stop WORK_DIR [--grace S] PID...``: (give the groups S seconds to end by themselves, then) SIGTERM
  then SIGKILL each process group PID whose leader's working directory is inside WORK_DIR (so a reused
  PID of someone else is never touched)
* ``ours WORK_DIR``: processes whose working directory is inside WORK_DIR (what a campaign left)
* ``stop-stale WORK_DIR``: stop every group recorded in WORK_DIR/runs/**/*.pid that is still ours
* ``clock``: for each line read, print time.time_ns() (the NTP-style exchange)
* ``agent``: a long-lived server of the commands above over one SSH channel (JSON lines, see
  :func:`_agent`): the controller's per-run commands cost a round trip instead of an SSH exec and an
  interpreter start
* ``manifest DIR``: {relative path: [size, sha256]} of the files under DIR
* ``resolve PATH``: {"path": PATH with ``~`` expanded, absolute (a relative PATH: to the login directory)}:
  the controller's SFTP uploads use this, so they land where the commands above look
"""

import hashlib
import json
import os
import shutil
import signal
import sys
import time


def _real(p):
    return os.path.realpath(os.path.expanduser(p))


def _cwd(pid):
    try:
        return os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        return None


def _gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _inside(path, root):
    return path is not None and (path == root or path.startswith(root.rstrip("/") + "/"))


def _ours(work_dir):
    root = _real(work_dir)
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        if _inside(_cwd(pid), root) and not _gone(pid):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as fh:
                    args = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            except OSError:
                args = ""
            out.append({"pid": pid, "args": args})
    return out


def _stop(work_dir, pids, grace_s=0.0):
    root = _real(work_dir)
    deadline = time.time() + grace_s
    while grace_s > 0 and time.time() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.01)
    todo = []
    signalled = []
    for pid in pids:
        if pid > 1 and _inside(_cwd(pid), root):
            try:
                os.killpg(pid, signal.SIGTERM)
                todo.append(pid)
                signalled.append(pid)
            except OSError:
                pass
    deadline = time.time() + 3.0
    while todo and time.time() < deadline:
        todo = [p for p in todo if not _gone(p)]
        time.sleep(0.02)
    for pid in todo:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    # members of the groups that outlived their leader
    left = [p["pid"] for p in _ours(work_dir) if _pgid(p["pid"]) in signalled] if signalled else []
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return {"stopped": signalled, "killed": todo + left}


def _stop_stale(work_dir):
    """Stop the groups recorded in WORK_DIR/runs/**/*.pid that still run (what a killed controller left)."""
    runs = os.path.join(os.path.expanduser(work_dir), "runs")
    pids = []
    for d, _, files in os.walk(runs):
        for f in files:
            if f.endswith(".pid"):
                try:
                    with open(os.path.join(d, f)) as fh:
                        pids.append(int(fh.read().split()[0]))
                except (OSError, ValueError, IndexError):
                    pass
    pids = [p for p in pids if not _gone(p)]
    return _stop(work_dir, pids) if pids else {"stopped": [], "killed": []}


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _listening(proto, port):
    files = ["/proc/net/%s" % proto, "/proc/net/%s6" % proto]
    want_state = "0A" if proto == "tcp" else "07"
    for f in files:
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == want_state:
                        return True
        except (OSError, StopIteration):
            pass
    return False


def _launch(argv):  # noqa: C901
    import shlex
    import subprocess
    run_dir, name, limit_s, command = argv[1], argv[2], float(argv[3]), argv[4]
    opts = argv[5:]

    def opt(flag, n):
        if flag not in opts:
            return None
        i = opts.index(flag)
        return opts[i + 1:i + 1 + n]

    port_free, ready, wait_exit = opt("--port-free", 3), opt("--ready", 3), opt("--wait-exit", 1)
    ans = {"pid": None, "listening": None, "exited": None, "port_free": None}
    if port_free:
        proto, port, deadline = port_free[0], int(port_free[1]), time.time() + float(port_free[2])
        while _listening(proto, port) and time.time() < deadline:
            time.sleep(0.01)
        ans["port_free"] = not _listening(proto, port)
        if not ans["port_free"]:
            return ans
    run_dir = os.path.expanduser(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    q = shlex.quote
    inner = ("echo $$ > %s; timeout --foreground -k 5 %.0f %s; echo $? > %s && mv %s %s"
             % (q(name + ".pid"), limit_s, command, q(name + ".rc.part"), q(name + ".rc.part"), q(name + ".rc")))
    with open(os.devnull, "rb") as null, open(os.path.join(run_dir, name + ".out"), "wb") as out, \
            open(os.path.join(run_dir, name + ".err"), "wb") as err:
        proc = subprocess.Popen(["nohup", "sh", "-c", inner], cwd=run_dir, stdin=null, stdout=out, stderr=err,
                                start_new_session=True)
    ans["pid"] = proc.pid
    if ready:
        proto, port, deadline = ready[0], int(ready[1]), time.time() + float(ready[2])
        while not _listening(proto, port) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        ans["listening"] = _listening(proto, port)
    if wait_exit:
        try:
            proc.wait(timeout=float(wait_exit[0]))
        except subprocess.TimeoutExpired:
            pass
        ans["exited"] = proc.poll() is not None
    return ans


def dispatch(argv):
    """One command's JSON-able answer (``clock`` and ``agent`` are handled by :func:`main`)."""
    cmd = argv[0]
    if cmd == "probe":
        work = os.path.expanduser(argv[1])
        os.makedirs(work, exist_ok=True)
        du = shutil.disk_usage(work)
        try:
            with open("/proc/sys/net/ipv4/tcp_allowed_congestion_control") as fh:
                allowed = fh.read().split()
        except OSError:
            allowed = []
        genet = os.path.join(work, "venv", "bin", "genet")
        iperf3 = shutil.which("iperf3")
        iperf3_version = None
        if iperf3:
            import subprocess
            try:
                out = subprocess.run([iperf3, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     timeout=10).stdout.decode("utf-8", "replace").splitlines()
                iperf3_version = out[0].strip() if out else None
            except (OSError, subprocess.SubprocessError):
                pass
        info = {"python": "%d.%d.%d" % sys.version_info[:3], "free_disk_bytes": du.free,
                "iperf3": iperf3, "iperf3_version": iperf3_version, "timeout": shutil.which("timeout"),
                "setsid": shutil.which("setsid"), "allowed_cc": allowed, "uname": os.uname().release,
                "genet": genet if os.access(genet, os.X_OK) else None}
        if "--stop-stale" in argv[2:]:
            info["stale_stopped"] = _stop_stale(argv[1])
        return info
    elif cmd == "wait-pid":
        pid, limit = int(argv[1]), float(argv[2])
        deadline = time.time() + limit
        while not _gone(pid) and time.time() < deadline:
            time.sleep(0.02)
        return {"exited": _gone(pid)}
    elif cmd == "wait-port":
        proto, port, limit = argv[1], int(argv[2]), float(argv[3])
        deadline = time.time() + limit
        while not _listening(proto, port) and time.time() < deadline:
            time.sleep(0.01)
        return {"listening": _listening(proto, port)}
    elif cmd == "launch":
        return _launch(argv)
    elif cmd == "stop":
        grace = 0.0
        rest = argv[2:]
        if rest[:1] == ["--grace"]:
            grace, rest = float(rest[1]), rest[2:]
        return _stop(argv[1], [int(p) for p in rest], grace)
    elif cmd == "ours":
        return _ours(argv[1])
    elif cmd == "stop-stale":
        return _stop_stale(argv[1])
    elif cmd == "resolve":
        path = os.path.expanduser(argv[1])
        if path.startswith("~"):
            raise ValueError("%s: no such user here, so no home to expand ~ to" % argv[1].split("/")[0])
        return {"path": os.path.abspath(path)}
    elif cmd == "manifest":
        root = os.path.expanduser(argv[1])
        out = {}
        for d, _, files in os.walk(root):
            for f in files:
                p = os.path.join(d, f)
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
                out[os.path.relpath(p, root)] = [os.path.getsize(p), h.hexdigest()]
        return out
    raise ValueError("unknown command %r" % (cmd,))



def _agent():
    """Answer ``[id, COMMAND, ARGS...]`` JSON lines with ``[id, ok, answer]`` lines, each command in its own
    thread (a long wait does not hold up the others); ends at end of input (the controller is gone: its
    background processes live on in their own sessions, under their ``timeout``)."""
    import threading
    lock = threading.Lock()

    def answer(line):
        rid = None
        try:
            req = json.loads(line)
            rid, argv = req[0], [str(a) for a in req[1:]]
            out = [rid, True, dispatch(argv)]
        except BaseException as exc:  # noqa: BLE001 - reported to the controller
            out = [rid, False, "%s: %s" % (type(exc).__name__, exc)]
        data = json.dumps(out) + "\n"
        with lock:
            sys.stdout.write(data)
            sys.stdout.flush()

    for line in sys.stdin:
        if line.strip():
            threading.Thread(target=answer, args=(line,), daemon=True).start()


def main(argv):
    if argv[0] == "clock":
        for _ in sys.stdin:
            sys.stdout.write("%d\n" % time.time_ns())
            sys.stdout.flush()
    elif argv[0] == "agent":
        _agent()
    else:
        print(json.dumps(dispatch(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
