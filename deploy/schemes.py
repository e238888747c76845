"""What one run of each scheme kind starts on the two hosts, which logs it fetches, how they are checked
and which metrics they give. The command lines are the use case's scheme runners
(:class:`foundation.scheme.SchemeRunner`: ``sender/schemes.py``, ``player/schemes.py``), the same ones
``genet emulate`` starts on an emulated link; this module gives them their context on the hosts
(:func:`scheme_context`) and reads the fetched logs.

* ``kernel`` (CC): server ``iperf3 -s -1 -p PORT -J`` (a fresh one-shot server per run), client
  ``iperf3 -c SERVER -p PORT -C NAME -t DURATION -i 0.2 -J`` (the algorithm is always named: a
  host's default may be BBR).
* ``const`` / ``onnx`` (CC): ``genet sender receive`` / ``genet sender send`` from the pushed venv.
* ``abr-baseline`` / ``abr-onnx`` (ABR): ``genet player serve`` / ``genet player play``.
* ``lb-baseline`` / ``lb-onnx`` (LB): ``genet balancer cluster`` (the workers and the balancer, deciding with the
  policy, on the server host) / ``genet balancer replay`` (a workload generated on the client host).

Metrics use the project's one definitions: :func:`foundation.metrics.percentile` (the one percentile
rule), :func:`genet.cc.reward.aurora_reward` with the real-path normaliser
:func:`genet.cc.aurora.run_reward_normaliser_pps` for CC; the ABR Table-6 fields come from the
player's log, which :mod:`genet.abr.qoe` produces. A run's log must hold the use case's Table-6 / Table-7
columns (:data:`genet.abr.qoe.TABLE6`, :data:`genet.cc.metrics.TABLE7`). LB's columns
(:data:`genet.lb.metrics.COLUMNS`) come from the client's and the balancer's records by
:func:`balancer.summary.summarize`, the function ``genet emulate lb`` uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from genet.abr.qoe import TABLE6
from genet.cc.metrics import TABLE7
from foundation.errors import GenetRuntimeError
from foundation.metrics import column_names
from foundation.scheme import SchemeContext, SchemeRunner
from sender import iperf3
from sender.schemes import IPERF_INTERVAL_S, NORMALISER_INTERVAL_S

from deploy.config import Campaign, PathSpec, Scheme

#: A run shorter than this fraction of its duration does not count (Pantheon's plot.py rule).
MIN_DURATION_FRACTION = 0.8


class LogCheckError(GenetRuntimeError):
    """A fetched log is missing, truncated or reports a failure: the run does not count."""


@dataclass(frozen=True)
class RunContext:
    campaign: Campaign
    path: PathSpec
    scheme: Scheme
    server_python: str
    client_genet: str   # the client host's genet executable (pushed venv)
    server_genet: str
    remote_models: str  # the client host's models directory
    server_videos: str  # the server host's videos directory
    server_models: str = ""  # the server host's models directory (LB: the balancer decides there)
    round: int = 1  # the run's round (LB: which workload it replays)


def scheme_context(ctx: RunContext) -> SchemeContext:
    """The scheme's :class:`foundation.scheme.SchemeContext` on the campaign's two hosts: each side runs the
    pushed venv's ``genet``, logs in its run directory, the server listens on every address; a model is where
    ``genet deploy push`` put it on the client host; a video is on the server host."""
    scheme, campaign = ctx.scheme, ctx.campaign
    value = remote_model(ctx) if scheme.kind in ("onnx", "abr-onnx") else scheme.value
    options: dict = {}
    if scheme.kind == "lb-onnx":  # the balancer runs the model, on the server host
        from deploy.push import remote_model_name
        value = f"{ctx.server_models or ctx.remote_models}/{remote_model_name(Path(scheme.value))}"
    if scheme.kind.startswith("lb-"):
        options.update(rates=campaign.service_rates, num_jobs=campaign.jobs, job_interval_ms=campaign.job_interval_ms,
                       job_size_max_work=campaign.job_size_max_work, time_unit_ms=campaign.time_unit_ms,
                       workload_seed=campaign.workload_seed + ctx.round - 1, policy_seed=campaign.seed,
                       answer_timeout_s=lb_answer_timeout_s(campaign))
    if scheme.kind.startswith("abr"):
        options["video"] = (["--video", "sized", "--sized-dir", f"{ctx.server_videos}/sized-envivio"]
                            if campaign.video == "envivio" else ["--video", f"{ctx.server_videos}/{campaign.video}"])
        options["chunks"] = campaign.chunks
    return SchemeContext(scheme.name, scheme.kind, value, (ctx.server_genet,), (ctx.client_genet,),
                         ctx.path.server_address, campaign.port, campaign.duration_s, options=options)


def lb_answer_timeout_s(campaign: Campaign) -> float:
    """The balancer's and the client's answer timeout in an LB run: the default (60 s), or longer when the largest
    job on the slowest worker may take longer (no event for that long is then normal; as ``genet emulate lb``)."""
    from balancer.server import ANSWER_TIMEOUT_S
    longest_s = campaign.job_size_max_work / min(campaign.service_rates) * campaign.time_unit_ms / 1000.0
    return max(ANSWER_TIMEOUT_S, 1.5 * longest_s + 10.0)


def lb_log_metrics(local_dir: Path) -> dict:
    """The LB columns of a finished run from its two records: the client's ``client.jsonl`` (every job of the
    workload, answered or failed with the reason) and the balancer's ``balancer.json`` (its workers, their busy
    time, the dead ones), by :func:`balancer.summary.summarize` (the one computation, as ``genet emulate lb``).
    A record that does not account for every job, or a run with failed jobs, does not count."""
    from balancer.client import ClientJob
    from balancer.schemes import CLIENT_RECORD, SERVER_RECORD
    from balancer.summary import accounting_problems, summarize
    from genet.lb.metrics import COLUMNS
    client = local_dir / CLIENT_RECORD
    try:
        jobs = [ClientJob(**r) for r in jsonl_records(client)]
    except TypeError:
        raise LogCheckError(f"{client.name}: a line is not a job record") from None
    server = local_dir / SERVER_RECORD
    try:
        record = json.loads(server.read_text())
    except FileNotFoundError:
        raise LogCheckError(f"{server.name}: missing") from None
    except ValueError:
        raise LogCheckError(f"{server.name}: not JSON (truncated?)") from None
    workers = record.get("workers") if isinstance(record, dict) else None
    if not isinstance(workers, list) or not workers:
        raise LogCheckError(f"{server.name}: no workers in the balancer's record")
    problems = accounting_problems(jobs, len(jobs))
    if not jobs or problems:
        raise LogCheckError(f"{client.name}: " + ("; ".join(problems) or "no jobs"))
    time_unit_ms = float(record.get("time_unit_ms") or 1.0)
    row = summarize(jobs, record, len(workers), time_unit_ms)
    if row["jobs_failed"]:
        raise LogCheckError(f"{row['jobs_failed']} of {row['jobs']} jobs failed: {row['failure_reasons'][:300]}")
    row["policy"] = record.get("policy")
    row["n_workers"] = len(workers)
    row["service_rates"] = " ".join(f"{float(w.get('rate', 0.0)):g}" for w in workers)
    row["time_unit_ms"] = time_unit_ms
    return _summary_metrics(client, row, COLUMNS, "genet balancer records (client.jsonl, balancer.json)")


def read_iperf3(path: Path) -> iperf3.Iperf3Report:
    """One iperf3 JSON report (``path``'s name in its errors); a missing file is a :class:`LogCheckError`."""
    try:
        return iperf3.parse_report(path.read_text(errors="replace"), path.name)
    except FileNotFoundError:
        raise LogCheckError(f"{path.name}: missing") from None
    except iperf3.Iperf3Error as exc:
        raise LogCheckError(str(exc)) from None


def iperf3_metrics(report: iperf3.Iperf3Report, duration_s: float, algorithm: str | None = None,
                   server_report: iperf3.Iperf3Report | None = None) -> dict:
    """Table-7 metrics of one ``iperf3 -c ... -J`` report (the sender's view of kernel TCP), parsed by
    :func:`sender.iperf3.parse_report`.

    throughput_mbps: receiver-side bits/s of the whole test; mean/p90/p95_rtt_ms: the kernel's smoothed
    RTT sampled every report interval (one percentile rule); loss_rate: retransmitted / sent segments
    (TCP's own loss signal: the sender cannot see drops otherwise); reward: the genet-form Aurora reward
    with the real-path normaliser of :func:`genet.cc.aurora.run_reward_normaliser_pps` — the largest
    delivery rate over one 1-s report interval, from the receiver's (``iperf3 -s -i 1 -J``) intervals when
    ``server_report`` is given (the client's intervals count bytes written, which can burst above the
    path's rate), else the client's.
    """
    from genet.cc.aurora import run_reward_normaliser_pps
    from genet.cc.reward import aurora_reward
    from foundation.metrics import percentile
    from foundation.packets import PACKET_BITS

    span_s = report.duration_s
    if span_s < MIN_DURATION_FRACTION * duration_s:
        raise LogCheckError(f"iperf3 ran {span_s:.2f} s of {duration_s:g} s")
    used = report.congestion_control
    if algorithm and used and used != algorithm:
        raise LogCheckError(f"iperf3 used congestion control {used}, not {algorithm}")
    rtts_ms = report.interval_rtts_ms()
    interval_pps = [iv.throughput_mbps * 1e6 / PACKET_BITS for iv in report.intervals
                    if iv.duration_s > 0.5 * IPERF_INTERVAL_S]
    delivered_pps = [iv.throughput_mbps * 1e6 / PACKET_BITS for iv in (server_report.intervals if server_report
                                                                       else ()) if iv.duration_s > 0.5 * NORMALISER_INTERVAL_S]
    normaliser_source = "receiver intervals" if delivered_pps else "sender intervals"
    interval_pps = delivered_pps or interval_pps
    segments = max(1.0, report.sent_bytes / float(report.mss_bytes))
    loss = min(1.0, report.retransmits / segments)
    tput_pps = report.throughput_mbps * 1e6 / PACKET_BITS
    mean_rtt_ms = float(sum(rtts_ms) / len(rtts_ms)) if rtts_ms else float("nan")
    norm = run_reward_normaliser_pps(None, max(interval_pps) if interval_pps else tput_pps)
    reward = aurora_reward(tput_pps, mean_rtt_ms / 1000.0, loss, norm, "genet") if rtts_ms and norm > 0 \
        else float("nan")
    return {"throughput_mbps": report.throughput_mbps, "mean_rtt_ms": mean_rtt_ms,
            "p90_rtt_ms": percentile(rtts_ms, 90), "p95_rtt_ms": percentile(rtts_ms, 95), "loss_rate": loss,
            "reward": reward,
            "reward_normaliser": f"measured: largest delivery rate over one report interval ({normaliser_source})",
            "reward_normaliser_mbps": norm * PACKET_BITS / 1e6, "retransmits": report.retransmits,
            "rtt_samples": len(rtts_ms), "congestion_control": used or algorithm, "duration_s": span_s,
            "metrics_source": "iperf3 -J (sender's TCP_INFO RTT, retransmits)"}


def unavailable_reason(runner: SchemeRunner) -> str | None:
    """Why ``runner``'s sides cannot run from this version of genet-testbed (None: they can)."""
    if runner.genet_command and not _local_command_exists(runner.genet_command):
        return (f"needs `genet {runner.genet_command}` (not in this version of genet-testbed; the scheme is "
                f"validated but cannot run yet)")
    return None


def remote_model(ctx: RunContext) -> str:
    """Where ``genet deploy push`` put the scheme's model on the client host (content-addressed name)."""
    from deploy.push import remote_model_name
    return f"{ctx.remote_models}/{remote_model_name(Path(ctx.scheme.value))}"


def jsonl_records(path: Path) -> list[dict]:
    """The JSON records of a JSON-lines log, one per line (a bad line or a missing file: :class:`LogCheckError`)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise LogCheckError(f"{path.name}: missing") from None
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            raise LogCheckError(f"{path.name}:{i}: not a JSON record (truncated log?)") from None
    return out


def _summary_record(path: Path) -> dict:
    recs = jsonl_records(path)
    for r in reversed(recs):
        if isinstance(r, dict) and (r.get("type") == "summary" or r.get("kind") == "summary" or "summary" in r):
            return r.get("summary", r) if isinstance(r.get("summary"), dict) else r
    raise LogCheckError(f"{path.name}: no summary record (the run did not finish)")


def _summary_metrics(path: Path, s: dict, columns, source: str) -> dict:
    """The plain fields of the summary record ``s`` of ``path``, which must hold every one of ``columns``."""
    missing = [c for c in column_names(columns) if c not in s]
    if missing:
        raise LogCheckError(f"{path.name}: summary lacks {', '.join(missing)}")
    out = {k: v for k, v in s.items() if isinstance(v, (int, float, str)) or v is None}
    out["metrics_source"] = source
    return out


def sender_log_metrics(path: Path, duration_s: float) -> dict:
    """Table-7 metrics from ``genet sender send --log`` (its run summary, computed by the project's metrics)."""
    return _summary_metrics(path, _summary_record(path), TABLE7, "genet sender summary")


def player_log_metrics(path: Path) -> dict:
    """Table-6 metrics from ``genet player play --log`` (its per-video summary, from genet/abr/qoe.py)."""
    s = _summary_record(path)
    if s.get("status", "complete") != "complete":
        raise LogCheckError(f"{path.name}: the session ended early ({s.get('status')}: {s.get('reason')})")
    return _summary_metrics(path, s, TABLE6, "genet player summary")


def _local_command_exists(command: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(f"{command}.cli") is not None


def log_metrics(scheme_kind: str, scheme_value: str, duration_s: float, local_dir: Path) -> dict:
    """A finished run's metrics from its fetched logs (what ``genet deploy run`` records and ``genet deploy
    report`` recomputes, so a report always uses the current definitions)."""
    if scheme_kind == "kernel":
        server = local_dir / "server.out"
        return iperf3_metrics(read_iperf3(local_dir / "client.out"), duration_s, scheme_value,
                              read_iperf3(server) if server.is_file() and server.stat().st_size else None)
    if scheme_kind in ("const", "onnx"):
        return sender_log_metrics(local_dir / "run.jsonl", duration_s)
    if scheme_kind in ("lb-baseline", "lb-onnx"):
        return lb_log_metrics(local_dir)
    return player_log_metrics(local_dir / "run.jsonl")


def runner_for(scheme: Scheme, use_case: str | None = None) -> SchemeRunner:
    """The runner of ``scheme``: the factory its use case declares (``UseCase.schemes``)."""
    from foundation.usecase import load, use_case as declared
    if use_case is None:
        use_case = "cc" if scheme.kind in ("kernel", "const", "onnx") else scheme.kind.split("-")[0]
    return load(declared(use_case).schemes)(scheme)
