"""Deploy campaigns over disjoint paths at once (issue 29): wall time of the same campaign back to back and with
``parallel = "disjoint-paths"`` on the local SSH testbed, and each path's throughput both ways (interference).

    sudo python benchmarks/deploy_parallel.py                          # 6 disjoint paths (12 hosts), 2 reps, 5 s
    sudo python benchmarks/deploy_parallel.py --paths 8 --repetitions 1 --duration-s 10

Path i runs from host 2i+1 to host 2i+2 (constant 12 Mbit/s, 5 ms), so no two paths share a host; the testbed has
at most 16 hosts (8 disjoint paths). Prints both wall times, the speed-up, and per path the mean throughput of each
mode (no interference: the parallel figures within the sequential run's spread). Needs root, sshd and iperf3.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", type=int, default=6, help="disjoint paths (2-8)")
    ap.add_argument("--repetitions", type=int, default=2)
    ap.add_argument("--duration-s", type=float, default=5.0)
    ap.add_argument("--schemes", default="cubic")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from deploy import testbed
    from deploy.campaign import Journal, run_campaign
    from deploy.config import load_campaign, load_inventory
    if not 2 <= args.paths <= 8:
        raise SystemExit("--paths: 2-8 (the testbed has at most 16 hosts)")
    root = Path(args.out or tempfile.mkdtemp(prefix="genet-deploy-parallel-"))
    root.mkdir(parents=True, exist_ok=True)
    paths = [testbed.TestbedPath(f"d{i}", f"h{2 * i + 1}", f"h{2 * i + 2}", 12.0, 12.0, 5.0)
             for i in range(args.paths)]
    inv = load_inventory(testbed.up(root / "bed", 2 * args.paths, paths))
    walls, tputs = {}, {}
    try:
        for mode in ("none", "disjoint-paths"):
            f = root / f"{mode}.toml"
            schemes = ", ".join(f'"{s}"' for s in args.schemes.split(","))
            f.write_text(f'name = "bench-{mode}"\nuse_case = "cc"\nschemes = [{schemes}]\n'
                         f'repetitions = {args.repetitions}\nduration_s = {args.duration_s}\nparallel = "{mode}"\n')
            c = load_campaign(f, inv)
            t0 = time.monotonic()
            s = run_campaign(c, inv, root / f"run-{mode}")
            walls[mode] = time.monotonic() - t0
            print(f"{mode}: {s.describe()}", file=sys.stderr)
            for r in Journal(root / f"run-{mode}" / "journal.jsonl"):
                if r.get("status") == "ok":
                    tputs.setdefault((r["path"], mode), []).append(r["metrics"]["throughput_mbps"])
    finally:
        testbed.down(root / "bed")
    runs = args.paths * args.repetitions * len(args.schemes.split(","))
    print(f"{runs} runs of {args.duration_s:g} s on {args.paths} disjoint paths:")
    print(f"  back to back:    {walls['none']:7.1f} s")
    print(f"  disjoint-paths:  {walls['disjoint-paths']:7.1f} s   speed-up {walls['none'] / walls['disjoint-paths']:.2f}x")
    print(f"  {'path':<6} {'back to back (Mbit/s)':>24} {'disjoint-paths (Mbit/s)':>26}")
    for p in paths:
        a, b = tputs.get((p.name, "none"), []), tputs.get((p.name, "disjoint-paths"), [])
        fmt = lambda v: f"{statistics.mean(v):.2f} [{min(v):.2f}, {max(v):.2f}]" if v else "-"  # noqa: E731
        print(f"  {p.name:<6} {fmt(a):>24} {fmt(b):>26}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
