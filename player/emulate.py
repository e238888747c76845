"""``genet emulate abr``: real players over trace-driven links, beside the simulator's prediction.

Per session (one policy, one trace, one repeat), in its own worker process (``python -m player.emulate
SPEC.json``, so a crash or a kill of one session leaves the others running):

1. a link (:class:`emulation.LinkEmulator`): the trace on the downlink (host -> player), 12 Mbit/s
   uplink (Pensieve's ``12mbps``), ``delay_ms`` one way in each direction (default 40: RTT 80 ms as
   Pensieve and Genet); netns backend with the host side in its own namespace (nothing touches the
   root namespace);
2. the video server (player/server.py) on the host side, the headless player (player/client.py,
   ``python -m player play``) on the emulated side, fetching ``http://HOST:8000/``;
3. the session's files in ``OUT/sessions/<policy>/<trace>-r<k>/``: ``player.jsonl`` (per chunk),
   ``server.jsonl`` (segments served), ``result.json``; the link, server and player end with the worker.

The simulator's figures for the same policy, trace and video (``sim_*`` columns) come from
:func:`genet.abr.evaluate.evaluate` with the Pensieve conventions, the video's own chunk count,
``max_buffer_s`` 60 and ``min_rtt_ms`` = 2 x ``delay_ms``, on :func:`emulator_view` of the trace: the
rates the link really played (the simulator reads a trace file one sample apart from the emulator),
rotated by the session's ``trace_offset_s`` — the time between the trace's time 0 in the emulator and
the player's first chunk request — so both see the same stretch of the trace. With the netns backend the
trace starts at the player's first packet (``start_on_first_packet``: its first SYN, for the MPD), so the
offset is the MPD's fetch (~ 2 RTTs, or dash.js's start-up in Chromium) whatever the server's and
player's start-up took, and sessions run side by side (``--jobs``) see the same stretch as one alone;
Mahimahi and Mininet start the trace with the link (the offset then includes the start-up).

Results (``OUT``): ``results.csv``/``results.json`` (one row per policy, trace and repeat: ``policy``,
``trace``, ``repeat``, ``bitrate_mbps``, ``rebuffer_s``, ``bitrate_change_mbps``, ``qoe``,
``qoe_per_chunk``, ``chunks`` as ``genet eval abr``; ``status``/``reason``; ``sim_qoe``,
``sim_qoe_per_chunk``, ``sim_bitrate_mbps``, ``sim_rebuffer_s``, ``sim_bitrate_change_mbps``;
``trace_offset_s``, ``wall_s``, ``log``), ``summary.txt``, ``qoe_cdf.png``, ``sim_vs_emulation.png``
(one panel per policy), ``run-metadata.json``. Finished sessions are appended to ``results.jsonl`` as
they complete; a rerun with the same settings skips them (failed sessions are retried).

With ``--ray-address HOST:PORT`` the sessions run on the nodes of a Ray cluster, ``--jobs`` at once on each node
(:meth:`EmulatedAbr._on_nodes`, :func:`emulate_session`; netns backend, Python player): every node is checked
first (root, TUN, ``ip``: :mod:`emulation.cluster`, as ``genet emulate cc --ray-address``), each session runs in a
node-local folder with the trace, the video and the model the head sent, and its files come back to its folder
under ``OUT/sessions``; the ``sim_*`` columns are computed here. A session whose node fails or dies is a failed
row with the reason (a rerun retries it); the others finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from genet.abr.qoe import COLUMN_NAMES as QOE_FIELDS  # the use case's columns (one list)
from genet.abr.qoe import VideoQoe
from foundation.errors import BadInputError
from foundation.experiment import Tier

#: The video server's port on each link's host side.
SERVER_PORT = 8000
#: Pensieve's uplink (``12mbps``: one 1500-byte opportunity per ms).
UPLINK_MBPS = 12.0


@dataclass
class SessionSpec:
    """One session: policy (name or .onnx path), trace_path, trace (name), repeat (0-based), video_dir,
    delay_ms (one way), backend, session_dir, n_chunks (None: the whole video), timeout_s"""

    policy: str
    trace_path: str
    trace: str
    repeat: int
    video_dir: str
    delay_ms: float
    backend: str
    session_dir: str
    n_chunks: int | None
    timeout_s: float
    player: str = "python"
    tcp_cc: str = "cubic"


def _sides(spec: SessionSpec, host_address: str, server_policy: str | None):
    """The ABR scheme's two sides on the link (:class:`player.schemes.PlayerRunner`, the command lines ``genet
    deploy run`` starts on two hosts): the video server on the host side, the headless player on the emulated
    side."""
    from foundation.scheme import SchemeContext
    from player.schemes import PlayerRunner
    sess = Path(spec.session_dir)
    genet = (sys.executable, "-m", "app.cli")
    ctx = SchemeContext(spec.policy, "abr-onnx" if spec.policy.endswith(".onnx") else "abr-baseline", spec.policy,
                        genet, genet, host_address, SERVER_PORT, bind_address=host_address, log_dir=str(sess),
                        options={"video": ["--video", spec.video_dir], "server_log": str(sess / "server.jsonl"),
                                 "threads": 4, "tcp_cc": spec.tcp_cc, "server_policy": server_policy,
                                 "log": str(sess / "player.jsonl"), "chunks": spec.n_chunks})
    return PlayerRunner(), ctx


def run_session(spec: SessionSpec) -> dict[str, Any]:
    """Run one session (needs root); returns its result row (also written to ``result.json``)."""
    from emulation import LinkEmulator
    from emulation.endpoint import end_process
    from player.client import read_log
    from player.server import wait_healthy
    from traces.io import read_trace

    sess = Path(spec.session_dir)
    sess.mkdir(parents=True, exist_ok=True)
    for name in ("player.jsonl", "server.jsonl", "result.json"):
        (sess / name).unlink(missing_ok=True)
    trace = read_trace(spec.trace_path)
    t_start = time.monotonic()
    row: dict[str, Any] = {"policy": _label(spec.policy), "trace": spec.trace, "repeat": spec.repeat,
                           "status": "error", "reason": "", "log": str(sess / "player.jsonl")}
    netns = spec.backend == "netns"
    with LinkEmulator(UPLINK_MBPS, trace, delay_ms=spec.delay_ms, backend=spec.backend, isolate_host=netns,
                      command_line=f"genet emulate abr {spec.policy}",
                      **({"start_on_first_packet": True} if netns else {})) as link:
        t_link = time.time()
        row["link_run"] = link.run_name  # the emulator's resource names start with it
        (sess / "link_run.txt").write_text(link.run_name + "\n")
        url = f"http://{link.host.address}:{SERVER_PORT}/"
        if spec.player == "chromium":  # dash.js in headless Chromium (player/browser.py)
            from player.browser import emulated_command
            browser_cmd = emulated_command(spec.policy, url, str(sess / "player.jsonl"))
        runner, ctx = _sides(spec, link.host.address, browser_cmd[0] if spec.player == "chromium" else None)
        with open(sess / "server.out", "w") as out:
            server = link.host.popen(runner.server(ctx).argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            if not link.host.call(wait_healthy, url, 30.0, timeout_s=40.0):
                raise RuntimeError(f"the video server did not answer on {url} within 30 s "
                                   f"(see {sess / 'server.out'})")
            cmd = browser_cmd[1] if spec.player == "chromium" else runner.client(ctx).argv
            proc = link.emulated.run(cmd, timeout_s=spec.timeout_s)
            if proc.returncode not in (0, 3):
                row["reason"] = f"player exited {proc.returncode}: {(proc.stderr or '').strip()[-300:]}"
        except subprocess.TimeoutExpired:
            row["reason"] = f"player still running after {spec.timeout_s:.0f} s"
        finally:
            end_process(server)
    log = read_log(sess / "player.jsonl") if (sess / "player.jsonl").is_file() else {"chunks": [], "summary": None}
    summary = log.get("summary") or {}
    if summary:
        row.update({k: summary[k] for k in QOE_FIELDS})
        row["chunks"] = summary["n_chunks"]
        row["status"] = summary["status"] if not row["reason"] else "error"
        row["reason"] = row["reason"] or summary["reason"]
    elif not row["reason"]:
        row["reason"] = "the player wrote no summary"
    t_trace = link.stats.get("trace_start_epoch_s", t_link)  # netns: the player's first packet
    first = log["chunks"][0]["epoch_request_s"] if log["chunks"] else t_trace
    row["trace_offset_s"] = max(first - t_trace, 0.0)
    row["wall_s"] = time.monotonic() - t_start
    from foundation.atomic import atomic_text_writer
    with atomic_text_writer(sess / "result.json") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


def _label(policy: str) -> str:
    if policy.startswith("dashjs:"):  # dash.js's own strategies (--player chromium)
        return policy
    from genet.abr.registry import policy_label
    return policy_label(policy)


# ----------------------------------------------------------------------------------------- simulator
def emulator_view(trace, offset_s: float = 0.0):
    """The trace as the emulated link played it, written for the simulator, from ``offset_s`` on.

    The emulator holds ``bandwidth_mbps[i]`` from ``t[i]`` to ``t[i+1]`` (traces.Trace) and loops with
    period ``t[-1] - t[0]``; the simulator applies ``bandwidth_mbps[i]`` to ``(t[i-1], t[i]]`` (its own
    reading, genet/abr/core.py), so the same trace file is one sample apart in the two. This returns a
    trace that the simulator reads as exactly the emulator's rates, rotated to start ``offset_s`` in."""
    from traces.trace import Trace
    t = np.asarray(trace.timestamps_s, dtype=np.float64)
    bw = np.asarray(trace.bandwidth_mbps, dtype=np.float64)
    period = t[-1] - t[0]
    o = float(offset_s) % period if period > 0 else 0.0
    segs = []
    for i in range(1, len(t)):
        a, b, rate = t[i - 1] - t[0] - o, t[i] - t[0] - o, bw[i - 1]
        if b <= 0:
            a, b = a + period, b + period
        elif a < 0:
            segs.append((a + period, period, rate))
            a = 0.0
        if b > a:
            segs.append((a, b, rate))
    segs.sort()
    times = [0.0] + [s[1] for s in segs]
    rates = [segs[0][2]] + [s[2] for s in segs]
    return Trace(np.asarray(times), np.asarray(rates), name=trace.name, meta=dict(trace.meta or {}))


def simulate_row(policy: str, trace_path: str, offset_s: float, video, delay_ms: float,
                 n_chunks: int) -> dict[str, float]:
    """The simulator's Table-6 figures for one emulated session (see the module docstring)."""
    from genet.abr.evaluate import evaluate
    from genet.abr.params import PENSIEVE, EnvParams
    from traces.io import read_trace
    trace = emulator_view(read_trace(trace_path), offset_s)
    params = EnvParams(max_buffer_s=60.0, chunk_length_s=video.chunk_length_s, min_rtt_ms=2.0 * delay_ms,
                       video_length_s=n_chunks * video.chunk_length_s)
    r = evaluate(policy, [trace], video, PENSIEVE, params=params)[0]
    return {f"sim_{k}": getattr(r, k) for k in QOE_FIELDS}


# ----------------------------------------------------------------------------------------- runner
@dataclass
class EmulateAbrConfig:
    """policies: names / .onnx paths; traces: directory or file; out: output directory
    delay_ms: one-way delay (40); backend: netns | mahimahi | mininet (netns); video: "sized" or a
    video directory ("sized"); jobs: sessions at once (1); repeats: runs per policy and trace (1);
    n_chunks: chunks per session (None: the whole video); sized_from: chunk table of the sized video
    ("envivio"); player: "python" or "chromium"; tcp_cc: the video server's TCP congestion control
    ("cubic", as Pensieve's and Genet's Apache servers ran; never the machine's default); ray_address: run the
    sessions on the nodes of this Ray cluster, ``jobs`` at once on each node (None: on this machine)"""

    policies: list[str]
    traces: str
    out: str
    delay_ms: float = 40.0
    backend: str = "netns"
    video: str = "sized"
    jobs: int = 1
    repeats: int = 1
    n_chunks: int | None = None
    sized_from: str = "envivio"
    player: str = "python"
    tcp_cc: str = "cubic"
    ray_address: str | None = None


def _trace_files(path: str) -> list[Path]:
    from traces.io import list_trace_files
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"--traces {path}: no such file or directory")
    files = list(list_trace_files(p))
    if not files:
        raise BadInputError(f"--traces {path}: no traces found")
    return files


def _prepare_video(cfg: EmulateAbrConfig, out: Path):
    from player.content import load_content, write_sized_video
    if cfg.video == "sized":
        content = write_sized_video(out / "video-sized", cfg.sized_from, n_chunks=cfg.n_chunks)
    else:
        content = load_content(cfg.video)
    return content


class EmulatedAbr(Tier):
    """The emulated-link tier of ``genet emulate abr`` (a :class:`foundation.experiment.Tier`): a cell is a policy
    on one trace file, one repetition (``cell.data``: the policy and the file); ``cfg.jobs`` sessions run at once,
    each a worker process (``python -m player.emulate SPEC``: its own link, server and player); a complete session
    gets the simulator's figures for the same policy and trace (``sim_*``). Journaled with the settings ``key``;
    a complete session with the same settings stands for its cell (a failed one is run again)."""

    name = "emulated link"
    repetition_field = "repeat"

    def __init__(self, cfg: EmulateAbrConfig, key: dict, out: Path, content, video, n_chunks: int) -> None:
        self.cfg, self.settings, self.out = cfg, key, out
        self.content, self.video, self.n_chunks = content, video, n_chunks

    def record_key(self, record):
        if record.get("key") != self.settings or record.get("status") != "complete":
            return None
        return super().record_key(record)

    def reuse(self, cell, records):
        return {f: v for f, v in records[-1].items() if f != "key"} if records else None

    def record(self, cell, row):
        return {"key": self.settings, **row}

    def spec(self, cell) -> SessionSpec:
        pol, f = cell.data
        cfg, video = self.cfg, self.video
        sess = self.out / "sessions" / cell.policy / f"{f.name}-r{cell.repetition}"
        return SessionSpec(pol, str(f.resolve()), f.name, cell.repetition, str(self.content.root.resolve()),
                           cfg.delay_ms, cfg.backend, str(sess.resolve()), None,
                           self.n_chunks * video.chunk_length_s * 3 + 60.0, cfg.player, cfg.tcp_cc)

    def finished(self, spec: SessionSpec, returncode: int) -> dict:
        return self.with_sim(spec, _finished_row(spec, returncode))

    def with_sim(self, spec: SessionSpec, row: dict) -> dict:
        """``row`` with the simulator's figures for the same session (a complete one)."""
        if row["status"] == "complete" and not spec.policy.startswith("dashjs:"):
            row.update(simulate_row(spec.policy, spec.trace_path, row["trace_offset_s"], self.video,
                                    self.cfg.delay_ms, self.n_chunks))
        elif row["status"] == "complete":  # dash.js's own strategies have no simulator twin
            row.update({f"sim_{k}": float("nan") for k in QOE_FIELDS})
        return row

    def run(self, cells):
        if self.cfg.ray_address and cells:
            yield from self._on_nodes(cells)
            return
        running: dict[subprocess.Popen, tuple[Any, SessionSpec, Any]] = {}
        old_term = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
        try:
            pending = list(cells)
            while pending or running:
                while pending and len(running) < self.cfg.jobs:
                    cell = pending.pop(0)
                    spec = self.spec(cell)
                    Path(spec.session_dir).mkdir(parents=True, exist_ok=True)
                    spec_path = Path(spec.session_dir) / "spec.json"
                    spec_path.write_text(json.dumps(asdict(spec)))
                    err = open(Path(spec.session_dir) / "worker.err", "w")
                    p = subprocess.Popen([sys.executable, "-m", "player.emulate", str(spec_path)], stdout=err,
                                         stderr=subprocess.STDOUT, start_new_session=True)
                    running[p] = (cell, spec, err)
                time.sleep(0.2)
                for p in [p for p in running if p.poll() is not None]:
                    cell, spec, err = running.pop(p)
                    err.close()
                    yield cell, self.finished(spec, p.returncode)
        except BaseException:
            _stop_workers(running)
            raise
        finally:
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)


    def _on_nodes(self, cells):
        """The sessions as Ray tasks on the cluster's nodes, ``cfg.jobs`` at once on each (:func:`emulate_session`;
        every node checked first, :func:`emulation.cluster.cluster_executor`): each session in a node-local
        folder with the trace, the video and the model (if any) the head sent; its files come back to its
        session folder under ``out/sessions``. A session whose node fails (or dies) is a failed row with the
        reason (a rerun runs it again); the others finish."""
        from emulation.cluster import cluster_executor, one_line, write_node_files
        executor = cluster_executor(self.cfg.ray_address, "genet emulate abr --ray-address", self.cfg.backend,
                                    per_node=self.cfg.jobs)
        video = self._node_video(executor)
        specs = []
        for cell in cells:
            spec = self.spec(cell)
            model = Path(spec.policy).read_bytes() if spec.policy.endswith(".onnx") else None
            specs.append((spec, Path(spec.trace_path).read_bytes(), video, model))
        cell_of = {id(item): cell for item, cell in zip(specs, cells)}
        print(f"genet emulate abr: {len(cells)} sessions on {executor.describe()}", file=sys.stderr)
        for item, got in executor.map_unordered(emulate_session, specs, errors="return"):
            spec = item[0]
            sess = Path(spec.session_dir)
            if isinstance(got, BaseException):
                row = {"policy": _label(spec.policy), "trace": spec.trace, "repeat": spec.repeat, "status": "error",
                       "reason": f"the session's Ray task failed: {one_line(got)}", "log": str(sess / "player.jsonl")}
            else:
                row, files = got
                write_node_files(sess, files)
                row.update({"policy": _label(spec.policy), "log": str(sess / "player.jsonl")})
                from foundation.atomic import atomic_text_writer
                with atomic_text_writer(sess / "result.json") as fh:  # with this machine's paths
                    fh.write(json.dumps(row) + "\n")
            yield cell_of[id(item)], self.with_sim(spec, row)

    def _node_video(self, executor):
        """What a node needs to serve the video: a sized video's table (the node writes its sparse segments), or
        an encoded video's files (put once in the cluster's object store)."""
        if self.content.kind == "sized":
            return ("sized", self.video)
        root = self.content.root
        files = {f.relative_to(root).as_posix(): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}
        return ("files", executor.ray.put(files))


def emulate_session(item: tuple) -> tuple[dict, dict[str, bytes]]:
    """One session on whichever node runs it (a Ray task of ``genet emulate abr --ray-address``): in a node-local
    folder (:func:`emulation.cluster.run_in_node_folder`), the trace, the video and the model written from what
    the head sent, the session run as locally by a worker process (``python -m player.emulate SPEC``); returns
    its row and its files (player and server logs, result.json, ...)."""
    import dataclasses
    from emulation.cluster import run_in_node_folder
    spec, trace_bytes, video, model = item

    def body(tmp: Path):
        (tmp / "trace").mkdir()
        trace_path = tmp / "trace" / Path(spec.trace_path).name
        trace_path.write_bytes(trace_bytes)
        video_dir = tmp / "video"
        kind, payload = video
        if kind == "sized":
            from player.content import write_sized_video
            write_sized_video(video_dir, payload)
        else:
            import ray
            from emulation.cluster import write_node_files
            write_node_files(video_dir, ray.get(payload))
        policy = spec.policy
        if model is not None:  # the same file name: the same policy label
            (tmp / "model").mkdir()
            policy = str(tmp / "model" / Path(spec.policy).name)
            Path(policy).write_bytes(model)
        sess = tmp / "session"
        sess.mkdir()
        node_spec = dataclasses.replace(spec, policy=policy, trace_path=str(trace_path), video_dir=str(video_dir),
                                        session_dir=str(sess))
        (tmp / "spec.json").write_text(json.dumps(asdict(node_spec)))
        with open(sess / "worker.err", "w") as err:
            p = subprocess.Popen([sys.executable, "-m", "player.emulate", str(tmp / "spec.json")], stdout=err,
                                 stderr=subprocess.STDOUT, start_new_session=True)
            try:
                p.wait(spec.timeout_s + 120.0)
            except subprocess.TimeoutExpired:  # a session past its time: its link tears down
                _stop_workers({p: (None, None, err)})
            except BaseException:  # the task cancelled
                _stop_workers({p: (None, None, err)})
                raise
        return _finished_row(node_spec, p.returncode), sess

    return run_in_node_folder(body)


def emulate_abr(cfg: EmulateAbrConfig, progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every session (``cfg.jobs`` at once), write the results; returns the rows. Holds ``cfg.out``'s
    run-folder lock (:func:`foundation.journal.run_folder_lock`): one command per output folder."""
    from foundation.journal import run_folder_lock
    with run_folder_lock(cfg.out, "genet emulate abr"):
        return _emulate_abr(cfg, progress)


def _emulate_abr(cfg: EmulateAbrConfig, progress: Callable[[dict], None] | None) -> list[dict]:
    from genet.abr.registry import make_policy
    if cfg.jobs < 1 or cfg.repeats < 1:
        raise BadInputError(f"--jobs and --repeats must be >= 1, got {cfg.jobs}, {cfg.repeats}")
    labels = [_label(p) for p in cfg.policies]
    if len(set(labels)) != len(labels):
        raise BadInputError(f"--policy values must have distinct names, got {labels}")
    for p in cfg.policies:  # unknown names / bad models fail before any link is made
        if cfg.player == "chromium" and p.startswith("dashjs:"):
            from player.browser import BrowserConfig
            BrowserConfig(url="http://h/", abr=p).check()
            continue
        make_policy(p)
    if cfg.ray_address:  # the nodes run the links (each checked before any session)
        try:
            import ray  # noqa: F401
        except ImportError:
            from foundation.errors import MissingExtraError
            raise MissingExtraError("cluster", "--ray-address", "ray") from None
        if cfg.player != "python":
            raise BadInputError("--ray-address runs the Python player (--player python): Chromium is not "
                                "checked on the nodes")
        if cfg.backend != "netns":
            raise BadInputError("--ray-address needs the netns backend (each link's host side in a namespace "
                                "of its own: sessions on one node cannot clash on ports)")
    elif os.geteuid() != 0:
        from emulation.config import EmulationError
        raise EmulationError("genet emulate abr needs root (network namespaces, TUN devices)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = None
    try:
        from foundation.runmeta import write_run_metadata
        meta = write_run_metadata(out, extra={"use_case": "abr", "emulation": asdict(cfg)})
    except ImportError:
        pass
    content = _prepare_video(cfg, out)
    if cfg.player == "chromium" and content.kind != "encoded":
        raise BadInputError("--player chromium needs an encoded video (--video DIR from `genet player make-video`)")
    video = content.video
    n_chunks = video.n_source_chunks
    files = _trace_files(cfg.traces)
    key = {"traces": str(Path(cfg.traces).resolve()), "video": str(content.root.resolve()), "delay_ms": cfg.delay_ms,
           "backend": cfg.backend, "n_chunks": n_chunks, **({"player": cfg.player} if cfg.player != "python" else {}), "tcp_cc": cfg.tcp_cc}
    from foundation.experiment import Experiment, matrix
    from foundation.journal import Journal
    journal = Journal(out / "results.jsonl")  # a row per finished session: a rerun skips the complete ones
    by_label = dict(zip(labels, cfg.policies))
    names = [f.name for f in files]
    cells = matrix(labels, names, cfg.repeats, order="shuffled",  # policies interleaved in time
                   data=lambda label, i, r: (by_label[label], files[i]))
    place = {c.key: k for k, c in enumerate(matrix(labels, names, cfg.repeats, order="policy"))}
    tier = EmulatedAbr(cfg, key, out, content, video, n_chunks)
    rows = Experiment(tier, journal, on_row=lambda cell, row, reused: progress is not None and not reused
                      and progress(row)).run(cells).rows
    rows.sort(key=lambda r: place.get((r["policy"], r["trace"], r["repeat"]), len(place)))  # files: by policy
    write_results(out, rows, labels)
    if meta is not None:
        meta.finish(out, status=0 if all(r["status"] == "complete" for r in rows) else 1)
    return rows


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_workers(running: dict) -> None:
    """SIGTERM each worker's process group (its link tears down), then SIGKILL what is left after 15 s."""
    for p in running:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15.0
    for p in running:
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    for *_, err in running.values():
        err.close()
    running.clear()


def _finished_row(spec: SessionSpec, returncode: int) -> dict[str, Any]:
    res = Path(spec.session_dir) / "result.json"
    if res.is_file():
        try:
            return json.loads(res.read_text())
        except ValueError:
            pass
    tail = ""
    err = Path(spec.session_dir) / "worker.err"
    if err.is_file():
        tail = err.read_text(errors="replace").strip()[-400:]
    return {"policy": _label(spec.policy), "trace": spec.trace, "repeat": spec.repeat, "status": "error",
            "reason": f"session worker exited {returncode}: {tail}", "log": str(Path(spec.session_dir) / "player.jsonl")}


#: The simulator's figures beside each session: the use case's columns (QOE_FIELDS, genet/abr/qoe.py) in the
#: order of the simulator's record (:class:`genet.abr.qoe.VideoQoe`).
SIM_COLUMNS = tuple(f"sim_{f.name}" for f in fields(VideoQoe) if f.name in QOE_FIELDS)
#: The columns of results.csv / results.json, in order.
COLUMNS = ("policy", "trace", "repeat", *QOE_FIELDS, "chunks", "status", "reason", *SIM_COLUMNS,
           "trace_offset_s", "wall_s", "log")


def summary_table(rows: Sequence[dict], labels: Sequence[str]) -> str:
    head = (f"{'policy':<20} {'ok/all':>7} {'bitrate_mbps':>12} {'rebuffer_s':>10} {'change_mbps':>11} "
            f"{'qoe':>9} {'sim_qoe':>9} {'gap_%':>7}")
    lines = [head, "-" * len(head)]
    for lab in labels:
        mine = [r for r in rows if r["policy"] == lab]
        ok = [r for r in mine if r.get("status") == "complete"]
        if not ok:
            lines.append(f"{lab[:20]:<20} {len(ok):>3}/{len(mine):<3}")
            continue

        def m(k):
            return float(np.mean([r[k] for r in ok]))
        gap = 100.0 * (m("qoe") - m("sim_qoe")) / abs(m("sim_qoe")) if m("sim_qoe") else float("nan")
        lines.append(f"{lab[:20]:<20} {len(ok):>3}/{len(mine):<3} {m('bitrate_mbps'):>12.4f} {m('rebuffer_s'):>10.4f} "
                     f"{m('bitrate_change_mbps'):>11.4f} {m('qoe'):>9.3f} {m('sim_qoe'):>9.3f} {gap:>7.1f}")
    lines.append("(means over completed sessions of the per-video figures; sim_*: the simulator on the same trace, "
                 "video and RTT; gap = (qoe - sim_qoe) / |sim_qoe|)")
    failed = [r for r in rows if r.get("status") != "complete"]
    for r in failed:
        lines.append(f"FAILED {r['policy']} {r['trace']} r{r['repeat']}: {r.get('status')}: {r.get('reason', '')[:200]}")
    return "\n".join(lines)


def write_results(out: Path, rows: Sequence[dict], labels: Sequence[str]) -> None:
    import csv
    import io

    from foundation.atomic import atomic_text_writer
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    with atomic_text_writer(out / "results.csv") as fh:
        fh.write(buf.getvalue())
    table = summary_table(rows, labels)
    with atomic_text_writer(out / "results.json") as fh:
        fh.write(json.dumps({"results": [{k: r.get(k) for k in COLUMNS} for r in rows]}, indent=1))
    from foundation.stats import format_gap_verdicts, gap_verdicts
    ok = [r for r in rows if r.get("status") == "complete"]
    verdicts = gap_verdicts(ok, QOE_FIELDS)
    with atomic_text_writer(out / "summary.txt") as fh:
        fh.write(table + "\n\n" + format_gap_verdicts(verdicts) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(verdicts[0]) if verdicts else ["policy"])
    w.writeheader()
    w.writerows(verdicts)
    with atomic_text_writer(out / "gap_verdicts.csv") as fh:
        fh.write(buf.getvalue())
    try:
        _plots(out, rows, labels)
    except ImportError:
        pass


def _plots(out: Path, rows: Sequence[dict], labels: Sequence[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r.get("status") == "complete"]
    if not ok:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for lab in labels:
        x = np.sort([r["qoe"] for r in ok if r["policy"] == lab])
        if len(x):
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=f"{lab} (mean {np.mean(x):.2f})")
    ax.set_xlabel("per-video total QoE (emulation)")
    ax.set_ylabel("CDF")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "qoe_cdf.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 4), squeeze=False)
    for ax, lab in zip(axes[0], labels):
        pts = [(r["sim_qoe"], r["qoe"]) for r in ok if r["policy"] == lab]
        if pts:
            a = np.asarray(pts)
            ax.scatter(a[:, 0], a[:, 1], s=12)
            lo, hi = float(a.min()), float(a.max())
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_title(lab)
        ax.set_xlabel("simulator QoE")
        ax.set_ylabel("emulation QoE")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "sim_vs_emulation.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: ``python -m player.emulate SPEC.json`` runs one session."""
    argv = sys.argv[1:] if argv is None else argv
    spec = SessionSpec(**json.loads(Path(argv[0]).read_text()))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    run_session(spec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
