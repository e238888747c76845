"""The options of the video server, ``genet player serve`` and ``python -m player.server`` alike (one list).
Standard library only: declaring the command stays cheap."""

from __future__ import annotations

import argparse

from player.request_limits import REQUEST_RECEIVE_DEADLINE_S


def serve_arguments(sv: argparse.ArgumentParser) -> None:
    sv.add_argument("--video", default="sized", metavar="DIR",
                    help="video directory, or 'sized' (EnvivioDash3 sized content written to --sized-dir)")
    sv.add_argument("--sized-dir", default="runs/video-sized", metavar="DIR",
                    help="where --video sized writes its segments (sparse files)")
    sv.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="address to listen on")
    sv.add_argument("--port", type=int, default=8000, help="TCP port")
    sv.add_argument("--policy", default="bba", help="ABR endpoint policy: bba, mpc or PATH.onnx")
    sv.add_argument("--log", default=None, metavar="FILE",
                    help="JSON-lines log of segments served and decisions (default: none)%(default).0s")
    sv.add_argument("--threads", type=int, default=16, help="worker threads (concurrent requests)")
    sv.add_argument("--tcp-cc", default="cubic", metavar="NAME",
                    help="TCP congestion control of the server's connections (cubic, bbr, reno, ...; always "
                         "named, never the machine's default)")
    sv.add_argument("--request-deadline-s", type=float, default=REQUEST_RECEIVE_DEADLINE_S, metavar="S",
                    help="close a connection whose request is not fully received this long after its first byte "
                         "(slow clients cannot hold the server; docs/security.md), s")
