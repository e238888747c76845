"""LB's scheme on real servers (:class:`foundation.scheme.SchemeRunner`): the server side is the workers and the
balancer on one host (``genet balancer cluster``), the client side replays a workload against the balancer
(``genet balancer replay``). ``genet deploy run`` starts the two sides from these command lines on a path's server
and client hosts; :func:`runner` is the factory the LB use case declares (``genet/lb/usecase.py``).

The context's ``scheme_value`` is the policy (a name of :data:`genet.lb.registry.POLICIES`, or the model's path on
the server host, where the balancer decides); its ``options``:

* ``rates``: the workers' service rates (work units per time unit; default Genet's 0.5, 1, 2);
* ``workload_seed``, ``num_jobs``, ``job_interval_ms``, ``job_size_max_work``: the workload the client generates
  there (Genet's generator, :func:`balancer.client.generated_workload`; it keeps a copy, ``workload.workload``);
* ``time_unit_ms`` (wall-clock ms per workload ms), ``policy_seed``, ``answer_timeout_s``, ``enforce``.

The logs: the balancer's run record ``balancer.json`` (server side) and the client's record ``client.jsonl``, one
line per job (client side); :func:`balancer.summary.summarize` turns them into the LB columns.
"""

from __future__ import annotations

from balancer.emulate import DEFAULT_RATES
from foundation.scheme import SchemeContext, SchemeRunner, Side

SERVER_RECORD = "balancer.json"
CLIENT_RECORD = "client.jsonl"
WORKLOAD_FILE = "workload.workload"


class BalancerRunner(SchemeRunner):
    """Server: ``genet balancer cluster`` (the workers on loopback, the balancer on ``bind_address:port``; it ends
    after its one client). Client: ``genet balancer replay`` of a workload generated there to
    ``server_address:port``."""

    proto = "tcp"
    server_exits_itself = True
    genet_command = "balancer"
    server_files = (SERVER_RECORD,)
    client_files = (CLIENT_RECORD, WORKLOAD_FILE)

    def server(self, ctx: SchemeContext) -> Side:
        o = ctx.options
        rates = o.get("rates") or DEFAULT_RATES
        argv = [*ctx.server_genet, "balancer", "cluster", "--rates", ",".join(repr(float(r)) for r in rates),
                "--policy", ctx.scheme_value, "--listen", f"{ctx.bind_address}:{ctx.port}",
                "--record", ctx.log(SERVER_RECORD), "--seed", str(o.get("policy_seed", 0))]
        if o.get("time_unit_ms") is not None:
            argv += ["--time-unit-ms", f"{o['time_unit_ms']:g}"]
        if o.get("answer_timeout_s") is not None:
            argv += ["--answer-timeout-s", f"{o['answer_timeout_s']:g}"]
        if o.get("enforce"):
            argv += ["--enforce", o["enforce"]]
        return Side(argv, "server")

    def client(self, ctx: SchemeContext) -> Side:
        o = ctx.options
        source = ["--generate", str(o.get("workload_seed", 0)), "--save-workload", ctx.log(WORKLOAD_FILE)]
        for key, flag in (("num_jobs", "--num-jobs"), ("job_interval_ms", "--job-interval-ms"),
                          ("job_size_max_work", "--job-size-max-work")):
            if o.get(key) is not None:
                source += [flag, f"{o[key]:g}" if isinstance(o[key], float) else str(o[key])]
        argv = [*ctx.client_genet, "balancer", "replay", *source, "--to", f"{ctx.server_address}:{ctx.port}",
                "--record", ctx.log(CLIENT_RECORD)]
        if o.get("time_unit_ms") is not None:
            argv += ["--time-unit-ms", f"{o['time_unit_ms']:g}"]
        if o.get("answer_timeout_s") is not None:
            argv += ["--answer-timeout-s", f"{o['answer_timeout_s']:g}"]
        return Side(argv, "client")


def runner(scheme) -> BalancerRunner:
    """The runner of an LB scheme (every kind: a baseline policy or a model, decided on by the balancer)."""
    return BalancerRunner()


__all__ = ["BalancerRunner", "runner", "DEFAULT_RATES", "SERVER_RECORD", "CLIENT_RECORD", "WORKLOAD_FILE"]
