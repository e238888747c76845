"""``genet balancer worker | serve | cluster | replay`` (what a worker, balancer or client host runs: numpy, onnxruntime,
stdlib; also ``python -m balancer ...``, :func:`main`) and ``genet emulate lb``.

Declaring the commands imports nothing heavy; ``genet emulate lb`` sits in the ``emulate`` group that
:mod:`emulation.cli` declares (:mod:`foundation.commands`: by path, in any module order).
"""

from __future__ import annotations

import argparse

from foundation.commands import Command, Group, run_standalone
from foundation.errors import BadInputError


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ADDR:PORT, e.g. 127.0.0.1:7100")
    try:
        p = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: port {port!r} is not a number") from None
    if not 0 <= p < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: port must be 0-65535")
    return host, p


def _time_unit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-unit-ms", type=float, default=None,
                   help="wall-clock ms per workload ms (Genet time unit); default 1: real time")


def _worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, required=True, help="service rate (work units per time unit)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="TCP port (0: any free one, written to --ready-file)")
    p.add_argument("--enforce", default="pacing", choices=("pacing", "cgroup"),
                   help="how the rate is enforced: pacing (sleep until the job's end; anywhere) or cgroup "
                        "(a cgroup v1 cpu quota proportional to the rate, CPU work proportional to the size; root)")
    p.add_argument("--name", default="worker", help="name in messages and of its cgroup")
    _time_unit(p)
    p.add_argument("--ready-file", metavar="FILE", default=None, help=argparse.SUPPRESS)


def cmd_worker(args) -> int:
    from balancer.wire import TIME_UNIT_MS
    from balancer.worker import WorkerConfig, worker_main
    cfg = WorkerConfig(args.rate, args.time_unit_ms or TIME_UNIT_MS, args.enforce, args.name)
    return worker_main(cfg, args.bind, args.port, args.ready_file)


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--worker", action="append", required=True, metavar="HOST:PORT:RATE",
                   help="a worker and its declared service rate; repeat, in worker-index order")
    p.add_argument("--policy", required=True, help="an LB policy: least_work, sed, jsq, power_of_two, "
                                                   "round_robin, random or PATH.onnx")
    p.add_argument("--listen", type=_address, default=("127.0.0.1", 0), metavar="ADDR:PORT",
                   help="where the client connects (port 0: any, written to --ready-file)")
    p.add_argument("--record", metavar="FILE.json", default=None, help="write the run record (every job) here")
    p.add_argument("--seed", type=int, default=0, help="seed of the policy's random choices")
    p.add_argument("--answer-timeout-s", type=float, default=None,
                   help="fail what is unanswered when nothing happens for this long (default 60)")
    _time_unit(p)
    p.add_argument("--ready-file", metavar="FILE", default=None, help=argparse.SUPPRESS)


def cmd_serve(args) -> int:
    from balancer.server import ANSWER_TIMEOUT_S, WorkerSpec, serve_main
    from balancer.wire import TIME_UNIT_MS
    workers = [WorkerSpec.parse(w, i) for i, w in enumerate(args.worker)]
    return serve_main(workers, args.policy, args.listen[0], args.listen[1], args.record,
                      args.time_unit_ms or TIME_UNIT_MS, args.ready_file, args.seed,
                      args.answer_timeout_s or ANSWER_TIMEOUT_S)


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rates", required=True, metavar="R0,R1,...",
                   help="the workers' service rates (work units per time unit), comma-separated: one worker each")
    p.add_argument("--policy", required=True, help="an LB policy: least_work, sed, jsq, power_of_two, "
                                                   "round_robin, random or PATH.onnx")
    p.add_argument("--listen", type=_address, required=True, metavar="ADDR:PORT", help="where the client connects")
    p.add_argument("--worker-bind", default="127.0.0.1", help="address the workers listen on (default loopback)")
    p.add_argument("--enforce", default="pacing", choices=("pacing", "cgroup"),
                   help="how the workers enforce their rate (cgroup: a cgroup v1 cpu quota; root)")
    p.add_argument("--record", metavar="FILE.json", default=None, help="write the balancer's run record here")
    p.add_argument("--seed", type=int, default=0, help="seed of the policy's random choices")
    p.add_argument("--answer-timeout-s", type=float, default=None,
                   help="fail what is unanswered when nothing happens for this long (default 60)")
    _time_unit(p)
    p.add_argument("--ready-file", metavar="FILE", default=None, help=argparse.SUPPRESS)


def cmd_cluster(args) -> int:
    from balancer.cluster import cluster_main, parse_rates
    from balancer.wire import TIME_UNIT_MS
    return cluster_main(parse_rates(args.rates), args.policy, args.listen, args.record, worker_bind=args.worker_bind,
                        enforce=args.enforce, time_unit_ms=args.time_unit_ms or TIME_UNIT_MS, seed=args.seed,
                        answer_timeout_s=args.answer_timeout_s, ready_file=args.ready_file)


def _replay_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workload", metavar="FILE.workload", help="the jobs to send (traces/workload.py)")
    src.add_argument("--generate", type=int, metavar="SEED",
                     help="send a workload generated here from SEED (Genet's generator, traces/workload.py; "
                          "--num-jobs, --job-interval-ms, --job-size-max-work)")
    p.add_argument("--num-jobs", type=int, default=None, help="--generate: jobs (Genet: 2000)")
    p.add_argument("--job-interval-ms", type=float, default=None, help="--generate: mean inter-arrival time "
                                                                       "(Genet: 100)")
    p.add_argument("--job-size-max-work", type=float, default=None, help="--generate: largest job size "
                                                                         "(Genet: 10000)")
    p.add_argument("--save-workload", metavar="FILE.workload", default=None,
                   help="--generate: also write the generated workload here")
    p.add_argument("--to", type=_address, required=True, metavar="ADDR:PORT", help="the balancer")
    p.add_argument("--record", metavar="FILE.jsonl", default=None, help="one line per job: sent, answer, worker")
    p.add_argument("--answer-timeout-s", type=float, default=None, help="the balancer's answer timeout (default 60)")
    _time_unit(p)
    p.add_argument("--start-file", metavar="FILE", default=None, help=argparse.SUPPRESS)


def cmd_replay(args) -> int:
    from balancer.client import replay, write_jobs
    from balancer.server import ANSWER_TIMEOUT_S
    from balancer.wire import TIME_UNIT_MS
    from traces.workload import read_workload
    if args.workload is not None:
        wl = read_workload(args.workload)
    else:
        from balancer.client import generated_workload
        wl = generated_workload(args.generate, args.num_jobs, args.job_interval_ms, args.job_size_max_work)
        if args.save_workload:
            from traces.workload import write_workload
            write_workload(wl, args.save_workload)
    jobs = replay(wl.arrival_times_ms, wl.job_sizes_work, args.to, time_unit_ms=args.time_unit_ms or TIME_UNIT_MS,
                  answer_timeout_s=args.answer_timeout_s or ANSWER_TIMEOUT_S, start_file=args.start_file)
    if args.record:
        write_jobs(jobs, args.record)
    done = [j for j in jobs if j.status == "finished"]
    failed = len(jobs) - len(done)
    mean = sum(j.completion_ms for j in done) / len(done) if done else float("nan")
    print(f"{len(jobs)} jobs: {len(done)} finished (mean completion {mean:.1f} ms), {failed} failed")
    return 0 if not failed else 1


def _emulate_lb_arguments(p: argparse.ArgumentParser) -> None:
    from balancer.emulate import add_arguments
    add_arguments(p)


def cmd_emulate_lb(args) -> int:
    from balancer.emulate import run_emulate_lb
    from foundation.journal import run_folder_lock
    if not args.policy:
        raise BadInputError("genet emulate lb: give --policy")
    with run_folder_lock(args.out, "genet emulate lb"):  # one command per --out
        return run_emulate_lb(args)


COMMANDS = (
    Group(("balancer",), help="load balancing on real servers: workers, the balancer, the client",
          description="A real load balancer (any LB policy: least_work ... PATH.onnx) dispatching jobs to real "
                      "worker servers (a FIFO queue, a set service rate), and a client replaying a workload."),
    Command(("balancer", "worker"), help="a worker server: one FIFO queue served at a set rate",
            arguments=_worker_arguments, run=cmd_worker),
    Command(("balancer", "serve"), help="the balancer: dispatch one client's jobs to the workers with an LB policy",
            arguments=_serve_arguments, run=cmd_serve),
    Command(("balancer", "cluster"), help="workers and the balancer on one host: the server side of an LB run",
            description="Start one worker server per --rates value (on loopback, free ports), then the balancer "
                        "with --policy listening on --listen: it serves one client, writes --record and ends, "
                        "and the workers with it (what `genet deploy run` starts on a path's server host).",
            arguments=_cluster_arguments, run=cmd_cluster),
    Command(("balancer", "replay"), help="replay a workload file open-loop through a balancer",
            arguments=_replay_arguments, run=cmd_replay),
    Command(("emulate", "lb"), help="LB policies on real servers over emulated links, beside the simulator",
            description="Run each (policy, workload, repeat) with a real balancer, real workers and a client in "
                        "network namespaces joined by emulated links (or on loopback), and write results.csv/json "
                        "with the LB columns and the simulator's figures (sim_*). netns needs root.",
            arguments=_emulate_lb_arguments, run=cmd_emulate_lb),
)



def main(argv: list[str] | None = None) -> int:
    """``python -m balancer worker | serve | cluster | replay``: the balancer's own commands alone (what ``genet emulate lb``
    starts: a worker, balancer or client host needs nothing else of the command line)."""
    import sys
    return run_standalone(sys.modules[__name__], "balancer", argv)


__all__ = ["COMMANDS", "main"]
