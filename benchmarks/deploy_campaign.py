"""Orchestration overhead and clock offsets of `genet deploy run` on the local SSH testbed (issue 15).

    python benchmarks/deploy_campaign.py                       # 3 paths x 3 CC schemes x 5 reps x 20 s
    python benchmarks/deploy_campaign.py --repetitions 1 --duration-s 10 --schemes cubic,bbr
    python benchmarks/deploy_campaign.py --compare-emulate     # + `genet emulate cc` on p1's link

Creates a testbed (`genet deploy testbed up`: 3 namespaces with sshd; paths p1 = constant 12 Mbit/s /
20 ms, p2 = an FCC trace at 40 ms, p3 = a cellular trace with a 1000-packet queue), runs the campaign
with the same code a user runs against real hosts, and prints:

* wall time vs the sum of the run durations, and the overhead per run ((campaign wall - sum of
  durations) / runs), split into the client's own start/finish beyond duration_s (iperf3's connect and
  end-of-test exchange) and orchestration ((campaign wall - sum of the clients' times) / runs: starting
  the server, readiness, starting the client, noticing its end; a run's stop/fetch/check overlaps the
  next run's start), with each run's phases;
* the load average before and after (other work on the machine slows every exec and process start);
* the clock offsets measured between this machine and each namespace (same kernel clock: the estimate
  should come out below 1 ms);
* the campaign's Table 7; with --compare-emulate, `genet emulate cc` on the same link (constant
  12 Mbit/s, 20 ms, 60-packet droptail queue) and the per-scheme throughput gap.
Needs root, sshd and iperf3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--schemes", default="cubic,bbr,reno", help="comma-separated CC schemes (kernel names, "
                    "const:MBPS, MODEL.onnx: the last two need `genet deploy push`, done with --push)")
    ap.add_argument("--paths", default="p1,p2,p3")
    ap.add_argument("--push", action="store_true", help="push genet (wheelhouse from pip download) first")
    ap.add_argument("--compare-emulate", action="store_true")
    ap.add_argument("--out", default=None, help="keep everything here (default: a temporary directory)")
    ap.add_argument("--emulate-against", metavar="CAMPAIGN_DIR", default=None,
                    help="only compare an earlier campaign's p1 rows (its report.json) with `genet emulate cc`")
    args = ap.parse_args()
    if args.emulate_against:
        rep = json.loads((Path(args.emulate_against) / "report.json").read_text())
        root = Path(args.out or tempfile.mkdtemp(prefix="genet-deploy-bench-"))
        root.mkdir(parents=True, exist_ok=True)
        compare_emulate(root, rep["campaign"]["schemes"], rep["campaign"]["duration_s"],
                        [{**r, "throughput_mbps": r["throughput_mbps"]} for r in rep["rows"]])
        return 0

    from deploy import testbed
    from deploy.campaign import open_journal, run_campaign
    from deploy.check import check_inventory, format_table
    from deploy.config import load_campaign, load_inventory
    from deploy.report import write_report

    root = Path(args.out or tempfile.mkdtemp(prefix="genet-deploy-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    import os
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} CPUs)")
    tb = root / "testbed"
    t0 = time.monotonic()
    inv_file = testbed.up(tb, 3)
    print(f"testbed up in {time.monotonic() - t0:.2f} s: {inv_file}")
    try:
        inv = load_inventory(inv_file)
        rows = check_inventory(inv)
        print(format_table(rows))
        if args.push:
            from deploy.push import build_wheel, push
            wheel = build_wheel(root / "dist")
            wh = root / "wheelhouse"
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(wh),
                            str(wheel)], check=True)
            for w in wh.glob("genet_testbed-*"):
                w.unlink()
            for r in push(inv, wheelhouse=str(wh), wheel=str(wheel)):
                print(r.describe())
        schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
        paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        cf = root / "campaign.toml"
        cf.write_text(f'name = "bench"\nuse_case = "cc"\nschemes = {json.dumps(schemes)}\n'
                      f'repetitions = {args.repetitions}\nduration_s = {args.duration_s}\npaths = {json.dumps(paths)}\n')
        camp = load_campaign(cf, inv)
        out = root / "campaign"
        t1 = time.monotonic()
        summary = run_campaign(camp, inv, out, progress=sys.stdout)
        wall = time.monotonic() - t1
        recs = [r for r in open_journal(out).records if r["status"] == "ok"]
        n = len(recs)
        print(summary.describe())
        print(f"\ncampaign: {n} ok runs of {args.duration_s:g} s: wall {wall:.1f} s vs sum of durations "
              f"{n * args.duration_s:.1f} s -> overhead {(wall - n * args.duration_s) / max(1, n):.2f} s per run")
        if recs:
            ov = sorted(r["overhead_s"] for r in recs)
            print(f"overhead per run (wall - duration): mean {statistics.mean(ov):.2f} s, median "
                  f"{statistics.median(ov):.2f} s, max {ov[-1]:.2f} s")
            phases = {}
            for r in recs:
                for k, v in r.get("phases_s", {}).items():
                    phases.setdefault(k, []).append(v)
            print("mean phase times (s): " + ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in phases.items()))
            client_total = sum(r["client_s"] for r in recs)
            print(f"split: client beyond duration_s {(client_total - n * args.duration_s) / n:.2f} s per run, "
                  f"orchestration (campaign wall - the clients' time) {(wall - client_total) / n:.2f} s per run")
            drain = [r["client_s"] - args.duration_s for r in recs]
            print(f"of which the client's own start/finish beyond duration_s: mean {statistics.mean(drain):.2f} s "
                  f"(iperf3 connect and end-of-test exchange; a deep queue drains first)")
            for p in paths:
                d = [r["client_s"] - args.duration_s for r in recs if r["path"] == p]
                o = [r["overhead_s"] - (r["client_s"] - args.duration_s) for r in recs if r["path"] == p]
                if d:
                    print(f"  {p}: client beyond duration {statistics.mean(d):.2f} s, the run's own span - "
                          f"client (its end overlaps the next start) {statistics.mean(o):.2f} s")
            offs = [(h["name"], h["clock_offset_ms"], h["clock_rtt_ms"]) for r in recs for h in r["hosts"].values()]
            worst = max(offs, key=lambda x: abs(x[1]))
            print(f"clock offsets recorded with the runs: max |offset| {abs(worst[1]):.3f} ms ({worst[0]}; its "
                  f"exchange round trip {worst[2]:.3f} ms); all below 1 ms: {all(abs(o[1]) < 1 for o in offs)}")
        load1 = os.getloadavg()
        print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
        rep = write_report(out)
        print("\n" + rep.text)
        if args.compare_emulate:
            compare_emulate(root, schemes, args.duration_s, rep.rows)
    finally:
        testbed.down(tb)
    return 0


def compare_emulate(root: Path, schemes: list[str], duration_s: float, rows: list[dict]) -> None:
    """`genet emulate cc` on p1's link (constant 12 Mbit/s, 20 ms one-way, 60-packet droptail queue)."""
    trace = root / "12mbps.csv"
    trace.write_text("timestamp_s,bandwidth_mbps\n0,12\n" + f"{duration_s + 5:g},12\n")
    out = root / "emulate"
    kernel = [s for s in schemes if ":" not in s and not s.endswith(".onnx")]
    names = {s: s if s in ("bbr", "cubic") else f"tcp:{s}" for s in kernel}  # genet emulate cc's policy names
    cmd = [sys.executable, "-m", "app.cli", "emulate", "cc", "--policy", ",".join(names.values()), "--traces", str(trace),
           "--delay-ms", "20", "--queue-packets", "60", "--duration-s", f"{duration_s:g}", "--no-sim", "--no-plots",
           "--out", str(out)]
    print("\n$ " + " ".join(cmd))
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"genet emulate cc failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-400:]}")
        return
    emu = json.loads((out / "results.json").read_text())
    emu_rows = emu if isinstance(emu, list) else emu.get("rows", emu.get("results", []))
    print("scheme  deploy p1 throughput Mbit/s  emulate cc throughput Mbit/s  gap")
    for s in kernel:
        d = next((r for r in rows if r["path"] == "p1" and r["scheme"] == s), None)
        e = [r for r in emu_rows if r.get("policy") in (s, names[s])]
        if d and e:
            et = statistics.mean(float(r["throughput_mbps"]) for r in e)
            print(f"{s:<7} {d['throughput_mbps']:>26.2f}  {et:>28.2f}  {100 * (d['throughput_mbps'] - et) / et:+.1f} %")


if __name__ == "__main__":
    sys.exit(main())
