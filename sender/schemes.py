"""CC's schemes on real packets (:class:`foundation.scheme.SchemeRunner`): kernel TCP through iperf3 and our UDP
sender (a constant rate or an ONNX policy). ``genet emulate cc`` (:mod:`sender.runs`) and ``genet deploy run``
start their sides from these command lines; :func:`runner` is the factory the CC use case declares."""

from __future__ import annotations

from foundation.scheme import SchemeContext, SchemeRunner, Side
from sender import iperf3

#: iperf3 report interval (s): its per-interval smoothed RTT samples give the RTT percentiles.
IPERF_INTERVAL_S = 0.2
#: Receiver report interval (s) whose largest delivery rate normalises the reward (shorter intervals see
#: receive bursts above the path's rate: 0.2-s intervals gave ~2x the 12 Mbit/s of the testbed's p1).
NORMALISER_INTERVAL_S = 1.0


class IperfRunner(SchemeRunner):
    """Kernel TCP: a one-shot ``iperf3 -s -1 -J`` server, ``iperf3 -c -C NAME`` client (the algorithm named)."""

    proto = "tcp"
    server_exits_itself = True

    def server(self, ctx: SchemeContext) -> Side:
        return Side(iperf3.server_command(ctx.port, interval_s=NORMALISER_INTERVAL_S, json_report=True), "server")

    def client(self, ctx: SchemeContext) -> Side:
        return Side(iperf3.client_command(ctx.server_address, ctx.scheme_value, ctx.duration_s, ctx.port,
                                          interval_s=IPERF_INTERVAL_S), "client")


class SenderRunner(SchemeRunner):
    """Our UDP sender: ``genet sender receive --once`` on the server side, ``genet sender send`` (a constant rate
    or an ONNX policy) on the client side, its log ``run.jsonl`` (options: ``log``, ``summary``, ``ready_file``,
    ``min_rtt_ms``)."""

    proto = "udp"
    genet_command = "sender"
    client_files = ("run.jsonl",)

    def server(self, ctx: SchemeContext) -> Side:
        o = ctx.options
        extra = [*(["--summary", o["summary"]] if o.get("summary") else []),
                 *(["--ready-file", o["ready_file"]] if o.get("ready_file") else [])]
        return Side([*ctx.server_genet, "sender", "receive", "--bind", ctx.bind_address, "--port", str(ctx.port),
                     "--once", *extra], "server")

    def client(self, ctx: SchemeContext) -> Side:
        o = ctx.options
        policy = ctx.scheme_name if ctx.scheme_kind == "const" else ctx.scheme_value
        return Side([*ctx.client_genet, "sender", "send", "--to", f"{ctx.server_address}:{ctx.port}", "--policy",
                     policy, "--duration-s", f"{ctx.duration_s:g}", "--log", o.get("log", ctx.log("run.jsonl")),
                     *(["--min-rtt-ms", f"{o['min_rtt_ms']:g}"] if o.get("min_rtt_ms") is not None else [])],
                    "client")


def runner(scheme) -> SchemeRunner:
    """The runner of a CC scheme (anything with a ``kind``: ``kernel``, ``const``, ``onnx``)."""
    return IperfRunner() if scheme.kind == "kernel" else SenderRunner()


__all__ = ["IperfRunner", "SenderRunner", "runner", "IPERF_INTERVAL_S", "NORMALISER_INTERVAL_S"]
