"""Deploy campaigns over disjoint paths at once (issue 29): wall time of the same campaign back to back and with
``parallel = "disjoint-paths"`` on the local SSH testbed, and each path's throughput both ways (interference).

    sudo python benchmarks/deploy_parallel.py                          # 12 disjoint paths (24 hosts), 2 reps, 5 s
    sudo python benchmarks/deploy_parallel.py --paths 6 --repetitions 1 --duration-s 10

Path i runs from host 2i+1 to host 2i+2 (constant 12 Mbit/s, 5 ms), so no two paths share a host; at most
min(TESTBED_HOSTS_MAX / 2, TESTBED_PATHS_MAX) = 15 paths (deploy/config.py). Prints both wall times, the speed-up,
every record missing from either journal (a complete campaign has paths x schemes x repetitions runs with status
``ok``), per path the throughput and RTT of each mode and whether the path's disjoint-paths throughput (its mean)
lies within the back-to-back spread (the paths are identical, so the spread is the range of every back-to-back
run), the single runs outside that range, the mean set-up (SSH connect + helper probe + clock offset) and
client phases of the first and later rounds, and the CPU each mode took (/proc/stat: busy share of all cores and
the share at nice > 0, i.e. other work; this controller process's own CPU). Exit status 1 if a record is missing.
``--setup-probe`` then measures why the first round is slower at once: every host's SSH set-up (connect, probe,
16-sample clock offset, as a campaign's first run does) all at once with the links idle, the CPU of a flow on
every path at once (iperf3 Cubic, no SSH) by process and scheduling class, and the same set-ups during those
flows. Needs root, sshd and iperf3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cpu_ticks() -> dict[str, int]:
    """The machine's CPU time so far (/proc/stat, all cores, in clock ticks)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return {"busy": user + nice + system + irq + softirq + steal, "nice": nice, "all": sum(v)}


def main() -> int:
    from deploy.config import TESTBED_HOSTS_MAX, TESTBED_PATHS_MAX
    max_paths = min(TESTBED_HOSTS_MAX // 2, TESTBED_PATHS_MAX)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", type=int, default=12, help=f"disjoint paths (2-{max_paths})")
    ap.add_argument("--repetitions", type=int, default=2)
    ap.add_argument("--duration-s", type=float, default=5.0)
    ap.add_argument("--schemes", default="cubic")
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-lanes", type=int, default=None,
                    help="the disjoint-paths campaign's max_lanes (runs at once; default: every path at once)")
    ap.add_argument("--setup-probe", action="store_true",
                    help="after the campaigns: SSH set-up of every host at once, links idle vs carrying a flow each")
    args = ap.parse_args()
    from deploy import testbed
    from deploy.campaign import Journal, plan_runs, run_campaign
    from deploy.config import load_campaign, load_inventory
    if not 2 <= args.paths <= max_paths:
        raise SystemExit(f"--paths: expected 2-{max_paths} (a testbed has at most {TESTBED_HOSTS_MAX} hosts and "
                         f"{TESTBED_PATHS_MAX} paths), got {args.paths}")
    root = Path(args.out or tempfile.mkdtemp(prefix="genet-deploy-parallel-"))
    root.mkdir(parents=True, exist_ok=True)
    paths = [testbed.TestbedPath(f"d{i}", f"h{2 * i + 1}", f"h{2 * i + 2}", 12.0, 12.0, 5.0)
             for i in range(args.paths)]
    t_up = time.monotonic()
    inv = load_inventory(testbed.up(root / "bed", 2 * args.paths, paths))
    up_s = time.monotonic() - t_up
    walls, cpu, tputs, rtts, missing, phases = {}, {}, {}, {}, {}, {}
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    try:
        for mode in ("none", "disjoint-paths"):
            f = root / f"{mode}.toml"
            schemes = ", ".join(f'"{s}"' for s in args.schemes.split(","))
            f.write_text(f'name = "bench-{mode}"\nuse_case = "cc"\nschemes = [{schemes}]\n'
                         f'repetitions = {args.repetitions}\nduration_s = {args.duration_s}\nparallel = "{mode}"\n'
                         + (f"max_lanes = {args.max_lanes}\n" if args.max_lanes and mode != "none" else ""))
            c = load_campaign(f, inv)
            c0, t0, own0 = _cpu_ticks(), time.monotonic(), os.times()
            s = run_campaign(c, inv, root / f"run-{mode}")
            walls[mode] = time.monotonic() - t0
            c1, own1 = _cpu_ticks(), os.times()
            cpu[mode] = {k: (c1[k] - c0[k]) / max(1, c1["all"] - c0["all"]) for k in ("busy", "nice")}
            cpu[mode]["busy_s"] = (c1["busy"] - c0["busy"]) * tick_s
            cpu[mode]["controller_s"] = (own1.user + own1.system) - (own0.user + own0.system)
            print(f"{mode}: {s.describe()}", file=sys.stderr)
            ok = set()
            for r in Journal(root / f"run-{mode}" / "journal.jsonl"):
                if r.get("status") == "ok":
                    ok.add(r["run_id"])
                    tputs.setdefault((r["path"], mode), []).append(r["metrics"]["throughput_mbps"])
                    rtts.setdefault((r["path"], mode), []).append(r["metrics"]["mean_rtt_ms"])
                    ph = r.get("phases_s", {})
                    phases.setdefault((mode, min(r["round"], 2)), []).append(
                        (ph.get("connect", 0.0) + ph.get("clock", 0.0), ph.get("client", 0.0)))
            missing[mode] = [pr.run_id for pr in plan_runs(c) if pr.run_id not in ok]
        probe = _setup_probe(root / "bed", inv) if args.setup_probe else []
    finally:
        testbed.down(root / "bed")
    runs = args.paths * args.repetitions * len(args.schemes.split(","))
    print(f"{runs} runs of {args.duration_s:g} s on {args.paths} disjoint paths ({2 * args.paths} hosts, testbed up "
          f"in {up_s:.1f} s; {os.cpu_count()} cores):")
    for mode, label in (("none", "back to back:  "), ("disjoint-paths", "disjoint-paths:")):
        extra = f"   speed-up {walls['none'] / walls[mode]:.2f}x" if mode != "none" else ""
        print(f"  {label}  {walls[mode]:7.1f} s   CPU busy {100 * cpu[mode]['busy']:3.0f} % of all cores "
              f"({cpu[mode]['busy_s']:.0f} core-s, {100 * cpu[mode]['nice']:.0f} % at nice > 0; this controller "
              f"{cpu[mode]['controller_s']:.1f} s){extra}")
        for rnd, label in ((1, "round 1"), (2, "later rounds")):
            v = phases.get((mode, rnd), [])
            if v:
                print(f"      {label}: set-up (connect + clock) mean {statistics.mean(x for x, _ in v):.2f} s, max "
                      f"{max(x for x, _ in v):.2f} s; client mean {statistics.mean(y for _, y in v):.2f} s")
    for mode in walls:
        got = runs - len(missing[mode])
        print(f"  records ({mode}): {got}/{runs} ok" + (f"; missing: {', '.join(missing[mode])}"
                                                       if missing[mode] else ""))
    seq = [v for (_, m), vs in tputs.items() if m == "none" for v in vs]
    lo, hi = (min(seq), max(seq)) if seq else (float("nan"), float("nan"))
    print(f"  back-to-back spread of every path (all identical): {lo:.3f}-{hi:.3f} Mbit/s")
    print(f"  {'path':<6} {'back to back (Mbit/s)':>24} {'disjoint-paths (Mbit/s)':>26} {'RTT ms b2b / par':>18}"
          f"  within spread")
    fmt = lambda v: f"{statistics.mean(v):.2f} [{min(v):.2f}, {max(v):.2f}]" if v else "-"  # noqa: E731
    n_in = 0
    for p in paths:
        a, b = tputs.get((p.name, "none"), []), tputs.get((p.name, "disjoint-paths"), [])
        ra, rb = rtts.get((p.name, "none"), []), rtts.get((p.name, "disjoint-paths"), [])
        inside = bool(b) and lo <= statistics.mean(b) <= hi
        n_in += inside
        rt = f"{statistics.mean(ra):.1f} / {statistics.mean(rb):.1f}" if ra and rb else "-"
        print(f"  {p.name:<6} {fmt(a):>24} {fmt(b):>26} {rt:>18}  {'yes' if inside else 'NO'}")
    print(f"  {n_in}/{len(paths)} paths' disjoint-paths throughput (mean) within the back-to-back spread")
    out = [v for (_, m), vs in tputs.items() if m == "disjoint-paths" for v in vs if not lo <= v <= hi]
    n_par = sum(len(vs) for (_, m), vs in tputs.items() if m == "disjoint-paths")
    print(f"  single disjoint-paths runs outside it: {len(out)}/{n_par}"
          + (f" ({', '.join(f'{v:.3f}' for v in sorted(out))} Mbit/s)" if out else ""))
    for line in probe:
        print(line)
    return 1 if any(missing.values()) else 0


def _setup_all(inv) -> str:
    """Every host's campaign set-up at once (a thread each, as the lanes' first runs): connect, probe, clock."""
    import threading

    from deploy.ssh import Session
    took, failed = [], []

    def one(h):
        t0 = time.monotonic()
        s = Session(h)
        try:
            s.connect()
            s.helper("probe", s.work_dir)
            s.clock_offset(samples=16)
            took.append(time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            failed.append(f"{h.name}: {str(exc).split(': ', 1)[-1]}")
        finally:
            s.close()

    threads = [threading.Thread(target=one, args=(h,)) for h in inv.hosts.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = (f"mean {statistics.mean(took):.2f} s, max {max(took):.2f} s over {len(took)} hosts" if took else "none")
    return text + (f"; {len(failed)} failed ({failed[0]})" if failed else "")


def _proc_cpu_ticks() -> dict[str, int]:
    """CPU ticks so far of every process, summed by name and scheduling class (SCHED_RR shown)."""
    out: dict[str, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                comm, rest = fh.read().rsplit(")", 1)
        except OSError:
            continue
        x = rest.split()
        name = comm.split("(", 1)[1].split("/")[0] + {"1": " FIFO", "2": " RR"}.get(x[38], "") + f" nice {x[16]}"
        out[name] = out.get(name, 0) + int(x[11]) + int(x[12])
    return out


def _setup_probe(bed: Path, inv) -> list[str]:
    import json
    import subprocess

    from deploy import testbed
    plan = testbed.TestbedPlan(**json.loads((bed / "testbed.json").read_text()))
    lines = [f"set-up probe ({len(inv.hosts)} hosts' connect + probe + 16-sample clock offset, all at once):",
             f"  links idle:               {_setup_all(inv)}"]
    servers = [subprocess.Popen(["ip", "netns", "exec", plan.netns(p.server), "iperf3", "-s", "-1", "-B",
                                 p.server_address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for p in inv.paths.values()]
    time.sleep(0.5)
    clients = [subprocess.Popen(["ip", "netns", "exec", plan.netns(p.client), "iperf3", "-c", p.server_address, "-C",
                                 "cubic", "-t", "25"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for p in inv.paths.values()]
    try:
        time.sleep(2.0)
        c0, p0, t0 = _cpu_ticks(), _proc_cpu_ticks(), time.monotonic()
        time.sleep(4.0)
        c1, p1, dt = _cpu_ticks(), _proc_cpu_ticks(), time.monotonic() - t0
        hz = os.sysconf("SC_CLK_TCK")
        top = sorted(((k, (v - p0.get(k, 0)) / hz / dt) for k, v in p1.items()), key=lambda kv: -kv[1])[:4]
        cores = os.cpu_count() or 1
        share = lambda k: cores * (c1[k] - c0[k]) / max(1, c1["all"] - c0["all"])  # noqa: E731
        lines.append(f"  {len(clients)} flows at once (no SSH): {share('busy') - share('nice'):.2f} of {cores} cores at "
                     f"nice <= 0, {share('nice'):.2f} at nice > 0; by process: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in top))
        lines.append(f"  during the {len(clients)} flows:  {_setup_all(inv)}")
    finally:
        for proc in clients + servers:
            proc.kill()
            proc.wait()
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
