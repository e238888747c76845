"""The browser player (issue 14): real dash.js 5.2.1 in Debian's headless Chromium, driven by Selenium, deciding
through the server's ABR endpoint — over a netns link, against the Python player on a step trace, the VP9
video, and its failure detection (a codec error, a script that throws, a busy-looping page, a killed browser,
autoplay that never starts: each a failed run with a console log).

Real components: ffmpeg-encoded video, the Flask/waitress server as a process, Chromium + chromedriver, the
netns emulator. Skips (with the reason) without chromium/chromedriver/selenium, dash.js (scripts/provision.sh),
ffmpeg, or root (netns tests).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from player.browser import BrowserConfig, browser_missing_reason, play_browser
from player.browser_routes import DASHJS_VERSION, dashjs_missing_reason

REPO = Path(__file__).resolve().parents[1]
_reason = browser_missing_reason() or dashjs_missing_reason() or (
    None if shutil.which("ffmpeg") else "ffmpeg not found (Debian package ffmpeg; scripts/provision.sh installs it)")
pytestmark = [pytest.mark.skipif(_reason is not None, reason=str(_reason)), pytest.mark.timeout(300)]
NEED_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="netns emulation needs root")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrowserServer:
    """`python -m player.browser serve` (the video server + the browser page) as a process."""

    def __init__(self, video_dir, policy="bba", bind="127.0.0.1", log=None, report_dir=None, popen=None):
        self.port = _free_port()
        self.bind = bind
        cmd = [sys.executable, "-m", "player.browser", "serve", "--video", str(video_dir), "--bind", bind,
               "--port", str(self.port), "--policy", policy]
        if log:
            cmd += ["--log", str(log)]
        if report_dir:
            cmd += ["--report-dir", str(report_dir)]
        start = popen or (lambda c, **kw: subprocess.Popen(c, **kw))
        self.proc = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(REPO))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1" if bind == "0.0.0.0" else bind, self.port, timeout=1)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stdout.read())
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    @property
    def url(self) -> str:
        return f"http://{self.bind}:{self.port}/"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A short H.264 video: 6 chunks x 4 s, the six-level ladder (player/content.py, ffmpeg)."""
    from player.content import make_encoded_video
    return make_encoded_video(tmp_path_factory.mktemp("enc") / "video", duration_s=24.0, codec="h264")


def _read_log(path):
    recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {"session": recs[0], "chunks": [r for r in recs if r["type"] == "chunk"],
            "stalls": [r for r in recs if r["type"] == "stall"], "summary": recs[-1]}


def _png_is_not_blank(path) -> bool:
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    video = img[:360, :640]  # the video element's area (player.html)
    return img.shape[0] >= 360 and video.std() > 10.0 and len(np.unique(video.reshape(-1, 3)[::97], axis=0)) > 20


def test_provisioning_pins_the_dashjs_version_the_page_loads():
    text = (REPO / "scripts" / "provision.sh").read_text()
    assert f"DASHJS_VERSION={DASHJS_VERSION}\n" in text
    assert "/player/assets/vendor/" in (REPO / ".gitignore").read_text()
    page = (REPO / "player" / "assets" / "player.html").read_text()
    assert "http" not in page.replace("http-equiv", "")  # nothing from a CDN


@NEED_ROOT
def test_chromium_plays_the_encoded_video_to_the_end_over_a_netns_link(encoded, tmp_path):
    """One decision per segment (after the first) reaches the ABR endpoint; the log has every segment, the
    measurements reached the server, the summary comes from the one QoE module, the screenshot shows video."""
    from emulation import LinkEmulator
    from genet.abr.qoe import video_qoe
    n = encoded.n_chunks
    srv_log, reports, log = tmp_path / "server.jsonl", tmp_path / "reports", tmp_path / "run.jsonl"
    with LinkEmulator(12.0, 6.0, delay_ms=20) as link:
        with BrowserServer(encoded.root, policy="bba", bind=link.host.address, log=srv_log, report_dir=reports,
                           popen=link.host.popen) as srv:
            res = link.emulated.run([sys.executable, "-m", "player.browser", "play", "--url", srv.url,
                                     "--log", str(log), "--session", "netns1"], timeout_s=150, cwd=str(REPO))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    run = _read_log(log)
    s = run["summary"]
    assert s["status"] == "complete" and s["ended"], s
    assert [c["chunk_index"] for c in run["chunks"]] == list(range(n))
    assert all(c["bytes"] == int(encoded.video.chunk_sizes_bytes[c["quality"], c["chunk_index"]]) for c in run["chunks"])
    assert all(c["download_ms"] > 40 for c in run["chunks"])  # through the link: at least one 40-ms RTT
    decisions = [json.loads(x) for x in srv_log.read_text().splitlines() if '"decision"' in x]
    decisions = [d for d in decisions if d["session"] == "netns1"]
    assert [d["last_request"] for d in decisions] == list(range(n - 1)) and s["decisions"] == n - 1
    # the endpoint's answer is the quality the next chunk was fetched at
    assert [d["reply"] for d in decisions] == [c["quality"] for c in run["chunks"][1:]]
    assert run["chunks"][0]["quality"] == 1  # the first quality, as the Python player
    q = video_qoe([c["bitrate_kbps"] for c in run["chunks"]], [c["rebuffer_s"] for c in run["chunks"]],
                  encoded.video.bitrates_kbps[1])
    assert s["qoe"] == pytest.approx(q.qoe) and s["bitrate_mbps"] == pytest.approx(q.bitrate_mbps)
    posted = [json.loads(x) for x in (reports / "netns1.events.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "segment" for e in posted) == n and any(e["type"] == "ended" for e in posted)
    assert run["session"]["dashjs_version"] == DASHJS_VERSION
    assert _png_is_not_blank(tmp_path / "run.png")


def _step_trace(t_drop_s: float):
    from traces.trace import Trace
    return Trace(np.array([0.0, t_drop_s, t_drop_s + 15.0, t_drop_s + 600.0]), np.array([5.0, 0.2, 5.0, 5.0]),
                 name="step")


def _in_flight(chunks, drop_epoch_s):
    """(chunk, s from its request to the drop) of the chunk downloading at the drop, or None."""
    for c in chunks:
        start = c["epoch_request_s"]
        if start <= drop_epoch_s < start + c["download_ms"] / 1000.0:
            return c, drop_epoch_s - start
    return None


def _drop_on_a_knife_edge(chunks, drop_epoch_s, low_s=15.0):
    """None when the step's stall is well defined for this player; else why not. The stall is decided by the
    chunk in flight at the drop: if it spans the low period, it ends with it (stable); if it ends inside it,
    its end moves 2.5 s per 0.1 s the drop moves against its request (5 / 0.2 Mbit/s), so two players a few
    hundred ms apart cannot be compared."""
    fl = _in_flight(chunks, drop_epoch_s)
    if fl is None:
        return None
    c, since_s = fl
    end_after_s = c["download_ms"] / 1000.0 - since_s
    if end_after_s < low_s - 0.5:
        return (f"chunk {c['chunk_index']} requested {since_s:.2f} s before the drop ended "
                f"{end_after_s:.2f} s after it, inside the {low_s:g}-s low period")
    return None


def _python_player(cfg, log):
    from player.client import play
    return play(cfg, log).summary()


@NEED_ROOT
@pytest.mark.flaky(reruns=1, reruns_delay=2)  # wall-clock stalls of two players: one rerun after a scheduling stall
def test_step_trace_stall_and_qualities_match_the_python_player(encoded, tmp_path):
    """5 -> 0.2 Mbit/s for 15 s -> 5 Mbit/s, BBA: the browser reports a stall close to the Python player's on the
    same trace and timing (see the tolerance below), and the same policy picks the same quality for >= 80 % of
    chunks.
    Timing: the server is up before the link (listening on every address of the root namespace, where the
    link's host side is); the browser launches and loads the page (and dash.js) over the link, then starts
    the session 12 s after the link started; the drop comes 3 s later; the Python player
    requests chunk 0 at the browser's measured first-request time (``first_chunk_at_epoch_s``, after its
    MPD fetch) and each later chunk no earlier than the browser did (``request_not_before_s``), so both meet
    the drop at the same point of the same chunk; it asks the
    same ABR endpoint over the link (one RTT per decision, as the browser's synchronous POST)."""
    from emulation import LinkEmulator
    from player.client import PlayerConfig
    open_at_s, drop_s = 12.0, 15.0
    b_log, p_log = tmp_path / "browser.jsonl", tmp_path / "python.jsonl"
    with BrowserServer(encoded.root, policy="bba", bind="0.0.0.0") as srv:
        with LinkEmulator(12.0, _step_trace(drop_s), delay_ms=40) as link:
            t_link = time.time()
            url = f"http://{link.host.address}:{srv.port}/"
            res = link.emulated.run([sys.executable, "-m", "player.browser", "play", "--url", url,
                                     "--log", str(b_log), "--session", "step-b",
                                     "--start-at-epoch-s", str(t_link + open_at_s)], timeout_s=150, cwd=str(REPO))
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        b = _read_log(b_log)
        t_b = t_link
        b_offset = b["chunks"][0]["epoch_request_s"] - t_link
        b_edge = _drop_on_a_knife_edge(b["chunks"], t_link + drop_s)
        assert b_offset < drop_s, b_offset  # the browser started before the drop
        with LinkEmulator(12.0, _step_trace(drop_s), delay_ms=40) as link:
            t_link = time.time()
            url = f"http://{link.host.address}:{srv.port}/"
            # the Python player fetches the MPD at once, requests chunk 0 at the browser's offset and each later
            # chunk no earlier than the browser did (dash.js waits 0.1-0.8 s before some requests)
            b_times = [c["epoch_request_s"] - b["chunks"][0]["epoch_request_s"] for c in b["chunks"]]
            summary = link.emulated.call(_python_player, PlayerConfig(
                url=url, abr_server=True, first_chunk_at_epoch_s=t_link + b_offset, request_not_before_s=b_times),
                str(p_log), timeout_s=150)
    assert summary["status"] == "complete", summary
    p = _read_log(p_log)
    p_offset = p["chunks"][0]["epoch_request_s"] - t_link
    p_edge = _drop_on_a_knife_edge(p["chunks"], t_link + drop_s)
    b_fl, p_fl = (None if fl is None else (fl[0]["chunk_index"], round(fl[1], 3))
                  for fl in (_in_flight(b["chunks"], t_b + drop_s), _in_flight(p["chunks"], t_link + drop_s)))
    same_point = b_fl is not None and p_fl is not None and b_fl[0] == p_fl[0] and abs(b_fl[1] - p_fl[1]) <= 0.04
    print(f"\nin flight at the drop (chunk, s since its request): browser {b_fl}, Python {p_fl}")
    lags = [round(c["epoch_request_s"] - p["chunks"][0]["epoch_request_s"] - t, 3) for c, t in zip(p["chunks"], b_times)]
    print(f"\nPython player's requests after the browser's (s): {lags}")
    print(f"chunk 0 requested {b_offset:.3f} s (browser) / {p_offset:.3f} s (Python) after the link started; "
          f"stall after start-up: browser {b['summary'].get('stall_s')} s, Python "
          f"{sum(c['rebuffer_s'] for c in p['chunks'][1:]):.2f} s")
    if (b_edge or p_edge) and not same_point:
        # Not comparable: a start-up delay moved the drop off the chunk that spans the low period in one of
        # the players (0.1 s of shift moves a chunk's end by 2.5 s at 5 Mbit/s). Seen in 2 of 4 fresh-clone
        # runs on an idle machine, with the Python player started by a fixed 0.3-s warm-up allowance (it now
        # requests chunk 0 at the browser's offset to the ms and replays its request times). Comparable when
        # both players meet the drop within 40 ms of the same point of the same chunk (1 s of stall at most);
        # else skipped with the figures rather than failed.
        pytest.skip(f"the drop did not meet a chunk that spans the low period: browser {b_edge}; python {p_edge}; "
                    f"in flight: browser {b_fl}, python {p_fl}")
    assert abs(p_offset - b_offset) < 0.05, (p_offset, b_offset)
    assert min(lags) >= -0.002, lags  # never before the browser's request times
    assert b["summary"]["stalls"] >= 1 and b["summary"]["stall_s"] > 1.0, b["summary"]
    # the Python player books its start-up (chunk 0's download) as stall; dash.js does not: compare the rest
    p_stall = sum(c["rebuffer_s"] for c in p["chunks"][1:])
    assert p_stall > 1.0
    # Issue 14's 20 %. Before two browser-side fixes the browser stalled 1.5-2.4 s longer under load (3.27/3.05,
    # 4.47/3.03, 5.39/3.32, 5.45/3.33 s): dash.js 5.2.1 re-requests the init segment on every quality switch (one
    # RTT before each chunk; now answered from Chromium's cache: the server lets init segments be cached and the
    # page prefetches them), and dash.js's BUFFER_EMPTY comes at 0.3 s left while the element still plays (the
    # stall now starts at the element's 'waiting'). After them: 5.11 vs 4.91 s (load 7) and 5.25 vs 5.01 s (load 5-9).
    assert abs(b["summary"]["stall_s"] - p_stall) <= 0.2 * p_stall, (b["summary"]["stall_s"], p_stall)
    bq, pq = [c["quality"] for c in b["chunks"]], [c["quality"] for c in p["chunks"]]
    assert len(bq) == len(pq) == encoded.n_chunks
    assert np.mean(np.array(bq) == np.array(pq)) >= 0.8, (bq, pq)


# ------------------------------------------------------------------------------------ failure detection
def _linked_copy(src: Path, dst: Path) -> Path:
    """The video directory as hard links (the server refuses symlinks out of its directory)."""
    for p in src.rglob("*"):
        t = dst / p.relative_to(src)
        if p.is_dir():
            t.mkdir(parents=True, exist_ok=True)
        else:
            t.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, t)
    return dst


def _assert_failed_with_console(res, log, fragment):
    assert res.status == "failed" and fragment in res.reason, (res.status, res.reason)
    run = _read_log(log)
    assert run["summary"]["status"] == "failed" and fragment in run["summary"]["reason"]
    assert Path(res.console_log).is_file() and Path(res.console_log).stat().st_size > 0
    assert "console_tail" in run["summary"]


def test_a_page_error_is_a_failed_run_with_the_console_log(encoded, tmp_path):
    broken = _linked_copy(encoded.root, tmp_path / "broken")  # an MPD whose codec no browser plays
    mpd = (broken / "manifest.mpd").read_text()
    (broken / "manifest.mpd").unlink()
    (broken / "manifest.mpd").write_text(re.sub(r'codecs="[^"]*"', 'codecs="xyz9.99"', mpd))
    with BrowserServer(broken) as srv:
        t = time.monotonic()
        res = play_browser(BrowserConfig(url=srv.url, start_timeout_s=15), tmp_path / "run.jsonl")
        took = time.monotonic() - t
    _assert_failed_with_console(res, tmp_path / "run.jsonl", "dashjs_error")
    assert "xyz9.99" in Path(res.console_log).read_text()  # the console says why
    assert took < 15 + 10  # reported at once, not after the start-up limit (a bound, not a speed check)


def test_a_crashed_browser_is_a_failed_run(encoded, tmp_path):
    def kill_browser(driver):
        profile = driver.capabilities["chrome"]["userDataDir"]
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(profile.encode() in c for c in cmd) and not any(c.startswith(b"--type=") for c in cmd):
                os.kill(int(pid), signal.SIGKILL)

    with BrowserServer(encoded.root, report_dir=tmp_path / "reports") as srv:
        res = play_browser(BrowserConfig(url=srv.url, session="crash1"), tmp_path / "run.jsonl",
                           on_playing=kill_browser)
    assert res.status == "failed" and "browser crashed or stopped responding" in res.reason, res.reason
    run = _read_log(tmp_path / "run.jsonl")
    assert run["summary"]["status"] == "failed"
    assert run["session"]["session"] == "crash1"  # what the page posted before the crash is kept (server copy)
    assert "console_tail" in run["summary"] and Path(res.console_log).stat().st_size > 0


def test_autoplay_that_never_starts_is_a_failed_run(encoded, tmp_path):
    with BrowserServer(encoded.root) as srv:
        res = play_browser(BrowserConfig(url=srv.url, muted=False, autoplay_flag=False, start_timeout_s=6),
                           tmp_path / "run.jsonl")
    _assert_failed_with_console(res, tmp_path / "run.jsonl", "playback did not start within 6 s")
    console = Path(res.console_log).read_text()
    assert "NotAllowedError" in console  # the console says why: the autoplay policy


def test_a_script_that_throws_is_a_failed_run_with_the_console_log(encoded, tmp_path):
    """An uncaught exception in the page's own script (an inline script added once playback runs, throwing from a
    timer) ends the run at the next poll (poll_s), with the exception in the reason and in the console log.
    (Code run by WebDriver's execute_script would not do: its errors reach the page only as "Script error.")"""
    def throw(driver):
        driver.execute_script("const s = document.createElement('script');"
                              "s.textContent = \"setTimeout(function () { throw new Error('genet-test-boom'); }, 0);\";"
                              "document.head.appendChild(s);")

    with BrowserServer(encoded.root) as srv:
        res = play_browser(BrowserConfig(url=srv.url, session="throw1"), tmp_path / "run.jsonl", on_playing=throw)
    _assert_failed_with_console(res, tmp_path / "run.jsonl", "page reported page_error")
    assert "genet-test-boom" in res.reason
    assert "genet-test-boom" in Path(res.console_log).read_text()
    assert _read_log(tmp_path / "run.jsonl")["summary"]["ended"] is False  # failed before the video ended


def test_a_hung_page_is_a_failed_run_with_the_console_log(encoded, tmp_path):
    """A page whose main thread loops forever answers no WebDriver command: the run fails after
    command_timeout_s, the browser is ended (no process left with its profile), and the console log (from
    Chromium's own log, as the page can no longer be asked) holds what the page printed before it hung."""
    from player.browser import browser_pids
    profiles = []

    def hang(driver):
        profiles.append(driver.capabilities["chrome"]["userDataDir"])
        driver.execute_script("setTimeout(function () { console.warn('genet-test-hanging'); while (true) {} }, 0);")

    with BrowserServer(encoded.root, report_dir=tmp_path / "reports") as srv:
        res = play_browser(BrowserConfig(url=srv.url, session="hang1", command_timeout_s=5),
                           tmp_path / "run.jsonl", on_playing=hang)
    _assert_failed_with_console(res, tmp_path / "run.jsonl", "no answer within 5 s")
    assert "genet-test-hanging" in Path(res.console_log).read_text()
    assert profiles and browser_pids(profiles[0]) == []
    assert _read_log(tmp_path / "run.jsonl")["session"]["session"] == "hang1"  # the server's copy of the events


def test_chromium_plays_the_vp9_video_through_dashjs(tmp_path):
    """`genet player make-video --codec vp9` (libvpx-vp9 DASH segments, the MPD's per-level vp09 codecs) plays to
    the end in dash.js: every chunk logged with its quality, the rendered qualities reported, and the frames
    decoded (HTMLVideoElement.getVideoPlaybackQuality) cover the video."""
    video = tmp_path / "vp9"
    mk = subprocess.run([sys.executable, "-m", "player", "make-video", "--out", str(video), "--codec", "vp9",
                         "--duration-s", "12"], capture_output=True, text=True, cwd=str(REPO), timeout=240)
    assert mk.returncode == 0, mk.stderr[-2000:]
    mpd = (video / "manifest.mpd").read_text()
    assert 'mimeType="video/webm"' in mpd or "video/webm" in mpd
    assert re.search(r'codecs="vp09\.', mpd), mpd[:600]
    table = json.loads((video / "video.json").read_text())
    n = len(table["chunk_sizes_bytes"][0])
    with BrowserServer(video) as srv:
        res = play_browser(BrowserConfig(url=srv.url, session="vp9"), tmp_path / "run.jsonl")
    assert res.status == "complete", (res.reason, Path(res.console_log).read_text()[-2000:] if res.console_log else "")
    recs = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    chunks = [r for r in recs if r["type"] == "chunk"]
    renders = [r for r in recs if r["type"] == "render"]
    s = recs[-1]
    assert [c["chunk_index"] for c in chunks] == list(range(n))
    assert all(0 <= c["quality"] < len(table["bitrates_kbps"]) for c in chunks)
    assert all(c["bytes"] == int(table["chunk_sizes_bytes"][c["quality"]][c["chunk_index"]]) for c in chunks)
    assert renders and all(0 <= r["quality"] < len(table["bitrates_kbps"]) for r in renders)
    switches = [c["quality"] for k, c in enumerate(chunks) if k == 0 or c["quality"] != chunks[k - 1]["quality"]]
    assert [r["quality"] for r in renders] == switches  # each quality change was rendered, in order
    assert s["total_frames"] >= 0.9 * 30 * 12, s  # 30 fps x 12 s decoded
    # dropped frames depend on the CPU (software VP9 decoding of up to 1080p; 42 of 360 at load 8 on 2 shared
    # cores): a bound that only catches a decoder that shows nothing
    assert s["total_frames"] - s["dropped_frames"] >= 0.5 * 30 * 12, s
    assert _png_is_not_blank(tmp_path / "run.png")
