"""Video server throughput over loopback: segments per second and response latency at N concurrent players.

Starts ``python -m player.server`` (waitress, 16 threads) on a sized EnvivioDash3 video, then N client
threads, each a keep-alive HTTP connection fetching segments back to back (random level, every chunk in
turn) with a Pensieve ABR POST after each, for ``--seconds``. Prints segments/s, MB/s, ABR decisions/s,
and p50/p99 latency (request sent -> last byte) of segments and of ABR posts.

    python benchmarks/player_server.py [--players 8] [--seconds 10] [--policy bba]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from player.content import segment_path, write_sized_video  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--players", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--policy", default="bba")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        content = write_sized_video(Path(tmp) / "video")
        sizes = content.video.chunk_sizes_bytes
        port = _free_port()
        srv = subprocess.Popen([sys.executable, "-m", "player.server", "--video", str(content.root), "--port",
                                str(port), "--policy", args.policy], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    c.request("GET", "/health")
                    c.getresponse().read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            seg_lat: list[float] = []
            abr_lat: list[float] = []
            nbytes = [0]
            lock = threading.Lock()
            stop = time.monotonic() + args.seconds

            def player(i: int) -> None:
                rng = random.Random(i)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                k, mine_s, mine_a, got = 0, [], [], 0
                while time.monotonic() < stop:
                    q = rng.randrange(6)
                    t0 = time.perf_counter()
                    conn.request("GET", "/" + segment_path(q, k, 6))
                    r = conn.getresponse()
                    while r.read(262144):
                        pass
                    t1 = time.perf_counter()
                    mine_s.append(t1 - t0)
                    got += int(sizes[q, k])
                    body = {"lastquality": q, "buffer": 10.0, "RebufferTime": 0, "lastChunkStartTime": t0 * 1000,
                            "lastChunkFinishTime": t1 * 1000, "lastChunkSize": int(sizes[q, k]), "lastRequest": k}
                    conn.request("POST", f"/abr?session=p{i}", body=json.dumps(body))
                    conn.getresponse().read()
                    mine_a.append(time.perf_counter() - t1)
                    k = (k + 1) % (sizes.shape[1] - 1)
                conn.close()
                with lock:
                    seg_lat.extend(mine_s)
                    abr_lat.extend(mine_a)
                    nbytes[0] += got

            threads = [threading.Thread(target=player, args=(i,)) for i in range(args.players)]
            t_start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t_start
        finally:
            srv.terminate()
            srv.wait(10)
    s, a = np.asarray(seg_lat) * 1000, np.asarray(abr_lat) * 1000
    print(f"players={args.players} policy={args.policy} wall_s={wall:.1f} (loopback, client threads in this process)")
    print(f"segments_per_s={len(s) / wall:.1f} throughput_MBps={nbytes[0] / wall / 1e6:.1f} "
          f"abr_decisions_per_s={len(a) / wall:.1f}")
    print(f"segment_latency_ms p50={np.percentile(s, 50):.2f} p99={np.percentile(s, 99):.2f} "
          f"(mean segment {sizes.mean() / 1e6:.2f} MB)")
    print(f"abr_latency_ms p50={np.percentile(a, 50):.2f} p99={np.percentile(a, 99):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
