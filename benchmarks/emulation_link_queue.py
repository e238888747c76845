"""Per-packet cost of the pure-Python Mahimahi link model (emulation.link_queue), no root needed.

Feeds N full-size packets through one LinkQueue direction, in batches as the link process reads them,
on a 1200 Mbit/s schedule (100 opportunities per ms), with and without a log, and prints packets/s and
the equivalent Mbit/s of 1504-byte packets (the link process adds two syscalls per packet on top).

    .venv/bin/python benchmarks/emulation_link_queue.py [--packets 300000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulation.config import QueueSpec, load_schedule  # noqa: E402
from emulation.link_queue import LinkQueue  # noqa: E402


def run(n: int, log: bool, queue: QueueSpec, rate_mbps: float) -> None:
    lq = LinkQueue(load_schedule(rate_mbps), queue, log=io.StringIO() if log else None)
    pkt = b"\0" * 1504
    per_ms = max(1, int(rate_mbps / 12 * 0.9))  # offered load 90% of capacity, arriving each ms
    t0 = time.perf_counter()
    now = 0
    sent = 0
    while sent < n:
        lq.rationalize(now)
        for _ in range(per_ms):
            lq.enqueue(pkt, now)
        sent += per_ms
        lq.drain()
        now += 1
    lq.rationalize(now + 1000)
    lq.drain()
    dt = time.perf_counter() - t0
    print(f"{rate_mbps:g} Mbit/s schedule, queue {queue.describe():22}, log {'on ' if log else 'off'}: "
          f"{sent / dt / 1e3:7.1f} k packets/s = {sent * 1504 * 8 / dt / 1e6:7.0f} Mbit/s of full packets "
          f"({1e6 * dt / sent:.2f} us/packet)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=300000, help="packets per run")
    args = ap.parse_args()
    for queue in (QueueSpec(), QueueSpec("droptail", packets=100), QueueSpec("drophead", packets=100)):
        run(args.packets, False, queue, 1200)
    run(args.packets, True, QueueSpec(), 1200)
    run(args.packets // 10, False, QueueSpec(), 12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
