"""How many concurrent headless Chromium players this machine sustains without extra stalls.

K browser sessions at once (K = 1, 2, ... ``--max``), each playing the same encoded video from one server over
loopback (so any stall or lag comes from the CPU, not the network), the ABR endpoint deciding (BBA). Per K:
sessions completed, mean dash.js stall time, mean media-element 'waiting' events (decoder starvation), dropped
frames as a share of frames, and how much longer than the video each session took (lag). A K is
"sustained" when every session completes with no more stall than K = 1 (+0.5 s) and < 5 % dropped frames.

    python benchmarks/browser_concurrency.py [--max 4] [--video DIR]   # default: encodes a 6-chunk video
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from player.browser import BrowserConfig, browser_missing_reason, play_browser  # noqa: E402
from player.server import ServerProcess  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=4, help="largest number of concurrent players")
    ap.add_argument("--video", default=None, help="an encoded video directory (default: encode 6 chunks)")
    args = ap.parse_args()
    missing = browser_missing_reason()
    if missing:
        print(f"skipped: {missing}")
        return 0
    with tempfile.TemporaryDirectory(prefix="genet-bench-browser-") as tmp:
        video = args.video
        if video is None:
            from player.content import make_encoded_video
            video = str(make_encoded_video(Path(tmp) / "video", duration_s=24.0).root)
        from player.content import load_content
        duration_s = load_content(video).n_chunks * load_content(video).video.chunk_length_s
        base_stall = None
        print(f"{'K':>3} {'done':>6} {'stall_s':>8} {'waiting':>8} {'dropped_%':>10} {'lag_s':>7}  sustained")
        with ServerProcess(video, args=["--policy", "bba"]) as srv:
            for k in range(1, args.max + 1):
                results = [None] * k

                def one(i):
                    results[i] = play_browser(BrowserConfig(url=srv.url, max_wall_s=4 * duration_s + 60),
                                              Path(tmp) / f"k{k}-{i}.jsonl")

                threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                ok = [r for r in results if r is not None and r.status == "complete"]
                stall = float(np.mean([r.extra_summary["stall_s"] for r in ok])) if ok else float("nan")
                waiting = float(np.mean([r.extra_summary.get("element_waiting_events", 0) for r in ok])) if ok else 0
                drop = [r.extra_summary["dropped_frames"] / max(r.extra_summary["total_frames"] or 1, 1) for r in ok
                        if r.extra_summary.get("dropped_frames") is not None]
                lag = float(np.mean([r.wall_s - r.browser_start_s - duration_s for r in ok])) if ok else float("nan")
                if k == 1:
                    base_stall = stall
                sustained = (len(ok) == k and stall <= (base_stall or 0.0) + 0.5 and (np.mean(drop) if drop else 0) < 0.05)
                print(f"{k:>3} {len(ok):>3}/{k:<2} {stall:>8.2f} {waiting:>8.1f} {100 * np.mean(drop) if drop else float('nan'):>10.1f} "
                      f"{lag:>7.1f}  {'yes' if sustained else 'no'}", flush=True)
                for r in results:
                    if r is not None and r.status != "complete":
                        print(f"    failed: {r.reason}")
                time.sleep(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
