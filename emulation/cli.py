"""``genet emulate shell | link-stats | cleanup``.

``genet emulate shell`` is a Mahimahi-compatible shell: it runs CMD inside
the emulated side of a trace-driven link, with the host reachable at
``$MAHIMAHI_BASE``, and exits with CMD's status (124 when ``--timeout-s``
ended it, 77 when ``--once`` ended the trace first, as Mahimahi's ferry).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from foundation.commands import Command, Group


def _clear_errors(func):
    """Print EmulationError (missing tool/privilege/kernel feature) as one line, like genet's input errors."""
    import functools

    @functools.wraps(func)
    def wrapper(args) -> int:
        from emulation.config import EmulationError
        try:
            return func(args)
        except EmulationError as exc:
            if os.environ.get("GENET_DEBUG"):
                raise
            print(f"genet: error: {exc}", file=sys.stderr)
            return 1
    return wrapper


def _with_run_metadata(func):
    """Write the run-metadata record (foundation/runmeta.py) of a `genet emulate shell` run into the
    directories its results go to (the --pcap directory, the log files' directories; those that
    exist), at the start and again with CMD's exit status at the end."""
    import functools

    @functools.wraps(func)
    def wrapper(args) -> int:
        from pathlib import Path

        from foundation.runmeta import write_run_metadata
        dirs = [Path(args.pcap)] if args.pcap else []
        dirs += [Path(f).resolve().parent for f in (args.uplink_log, args.downlink_log) if f]
        dirs = [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in {e.resolve() for e in dirs[:i]}]
        extra = {"backend": args.backend, "uplink": args.uplink, "downlink": args.downlink, "delay_ms": args.delay_ms}
        metas = [(d, write_run_metadata(d, seed=args.seed, extra=extra)) for d in dirs]
        status = 1
        try:
            status = func(args)
            return status
        except KeyboardInterrupt:
            status = 130
            raise
        finally:
            for d, meta in metas:
                meta.finish(d, status=status)
    return wrapper


def _add_direction_options(p: argparse.ArgumentParser, name: str, what: str) -> None:
    p.add_argument(f"--{name}", required=True, metavar="TRACE",
                   help=f"{what} trace: a file in any format `genet traces` reads (Mahimahi files are used as "
                        f"written), or a constant rate such as 12mbps (required)%(default).0s")
    p.add_argument(f"--{name}-queue", default="infinite", choices=("infinite", "droptail", "drophead", "codel", "pie"),
                   help=f"{what} queue discipline")
    p.add_argument(f"--{name}-queue-args", default="", metavar="ARGS",
                   help=f"{what} queue arguments: 'packets=N' and/or 'bytes=N' (bytes incl. the 4-byte TUN header), "
                        f"e.g. packets=20, required for droptail/drophead/codel/pie; codel also takes 'target=MS, "
                        f"interval=MS', pie 'qdelay_ref=MS, max_burst=MS' (default: none)%(default).0s")
    p.add_argument(f"--{name}-loss", type=float, default=0.0, metavar="RATE",
                   help=f"{what} Bernoulli loss rate, 0-1")
    p.add_argument(f"--{name}-log", default=None, metavar="FILE",
                   help=f"write the {what} Mahimahi-format log here (default: no log)%(default).0s")


def _shell_arguments(sh: argparse.ArgumentParser) -> None:
    sh.add_argument("--backend", default="netns", choices=("netns", "mahimahi", "mininet"),
                    help="emulator: netns (embedded user-space link), mahimahi (mm-link/mm-delay/mm-loss), "
                         "mininet (htb bandwidth replay)")
    sh.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay in ms, applied in each direction "
                                                               "(RTT = 2 x delay), e.g. 20")
    _add_direction_options(sh, "uplink", "uplink")
    _add_direction_options(sh, "downlink", "downlink")
    sh.add_argument("--once", action="store_true", help="end when the trace ends instead of looping it")
    sh.add_argument("--seed", type=int, default=None, help="seed of the loss draws (default: random)%(default).0s")
    sh.add_argument("--timeout-s", type=float, default=None,
                    help="end CMD after this many seconds and exit with 124 (default: no timeout)%(default).0s")
    sh.add_argument("--isolate-host", action="store_true",
                    help="netns backend: put the host side in its own namespace instead of the root one")
    sh.add_argument("--pcap", default=None, metavar="DIR",
                    help="netns backend: capture both sides into DIR/emulated.pcap and DIR/host.pcap "
                         "(summarise with `genet emulate flow-stats DIR`; default: no capture)%(default).0s")
    sh.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                    help="command to run inside (default: $SHELL)%(default).0s")


def _link_stats_arguments(ls: argparse.ArgumentParser) -> None:
    ls.add_argument("log", help="an --uplink-log/--downlink-log file")
    ls.add_argument("--png", default=None, help="draw throughput and delay graphs into this PNG (default: none)%(default).0s")
    ls.add_argument("--ms-per-bin", type=int, default=500, help="throughput graph bin width in ms")
    ls.add_argument("--json", action="store_true", help="print the figures as JSON")


def _flow_stats_arguments(fs: argparse.ArgumentParser) -> None:
    fs.add_argument("dir", help="the --pcap directory (emulated.pcap, host.pcap, link.json)")
    fs.add_argument("--json", action="store_true", help="print the flows as JSON")


def _cleanup_arguments(cl: argparse.ArgumentParser) -> None:
    cl.add_argument("--all", action="store_true",
                    help="also remove resources of runs that are still alive (without it: only those of dead owners)")
    cl.add_argument("--dry-run", action="store_true", help="only list what would be removed")


def cmd_shell(args) -> int:
    import subprocess
    import time
    from emulation.emulator import LinkEmulator
    from emulation.config import parse_trace_arg
    from emulation.endpoint import end_process
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        cmd = [os.environ.get("SHELL", "/bin/sh")]
    link = LinkEmulator(
        parse_trace_arg(args.uplink), parse_trace_arg(args.downlink), delay_ms=args.delay_ms,
        uplink_loss=args.uplink_loss, downlink_loss=args.downlink_loss,
        uplink_queue=args.uplink_queue, uplink_queue_args=args.uplink_queue_args,
        downlink_queue=args.downlink_queue, downlink_queue_args=args.downlink_queue_args,
        uplink_log=args.uplink_log, downlink_log=args.downlink_log, once=args.once, seed=args.seed,
        backend=args.backend, isolate_host=args.isolate_host,
        **({"command": cmd} if args.backend == "mahimahi" else {}),
        **({"pcap_dir": args.pcap} if args.pcap else {}),
        command_line=shlex.join(["genet", "emulate", "shell"] + sys.argv[3:] if sys.argv[1:3] == ["emulate", "shell"]
                                else ["genet", "emulate", "shell"] + cmd))
    with link:
        if args.backend == "mahimahi":  # CMD is mm-link's inner command, exactly as with Mahimahi
            p = link.backend.proc
        else:
            p = link.emulated.popen(cmd, new_session=False)
        deadline = None if args.timeout_s is None else time.monotonic() + args.timeout_s
        while True:
            try:
                status = p.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
            else:
                if args.backend == "mahimahi":  # CMD's own status, carried out of mm-link (see mahimahi_backend)
                    status = link.backend.command_status()
                    if status == 77 and args.once:
                        print("genet emulate shell: the trace ended (--once); ending CMD", file=sys.stderr)
                    return status
                return status if status >= 0 else 128 - status
            if deadline is not None and time.monotonic() >= deadline:
                print(f"genet emulate shell: CMD still running after {args.timeout_s} s; ending it", file=sys.stderr)
                end_process(p)
                return 124
            if args.backend != "mahimahi" and not link.backend.running:
                end_process(p)
                if args.once:
                    print("genet emulate shell: the trace ended (--once); ending CMD", file=sys.stderr)
                    return 77
                print("genet emulate shell: the emulated link stopped unexpectedly; ending CMD", file=sys.stderr)
                return 1


def cmd_link_stats(args) -> int:
    import dataclasses
    import json
    from emulation.logstats import link_log_stats, plot_link_log, read_link_log
    if args.png:
        from foundation.extras import require
        require("plots", "genet emulate link-stats --png")
    log = read_link_log(args.log)
    stats = link_log_stats(log)
    if args.json:
        print(json.dumps(dataclasses.asdict(stats)))
    else:
        print(stats.format())
    if args.png:
        plot_link_log(log, args.png, ms_per_bin=args.ms_per_bin, title=os.path.basename(args.log))
        print(f"graphs written to {args.png}", file=sys.stderr)
    return 0


def cmd_flow_stats(args) -> int:
    import dataclasses
    import json
    from pathlib import Path
    from emulation.pcap import flow_summary, format_flows
    d = Path(args.dir)
    meta_path = d / "link.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: not a `genet emulate shell --pcap` directory")
    meta = json.loads(meta_path.read_text())
    flows = flow_summary(d / "emulated.pcap", d / "host.pcap", meta["emulated_address"], meta["host_address"])
    if args.json:
        print(json.dumps([dataclasses.asdict(f) for f in flows]))
    else:
        print(format_flows(flows))
    return 0


def cmd_cleanup(args) -> int:
    from emulation.resources import cleanup, find_leftovers
    if args.dry_run:
        found = find_leftovers(include_live=args.all)
        print(f"would remove: {found.describe()}")
        return 0
    found = cleanup(include_live=args.all)
    print(f"removed: {found.describe()}")
    return 0


COMMANDS = (
    Group(("emulate",), help="trace-driven emulated links (Mahimahi semantics): shell, link-stats, cleanup",
          description="Trace-driven links: an embedded netns emulator with Mahimahi "
                      "semantics, plus Mahimahi and Mininet backends."),
    Command(("emulate", "shell"), help="run CMD behind an emulated link ($MAHIMAHI_BASE = the host)",
            description="Run CMD inside the emulated side of a link whose bandwidth follows the "
                        "traces. Uplink = from CMD to the host. The host is reachable from CMD at "
                        "$MAHIMAHI_BASE. Exits with CMD's status.\n"
                        "Example: genet emulate shell --delay-ms 20 --uplink 12mbps "
                        "--downlink trace.mahi -- sh -c 'iperf3 -c $MAHIMAHI_BASE'",
            arguments=_shell_arguments, run=_clear_errors(_with_run_metadata(cmd_shell))),
    Command(("emulate", "link-stats"), help="mm-throughput-graph figures (and PNG graphs) of a link log",
            description="Average capacity, average throughput and 95th-percentile per-packet "
                        "queueing / signal delay of a Mahimahi-format link log (ours or "
                        "Mahimahi's), with mm-throughput-graph's definitions.",
            arguments=_link_stats_arguments, run=cmd_link_stats),
    Command(("emulate", "flow-stats"), help="per-flow throughput, one-way delay and loss from a --pcap capture",
            description="Pantheon-style per-flow summary (5-tuple and direction: packets sent and "
                        "delivered, loss, throughput in Mbit/s, mean and 95th-percentile one-way "
                        "delay through the link in ms) of a `genet emulate shell --pcap DIR` capture.",
            arguments=_flow_stats_arguments, run=cmd_flow_stats),
    Command(("emulate", "cleanup"), help="remove leftovers of killed emulation runs (gt- prefixed only)",
            description="Remove namespaces, interfaces and link processes left by emulation runs "
                        "whose owner died (e.g. SIGKILL). Only names starting with gt- are touched.",
            arguments=_cleanup_arguments, run=_clear_errors(cmd_cleanup)),
)
