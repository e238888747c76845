"""ABR's schemes on real packets (:class:`foundation.scheme.SchemeRunner`): our DASH server (``genet player
serve``) and the headless player (``genet player play``). ``genet emulate abr`` (:mod:`player.emulate`) and
``genet deploy run`` start their sides from these command lines; :func:`runner` is the factory the ABR use case
declares."""

from __future__ import annotations

from foundation.scheme import SchemeContext, SchemeRunner, Side, url_host


class PlayerRunner(SchemeRunner):
    """Server: ``genet player serve`` (options: ``video``, a list of its video arguments, default the sized
    EnvivioDash3; ``server_log``, ``threads``, ``tcp_cc``, ``server_policy``). Client: ``genet player play`` of
    ``http://SERVER:PORT/`` (options: ``log``, default ``run.jsonl``; ``chunks``)."""

    proto = "tcp"
    genet_command = "player"
    client_files = ("run.jsonl",)

    def server(self, ctx: SchemeContext) -> Side:
        o = ctx.options
        extra = [*(["--log", o["server_log"]] if o.get("server_log") else []),
                 *(["--threads", str(o["threads"])] if o.get("threads") else []),
                 *(["--tcp-cc", o["tcp_cc"]] if o.get("tcp_cc") else []),
                 *(["--policy", o["server_policy"]] if o.get("server_policy") else [])]
        return Side([*ctx.server_genet, "player", "serve", *o.get("video", ["--video", "sized"]), "--bind",
                     ctx.bind_address, "--port", str(ctx.port), *extra], "server")

    def client(self, ctx: SchemeContext) -> Side:
        o = ctx.options
        return Side([*ctx.client_genet, "player", "play", "--url", f"http://{url_host(ctx.server_address)}:"
                     f"{ctx.port}/", "--policy", ctx.scheme_value, "--log", o.get("log", ctx.log("run.jsonl")),
                     "--quiet", *(["--chunks", str(o["chunks"])] if o.get("chunks") else [])], "client")


def runner(scheme) -> SchemeRunner:
    """The runner of an ABR scheme (every kind: a baseline or a model, played by the headless player)."""
    return PlayerRunner()


__all__ = ["PlayerRunner", "runner"]
