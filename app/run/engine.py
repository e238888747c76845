"""Running a plan: input hashes, skip what is up to date, resume what was cut off, one subprocess per step.

Records live in ``RUN/state/<stage>/<item>.json``: ``started`` (the input hash of an attempt in
progress) and ``done`` (input hash, output hash, commands, wall time). An item is skipped when its
done record carries the input hash computed now; an attempt that was killed (a started record with
the same hash and no done record) is continued in place — the commands resume themselves
(``genet eval``'s ``results.jsonl``, ``genet train --resume``, ``genet deploy run``'s journal);
anything else starts from an empty folder. Each step's output goes to ``RUN/logs/<stage>/<item>.log``.

``jobs`` > 1 (``genet run --jobs N``, ``[run] jobs``) runs up to N items of the train, export and simulate stages
at once (app/run/schema.py ``FAN_OUT_STAGES``), each in a thread of its own waiting on its commands: an item starts
when a thread is free and the items of the stage it reads have ended, the longest estimate first. Each command's
CPU time comes from its own ``os.wait4``; Ctrl-C stops every running command. ``jobs`` = 1 is the serial loop.
"""

from __future__ import annotations

import ctypes
import hashlib
import resource
import json
import os
import queue
import select as _select
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from foundation.atomic import atomic_write_text
from foundation.config import thaw
from foundation.errors import BadInputError, GenetRuntimeError
from app.run.plan import Item, command_text, hash_tree
from app.run.progress import Progress, fmt_s
from app.run.schema import FAN_OUT_STAGES, STAGES

#: seconds a stopped command (Ctrl-C, SIGTERM) has to clean up after its SIGINT before it is killed
STOP_TIMEOUT_S = 20.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: options that say where a step runs, not what it computes: left out of the input hash, so moving a run onto a
#: Ray cluster (``[cluster] address``) redoes nothing
PLACEMENT_OPTIONS = ("--ray-address",)


def _placement_free(step):
    if not isinstance(step, list):
        return step
    out, skip = [], False
    for a in step:
        if skip:
            skip = False
        elif isinstance(a, str) and a in PLACEMENT_OPTIONS:
            skip = True
        else:
            out.append(a)
    return out


def _jsonable(value, run_dir: Path):
    value = thaw(value)  # a run config's tables (app/run/schema.py RunConfig): as their plain data
    if isinstance(value, dict):
        return {str(k): _jsonable(v, run_dir) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, run_dir) for v in value]
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return value.replace(str(run_dir), "$RUN")
    if callable(value):
        return getattr(value, "describe", getattr(value, "__name__", "action"))
    return value


def step_text(step) -> str:
    return command_text(step) if isinstance(step, list) else "(in-process) " + getattr(step, "describe", "action")


def _libc():
    """libc, loaded in the parent (a child between fork and exec only calls it); None where there is none."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
        except OSError:
            return None
    return _LIBC


_LIBC = None


def _die_with_parent(libc):
    """A ``preexec_fn``: the child gets SIGTERM when its parent (thread) ends, even by SIGKILL
    (``prctl(PR_SET_PDEATHSIG)``; libc loaded in the parent: between fork and exec the child only calls it)."""
    if libc is None:
        return None

    def child_setup() -> None:
        libc.prctl(1, signal.SIGTERM)
    return child_setup


class _Child:
    """A command of an item run beside others: signalled through a pidfd (never a pid the kernel has reused) and
    reaped only by the thread that started it, with ``os.wait4`` (which gives its CPU time, and its waited-for
    descendants')."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.exited = threading.Event()
        try:
            self.pidfd: int | None = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def send(self, sig: int) -> None:
        if self.exited.is_set():
            return
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, sig)
            else:
                os.kill(self.popen.pid, sig)
        except OSError:
            pass  # it has exited

    def wait_exit(self, timeout_s: float | None) -> bool:
        """Whether it exited within ``timeout_s`` (a pidfd is readable once its process has exited)."""
        if self.pidfd is not None:
            try:
                return bool(_select.select([self.pidfd], [], [], timeout_s)[0])
            except (OSError, ValueError):
                return True
        return self.exited.wait(5.0 if timeout_s is None else timeout_s)

    def reap(self) -> tuple[int, float]:
        """(exit status as ``Popen.returncode`` gives it, CPU seconds)."""
        _, status, usage = os.wait4(self.popen.pid, 0)
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.exited.set()
        return self.popen.returncode, usage.ru_utime + usage.ru_stime

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class _ItemProgress:
    """What :meth:`Runner.run_item` tells the display of an item run beside others: its end, on a line of its own
    (its commands' output goes to its log only)."""

    def __init__(self, progress: Progress, name: str):
        self.progress, self.name = progress, name

    def item_output(self, line: str) -> None:
        pass

    def item_end(self, est_s: float, status: str, wall_s: float | None = None) -> None:
        self.progress.item_ended(self.name, est_s, status, wall_s)


class Runner:
    def __init__(self, plan: dict[str, list[Item]], run_dir: Path, stream=None, tty: bool | None = None,
                 jobs: int = 1):
        self.plan = plan
        self.jobs = jobs
        self.run_dir = Path(run_dir)
        self.stream = stream or sys.stdout
        self.tty = tty
        self.items = {i.id: i for s in STAGES for i in plan[s]}
        self.status: dict[str, str] = {}
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds of the item's commands (children) and actions
        self.child: subprocess.Popen | None = None  # the running command (jobs = 1)
        self._kids: dict[int, _Child] = {}  # the running commands of items run at once (jobs > 1), by pid
        self._opened: list[_Child] = []  # their pidfds, closed at the end of the stage
        self._kids_lock = threading.Lock()
        self._worker = threading.local()  # cpu_s: the CPU seconds of the item a worker thread runs
        self._inproc_lock = threading.Lock()  # in-process steps one at a time (they redirect sys.stdout)
        self._status_lock = threading.Lock()
        self._stopping = False  # Ctrl-C with items at once: no further steps start
        self._ref_hash: dict[str, str] = {}
        self._counted: set[str] = set()

    # records ---------------------------------------------------------------------------------
    def _rec_path(self, item: Item, kind: str) -> Path:
        return self.run_dir / "state" / item.stage / f"{item.name}.{kind}.json"

    def record(self, item: Item, kind: str) -> dict | None:
        p = self._rec_path(item, kind)
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None

    def output_hash(self, item: Item) -> str | None:
        if item.reference is not None:  # an external input: hashed once per run
            if item.id not in self._ref_hash:
                self._ref_hash[item.id] = hash_tree(item.reference)
            return self._ref_hash[item.id]
        rec = self.record(item, "done")
        return rec["output_hash"] if rec else None

    def input_hash(self, item: Item) -> str:
        deps = {d: self.output_hash(self.items[d]) for d in item.deps}
        payload = {"inputs": _jsonable(item.inputs, self.run_dir),
                   "steps": [_jsonable(_placement_free(s), self.run_dir) for s in item.steps],
                   "deps": deps}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def _current_now(self, item: Item) -> bool:
        """Up to date as things stand (for the ETA: an upstream rerun can still change it)."""
        return all(self.output_hash(self.items[d]) for d in item.deps) and self.is_current(item)

    def is_current(self, item: Item) -> bool:
        rec = self.record(item, "done")
        return bool(rec) and rec.get("input_hash") == self.input_hash(item) and item.folder.exists()

    # plan text ---------------------------------------------------------------------------------
    def describe(self, selected: list[str]) -> str:
        lines = []
        total = 0.0
        for stage in STAGES:
            items = self.plan[stage]
            head = f"{stage}:" + ("" if stage in selected else " (not selected)")
            if not items:
                lines.append(f"{head} nothing to do for this config")
                continue
            lines.append(head)
            for item in items:
                state = self._plan_state(item, selected)
                if state.startswith("will"):
                    total += item.est_s
                lines.append(f"  {item.name}: {state}")
                for s in item.steps + item.cleanup:
                    lines.append(f"      {step_text(s)}")
        lines.append(f"estimated time: {fmt_s(total)} (emulation and deploy runs last their traces/videos in "
                     f"real time)")
        return "\n".join(lines)

    def _plan_state(self, item: Item, selected: list[str]) -> str:
        """What a run of the ``selected`` stages does with ``item``: ``will run (est ...)``, ``will resume``, ..."""
        if item.unavailable:
            return item.unavailable
        if item.reference is not None:
            return f"uses {item.reference}"
        if item.stage not in selected:
            return "kept as is"
        if all(self.output_hash(self.items[d]) for d in item.deps) and self.is_current(item):
            return "up to date (skipped)"
        if self.record(item, "started"):
            return f"will resume (est {fmt_s(item.est_s)})"
        return f"will run (est {fmt_s(item.est_s)})"

    def to_run(self, selected: list[str]) -> dict[str, list[tuple[str, object, tuple[str, ...]]]]:
        """The items a run of the ``selected`` stages would run, per selected stage, as the cost model takes them
        (app/run/costs.py :func:`~app.run.costs.stage_wall_s`: name, cost shape, the same stage's items it
        waits for)."""
        out: dict[str, list] = {}
        for stage in STAGES:
            if stage not in selected:
                continue
            run = [i for i in self.plan[stage] if self._plan_state(i, selected).startswith("will")]
            out[stage] = [(i.id, i.cost(), tuple(d for d in i.deps if self.items[d].stage == stage)) for i in run]
        return out

    # running -------------------------------------------------------------------------------------
    def _run_command(self, argv: list[str], log, progress: Progress) -> int:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        child_setup = _die_with_parent(_libc())
        log.write(f"$ {command_text(argv)}\n")
        log.flush()
        beside = hasattr(self._worker, "cpu_s")  # a worker thread of items run at once
        if beside:
            return self._run_command_beside(argv, env, log)
        self.child = subprocess.Popen([sys.executable, "-m", "app.cli", *argv], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                      preexec_fn=child_setup, text=True, errors="replace", bufsize=1)
        assert self.child.stdout is not None
        for line in self.child.stdout:
            log.write(line)
            log.flush()
            progress.item_output(line.replace("\r", " "))
        rc = self.child.wait()
        self.child = None
        log.write(f"[exit status {rc}]\n")
        log.flush()
        return rc

    def _run_command_beside(self, argv: list[str], env: dict, log) -> int:
        """:meth:`_run_command` in a worker thread: the command's CPU time from its own ``os.wait4``."""
        # the child's "parent" is this thread: it ends after reaping the command, or with `genet run`
        child_setup = _die_with_parent(_libc())
        with self._kids_lock:
            if self._stopping:
                return -int(signal.SIGINT)
            kid = _Child(subprocess.Popen([sys.executable, "-m", "app.cli", *argv], stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                          preexec_fn=child_setup, text=True, errors="replace", bufsize=1))
            self._kids[kid.popen.pid] = kid
            self._opened.append(kid)
        assert kid.popen.stdout is not None
        for line in kid.popen.stdout:
            log.write(line)
            log.flush()
        kid.popen.stdout.close()
        rc, cpu_s = kid.reap()
        with self._kids_lock:
            self._kids.pop(kid.popen.pid, None)
        self._worker.cpu_s += cpu_s
        log.write(f"[exit status {rc}]\n")
        log.flush()
        return rc

    def _stop_children(self) -> None:
        """Every running command of the items run at once: SIGINT, then SIGKILL after ``STOP_TIMEOUT_S``."""
        with self._kids_lock:
            self._stopping = True
            kids = list(self._kids.values())
        for kid in kids:
            kid.send(signal.SIGINT)  # lets the commands clean up
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for kid in kids:
            if not kid.wait_exit(max(0.0, deadline - time.monotonic())):
                kid.send(signal.SIGKILL)
                kid.wait_exit(None)

    def _stop_child(self) -> None:
        if self._kids:
            self._stop_children()
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGINT)  # lets emulation/deploy commands clean up
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def _run_steps(self, item: Item, steps: list, log, progress: Progress) -> str | None:
        """Run steps; return None on success or the reason of the failure."""
        for step in steps:
            if self._stopping and steps is not item.cleanup:
                return "interrupted"
            if isinstance(step, list):
                rc = self._run_command(step, log, progress)
                if rc != 0:
                    return f"`{command_text(step)}` exited with status {rc}"
            else:
                log.write(f"$ {step_text(step)}\n")
                log.flush()
                import contextlib
                import io
                buf = io.StringIO()
                beside = hasattr(self._worker, "cpu_s")
                try:
                    # beside other items: one in-process step at a time (redirect_stdout is process-wide), its
                    # CPU time this thread's
                    with self._inproc_lock if beside else contextlib.nullcontext():
                        cpu0 = _thread_cpu_s() if beside else 0.0
                        try:
                            with contextlib.redirect_stdout(buf):
                                step(item)
                        finally:
                            if beside:
                                self._worker.cpu_s += _thread_cpu_s() - cpu0
                except Exception as exc:  # noqa: BLE001 - recorded as the item's failure, with the log
                    import traceback
                    log.write(buf.getvalue() + traceback.format_exc())
                    return f"{step_text(step)} failed: {exc}"
                log.write(buf.getvalue())
                for line in buf.getvalue().splitlines():
                    progress.item_output(line)
        return None

    def run_item(self, item: Item, progress: Progress, force: bool) -> bool:
        h = self.input_hash(item)
        done = self.record(item, "done")
        if not force and done and done.get("input_hash") == h and item.folder.exists():
            self.status[item.id] = "up to date"
            progress.item_end(item.est_s if item.id in self._counted else 0.0, "up to date (skipped)")
            return True
        started = self.record(item, "started")
        resuming = not force and started is not None and started.get("input_hash") == h and item.folder.exists()
        self._rec_path(item, "done").unlink(missing_ok=True)
        if not resuming:
            if item.folder.exists() and self.run_dir in item.folder.parents:
                shutil.rmtree(item.folder)
        steps = item.resume(item) if (item.resume and resuming) else item.steps
        self._rec_path(item, "started").parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._rec_path(item, "started"),
                          json.dumps({"input_hash": h, "started_at": _now(), "resumed": resuming}, indent=1))
        log_path = self.run_dir / "logs" / item.stage / f"{item.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        beside = hasattr(self._worker, "cpu_s")  # run at once with others: its commands' own CPU time
        cpu0 = 0.0 if beside else _cpu_s()
        if beside:
            self._worker.cpu_s = 0.0
        with open(log_path, "a") as log:
            log.write(f"# {_now()} {'resuming' if resuming else 'starting'} {item.id}\n")
            error = None
            try:
                error = self._run_steps(item, steps, log, progress)
            finally:
                if item.cleanup:
                    cleanup_error = self._run_steps(item, item.cleanup, log, progress)
                    error = error or cleanup_error
        wall = time.monotonic() - t0
        self.wall[item.id] = wall
        self.cpu[item.id] = self._worker.cpu_s if beside else _cpu_s() - cpu0
        if error and self._stopping:  # Ctrl-C with items at once: left to resume, as a serial run leaves it
            self.status[item.id] = "interrupted"
            progress.item_end(item.est_s, "interrupted", wall)
            return False
        if error:
            self.status[item.id] = "failed"
            progress.item_end(item.est_s, f"FAILED: {error} (log: {log_path})", wall)
            atomic_write_text(self._rec_path(item, "failed"),
                              json.dumps({"input_hash": h, "error": error, "at": _now(), "log": str(log_path)}))
            return False
        self._rec_path(item, "failed").unlink(missing_ok=True)
        out_hash = hash_tree(item.folder) if item.folder.exists() else ""
        atomic_write_text(self._rec_path(item, "done"), json.dumps({
            "input_hash": h, "output_hash": out_hash, "commands": [step_text(s) for s in steps + item.cleanup],
            "wall_s": round(wall, 2), "cpu_s": round(self.cpu[item.id], 2), "finished_at": _now(),
            "resumed": resuming}, indent=1))
        self._rec_path(item, "started").unlink(missing_ok=True)
        self.status[item.id] = "done (resumed)" if resuming else "done"
        progress.item_end(item.est_s, "done" + (" (resumed)" if resuming else ""), wall)
        return True

    def run(self, selected: list[str], force: bool = False) -> int:
        # Items of stages not selected must already be done: their outputs feed the selected ones.
        for stage in selected:
            if stage == "report":
                continue  # the report shows whatever exists
            for item in self.plan[stage]:
                for d in item.deps:
                    dep = self.items[d]
                    if dep.stage not in selected and not dep.unavailable and self.output_hash(dep) is None:
                        raise BadInputError(f"{item.id} needs {d}, which has not run in {self.run_dir}: "
                                            f"run without --only/--from first (or --from {dep.stage})")
        self._counted = {i.id for s in selected for i in self.plan[s]
                         if not i.unavailable and i.reference is None and (force or not self._current_now(i))}
        total = sum(self.items[i].est_s for i in self._counted)
        progress = Progress(total, self.stream, self.tty)
        failed_stage = None
        stage_wall: dict[str, float] = {}
        try:
            for si, stage in enumerate(selected, 1):
                items = self.plan[stage]
                runnable = [i for i in items if not i.unavailable]
                if failed_stage and stage != "report":
                    for i in runnable:
                        self.status[i.id] = f"not run ({failed_stage} failed)"
                    continue
                progress.stage_start(stage, f"{si}/{len(selected)}", len(items))
                t0 = time.monotonic()
                for i in items:
                    if i.unavailable:
                        self.status[i.id] = i.unavailable
                        progress.note(f"  {stage} {i.name}: {i.unavailable}")
                if self.jobs > 1 and stage in FAN_OUT_STAGES and len(runnable) > 1:
                    if not self._run_at_once(stage, runnable, progress, force):
                        failed_stage = stage
                    runnable = []
                for k, item in enumerate(runnable, 1):
                    if not self._ready(stage, item, progress):
                        continue
                    progress.item_start(item.name, f"{k}/{len(runnable)}", item.est_s, _what(item))
                    self._write_status()
                    if not self.run_item(item, progress, force):
                        failed_stage = stage
                stage_wall[stage] = time.monotonic() - t0
                self._write_status(stage_wall)
        except KeyboardInterrupt:
            self._stop_child()
            progress.close()
            self.stream.write("interrupted: rerun the same command to resume\n")
            return 130
        finally:
            self._stop_child()
            progress.close()
        self._write_status(stage_wall)
        self.stream.write("\ntime per stage (wall; CPU seconds of its commands):\n")
        for stage in selected:
            items = self.plan[stage]
            states = sorted({self.status.get(i.id, "-") for i in items}) or ["nothing to do"]
            cpu = sum(self.cpu.get(i.id, 0.0) for i in items)
            self.stream.write(f"  {stage:<9} {fmt_s(stage_wall.get(stage)) if stage in stage_wall else '-':>8} "
                              f"{cpu:7.0f} s  {'; '.join(states)}\n")
        self.stream.write(f"  {'total':<9} {fmt_s(time.monotonic() - progress.t0):>8}\n")
        report = self.run_dir / "report" / "index.html"
        if report.is_file():
            self.stream.write(f"report: {report}\n")
        if failed_stage:
            self.stream.write(f"genet run: stage {failed_stage} failed; fix the cause and rerun the same command "
                              f"(finished items are kept)\n")
            return 1
        return 0

    def _ready(self, stage: str, item: Item, progress: Progress) -> bool:
        """Whether ``item`` runs now; not (with its status and a line) when an item it reads has no output, or it
        is an external input (hashed, nothing to run)."""
        blocked = [d for d in item.deps if self.output_hash(self.items[d]) is None
                   and not self.items[d].unavailable]
        if blocked and stage != "report":
            self.status[item.id] = f"not run (needs {', '.join(blocked)})"
            progress.note(f"  {stage} {item.name}: not run (needs {', '.join(blocked)})")
            return False
        if item.reference is not None:
            self.status[item.id] = "input"
            progress.note(f"  {stage} {item.name}: uses {item.reference}")
            progress.item_end(0.0, f"hashed {item.reference}")
            return False
        if item.id not in self._counted:  # went stale after the start (an upstream item reran)
            self._counted.add(item.id)
            progress.remaining_est += item.est_s
        return True

    def _run_at_once(self, stage: str, runnable: list[Item], progress: Progress, force: bool) -> bool:
        """Up to ``jobs`` of a stage's items at once, each in a thread: an item starts when a thread is free and
        the items of this stage it reads have ended, the longest estimate first; the stage ends when every item
        has. Whether every item that ran succeeded."""
        ids = {i.id for i in runnable}
        ended: set[str] = set()
        waiting = sorted(runnable, key=lambda i: -i.est_s)  # stable: the plan's order among equal estimates
        running: dict[str, Item] = {}
        results: queue.Queue = queue.Queue()
        ok, k = True, 0
        try:
            while True:
                startable = True
                while startable and len(running) < self.jobs:
                    startable = False
                    for item in waiting:
                        if any(d in ids and d not in ended for d in item.deps):
                            continue  # reads an item of this stage that has not ended
                        waiting.remove(item)
                        startable = True
                        k += 1
                        if not self._ready(stage, item, progress):
                            ended.add(item.id)
                            break
                        progress.item_began(item.name, f"{k}/{len(runnable)}", item.est_s, _what(item))
                        running[item.id] = item
                        self._write_status()
                        threading.Thread(target=self._work, args=(item, progress, force, results), daemon=True,
                                         name=f"genet-run {item.id}").start()
                        break
                if not running:
                    if waiting:
                        raise GenetRuntimeError(f"stage {stage}: {', '.join(i.id for i in waiting)} wait for each "
                                                f"other")
                    return ok
                try:
                    item_id, item_ok, exc = results.get(timeout=1.0)
                except queue.Empty:
                    continue
                del running[item_id]
                ended.add(item_id)
                if exc is not None:
                    raise exc
                ok = ok and item_ok
                self._write_status()
        except BaseException:
            self._stop_children()
            deadline = time.monotonic() + STOP_TIMEOUT_S  # the stopped items record how they ended
            while running and time.monotonic() < deadline:
                try:
                    running.pop(results.get(timeout=max(0.01, deadline - time.monotonic()))[0], None)
                except queue.Empty:
                    break
            raise
        finally:
            with self._kids_lock:
                done, self._opened = [c for c in self._opened if c.exited.is_set()], \
                    [c for c in self._opened if not c.exited.is_set()]
            for c in done:
                c.close()

    def _work(self, item: Item, progress: Progress, force: bool, results: queue.Queue) -> None:
        """A worker thread: one item, its end put on ``results`` as (id, succeeded, exception)."""
        self._worker.cpu_s = 0.0
        try:
            results.put((item.id, self.run_item(item, _ItemProgress(progress, item.name), force), None))
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            results.put((item.id, False, exc))

    def _write_status(self, stage_wall: dict | None = None) -> None:
        with self._status_lock:
            self._write_status_now(stage_wall)

    def _write_status_now(self, stage_wall: dict | None = None) -> None:
        prev = {}
        p = self.run_dir / "status.json"
        try:
            prev = json.loads(p.read_text())
        except (OSError, ValueError):
            pass
        items = prev.get("items", {})
        for s in STAGES:
            for i in self.plan[s]:
                st = self.status.get(i.id) or (i.unavailable or None)
                if st:
                    items[i.id] = {"status": st, "wall_s": self.wall.get(i.id, items.get(i.id, {}).get("wall_s"))}
                else:
                    items.setdefault(i.id, {"status": "not run"})
        walls = prev.get("stage_wall_s", {})
        walls.update({k: round(v, 2) for k, v in (stage_wall or {}).items()})
        cpus = prev.get("stage_cpu_s", {})
        cpus.update({k: round(sum(self.cpu.get(i.id, 0.0) for i in self.plan[k]), 2) for k in (stage_wall or {})})
        atomic_write_text(p, json.dumps({"items": items, "stage_wall_s": walls, "stage_cpu_s": cpus,
                                         "updated_at": _now()}, indent=1))


def _what(item: Item) -> str:
    what = "; ".join(step_text(s) for s in item.steps)
    return what if len(what) < 160 else what[:157] + "..."


def _thread_cpu_s() -> float:
    """CPU seconds (user + system) of the calling thread."""
    own = resource.getrusage(resource.RUSAGE_THREAD)
    return own.ru_utime + own.ru_stime


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its finished children and their descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def select(only: str | None, from_: str | None) -> list[str]:
    if only and from_:
        raise BadInputError("give --only or --from, not both")
    for flag, value in (("--only", only), ("--from", from_)):
        if value and value not in STAGES:
            raise BadInputError(f"{flag}: {value!r} is not a stage; stages: {', '.join(STAGES)}")
    if only:
        return [only]
    if from_:
        return list(STAGES[STAGES.index(from_):])
    return list(STAGES)
