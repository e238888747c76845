"""``genet deploy check | push | run | report | testbed up/down``: campaigns on remote hosts over SSH."""

from __future__ import annotations

import argparse
import json
import sys

from foundation.commands import Command, Group


def _accept_new(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accept-new", action="store_true",
                   help="trust unknown host keys on first use and append them to the inventory's known_hosts "
                        "(changed keys are still refused)")


def _check_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("inventory", metavar="INVENTORY", help="inventory TOML file")
    _accept_new(c)
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _push_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inventory", metavar="INVENTORY", help="inventory TOML file")
    p.add_argument("--wheelhouse", metavar="DIR", default=None,
                   help="wheels to install from (pip --no-index --find-links) for hosts without a package index "
                        "(default: the hosts' own index)")
    p.add_argument("--models", metavar="DIR", action="append", default=None,
                   help="ONNX models to copy (repeatable; default: the project's models/ folder)")
    p.add_argument("--video", metavar="DIR", action="append", default=None,
                   help="video folders to copy (repeatable; default: the packaged EnvivioDash3 table when present)")
    p.add_argument("--wheel", metavar="FILE", default=None,
                   help="use this genet wheel instead of building one from the source tree (default: build)")
    p.add_argument("--system-site-packages", action="store_true",
                   help="create the remote venv with --system-site-packages (hosts whose python already has "
                        "numpy/onnxruntime/flask)")
    p.add_argument("--hosts", metavar="NAMES", default=None, help="comma-separated host names (default: all)")
    _accept_new(p)


def _run_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("campaign", metavar="CAMPAIGN", help="campaign TOML file")
    r.add_argument("--inventory", required=True, metavar="INVENTORY", help="inventory TOML file (required)")
    r.add_argument("--out", required=True, metavar="DIR", help="campaign directory: journal, logs (required)")
    _accept_new(r)


def _report_arguments(rp: argparse.ArgumentParser) -> None:
    rp.add_argument("out", metavar="DIR", help="a campaign directory written by `genet deploy run`")
    rp.add_argument("--calibrated", metavar="EMU_DIR", default=None,
                    help="a `genet emulate cc --traces CALIBRATED_DIR` folder over the paths `genet emulate calibrate "
                         "DIR` fitted (CC): its figures per path and scheme beside the real ones, and per scheme the "
                         "paired gap calibrated emulation - real over the paths (DIR/report-calibrated-gap.csv)")


def _testbed_up_arguments(up: argparse.ArgumentParser) -> None:
    up.add_argument("--out", required=True, metavar="DIR", help="testbed directory (required)")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (h1..hN)")
    up.add_argument("--paths", metavar="FILE", default=None,
                    help="TOML with [paths.NAME] server, client, uplink, downlink, delay_ms, queues, loss "
                         "(default: p1 constant 12 Mbit/s 20 ms; p2 an FCC trace at 40 ms; p3 a cellular trace "
                         "with a 1000-packet queue)")


def _testbed_down_arguments(dn: argparse.ArgumentParser) -> None:
    dn.add_argument("--out", required=True, metavar="DIR", help="testbed directory (required)")


def _calibrate_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("run_dir", metavar="RUN_DIR", help="a CC campaign folder written by `genet deploy run`")
    c.add_argument("--out", required=True, metavar="DIR",
                   help="folder of the calibrated paths: PATH.json traces and calibration.json (required)")
    c.add_argument("--paths", metavar="P1,P2", default=None, help="calibrate only these paths (default: every path "
                                                                 "of the campaign)")
    c.add_argument("--bandwidth", choices=("auto", "constant", "trace"), default="auto",
                   help="the bandwidth: a constant rate, a trace of the delivered rate per interval, or auto: a trace "
                        "when the saturating scheme's per-interval rate varies (coefficient of variation > 0.15)")
    c.add_argument("--emulated", metavar="EMU_DIR", default=None,
                   help="a `genet emulate cc` folder run over DIR's traces: print the real and the calibrated "
                        "emulation's throughput and RTT per path and scheme (also DIR/calibration-check.json)")
    c.add_argument("--refine", action="store_true",
                   help="with --emulated: one iteration, the delay moved by half the real - emulated minimum RTT "
                        "and the bandwidth scaled by real / emulated delivered rate; DIR rewritten")
    c.add_argument("--tolerance", type=float, default=0.10, help="with --emulated: the throughput gap that counts "
                                                                "as reproduced (fraction)")


def _calibrate(args) -> int:
    from pathlib import Path

    from foundation.errors import BadInputError
    from deploy.calibrate import (CHECK_FILE, compare, format_calibration, format_comparison, read_calibration,
                                  refine, write_calibration)
    if args.refine and not args.emulated:
        raise BadInputError("--refine needs --emulated EMU_DIR (a `genet emulate cc` run over the calibrated traces)")
    if not 0 < args.tolerance < 1:
        raise BadInputError(f"--tolerance {args.tolerance:g}: expected a fraction in (0, 1)")
    if not args.emulated:
        doc = write_calibration(args.run_dir, args.out, args.bandwidth,
                                [p for p in args.paths.split(",") if p] if args.paths else None)
        print(format_calibration(doc))
        return 0
    doc = read_calibration(args.out)
    rows = compare(args.run_dir, args.emulated, doc.get("schemes"), args.tolerance)
    from foundation.atomic import atomic_write_text
    atomic_write_text(Path(args.out) / CHECK_FILE, json.dumps({"emulated_dir": str(Path(args.emulated).resolve()),
                                                               "iteration": doc.get("iteration", 0),
                                                               "tolerance": args.tolerance, "rows": rows},
                                                              indent=1, default=str) + "\n")
    print(f"real runs vs calibrated emulation (iteration {doc.get('iteration', 0)}):")
    print(format_comparison(rows, args.tolerance))
    if args.refine:
        print(format_calibration(refine(args.run_dir, args.out, args.emulated, args.bandwidth)))
    return 0


def _check(args) -> int:
    from deploy.check import check_inventory, format_table
    from deploy.config import load_inventory
    inv = load_inventory(args.inventory)
    _require_known_hosts(inv, args.accept_new)
    rows = check_inventory(inv, accept_new=args.accept_new)
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=1))
    else:
        print(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


def _require_known_hosts(inv, accept_new: bool) -> None:
    import os

    from foundation.config import ConfigError, at
    if accept_new:
        return
    for h in inv.hosts.values():
        if not os.path.exists(h.known_hosts):
            raise ConfigError(f"{at(inv.file, f'hosts.{h.name}', 'known_hosts')}: {h.known_hosts} does not exist; "
                              f"every host key would be refused (verify the hosts' fingerprints and use "
                              f"--accept-new to record them)")


def _push(args) -> int:
    from deploy.config import load_inventory
    from deploy.push import push
    inv = load_inventory(args.inventory)
    _require_known_hosts(inv, args.accept_new)
    names = args.hosts.split(",") if args.hosts else None
    results = push(inv, wheelhouse=args.wheelhouse, model_dirs=args.models, video_dirs=args.video, wheel=args.wheel,
                   system_site_packages=args.system_site_packages, accept_new=args.accept_new, host_names=names)
    failed = 0
    for r in results:
        print(r.describe())
        failed += not r.ok
    return 1 if failed else 0


def _run(args) -> int:
    from deploy.campaign import run_campaign
    from deploy.config import load_campaign, load_inventory
    inv = load_inventory(args.inventory)
    camp = load_campaign(args.campaign, inv)
    _require_known_hosts(inv, args.accept_new)
    summary = run_campaign(camp, inv, args.out, accept_new=args.accept_new, progress=sys.stdout)
    print(summary.describe())
    return 0 if summary.complete else 1


def _report(args) -> int:
    from deploy.report import write_report
    rep = write_report(args.out, calibrated=args.calibrated)
    print(rep.text)
    print(f"wrote {', '.join(str(p) for p in rep.files)}")
    return 0


def _testbed_up(args) -> int:
    from deploy import testbed
    paths = None
    n = args.hosts
    if args.paths:
        paths = testbed.load_paths(args.paths, [f"h{i}" for i in range(1, n + 1)])
    inv = testbed.up(args.out, n, paths)
    print(f"testbed up: {n} hosts; inventory {inv}; known_hosts {inv.parent / 'known_hosts'}")
    print(f"try: genet deploy check {inv}")
    return 0


def _testbed_down(args) -> int:
    from deploy import testbed
    swept = testbed.down(args.out)
    print("testbed down" + (f" (also removed leftovers: {', '.join(swept)})" if swept else ""))
    return 0


COMMANDS = (
    Group(("deploy",),
          help="run campaigns on remote hosts over SSH (Paramiko): check, push, run, report, local testbed",
          description="Campaigns on remote hosts (or the local SSH testbed): every scheme on every path, in "
                      "shuffled rounds, back to back; logs fetched over SFTP; Tables 6/7 with 95% CIs.\n"
                      "Host keys are checked against the inventory's known_hosts; unknown keys are refused "
                      "unless --accept-new. Inventory, campaign and testbed paths files: docs/deploy-config.md."),
    Command(("deploy", "check"),
            help="per host: reachable, host key, python, disk, iperf3, allowed CC, clock offset",
            arguments=_check_arguments, run=_check),
    Command(("deploy", "push"), help="install genet (runtime only), models and videos into a venv on each host",
            description="Copies the project's wheel, the models and the videos to each host over SFTP "
                        "and installs the wheel (no extras) into WORK_DIR/venv. Idempotent: what the "
                        "host already has (same SHA-256) is not transferred again.",
            arguments=_push_arguments, run=_push),
    Command(("deploy", "run"), help="run a campaign: rounds of every scheme on every path, shuffled, back to back",
            description="Runs CAMPAIGN on the inventory's paths. Each round runs every scheme once on "
                        "every path in a freshly shuffled order. Rerunning with the same --out resumes: "
                        "finished runs are kept, failed ones are retried up to the campaign's "
                        "retry_limit.",
            arguments=_run_arguments, run=_run),
    Command(("deploy", "report"), help="Tables 6/7 (mean ± 95%% CI), Figure-16-style PNG, CSV and JSON",
            arguments=_report_arguments, run=_report),
    Command(("emulate", "calibrate"), help="fit an emulated path (bandwidth, delay, queue, loss) to a real CC campaign",
            description="Pantheon-style calibrated emulation: from a `genet deploy run` CC campaign's logs, per "
                        "path, the one-way delay (minimum RTT / 2), the bandwidth (what the saturating kernel "
                        "schemes deliver, as a constant or a trace), the droptail queue (the queueing delay cubic "
                        "builds x bandwidth) and the random loss (our sender's loss while it cannot overflow the "
                        "queue; 0, said so, without such runs). Writes DIR/PATH.json traces carrying delay, queue "
                        "and loss, and DIR/calibration.json (each value, how, from which runs); then `genet "
                        "emulate cc --traces DIR --policy ...` runs the calibrated emulation, and `genet emulate "
                        "calibrate RUN_DIR --out DIR --emulated EMU_DIR [--refine]` compares it with the real "
                        "runs (and iterates once).\n"
                        "Example: genet emulate calibrate runs/campaign --out runs/calibrated",
            arguments=_calibrate_arguments, run=_calibrate),
    Group(("deploy", "testbed"), help="a local SSH testbed: namespaces with sshd joined by emulated paths",
          metavar="ACTION"),
    Command(("deploy", "testbed", "up"), help="create the testbed; writes DIR/inventory.toml and DIR/known_hosts",
            arguments=_testbed_up_arguments, run=_testbed_up),
    Command(("deploy", "testbed", "down"), help="remove everything the testbed created",
            arguments=_testbed_down_arguments, run=_testbed_down),
)
