"""``genet sender receive | send`` (runtime install: numpy, onnxruntime, stdlib) and ``genet emulate cc``.

Declaring the commands imports nothing heavy; ``genet emulate cc`` sits in the ``emulate`` group that
:mod:`emulation.cli` declares (:mod:`foundation.commands`: by path, in any module order).
"""

from __future__ import annotations

import argparse
import sys

from foundation.commands import Command, Group
from foundation.errors import BadInputError


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ADDR:PORT, e.g. 10.0.0.1:9000")
    try:
        p = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: port {port!r} is not a number") from None
    if not 0 < p < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: port must be 1-65535")
    return host, p


def _receive_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    r.add_argument("--port", type=int, default=9000, help="UDP port (0: any free one, printed)")
    r.add_argument("--once", action="store_true", help="exit when the first session ends (FIN), like iperf3 -s -1")
    r.add_argument("--duration-s", type=float, default=None, help="exit after this many seconds (not given: never)")
    r.add_argument("--summary", metavar="FILE", default=None, help="write the receiver's counters as JSON here")
    r.add_argument("--ready-file", metavar="FILE", default=None, help=argparse.SUPPRESS)


def _send_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--to", type=_address, required=True, metavar="ADDR:PORT", help="the receiver")
    s.add_argument("--policy", required=True, help="PATH.onnx (an Aurora policy) or const:MBPS")
    s.add_argument("--duration-s", type=float, required=True, help="how long to send (s)")
    s.add_argument("--log", metavar="RUN.jsonl", default=None, help="per-interval log and run summary (JSONL)")
    s.add_argument("--silence-timeout-s", type=float, default=5.0, help="stop, exit status 3, after this long "
                                                                        "without an ACK (s)")
    s.add_argument("--initial-rate-mbps", type=float, default=None,
                   help="Aurora's starting rate (not given: 10 packets per --min-rtt-ms, else 1.2 Mbit/s)")
    s.add_argument("--min-rtt-ms", type=float, default=None, help="the path's RTT when known (sets the start rate "
                                                                  "as the simulator does)")
    s.add_argument("--history-length", type=int, default=10, help="monitor intervals in the Aurora observation")
    s.add_argument("--no-low-latency-idle", action="store_true",
                   help="do not hold /dev/cpu_dma_latency at 0 while sending (by default the sender asks for "
                        "low-latency idle, which keeps its decision latency down on VMs, where it may open that "
                        "file (root) and silently does without elsewhere)")


def cmd_receive(args) -> int:
    from sender.receiver import receive_main
    return receive_main(args.bind, args.port, args.once, args.duration_s, args.summary, args.ready_file)


def cmd_send(args) -> int:
    from genet.cc.aurora import AuroraConfig
    from genet.cc.registry import load_rate_policy
    from foundation.jsonout import dumps
    from sender.udp_sender import UdpSender
    policy = load_rate_policy(args.policy, AuroraConfig(history_length=args.history_length,
                                                        reward_normaliser="measured"))
    snd = UdpSender(args.to, policy, args.duration_s, args.log, args.silence_timeout_s,
                    initial_rate_mbps=args.initial_rate_mbps, min_rtt_ms=args.min_rtt_ms,
                    low_latency_idle=not args.no_low_latency_idle)
    status, summary = snd.run()
    print(dumps({k: v for k, v in summary.items() if k != "type"}), flush=True)
    if status:
        print(f"genet sender send: {summary['reason']}", file=sys.stderr)
    return status


def _emulate_cc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", action="append", default=None, metavar="POLICY",
                   help="PATH.onnx, const:MBPS, bbr, cubic, tcp:NAME; repeat or comma-separate")
    p.add_argument("--flows", default=None, metavar="P1,P2,...",
                   help="run these policies as competing flows through one bottleneck (per-flow share, Jain index)")
    p.add_argument("--traces", required=True, metavar="DIR", help="directory (or file) of traces")
    p.add_argument("--backend", default="netns", choices=("netns", "mahimahi", "mininet"),
                   help="link backend (mininet: htb on a bridge, its link log built from captures on the bridge's "
                        "ports; without netem in the kernel it needs --delay-ms 0 and no random loss)")
    p.add_argument("--clock", default="ms", choices=("ms", "precise"),
                   help="the netns link's clock: ms = Mahimahi's whole milliseconds (its semantics exactly; adds "
                        "about 1 ms each way and up to 1 ms of jitter); precise = the same schedule and queue in "
                        "fractional ms, a millisecond's opportunities paced evenly, delays exact (what the "
                        "simulator models: use it to compare with the simulator on sub-ms paths)")
    p.add_argument("--delay-ms", type=float, default=None, help="one-way delay (not given: the trace's, else 25 ms)")
    p.add_argument("--queue-packets", type=float, default=None, help="uplink droptail queue (not given: the "
                                                                     "trace's, else 10)")
    p.add_argument("--loss-rate", type=float, default=None, help="uplink random loss 0-1 (not given: the trace's, "
                                                                 "else 0)")
    p.add_argument("--duration-s", type=float, default=None,
                   help="length of each run in seconds, at least 1; the trace loops (as Mahimahi loops it) when "
                        "shorter and is cut when longer (not given: the trace's own length; 30 s for a Mahimahi "
                        "file, which only loops, as Pantheon)")
    p.add_argument("--repeats", type=int, default=1, help="runs per (policy, trace)")
    p.add_argument("--jobs", type=int, default=1, help="links at once")
    p.add_argument("--ray-address", metavar="HOST:PORT", default=None,
                   help="run the links on the nodes of this Ray cluster instead (each node needs root, TUN and "
                        "`ip`, checked before any run; as many links at once as the cluster has CPUs; the netns "
                        "backend; pip install 'genet-testbed[cluster]'); each run's files come back to --out")
    p.add_argument("--no-sim", action="store_true", help="skip the simulator's sim_* columns")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (resumable)")


def _selfcheck_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rates-mbps", default="1,10,100,1000", metavar="LIST",
                   help="comma-separated link rates to check (Mbit/s)")
    p.add_argument("--delay-ms", type=float, default=20.0, help="one-way delay of the delay check (ms)")
    p.add_argument("--loss-rate", type=float, default=0.01, help="uplink loss of the loss check (0-1)")
    p.add_argument("--duration-s", type=float, default=3.0, help="length of each rate check (s)")
    p.add_argument("--backend", choices=("netns", "mahimahi", "mininet"), default="netns", help="link backend")
    p.add_argument("--clock", default="ms", choices=("ms", "precise"),
                   help="the netns link's clock (ms: Mahimahi's; precise: fractional ms)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the rows as JSON")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a row has a warning")


def cmd_selfcheck(args) -> int:
    import json
    import os

    from sender.selfcheck import check, format_table, to_json
    try:
        rates = [float(x) for x in args.rates_mbps.split(",") if x.strip()]
    except ValueError:
        raise BadInputError(f"--rates-mbps {args.rates_mbps!r}: expected comma-separated numbers") from None
    if not rates or any(not 0.1 <= r <= 10_000 for r in rates):
        raise BadInputError(f"--rates-mbps: each rate in 0.1..10000 Mbit/s, got {args.rates_mbps}")
    if not 0 <= args.delay_ms <= 10_000 or not 0 <= args.loss_rate < 1 or not 1 <= args.duration_s <= 600:
        raise BadInputError("--delay-ms 0..10000, --loss-rate 0..1 (exclusive), --duration-s 1..600")
    if os.geteuid() != 0:
        raise BadInputError("genet emulate selfcheck needs root (network namespaces, TUN devices)")
    from sender.kernel import check_iperf3
    check_iperf3()
    rows = check(rates, args.delay_ms, args.loss_rate, args.duration_s, args.backend, clock=args.clock,
                 progress=lambda r: print(f"  {r.rate_mbps:g} Mbit/s: {r.achieved_mbps:.1f} achieved, RTT "
                                          f"{r.measured_rtt_ms:.2f} ms, loss {r.measured_loss_rate:.4f}",
                                          file=sys.stderr))
    print(format_table(rows))
    if args.json:
        from foundation.atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(to_json(rows), indent=1))
    return 1 if args.strict and not all(r.ok for r in rows) else 0


def cmd_emulate_cc(args) -> int:
    from foundation.journal import run_folder_lock
    from sender.emulate import run_emulate_cc
    if not args.policy and not args.flows:
        raise BadInputError("genet emulate cc: give --policy and/or --flows")
    with run_folder_lock(args.out, "genet emulate cc"):  # one command per --out
        return run_emulate_cc(args)


COMMANDS = (
    Group(("sender",), help="UDP rate-controlled sender and receiver (Aurora ONNX, const:MBPS)",
          description="The sender/receiver pair that runs CC policies on real packets "
                      "(1500-byte packets, one ACK per packet)."),
    Command(("sender", "receive"), help="acknowledge every packet of one session at a time",
            arguments=_receive_arguments, run=cmd_receive),
    Command(("sender", "send"), help="send paced UDP packets under a CC policy",
            arguments=_send_arguments, run=cmd_send),
    Command(("emulate", "cc"), help="CC policies and kernel TCP over trace-driven emulated links, beside the simulator",
            description="Run each (policy, trace, repeat) over its own emulated link (in real time) and "
                        "write results.csv/json with genet eval cc's columns, measured from the link's "
                        "own logs for every scheme alike, plus the simulator's figures (sim_*), "
                        "summary.txt, PNGs and a sim-vs-emulation gap table. Needs root.",
            arguments=_emulate_cc_arguments, run=cmd_emulate_cc),
    Command(("emulate", "selfcheck"), help="what this machine's emulated links deliver: rate, delay, loss",
            description="For each rate (1 Mbit/s to 1 Gbit/s by default): iperf3 -C cubic over a constant link "
                        "(achieved vs set rate), ICMP RTTs over the link with --delay-ms each way, a UDP stream "
                        "over the link with --loss-rate; prints a table and a warning where this machine cannot "
                        "keep up (sender/selfcheck.py). Needs root and iperf3.",
            arguments=_selfcheck_arguments, run=cmd_selfcheck),
)
