"""Browser player start-up: how long headless Chromium takes to come up, load the player page and show the
first frame, over loopback (no emulated link: the browser's own cost).

Per run: ``browser_start_s`` (Chromium + chromedriver launched, WebDriver session ready), ``page_load_s``
(page request -> our script running, dash.js parsed), ``startup_delay_s`` (script running -> first frame
playing: MPD, init + first segment, decode) and the whole session's ``wall_s``. Prints median / max over runs.

    python benchmarks/browser_startup.py [--runs 5] [--video DIR]   # default: encodes a 2-chunk video
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from player.browser import BrowserConfig, browser_missing_reason, play_browser  # noqa: E402
from player.server import ServerProcess  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--video", default=None, help="an encoded video directory (default: encode 2 chunks)")
    args = ap.parse_args()
    missing = browser_missing_reason()
    if missing:
        print(f"skipped: {missing}")
        return 0
    with tempfile.TemporaryDirectory(prefix="genet-bench-browser-") as tmp:
        video = args.video
        if video is None:
            from player.content import make_encoded_video
            t = time.monotonic()
            video = str(make_encoded_video(Path(tmp) / "video", duration_s=8.0).root)
            print(f"encoded a 2-chunk test video in {time.monotonic() - t:.1f} s")
        rows = []
        with ServerProcess(video) as srv:
            for i in range(args.runs):
                r = play_browser(BrowserConfig(url=srv.url), Path(tmp) / f"run{i}.jsonl")
                s = r.extra_summary
                rows.append((r.browser_start_s, r.page_load_s, s.get("startup_delay_s") or float("nan"), r.wall_s))
                print(f"run {i}: {r.status} browser_start_s={r.browser_start_s:.2f} page_load_s={r.page_load_s:.2f} "
                      f"first_frame_s={s.get('startup_delay_s') or float('nan'):.2f} wall_s={r.wall_s:.2f}", flush=True)
    a = np.array(rows)
    names = ("browser_start_s", "page_load_s", "first_frame_s (script -> playing)", "session wall_s")
    for j, n in enumerate(names):
        print(f"{n:>36}: median {np.median(a[:, j]):.2f}  max {np.max(a[:, j]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
