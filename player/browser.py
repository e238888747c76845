"""The browser player: real dash.js 5.2.1 in Debian's headless Chromium, driven by Selenium, one session per run.

``play_browser(BrowserConfig(url=...), log)`` opens ``<url>player/?session=...&abr=...`` (player/browser_routes.py
serves it beside the video) and waits until the video has played to its end. Either our quality rule decides
(``abr="server"``: before every chunk but the first, a synchronous POST to the server's ABR endpoint in
Pensieve's protocol, so any policy of the registry decides with the same observation as the Python player), or
one of dash.js's own ABR strategies does (:data:`DASHJS_STRATEGIES`, the ABR logic real players ship).

Nothing is downloaded at run time: Chromium and chromedriver are Debian's (``/usr/bin/chromium``,
``/usr/bin/chromedriver``), Selenium Manager is off (``SE_OFFLINE=true``), dash.js comes from the project's
asset folder. Chromium flags: ``--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage
--autoplay-policy=no-user-gesture-required --mute-audio`` plus no background networking, no proxy, a fresh
profile per session (removed afterwards), and no timer throttling; the video element is muted.

Failure detection (a failed run is ``status="failed"`` with the reason and the browser's console log attached —
never an empty log that looks like success):

* a page error (uncaught exception, dash.js ``ERROR``, media element error, ABR endpoint failure) — seen at the
  next poll (every ``poll_s`` = 0.25 s);
* a crashed browser (any WebDriver error) — at the next poll; a hung page (its main thread blocked, e.g.
  dash.js looping on a malformed MPD) — when a WebDriver command has had no answer for ``command_timeout_s`` (15 s);
* the page's script not running (the page, with dash.js's 800 kB, comes over the emulated link too) —
  ``page_load_timeout_s`` (60 s) after the request;
* playback never starting (autoplay blocked, nothing playable) — ``start_timeout_s`` (20 s) after the page's
  script first ran;
* no progress (no chunk completed and the playhead not moving) for ``progress_timeout_s`` (60 s), or the run
  past ``max_wall_s`` (default 2 x the video's duration + 60 s).

Outputs beside the log ``RUN.jsonl``: ``RUN.png`` (screenshot at the end) and ``RUN.console.txt`` (the
browser's console; when the browser cannot be asked — crashed or hung — the console lines of Chromium's own log,
else that log's last lines: never empty for a failed run). Each case is tested in tests/test_player_browser.py
(codec error, script exception, busy-looping page, killed browser, autoplay blocked). The log has the Python player's records (``session``, ``chunk``, ``summary`` through the
one QoE module, player/browser_log.py) plus ``stall`` and ``render`` records.

Selenium is imported only when a session starts (``pip install 'selenium>=4.20'``; the ``test`` extra has it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY
from foundation.errors import BadInputError, GenetRuntimeError
from player.browser_log import summarize
from player.browser_routes import URL_PREFIX
from player.client import PlayResult

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: dash.js 5.2.1's own ABR strategies (quality rules under streaming.abr.rules; "dynamic" is its default:
#: BOLA and Throughput with the hybrid switch). Each keeps dash.js's companion rules as shipped
#: (InsufficientBuffer, SwitchHistory, AbandonRequests).
DASHJS_STRATEGIES = ("dashjs:dynamic", "dashjs:bola", "dashjs:throughput", "dashjs:l2a", "dashjs:lolp")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--no-first-run",
                  "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-proxy-server", "--disable-background-timer-throttling",
                  "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
                  "--window-size=800,600")

_STATE_JS = ("const g = window.genet; if (!g) return null; const v = document.getElementById('video');"
             "return {started: g.started, ended: g.ended, failed: g.failed, seq: g.seq, completed: g.completed,"
             " media_time_s: v ? v.currentTime : null};")


#: The failure-detection times (BrowserConfig defaults), for --help.
DETECTION_HELP = """failure detection (the run exits 3 with status "failed", the reason, and RUN.console.txt):
  page error (uncaught exception, dash.js ERROR, media error, ABR endpoint failure): at the next poll (0.25 s)
  crashed browser: at the next poll (0.25 s)
  hung page (main thread blocked): no WebDriver answer within 15 s
  page script not running: 60 s after the page request
  playback never starting (autoplay blocked): --start-timeout-s (20 s) after the page's script ran
  no progress: --progress-timeout-s (60 s); whole run: --max-wall-s (2 x video duration + 60 s)
the console log is the browser's console; when the browser cannot be asked (crash, hang) it is taken from
Chromium's own log, and it is never empty for a failed run"""


class BrowserUnavailable(GenetRuntimeError):
    """Chromium, chromedriver or Selenium is missing (names which and how to install it)."""


def browser_missing_reason(chromium: str = CHROMIUM, chromedriver: str = CHROMEDRIVER) -> str | None:
    """Why a browser session cannot start here (None when it can)."""
    for path, pkg in ((chromium, "chromium"), (chromedriver, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found (Debian package {pkg}; scripts/provision.sh installs it as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install 'selenium>=4.20' (it comes with the 'test' extra)"
    return None


@dataclass
class BrowserConfig:
    """url: the server root ("http://HOST:PORT/"); abr: "server" (the server's ABR endpoint decides) or one of
    :data:`DASHJS_STRATEGIES`; session: id (None: a random one); first_quality: quality of chunk 0 (1);
    buffer_s: dash.js buffer target (60, Pensieve's); muted: mute the video element (True; autoplay needs it);
    autoplay_flag: pass --autoplay-policy=no-user-gesture-required (True);
    page_load_timeout_s, start_timeout_s, progress_timeout_s, max_wall_s, poll_s, command_timeout_s: failure
    detection (module docstring);
    start_at_epoch_s: load the page at once but start its session (MPD request) at this time (epoch s; None:
    as soon as the page loads);
    rebuffer_penalty, smooth_penalty: QoE weights; chromium, chromedriver: binaries; extra_flags: more Chromium
    flags; extra: added to the log's session record."""

    url: str
    abr: str = "server"
    session: str | None = None
    first_quality: int = 1
    buffer_s: float = 60.0
    muted: bool = True
    autoplay_flag: bool = True
    start_timeout_s: float = 20.0
    progress_timeout_s: float = 60.0
    max_wall_s: float | None = None
    poll_s: float = 0.25
    command_timeout_s: float = 15.0
    page_load_timeout_s: float = 60.0
    start_at_epoch_s: float | None = None
    rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE
    smooth_penalty: float = SMOOTH_PENALTY
    chromium: str = CHROMIUM
    chromedriver: str = CHROMEDRIVER
    extra_flags: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.abr != "server" and self.abr not in DASHJS_STRATEGIES:
            raise BadInputError(f"browser ABR {self.abr!r}: expected 'server' (the ABR endpoint's policy) or one of "
                                f"{', '.join(DASHJS_STRATEGIES)}")
        u = urllib.parse.urlsplit(self.url)
        if u.scheme != "http" or not u.hostname:
            raise BadInputError(f"--url {self.url!r}: expected http://HOST:PORT/")


@dataclass
class BrowserResult(PlayResult):
    """PlayResult (status "complete" or "failed", reason, Table-6 fields, chunks) plus the browser's files and
    figures: log, screenshot, console_log paths; browser_start_s (launch to WebDriver ready), page_load_s."""

    log: str = ""
    screenshot: str = ""
    console_log: str = ""
    browser_start_s: float = 0.0
    page_load_s: float = 0.0
    extra_summary: dict = field(default_factory=dict)


def _server_json(url: str, path: str, timeout_s: float = 10.0) -> Any:
    full = urllib.parse.urljoin(url, path)
    try:
        with urllib.request.urlopen(full, timeout=timeout_s) as r:
            return json.loads(r.read())
    except (OSError, ValueError) as exc:
        raise GenetRuntimeError(f"{full}: {exc}") from None


def _side_paths(log_path: Path | None) -> tuple[Path | None, Path | None]:
    if log_path is None:
        return None, None
    stem = log_path.name[:-len(".jsonl")] if log_path.name.endswith(".jsonl") else log_path.stem
    return log_path.with_name(stem + ".png"), log_path.with_name(stem + ".console.txt")


def page_url(cfg: BrowserConfig, session: str, initial_kbps: float | None) -> str:
    q = {"session": session, "abr": cfg.abr, "first_quality": cfg.first_quality, "buffer_s": cfg.buffer_s}
    if initial_kbps is not None:
        q["initial_kbps"] = f"{initial_kbps:g}"
    if not cfg.muted:
        q["muted"] = 0
    if cfg.start_at_epoch_s is not None:
        q["autostart"] = 0
    return urllib.parse.urljoin(cfg.url, URL_PREFIX.lstrip("/") + "/") + "?" + urllib.parse.urlencode(q)


def play_browser(cfg: BrowserConfig, log_path: str | os.PathLike | None = None,
                 on_playing: Callable[[Any], None] | None = None) -> BrowserResult:
    """Play the server's video once in headless Chromium; writes the log (and screenshot, console log) and
    returns the result. ``on_playing(driver)`` is called once playback has started (tests use it to break
    things)."""
    cfg.check()
    missing = browser_missing_reason(cfg.chromium, cfg.chromedriver)
    if missing:
        raise BrowserUnavailable(missing)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download a driver
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    log_path = Path(log_path) if log_path is not None else None
    png_path, console_path = _side_paths(log_path)
    session = cfg.session or f"b{os.getpid()}-{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    started_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    table = _server_json(cfg.url, "video.json")
    bitrates = [float(b) for b in table["bitrates_kbps"]]
    n_chunks = len(table["chunk_sizes_bytes"][0])
    duration_s = n_chunks * float(table.get("chunk_length_s", 4.0))
    if not 0 <= cfg.first_quality < len(bitrates):
        raise BadInputError(f"first_quality {cfg.first_quality} outside [0, {len(bitrates) - 1}]")
    max_wall_s = cfg.max_wall_s if cfg.max_wall_s is not None else 2 * duration_s + 60.0
    url = page_url(cfg, session, bitrates[cfg.first_quality])

    opts = webdriver.ChromeOptions()
    opts.binary_location = cfg.chromium
    profile = tempfile.mkdtemp(prefix="genet-chromium-")
    driver_log = profile + ".chromedriver.log"  # Chromium's stderr: its console lines survive a hung page
    flags = [f for f in CHROMIUM_FLAGS if cfg.autoplay_flag or not f.startswith("--autoplay-policy")]
    for f in (*flags, f"--user-data-dir={profile}", *cfg.extra_flags):
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.page_load_strategy = "none"  # get() returns at once; the poll loop below watches the page come up
    driver = None
    hung = False
    status, reason = "complete", ""
    events: list[dict] = []
    console: list[dict] = []
    browser_start_s = page_load_s = 0.0
    try:
        try:
            t_launch = time.monotonic()
            driver = webdriver.Chrome(service=Service(cfg.chromedriver, log_output=driver_log), options=opts)
            browser_start_s = time.monotonic() - t_launch
            # every WebDriver command answers within this time, or the page is hung (a busy main thread)
            client_config = getattr(driver.command_executor, "_client_config", None)
            if client_config is not None:
                client_config.timeout = cfg.command_timeout_s
            driver.set_script_timeout(10)
            t_load = time.monotonic()
            driver.get(url)
        except Exception as exc:  # noqa: BLE001 - WebDriver errors and a hung page's read timeout
            hung = driver is not None
            raise _Failed(f"browser did not start or load {url}: {_short(exc)}") from None
        t_page = None  # when the page's script first answered (dash.js and our script loaded and ran)
        last_progress = (None, None)
        t_progress = time.monotonic()
        called_hook = False
        while True:
            now = time.monotonic()
            try:
                st = driver.execute_script(_STATE_JS)
            except WebDriverException as exc:
                hung = True
                raise _Failed(f"browser crashed or stopped responding: {_short(exc)}") from None
            except Exception as exc:  # noqa: BLE001 - no answer within command_timeout_s
                hung = True
                raise _Failed(f"browser crashed or stopped responding: no answer within {cfg.command_timeout_s:g} s "
                              f"({type(exc).__name__}): the page's main thread is blocked or the browser is gone") from None
            if st is None:
                if now - t_load > cfg.page_load_timeout_s:
                    raise _Failed(f"the player page's script did not run within {cfg.page_load_timeout_s:g} s "
                                  f"of requesting {url}")
            else:
                if t_page is None:
                    page_load_s = now - t_load
                    if cfg.start_at_epoch_s is not None:  # the loaded page starts its session at a set time
                        time.sleep(max(cfg.start_at_epoch_s - time.time(), 0.0))
                        try:
                            driver.execute_script("window.genet.start();")
                        except Exception as exc:  # noqa: BLE001
                            hung = True
                            raise _Failed(f"browser crashed or stopped responding: {_short(exc)}") from None
                        now = time.monotonic()
                    t_page = now
                if st.get("failed"):
                    raise _Failed(f"page reported {st['failed']}")
                if st.get("ended"):
                    break
                if not st.get("started") and now - t_page > cfg.start_timeout_s:
                    raise _Failed(f"playback did not start within {cfg.start_timeout_s:g} s of the page loading "
                                  "(autoplay blocked, or nothing playable)")
                if st.get("started") and on_playing is not None and not called_hook:
                    called_hook = True
                    on_playing(driver)
                prog = (st.get("completed"), round(float(st.get("media_time_s") or 0.0), 1))
                if prog != last_progress:
                    last_progress, t_progress = prog, now
                elif now - t_progress > cfg.progress_timeout_s:
                    raise _Failed(f"no progress for {cfg.progress_timeout_s:g} s (last chunk {prog[0]}, "
                                  f"playhead {prog[1]} s)")
            if now - t0 > max_wall_s:
                raise _Failed(f"the video did not end within {max_wall_s:g} s")
            time.sleep(cfg.poll_s)
    except _Failed as exc:
        status, reason = "failed", str(exc)
    finally:
        if driver is not None and hung:
            _end_browser(driver, profile)
            driver = None
        if driver is not None:
            events, console = _collect(driver, status == "complete")
            if png_path is not None:
                try:
                    png_path.parent.mkdir(parents=True, exist_ok=True)
                    driver.save_screenshot(str(png_path))
                except Exception:  # noqa: BLE001 - a crashed browser takes no screenshot
                    png_path = None
            _end_browser(driver, profile)
        shutil.rmtree(profile, ignore_errors=True)
        if not console:
            console = _console_from_driver_log(driver_log)
        if not console and status != "complete":  # nothing printed: Chromium's own last log lines say what happened
            console = _driver_log_tail(driver_log)
        if not console and status != "complete":
            console = [{"timestamp": "", "level": "NOTE", "message": f"no console messages ({reason})"}]
        try:
            os.unlink(driver_log)
        except OSError:
            pass
    if not events:  # the page is gone (crash): what it posted to the server survives there
        try:
            events = _server_json(cfg.url, f"{URL_PREFIX.lstrip('/')}/report/{session}")["events"]
        except (GenetRuntimeError, KeyError, TypeError):
            events = []
    run = summarize(events, bitrates, cfg.first_quality, cfg.rebuffer_penalty, cfg.smooth_penalty)
    if status == "complete" and len(run.chunks) != n_chunks:
        status, reason = "failed", f"the page logged {len(run.chunks)} of {n_chunks} chunks"
    wall_s = time.monotonic() - t0
    s = run.summary
    result = BrowserResult(status, reason, s.get("qoe", 0.0), s.get("qoe_per_chunk", 0.0), s.get("bitrate_mbps", 0.0),
                           s.get("rebuffer_s", 0.0), s.get("bitrate_change_mbps", 0.0), int(s.get("chunks", 0)), wall_s,
                           run.chunks, str(log_path or ""), str(png_path or ""), str(console_path or ""),
                           browser_start_s, page_load_s, s)
    if console_path is not None:
        console_path.parent.mkdir(parents=True, exist_ok=True)
        console_path.write_text("".join(f"{c.get('timestamp', '')} {c.get('level', '')} {c.get('message', '')}\n"
                                        for c in console), encoding="utf-8")
    if log_path is not None:
        _write_log(log_path, cfg, session, url, started_utc, table, events, run, result, console)
    return result


class _Failed(Exception):
    pass


def _console_from_driver_log(path: str) -> list[dict]:
    """Console messages from Chromium's own log lines (``...:INFO:CONSOLE(12)] "msg", source: URL (12)``)."""
    out = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if ":CONSOLE" in line or "CONSOLE(" in line:
            out.append({"timestamp": "", "level": "CONSOLE", "message": line.strip()})
    return out


def _driver_log_tail(path: str, n_lines: int = 40) -> list[dict]:
    """The last lines of chromedriver's and Chromium's log (a crashed browser's only record)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [{"timestamp": "", "level": "CHROMEDRIVER", "message": ln.strip()} for ln in lines[-n_lines:] if ln.strip()]


def _end_browser(driver, profile: str) -> None:
    """Quit the browser; then end whatever is left of it (a hung or crashed browser ignores quit): the
    chromedriver process and every process started with this session's profile directory."""
    import signal
    try:
        driver.quit()
    except Exception:  # noqa: BLE001
        pass
    proc = getattr(getattr(driver, "service", None), "process", None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in browser_pids(profile):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def browser_pids(profile: str) -> list[int]:
    """PIDs of the Chromium processes running with this profile directory (the browser and its children)."""
    key = f"--user-data-dir={profile}".encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if key in argv:
            out.append(int(name))
    return out


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return " ".join(str(msg).split())[:300]


def _collect(driver, ended: bool) -> tuple[list[dict], list[dict]]:
    """The page's events (after its last posts went out) and the console log; empty when the browser is gone."""
    events: list[dict] = []
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not driver.execute_script("return window.genet ? window.genet.flushed() : true;"):
            time.sleep(0.1)
        events = driver.execute_script("return window.genet ? window.genet.events : [];") or []
    except Exception:  # noqa: BLE001 - crashed: the caller falls back to the server's copy
        events = []
    try:
        console = driver.get_log("browser")
    except Exception:  # noqa: BLE001
        console = []
    return events, console


def _write_log(path: Path, cfg: BrowserConfig, session: str, url: str, started_utc: str, table: dict,
               events: list[dict], run, result: BrowserResult, console: list[dict]) -> None:
    from foundation.atomic import atomic_text_writer
    cfg_ev = next((e for e in events if e.get("type") == "config"), {})
    lines = [{"type": "session", "url": cfg.url, "page": url, "player": "chromium", "policy": cfg.abr,
              "abr_server": cfg.abr == "server", "session": session, "n_chunks": len(table["chunk_sizes_bytes"][0]),
              "chunk_length_s": table.get("chunk_length_s", 4.0), "bitrates_kbps": table["bitrates_kbps"],
              "max_buffer_s": cfg.buffer_s, "first_quality": cfg.first_quality,
              "rebuffer_penalty": cfg.rebuffer_penalty, "started_utc": started_utc,
              "dashjs_version": cfg_ev.get("dashjs_version"), "user_agent": cfg_ev.get("user_agent"),
              "active_rules": cfg_ev.get("active_rules"), **cfg.extra}]
    lines += run.chunks
    lines += [{"type": "stall", "start_s": a, "end_s": b, "duration_s": b - a} for a, b in run.stalls]
    t0 = float(events[0]["t_ms"]) if events else 0.0
    lines += [{"type": "render", "t_s": (float(e["t_ms"]) - t0) / 1000.0, "quality": e.get("quality"),
               "media_time_s": e.get("media_time_s")} for e in events if e.get("type") == "quality_rendered"]
    summary = {"type": "summary", **result.summary(), **{k: v for k, v in run.summary.items()
                                                          if k not in result.summary()}}
    for k in ("extra_summary",):
        summary.pop(k, None)
    if result.status != "complete":
        summary["console_tail"] = [f"{c.get('level', '')} {c.get('message', '')}" for c in console[-20:]]
    lines.append(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text_writer(path) as fh:
        for rec in lines:
            fh.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")


# ------------------------------------------------------------------------------------------ serving
def create_browser_app(video_dir, policy: str = "bba", log=None, report_dir=None, **kwargs):
    """The video server's app (player/server.py create_app) with the browser routes registered."""
    from player.browser_routes import register
    from player.server import create_app
    return register(create_app(video_dir, policy=policy, log=log, **kwargs), report_dir)


def serve(video_dir, bind: str = "127.0.0.1", port: int = 8000, policy: str = "bba", log=None, report_dir=None,
          threads: int = 16, ready_file: str | None = None) -> None:
    """Run the video server with the browser routes (and ``report_dir``) until interrupted (waitress)."""
    from player.server import run_wsgi
    run_wsgi(create_browser_app(video_dir, policy=policy, log=log, report_dir=report_dir), bind, port, threads,
             ready_file, f"({video_dir}, ABR policy {policy}; browser page at {URL_PREFIX}/)")


def cmd_play_browser(args) -> int:
    """``genet player play --browser chromium``: --policy dashjs:NAME lets dash.js decide; any other policy
    decides through the server's ABR endpoint (the server's --policy)."""
    abr = args.policy if args.policy.startswith("dashjs:") else "server"
    res = play_browser(BrowserConfig(url=args.url, abr=abr, session=args.session, buffer_s=args.max_buffer_s),
                       args.log)
    if not getattr(args, "quiet", False):
        s = res.summary()
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()
                       if k not in ("reason", "extra_summary")))
        if res.reason:
            print(f"failed: {res.reason} (console log: {res.console_log or 'none'})", file=sys.stderr)
    return 0 if res.status == "complete" else 3


def emulated_command(policy: str, url: str, log: str, python: str = sys.executable) -> tuple[str, list[str]]:
    """For ``genet emulate abr --player chromium``: the server's --policy and the player command of one
    session (dashjs:NAME: dash.js decides and the server's policy is unused)."""
    abr = policy if policy.startswith("dashjs:") else "server"
    return ("bba" if abr != "server" else policy,
            [python, "-m", "player.browser", "play", "--url", url, "--abr", abr, "--log", log])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m player.browser",
                                description="genet browser player: dash.js in headless Chromium (or serve a video "
                                            "with the browser page)")
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("play", help="play one session in headless Chromium", epilog=DETECTION_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    pl.add_argument("--url", required=True)
    pl.add_argument("--abr", default="server", help=f"server or one of {', '.join(DASHJS_STRATEGIES)}")
    pl.add_argument("--log", default=None)
    pl.add_argument("--session", default=None)
    pl.add_argument("--start-timeout-s", type=float, default=20.0)
    pl.add_argument("--progress-timeout-s", type=float, default=60.0)
    pl.add_argument("--max-wall-s", type=float, default=None)
    pl.add_argument("--start-at-epoch-s", type=float, default=None, help="start the session at this time (epoch s), the page loaded before")
    sv = sub.add_parser("serve", help="the video server with the browser page")
    sv.add_argument("--video", required=True)
    sv.add_argument("--bind", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--policy", default="bba")
    sv.add_argument("--log", default=None)
    sv.add_argument("--report-dir", default=None)
    sv.add_argument("--ready-file", default=None)
    args = p.parse_args(argv)
    if args.cmd == "serve":
        import signal
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        serve(args.video, args.bind, args.port, args.policy, args.log, args.report_dir, ready_file=args.ready_file)
        return 0
    res = play_browser(BrowserConfig(url=args.url, abr=args.abr, session=args.session,
                                     start_timeout_s=args.start_timeout_s, progress_timeout_s=args.progress_timeout_s,
                                     max_wall_s=args.max_wall_s, start_at_epoch_s=args.start_at_epoch_s), args.log)
    out = {k: v for k, v in asdict(res).items() if k not in ("chunks",)}
    print(json.dumps(out, default=str))
    return 0 if res.status == "complete" else 3  # as `genet player play`: 3 = the run ended early


if __name__ == "__main__":
    raise SystemExit(main())
