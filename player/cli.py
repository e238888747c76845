"""``genet player make-video | serve | play`` and ``genet emulate abr`` (declaring them stays cheap).

``python -m player ...`` runs the same ``player`` commands without the rest of the ``genet`` command
line (what a runtime-only host and the emulated side of ``genet emulate abr`` use).
"""

from __future__ import annotations

import argparse
import sys

from foundation.commands import Command, Group, run_standalone
from player.serve_options import serve_arguments


def _make_video_arguments(mv: argparse.ArgumentParser) -> None:
    mv.add_argument("--out", required=True, metavar="DIR", help="output directory")
    mv.add_argument("--duration-s", type=float, default=32.0, help="encoded video length, s (8 segments)")
    mv.add_argument("--codec", choices=("h264", "vp9"), default="h264", help="encoder: libx264 or libvpx-vp9")
    mv.add_argument("--sized", action="store_true", help="sized content from --table instead of encoding")
    mv.add_argument("--table", default="envivio", metavar="VIDEO",
                    help="with --sized: 'envivio', a video.json, or a directory of video_size_* files")
    mv.add_argument("--chunks", type=int, default=None, metavar="N",
                    help="with --sized: only the first N chunks (default: all)%(default).0s")


def _play_arguments(pl: argparse.ArgumentParser) -> None:
    pl.add_argument("--url", required=True, help="server root, e.g. http://127.0.0.1:8000/")
    pl.add_argument("--policy", default="bba", help="bba, mpc or PATH.onnx (run in the player)")
    pl.add_argument("--abr-server", action="store_true",
                    help="ask the server's ABR endpoint (its --policy) instead of running --policy here")
    pl.add_argument("--session", default=None, help="session id for the ABR endpoint (default: random)%(default).0s")
    pl.add_argument("--log", default=None, metavar="RUN.jsonl", help="per-chunk log (default: none)%(default).0s")
    pl.add_argument("--chunks", type=int, default=None, metavar="N", help="play only N chunks%(default).0s")
    pl.add_argument("--max-buffer-s", type=float, default=60.0, help="buffer cap, s")
    pl.add_argument("--first-chunk-at-epoch-s", type=float, default=None, metavar="EPOCH_S",
                    help="fetch the MPD at once, then request the first chunk at this time (epoch seconds), "
                         "to start players at the same point of a trace (default: at once)")
    pl.add_argument("--give-up-s", type=float, default=30.0,
                    help="end the run when the server stays unreachable this long, s")
    pl.add_argument("--quiet", action="store_true", help="print nothing")
    pl.add_argument("--browser", choices=("chromium",), default=None,
                    help="play in headless Chromium with dash.js 5.2.1 (player/browser.py): --policy dashjs:bola, "
                         "dashjs:throughput, dashjs:dynamic, dashjs:l2a or dashjs:lolp lets dash.js decide; any other "
                         "--policy decides through the server's ABR endpoint (the server's --policy)%(default).0s")


def _emulate_abr_arguments(ea: argparse.ArgumentParser) -> None:
    ea.add_argument("--policy", action="append", metavar="POLICY",
                    help="bba, mpc or PATH.onnx; repeat or separate with commas (default: bba,mpc)")
    ea.add_argument("--traces", required=True, metavar="DIR", help="trace directory or file (downlink)")
    ea.add_argument("--delay-ms", type=float, default=40.0, help="one-way delay each direction, ms (RTT 80 ms)")
    ea.add_argument("--backend", choices=("netns", "mahimahi", "mininet"), default="netns", help="emulator")
    ea.add_argument("--video", default="sized",
                    help="'sized' (EnvivioDash3 chunk sizes) or a video directory from `genet player make-video`")
    ea.add_argument("--chunks", type=int, default=None, metavar="N",
                    help="with --video sized: play only the first N chunks (default: all 49)%(default).0s")
    ea.add_argument("--jobs", type=int, default=1, help="sessions at once (each lasts the video's length); with "
                                                        "--ray-address, sessions at once on each node")
    ea.add_argument("--ray-address", metavar="HOST:PORT", default=None,
                    help="run the sessions on the nodes of this Ray cluster instead (each node needs root, TUN and "
                         "`ip`, checked before any session; the netns backend and the Python player; pip install "
                         "'genet-testbed[cluster]'); each session's files come back to --out")
    ea.add_argument("--repeats", type=int, default=1, help="sessions per policy and trace")
    ea.add_argument("--out", default="runs/emulate-abr", metavar="DIR", help="output directory")
    ea.add_argument("--player", choices=("python", "chromium"), default="python",
                    help="headless Python player, or dash.js 5.2.1 in headless Chromium (needs --video DIR from "
                         "make-video; policies decide through the ABR endpoint; dashjs:bola etc.: dash.js decides)")
    ea.add_argument("--tcp-cc", default="cubic", metavar="NAME",
                    help="the video server's TCP congestion control (Pensieve's and Genet's Apache ran Cubic, "
                         "the Linux default; named so that a machine whose default is BBR gives the same runs)")


def cmd_make_video(args) -> int:
    from player.content import make_encoded_video, write_sized_video
    if args.sized:
        c = write_sized_video(args.out, args.table, n_chunks=args.chunks)
    else:
        c = make_encoded_video(args.out, duration_s=args.duration_s, codec=args.codec)
    total = int(c.video.chunk_sizes_bytes.sum())
    print(f"wrote {c.kind} video {c.root}: {c.video.n_levels} levels x {c.n_chunks} chunks of "
          f"{c.video.chunk_length_s:g} s ({total / 1e6:.1f} MB of segments), manifest.mpd, video.json")
    return 0


def cmd_serve(args) -> int:
    from player.server import run_serve
    return run_serve(args)


def cmd_play(args) -> int:
    if args.browser:
        from player.browser import cmd_play_browser
        return cmd_play_browser(args)
    from player.client import PlayerConfig, play
    cfg = PlayerConfig(url=args.url, policy=args.policy, abr_server=args.abr_server, session=args.session,
                       n_chunks=args.chunks, max_buffer_s=args.max_buffer_s, give_up_s=args.give_up_s,
                       first_chunk_at_epoch_s=args.first_chunk_at_epoch_s)
    res = play(cfg, args.log)
    if not args.quiet:
        s = res.summary()
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items() if k != "reason"))
        if res.reason:
            print(f"ended early: {res.reason}", file=sys.stderr)
    return 0 if res.status == "complete" else 3


def cmd_emulate_abr(args) -> int:
    from player.emulate import EmulateAbrConfig, emulate_abr, summary_table
    policies = [x for v in (args.policy or ["bba,mpc"]) for x in v.split(",") if x]
    cfg = EmulateAbrConfig(policies=policies, traces=args.traces, out=args.out, delay_ms=args.delay_ms,
                           backend=args.backend, video=args.video, jobs=args.jobs, repeats=args.repeats,
                           n_chunks=args.chunks, player=args.player, tcp_cc=args.tcp_cc,
                           ray_address=args.ray_address)

    def progress(row):
        print(f"[{row['policy']} {row['trace']} r{row['repeat']}] {row['status']} "
              f"qoe={row.get('qoe', float('nan')):.3f} sim_qoe={row.get('sim_qoe', float('nan')):.3f} "
              f"{row.get('reason', '')[:120]}", flush=True)

    rows = emulate_abr(cfg, progress)
    from player.emulate import _label
    print(summary_table(rows, [_label(p) for p in policies]))
    print(f"[wrote {args.out}/results.csv, results.json, summary.txt, qoe_cdf.png, sim_vs_emulation.png]")
    return 0 if all(r["status"] == "complete" for r in rows) else 1


COMMANDS = (
    Group(("player",), help="DASH video server with Pensieve's ABR endpoint, headless player, test videos",
          description="player/: make-video, serve, play."),
    Command(("player", "make-video"),
            help="write a servable video directory: sized (chunk table) or encoded (ffmpeg)",
            description="Write a video directory (manifest.mpd, video.json, video<N>/<k>.m4s). "
                        "Default: encode a synthetic test video with ffmpeg into the six-level "
                        "ladder (300-4300 kbps, CBR, 4-s segments) and write its own chunk table, "
                        "so `genet eval abr --video DIR` replays exactly that video. --sized: "
                        "segments of exactly the bytes of a chunk table (default EnvivioDash3).",
            arguments=_make_video_arguments, run=cmd_make_video),
    Command(("player", "serve"), help="serve a video directory with Pensieve's ABR endpoint",
            description="Flask app on waitress: the MPD, the chunk table and the segments of --video "
                        "(exact Content-Length; nothing outside the directory), and POST /abr "
                        "(Pensieve's protocol; the reply is the next quality from --policy). "
                        "Runs until interrupted.",
            arguments=serve_arguments, run=cmd_serve),
    Command(("player", "play"), help="headless player: play one video from a server",
            description="Fetch the MPD and chunk table, then every chunk over HTTP at the policy's "
                        "quality; the buffer drains in wall-clock time with the simulator's "
                        "semantics (player/client.py). Writes one JSON line per chunk and a "
                        "summary (Table-6 fields). Exit status 0 when the video played to the end, "
                        "3 when the run ended early (the log's summary says why).",
            arguments=_play_arguments, run=cmd_play),
    Command(("emulate", "abr"), help="real headless players over trace-driven links, beside the simulator",
            description="One session per policy, trace and repeat: the video server on the link's "
                        "host side, the headless player on the emulated side, the trace on the "
                        "downlink, 12 Mbit/s uplink. Writes results.csv/json (genet eval abr's "
                        "columns plus the simulator's sim_* for the same trace, video and RTT), "
                        "summary.txt, qoe_cdf.png, sim_vs_emulation.png and per-chunk logs under "
                        "sessions/. Resumable: finished sessions are skipped. Needs root.",
            arguments=_emulate_abr_arguments, run=cmd_emulate_abr),
)


def main(argv: list[str] | None = None) -> int:
    """``python -m player COMMAND``: the player commands alone (``genet player``'s declarations)."""
    return run_standalone(sys.modules[__name__], "player", argv)
