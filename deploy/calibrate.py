"""``genet emulate calibrate RUN_DIR``: an emulated path fitted to a real CC campaign (Pantheon's calibrated
emulators, Yan et al., ATC'18), so that the emulated run of a scheme reproduces its real run.

From the logs a ``genet deploy run`` CC campaign fetched (``RUN_DIR/journal.jsonl``, ``runs/<run>/a<k>/``: iperf3
``-J`` reports of the kernel schemes, client ``client.out`` and receiver ``server.out``; our sender's
``run.jsonl`` with its per-monitor-interval records), per path, four parameters of an mm-link-style path
(:mod:`emulation`: a bandwidth trace, a one-way delay each way, a droptail queue on the data direction and a
random loss rate):

* **one-way delay** = the smallest RTT sample of any run on the path / 2: iperf3's per-interval smoothed RTT
  (and its end-of-test ``min_rtt``), our sender's per-packet RTT samples (``rtt_min_ms`` of each interval). A
  flow that never queues (a ``const:`` rate below the path's) gives the propagation RTT plus one packet's
  serialization; the kernel schemes' smoothed RTT alone gives an upper bound. Taken as measured: nothing is
  subtracted (the real path is what it is; ``--emulated`` measures and corrects the emulator's own share).
* **bandwidth** = what the saturating schemes (kernel TCP through iperf3: ``cubic``, ``bbr``, ...) deliver, as
  link rate: the receiver's per-interval goodput (``iperf3 -s -i 1``; the client's intervals when there is no
  receiver report) × 1500 / MSS (TCP payload -> whole 1500-byte IP packets, the unit of a trace's Mbit/s, one
  Mahimahi delivery opportunity per packet), leaving out the first :data:`STARTUP_S` of each run (start-up) and
  cut intervals. Per run the median of those intervals; per scheme the median over its runs; the path's the
  largest over the schemes (a scheme falls short of the path by its own behaviour, the path limits them all).
  Constant unless that scheme's intervals vary (coefficient of variation above :data:`VARYING_CV`; ``--bandwidth``
  forces either): then the trace is its runs' interval series, one sample per interval, run after run in the
  campaign's order (runs are not aligned with the path's own variation: the trace reproduces its distribution and
  time scale, not its phase).
* **queue** (packets of 1500 bytes) = the queueing delay a loss-based kernel scheme (cubic, reno, ...; not bbr)
  builds before its losses: (its largest smoothed RTT - the path's minimum RTT) × bandwidth / 1500 B, the median
  over its runs. A loss-based flow fills a droptail queue before it loses; BBR keeps about one BDP queued, so
  with only BBR runs the figure is a lower bound (said so). A run without a retransmission never filled the
  queue: also a lower bound.
* **random loss** = lost / (lost + acknowledged) packets over our sender's monitor intervals that cannot have
  overflowed the queue: sent at most :data:`UNSATURATED_FRACTION` of the bandwidth and with a mean RTT within
  :data:`QUEUE_FREE_MS` (or a quarter of the queue's delay) of the minimum. Kernel TCP's retransmissions mix
  random and congestion losses (every greedy flow causes its own): with no unsaturated sender run the loss is
  0, and ``calibration.json`` says it is not measured.

Writes ``OUT/<path>.json`` (a Genet-JSON trace, :func:`traces.io.write_trace`, carrying ``delay_ms``,
``queue_packets``, ``loss_rate``; a constant one lasts the campaign's ``duration_s``) and ``OUT/calibration.json``
(each parameter's value, unit, method, the runs it came from; the schemes and the ``genet emulate cc`` policies
that rerun them). ``genet emulate cc --traces OUT --policy ...`` then runs the calibrated emulation (the trace
folder reader skips ``calibration*.json``).

Checking and one iteration (``--emulated EMU_DIR``: a ``genet emulate cc`` folder over OUT's traces): per path
and scheme the real and the calibrated-emulation figures side by side (:func:`compare`), and with ``--refine``
the delay moved by half the difference of the real and the emulated minimum RTT and the bandwidth scaled by
the ratio of the real and the emulated delivered rate (:func:`refine`; queue and loss kept): the emulator's own
overhead (its millisecond clock) is then measured, not guessed. ``genet deploy report RUN_DIR --calibrated EMU_DIR``
puts the calibrated emulation's Table-7 figures beside the real ones (:func:`calibrated_runs`; runs matched by the
one rule of :func:`emulation_runs`).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from foundation.errors import BadInputError
from foundation.packets import PACKET_BITS, PACKET_BYTES

#: Seconds at the start of each run left out of its bandwidth series (slow start, BBR's startup).
STARTUP_S = 1.0
#: Intervals shorter than this fraction of the run's usual interval (iperf3's cut last one) are left out.
MIN_INTERVAL_FRACTION = 0.5
#: The bandwidth counts as varying when its per-interval coefficient of variation is above this.
VARYING_CV = 0.15
#: A monitor interval of our sender counts as unsaturated when it sent at most this fraction of the bandwidth ...
UNSATURATED_FRACTION = 0.8
#: ... and its mean RTT was within this many ms (or a quarter of the queue's delay) of the path's minimum.
QUEUE_FREE_MS = 5.0
#: Fewer unsaturated packets than this: the random loss is not measured (0, said so).
MIN_LOSS_PACKETS = 500
#: Kernel congestion controls that do not fill a droptail queue before they back off (model- or delay-based).
NOT_LOSS_BASED = frozenset({"bbr", "bbr2", "bbr3", "vegas", "nv", "lp", "cdg"})
#: Files of a calibration folder besides its traces (the trace-folder reader skips these names).
CALIBRATION_FILE = "calibration.json"
CHECK_FILE = "calibration-check.json"


# ------------------------------------------------------------------ what one run shows
@dataclass(frozen=True)
class MonitorInterval:
    """One monitor interval of our sender: its send rate (Mbit/s), mean RTT (ms), acknowledged and lost packets."""

    send_rate_mbps: float
    rtt_mean_ms: float | None
    packets_acked: int
    packets_lost: int


@dataclass(frozen=True)
class RunObservation:
    """What the calibration reads from one run (real or emulated), in the estimators' units.

    kind: ``kernel`` (iperf3), ``const`` / ``onnx`` (our sender); algorithm: the kernel congestion control
    throughput_mbps: the run's headline throughput as its scheme reports it (iperf3: receiver goodput; our
    sender: acknowledged 1500-byte packets); link_rate_mbps: the same in 1500-byte IP packets (TCP: × 1500 / MSS)
    series_mbps: the link rate of each steady interval (after :data:`STARTUP_S`, cut intervals left out), of
    ``interval_s`` each; min_rtt_ms / max_rtt_ms: the smallest and largest RTT sample (iperf3: smoothed RTT);
    mean_rtt_ms: the run's mean RTT (iperf3: mean smoothed RTT); retransmits: TCP's (None for our sender)
    """

    run_id: str
    path: str
    scheme: str
    kind: str
    algorithm: str | None
    throughput_mbps: float
    link_rate_mbps: float
    series_mbps: tuple[float, ...] = ()
    interval_s: float = 1.0
    min_rtt_ms: float | None = None
    max_rtt_ms: float | None = None
    mean_rtt_ms: float | None = None
    retransmits: int | None = None
    intervals: tuple[MonitorInterval, ...] = ()

    @property
    def saturating(self) -> bool:
        """A backlogged flow (kernel TCP through iperf3): it delivers what the path lets through."""
        return self.kind == "kernel"

    @property
    def loss_based(self) -> bool:
        return self.kind == "kernel" and (self.algorithm or "") not in NOT_LOSS_BASED


def _steady_series(intervals, mss_bytes: int) -> tuple[tuple[float, ...], float]:
    """(link rate of each steady interval, the usual interval length) of an iperf3 report's intervals."""
    lengths = [iv.duration_s for iv in intervals if iv.duration_s > 0]
    if not lengths:
        return (), 1.0
    usual = statistics.median(lengths)
    scale = PACKET_BYTES / mss_bytes
    out = tuple(iv.throughput_mbps * scale for iv in intervals
                if iv.start_s >= STARTUP_S - 1e-6 and iv.duration_s >= MIN_INTERVAL_FRACTION * usual)
    return out, usual


def iperf3_observation(run_id: str, path: str, scheme: str, algorithm: str | None, client, server=None
                       ) -> RunObservation:
    """A kernel run from its iperf3 reports (:class:`sender.iperf3.Iperf3Report`): the client's (RTT, throughput,
    retransmits) and, when there is one, the receiver's (its intervals give the bandwidth series)."""
    mss = client.mss_bytes if 500 <= (client.mss_bytes or 0) <= PACKET_BYTES else PACKET_BYTES - 52
    series, interval_s = _steady_series((server or client).intervals, mss)
    if not series:  # a run too short for steady intervals: its whole-run rate
        series, interval_s = (client.throughput_mbps * PACKET_BYTES / mss,), max(client.duration_s, 1e-3)
    rtts = client.interval_rtts_ms() + [x for x in (client.rtt_min_ms, client.rtt_max_ms) if x]
    return RunObservation(run_id, path, scheme, "kernel", algorithm or client.congestion_control,
                          client.throughput_mbps, client.throughput_mbps * PACKET_BYTES / mss, series, interval_s,
                          min(rtts) if rtts else None, max(rtts) if rtts else None, client.rtt_mean_ms,
                          client.retransmits)


def sender_observation(run_id: str, path: str, scheme: str, kind: str, records: list[dict]) -> RunObservation:
    """A run of our sender from its log's records (``genet sender send --log``: ``mi`` records and the summary)."""
    mis = [r for r in records if r.get("type") == "mi"]
    summary = next((r for r in reversed(records) if r.get("type") == "summary"), None)
    if summary is None:
        raise ValueError("no summary record (the run did not finish)")
    ivs = tuple(MonitorInterval(float(m.get("send_rate_mbps") or 0.0), _num(m.get("rtt_mean_ms")),
                                int(m.get("packets_acked") or 0), int(m.get("packets_lost") or 0)) for m in mis)
    mins = [x for x in [_num(summary.get("min_rtt_ms"))] + [_num(m.get("rtt_min_ms")) for m in mis] if x]
    maxs = [iv.rtt_mean_ms for iv in ivs if iv.rtt_mean_ms]
    tput = float(summary.get("throughput_mbps") or 0.0)
    return RunObservation(run_id, path, scheme, kind, None, tput, tput, (), 1.0, min(mins) if mins else None,
                          max(maxs) if maxs else None, _num(summary.get("mean_rtt_ms")), None, ivs)


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


# ------------------------------------------------------------------ the estimators
@dataclass
class Estimate:
    """One fitted parameter: its value (``unit``), how it was estimated, from which runs, and figures behind it."""

    value: float
    unit: str
    method: str
    runs: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


def estimate_delay(obs: list[RunObservation]) -> Estimate:
    """One-way delay = the smallest RTT sample of any run / 2."""
    with_rtt = [o for o in obs if o.min_rtt_ms is not None and o.min_rtt_ms > 0]
    if not with_rtt:
        raise BadInputError("no run on the path has an RTT sample (iperf3 intervals, sender records)")
    best = min(with_rtt, key=lambda o: o.min_rtt_ms)
    upper = best.kind == "kernel"  # iperf3 reports the smoothed RTT, sampled per interval, of backlogged flows
    return Estimate(best.min_rtt_ms / 2.0, "ms", "minimum RTT over all runs of the path / 2 (smallest sample: "
                    f"{best.scheme}, run {best.run_id})" + ("; only kernel TCP's smoothed RTT (sampled per iperf3 "
                    "interval, its queue already building): an upper bound; add a const:MBPS scheme below the path's "
                    "rate for per-packet RTTs" if upper else ""), [o.run_id for o in with_rtt],
                    {"min_rtt_ms": best.min_rtt_ms, "min_rtt_run": best.run_id, "upper_bound": upper,
                     "per_scheme_min_rtt_ms": {s: min(o.min_rtt_ms for o in with_rtt if o.scheme == s)
                                               for s in sorted({o.scheme for o in with_rtt})}})


def _median(xs) -> float:
    return float(statistics.median(xs))


def estimate_bandwidth(obs: list[RunObservation], mode: str = "auto") -> tuple[Estimate, list[float], float]:
    """(the bandwidth estimate, its series — one value when constant —, the series' interval in s).

    ``mode``: ``auto`` (constant unless the chosen scheme's intervals vary: coefficient of variation above
    :data:`VARYING_CV`), ``constant`` or ``trace``."""
    if mode not in ("auto", "constant", "trace"):
        raise BadInputError(f"--bandwidth {mode!r}: expected auto, constant or trace")
    sat = [o for o in obs if o.saturating and o.series_mbps]
    if not sat:
        raise BadInputError("no saturating run on the path: the bandwidth comes from kernel TCP schemes (cubic, "
                            "bbr, ...) through iperf3; add one to the campaign")
    per_scheme = {}
    for s in sorted({o.scheme for o in sat}):
        per_scheme[s] = _median([_median(o.series_mbps) for o in sat if o.scheme == s])
    chosen = max(per_scheme, key=per_scheme.get)
    runs = [o for o in sat if o.scheme == chosen]
    pooled = [x for o in runs for x in o.series_mbps]
    mean = statistics.fmean(pooled)
    cv = statistics.pstdev(pooled) / mean if mean > 0 and len(pooled) > 1 else 0.0
    varying = cv > VARYING_CV if mode == "auto" else mode == "trace"
    interval_s = _median([o.interval_s for o in runs])
    details = {"per_scheme_mbps": per_scheme, "scheme": chosen, "cv": cv, "varying_cv_threshold": VARYING_CV,
               "intervals": len(pooled), "interval_s": interval_s}
    base = (f"delivered link rate of the saturating scheme that got most through ({chosen}): receiver goodput per "
            f"{interval_s:g}-s interval x 1500/MSS, the first {STARTUP_S:g} s of each run left out")
    if varying:
        est = Estimate(mean, "Mbit/s", base + f"; varying (coefficient of variation {cv:.2f} > {VARYING_CV:g}"
                       + (", or --bandwidth trace" if mode == "trace" else "") + "): a trace of those intervals, "
                       "run after run in campaign order (its mean here)", [o.run_id for o in runs], details)
        return est, pooled, interval_s
    est = Estimate(per_scheme[chosen], "Mbit/s", base + f"; median per run, then over runs; constant (coefficient "
                   f"of variation {cv:.2f}" + (f" <= {VARYING_CV:g})" if mode == "auto" else ", --bandwidth constant)"),
                   [o.run_id for o in runs], details)
    return est, [per_scheme[chosen]], interval_s


def estimate_queue(obs: list[RunObservation], min_rtt_ms: float, bandwidth_mbps: float) -> Estimate:
    """Droptail queue (packets) = (a loss-based scheme's largest smoothed RTT - min RTT) × bandwidth / 1500 B."""
    lb = [o for o in obs if o.loss_based and o.max_rtt_ms is not None]
    lower = ""
    if not lb:
        lb = [o for o in obs if o.saturating and o.max_rtt_ms is not None]
        lower = ("only model-based kernel runs (BBR keeps about one BDP queued, not a full queue): a lower bound; "
                 "add cubic to the campaign for the queue")
        if not lb:
            raise BadInputError("no kernel TCP run with RTT samples on the path: the queue comes from the queueing "
                                "delay cubic builds; add cubic to the campaign")
    per_run = {o.run_id: o.max_rtt_ms for o in lb}
    max_rtt = _median(per_run.values())
    q_ms = max(0.0, max_rtt - min_rtt_ms)
    packets = max(1.0, float(round(q_ms / 1000.0 * bandwidth_mbps * 1e6 / PACKET_BITS)))
    if not lower and all(o.retransmits == 0 for o in lb):
        lower = "no loss-based run lost a packet (the queue was never full): a lower bound"
    schemes = ", ".join(sorted({o.scheme for o in lb}))
    return Estimate(packets, "packets", f"queueing delay {schemes} builds: (median over its runs of the largest "
                    f"smoothed RTT - the minimum RTT) x bandwidth / {PACKET_BYTES} B = ({max_rtt:.2f} - "
                    f"{min_rtt_ms:.2f}) ms x {bandwidth_mbps:.3f} Mbit/s" + (f"; {lower}" if lower else ""),
                    sorted(per_run), {"queue_delay_ms": q_ms, "max_rtt_ms": max_rtt, "per_run_max_rtt_ms": per_run,
                                      "lower_bound": bool(lower)})


def estimate_loss(obs: list[RunObservation], bandwidth_mbps: float, min_rtt_ms: float,
                  queue_delay_ms: float) -> Estimate:
    """Random loss = lost / (lost + acknowledged) over our sender's unsaturated monitor intervals (0, said so,
    when there are fewer than :data:`MIN_LOSS_PACKETS` such packets)."""
    rtt_ok = max(QUEUE_FREE_MS, 0.25 * queue_delay_ms)
    lost = acked = 0
    runs = []
    for o in obs:
        used = False
        for iv in o.intervals:
            if (iv.send_rate_mbps <= UNSATURATED_FRACTION * bandwidth_mbps and iv.rtt_mean_ms is not None
                    and iv.rtt_mean_ms - min_rtt_ms <= rtt_ok):
                lost += iv.packets_lost
                acked += iv.packets_acked
                used = True
        if used:
            runs.append(o.run_id)
    n = lost + acked
    rule = (f"monitor intervals of our sender sent at <= {UNSATURATED_FRACTION:g} x bandwidth with a mean RTT within "
            f"{rtt_ok:.1f} ms of the minimum (no queue that could overflow)")
    if n < MIN_LOSS_PACKETS:
        kernel = [o for o in obs if o.kind == "kernel"]
        return Estimate(0.0, "", f"not measured: {n} packets in {rule} (at least {MIN_LOSS_PACKETS} needed); kernel "
                        "TCP's retransmissions mix random and congestion loss (each greedy flow overflows the queue "
                        "itself), so they cannot tell it: 0 assumed. Add a const:MBPS scheme below the path's rate "
                        "to measure it", runs, {"packets": n, "measured": False,
                                                "kernel_runs": len(kernel)})
    p = lost / n
    lo, hi = _wilson(lost, n)
    return Estimate(p, "", f"lost / (lost + acknowledged) packets over {rule}: {lost} of {n}", runs,
                    {"packets": n, "lost": lost, "measured": True, "ci95": [lo, hi]})


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


@dataclass
class PathCalibration:
    """The fitted path: the four estimates and the bandwidth series (one value: constant)."""

    path: str
    delay_ms: Estimate
    bandwidth_mbps: Estimate
    queue_packets: Estimate
    loss_rate: Estimate
    series_mbps: list[float]
    interval_s: float
    runs: list[str]

    def to_json(self) -> dict:
        return {"delay_ms": asdict(self.delay_ms), "bandwidth_mbps": asdict(self.bandwidth_mbps),
                "queue_packets": asdict(self.queue_packets), "loss_rate": asdict(self.loss_rate),
                "bandwidth_kind": "constant" if len(self.series_mbps) == 1 else "trace",
                "bandwidth_series_mbps": self.series_mbps, "bandwidth_interval_s": self.interval_s,
                "runs": self.runs}


def calibrate_path(path: str, obs: list[RunObservation], bandwidth: str = "auto") -> PathCalibration:
    """The four parameters of ``path`` from its runs."""
    if not obs:
        raise BadInputError(f"path {path}: no finished run to calibrate from")
    delay = estimate_delay(obs)
    bw, series, interval_s = estimate_bandwidth(obs, bandwidth)
    min_rtt = delay.details["min_rtt_ms"]
    queue = estimate_queue(obs, min_rtt, bw.value)
    loss = estimate_loss(obs, bw.value, min_rtt, queue.details["queue_delay_ms"])
    return PathCalibration(path, delay, bw, queue, loss, series, interval_s, sorted(o.run_id for o in obs))


def calibrated_trace(cal: PathCalibration, duration_s: float, meta: dict | None = None):
    """The fitted path as a :class:`traces.Trace` named after the path (a constant one lasts ``duration_s``)."""
    import numpy as np

    from traces.trace import Trace
    props = dict(name=cal.path, delay_ms=round(cal.delay_ms.value, 3), loss_rate=cal.loss_rate.value,
                 queue_packets=int(cal.queue_packets.value), meta=dict(meta or {}))
    if len(cal.series_mbps) == 1:
        return Trace.constant(round(cal.series_mbps[0], 4), max(1.0, float(duration_s)), **props)
    bws = [round(x, 4) for x in cal.series_mbps]
    t = np.arange(len(bws) + 1, dtype=float) * cal.interval_s
    return Trace(t, np.array(bws + bws[-1:], dtype=float), **props)


# ------------------------------------------------------------------ reading a campaign / an emulation
def _campaign(run_dir: Path) -> dict:
    from deploy.campaign import CAMPAIGN_FILE, JOURNAL, read_campaign_file
    if not (run_dir / JOURNAL).is_file() or not (run_dir / CAMPAIGN_FILE).is_file():
        raise BadInputError(f"{run_dir}: not a campaign folder (no {JOURNAL} / {CAMPAIGN_FILE}; `genet deploy run` "
                            f"writes them)")
    camp = read_campaign_file(run_dir)
    if camp["campaign"]["use_case"] != "cc":
        raise BadInputError(f"{run_dir}: a {camp['campaign']['use_case']} campaign; calibration reads a CC "
                            f"campaign's logs (iperf3, genet sender)")
    return camp


def campaign_observations(run_dir: str | Path) -> tuple[dict, dict[str, list[RunObservation]], dict[str, str],
                                                          dict[str, dict]]:
    """(campaign.json, observations per path, skipped run -> why, scheme name -> {kind, value}) of a CC campaign:
    its ``ok`` runs (the last ok attempt of each), in journal order, read from their fetched logs."""
    from deploy.campaign import open_journal
    from deploy.schemes import read_iperf3, jsonl_records, LogCheckError
    run_dir = Path(run_dir)
    camp = _campaign(run_dir)
    latest: dict[str, dict] = {}
    for r in open_journal(run_dir).records:
        if r.get("status") == "ok" and isinstance(r.get("run_id"), str):
            latest.pop(r["run_id"], None)
            latest[r["run_id"]] = r
    per_path: dict[str, list[RunObservation]] = {}
    skipped: dict[str, str] = {}
    schemes: dict[str, dict] = {}
    for rid, r in latest.items():
        d = run_dir / str(r.get("dir", ""))
        kind, scheme, path = r.get("scheme_kind", "kernel"), str(r.get("scheme")), str(r.get("path"))
        try:
            if kind == "kernel":
                server = d / "server.out"
                o = iperf3_observation(rid, path, scheme, scheme, read_iperf3(d / "client.out"),
                                       read_iperf3(server) if server.is_file() and server.stat().st_size else None)
            elif kind in ("const", "onnx"):
                o = sender_observation(rid, path, scheme, kind, jsonl_records(d / "run.jsonl"))
            else:
                skipped[rid] = f"scheme kind {kind} is not a CC scheme"
                continue
        except (LogCheckError, OSError, ValueError) as exc:
            skipped[rid] = str(exc)[:200]
            continue
        per_path.setdefault(path, []).append(o)
        schemes.setdefault(scheme, {"kind": kind, "value": _scheme_value(r, camp)})
    return camp, per_path, skipped, schemes


def _scheme_value(rec: dict, camp: dict) -> str:
    """The scheme's value (kernel algorithm, const rate, model path) from the run's client command line."""
    kind, name = rec.get("scheme_kind", "kernel"), str(rec.get("scheme"))
    if kind == "kernel":
        return name
    if kind == "const":
        return name.split(":", 1)[1] if ":" in name else name
    return name  # onnx: the campaign names the model by its local path


def emulate_policy(scheme: str, kind: str, value: str) -> str:
    """The ``genet emulate cc --policy`` argument that runs the campaign's ``scheme`` on an emulated link."""
    if kind == "kernel":
        return value if value in ("bbr", "cubic") else f"tcp:{value}"
    if kind == "const":
        return f"const:{value}"
    return value


def policy_label(scheme: str, kind: str, value: str) -> str:
    """The label ``genet emulate cc`` gives that policy in its results (``policy`` column)."""
    if kind == "onnx":
        return Path(value).stem
    return emulate_policy(scheme, kind, value)


def campaign_labels(schemes: dict[str, dict]) -> dict[str, str]:
    """Campaign scheme -> the ``policy`` label of the ``genet emulate cc`` runs that rerun it (``schemes``: scheme ->
    ``{kind, value}``, as :func:`campaign_observations` and :func:`journal_schemes` give them)."""
    return {s: policy_label(s, v["kind"], v["value"]) for s, v in schemes.items()}


def journal_schemes(camp: dict, records) -> dict[str, dict]:
    """Scheme -> ``{kind, value}`` of a campaign's journal records (an ``ok`` record's where there is one)."""
    out: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: not (isinstance(r, dict) and r.get("status") == "ok")):  # ok ones first
        if isinstance(r, dict) and r.get("scheme") is not None:
            out.setdefault(str(r["scheme"]), {"kind": r.get("scheme_kind", "kernel"), "value": _scheme_value(r, camp)})
    return out


def emulation_runs(emu_dir: str | Path) -> dict[tuple[str, str], list[dict]]:
    """The runs of a ``genet emulate cc`` folder (its ``results.json`` rows that name a run folder), by ``(trace,
    policy)``. The one matching rule of the calibrated emulation: a campaign's scheme S on path P is rerun by the
    runs keyed ``(P, campaign_labels(...)[S])`` — :func:`write_calibration` names each trace after its path and
    ``genet emulate cc`` labels each policy by :func:`policy_label` (:func:`compare`, ``genet deploy report
    --calibrated``)."""
    emu_dir = Path(emu_dir)
    f = emu_dir / "results.json"
    try:
        rows = json.loads(f.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise BadInputError(f"{emu_dir}: no results.json (a `genet emulate cc --out` folder writes one)") from None
    except ValueError:
        raise BadInputError(f"{f}: not JSON") from None
    except OSError as exc:
        raise BadInputError(f"{f}: cannot be read ({exc.strerror or exc})") from None
    if isinstance(rows, dict):
        rows = rows.get("rows", [])
    out: dict[tuple[str, str], list[dict]] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("run_dir"):
            out.setdefault((str(row.get("trace")), str(row.get("policy"))), []).append(row)
    return out


def emulation_observations(emu_dir: str | Path) -> dict[str, list[RunObservation]]:
    """Observations per trace name (= path) of a ``genet emulate cc`` folder (``results.json``, ``runs/<run>/``:
    ``iperf3.json`` for kernel schemes, ``sender.jsonl`` for ours); ``scheme`` is the policy label."""
    from sender.iperf3 import Iperf3Error, read_report
    from sender.udp_sender import read_log
    emu_dir = Path(emu_dir)
    out: dict[str, list[RunObservation]] = {}
    for (trace, label), rows in emulation_runs(emu_dir).items():
        for row in rows:
            rid = f"{row['run_dir']}"
            d = emu_dir / str(row["run_dir"])
            try:
                if (d / "iperf3.json").is_file():
                    rep = read_report(d / "iperf3.json")
                    o = iperf3_observation(rid, trace, label, rep.congestion_control, rep)
                elif (d / "sender.jsonl").is_file():
                    o = sender_observation(rid, trace, label, "onnx", read_log(d / "sender.jsonl"))
                else:
                    continue
            except (Iperf3Error, OSError, ValueError):
                continue
            out.setdefault(trace, []).append(o)
    return out


def emulated_run_metrics(run_dir: Path, duration_s: float, scheme_kind: str, scheme_value: str) -> dict:
    """Table-7 metrics of one ``genet emulate cc`` run from its logs by the definitions the campaign's runs get
    (:mod:`deploy.schemes`, what ``genet deploy report`` recomputes): :func:`deploy.schemes.iperf3_metrics` on
    ``iperf3.json`` (the algorithm checked; emulate cc keeps no receiver report, so the reward's normaliser comes
    from the sender's intervals) and :func:`deploy.schemes.sender_log_metrics` on ``sender.jsonl`` — not the
    emulator's link-log columns of ``results.csv``, which count whole packets at the bottleneck and per-packet
    RTTs where a real path has only the scheme's own view. Raises :class:`deploy.schemes.LogCheckError`."""
    from deploy.schemes import LogCheckError, read_iperf3, iperf3_metrics, sender_log_metrics
    if (run_dir / "iperf3.json").is_file():
        return iperf3_metrics(read_iperf3(run_dir / "iperf3.json"), duration_s,
                              scheme_value if scheme_kind == "kernel" else None)
    if (run_dir / "sender.jsonl").is_file():
        return sender_log_metrics(run_dir / "sender.jsonl", duration_s)
    raise LogCheckError(f"{run_dir.name}: no iperf3.json or sender.jsonl")


@dataclass
class CalibratedRuns:
    """The calibrated emulation's runs of a campaign: per (path, scheme), the Table-7 metrics of each emulated run
    (:func:`emulated_run_metrics`); ``labels``: scheme -> emulate cc policy label; ``skipped``: run folder -> why
    its logs did not count."""

    emu_dir: Path
    metrics: dict[tuple[str, str], list[dict]]
    labels: dict[str, str]
    skipped: dict[str, str]


def calibrated_runs(emu_dir: str | Path, camp: dict, records) -> CalibratedRuns:
    """The runs of ``emu_dir`` (a ``genet emulate cc --traces CALIBRATED_DIR`` folder) that rerun the campaign
    ``camp`` (campaign.json's content; ``records``: its journal records), matched by :func:`emulation_runs`' rule.
    A one-line :class:`BadInputError` naming the folder when it is not an emulate cc folder, when none of its runs
    is one of the campaign's schemes on one of its paths, or when none of those has readable logs."""
    from deploy.schemes import LogCheckError
    emu_dir = Path(emu_dir)
    c = camp["campaign"]
    if c.get("use_case") != "cc":
        raise BadInputError(f"{emu_dir}: calibrated emulation is for CC campaigns; campaign {c.get('name')} is "
                            f"{c.get('use_case')}")
    runs = emulation_runs(emu_dir)
    kinds = journal_schemes(camp, records)
    labels = campaign_labels(kinds)
    matched = {(p, s): runs.get((p, labels.get(s, s)), []) for p in c["paths"] for s in c["schemes"]}
    if not any(matched.values()):
        found = sorted(runs)
        raise BadInputError(f"{emu_dir}: no emulated run of the campaign's schemes on its paths (wanted traces "
                            f"{', '.join(c['paths'])} with policies {', '.join(labels.get(s, s) for s in c['schemes'])}"
                            f"; found {', '.join(f'{p} on {t}' for t, p in found[:6]) or 'no runs'}"
                            f"{' ...' if len(found) > 6 else ''}): run `genet emulate cc --traces CALIBRATED_DIR` "
                            f"over `genet emulate calibrate`'s folder")
    default_s = float(c.get("duration_s") or 0.0)
    metrics: dict[tuple[str, str], list[dict]] = {}
    skipped: dict[str, str] = {}
    for (p, s), rows in matched.items():
        got = metrics.setdefault((p, s), [])
        info = kinds.get(s, {"kind": "kernel", "value": s})
        for row in rows:
            try:
                duration_s = float(row.get("run_duration_s") or default_s)
                got.append(emulated_run_metrics(emu_dir / str(row["run_dir"]), duration_s, info["kind"],
                                                info["value"]))
            except (LogCheckError, OSError, ValueError, TypeError) as exc:
                skipped[str(row["run_dir"])] = str(exc)[:200]
    if not any(metrics.values()):
        first = next(iter(skipped.items()))
        raise BadInputError(f"{emu_dir}: none of the {len(skipped)} emulated runs of the campaign has readable logs "
                            f"(first: {first[0]}: {first[1]})")
    return CalibratedRuns(emu_dir, metrics, labels, skipped)


# ------------------------------------------------------------------ writing, comparing, refining
def write_calibration(run_dir: str | Path, out_dir: str | Path, bandwidth: str = "auto",
                      paths: list[str] | None = None) -> dict:
    """Calibrate every path of the campaign in ``run_dir`` (or ``paths``); write the traces and calibration.json
    into ``out_dir``; returns calibration.json's content."""
    run_dir, out = Path(run_dir), Path(out_dir)
    camp, per_path, skipped, schemes = campaign_observations(run_dir)
    c = camp["campaign"]
    wanted = paths or list(c["paths"])
    unknown = [p for p in wanted if p not in c["paths"]]
    if unknown:
        raise BadInputError(f"--paths: {', '.join(unknown)} not in the campaign (its paths: {', '.join(c['paths'])})")
    cals = {}
    for p in wanted:
        try:
            cals[p] = calibrate_path(p, per_path.get(p, []), bandwidth)
        except BadInputError as exc:
            raise BadInputError(f"{run_dir}: path {p}: {exc}") from None
    return _write(run_dir, out, camp, cals, skipped, schemes, iteration=0)


def _write(run_dir: Path, out: Path, camp: dict, cals: dict, skipped: dict, schemes: dict, iteration: int,
           previous: dict | None = None) -> dict:
    from foundation.atomic import atomic_write_text
    from foundation.runmeta import utc_now
    from traces.io import write_trace
    c = camp["campaign"]
    out.mkdir(parents=True, exist_ok=True)
    labels = campaign_labels(schemes)
    policies = {s: {**v, "policy": emulate_policy(s, v["kind"], v["value"]), "label": labels[s]}
                for s, v in schemes.items()}
    doc = {"genet_calibration": 1, "created_utc": utc_now(), "run_dir": str(run_dir.resolve()),
           "campaign": c.get("name"), "duration_s": c.get("duration_s"), "iteration": iteration,
           "paths": {}, "schemes": policies, "skipped_runs": skipped,
           "emulate_command": (f"genet emulate cc --traces {out} --policy "
                               f"{','.join(v['policy'] for v in policies.values())} --duration-s "
                               f"{c.get('duration_s')} --repeats {c.get('repetitions', 1)} --no-sim --out EMU_DIR"),
           "limits": {"startup_s": STARTUP_S, "varying_cv": VARYING_CV, "unsaturated_fraction": UNSATURATED_FRACTION,
                      "queue_free_ms": QUEUE_FREE_MS, "min_loss_packets": MIN_LOSS_PACKETS}}
    if previous is not None:
        doc["previous"] = previous
    descr = camp.get("inventory", {}).get("paths", {})
    for p, cal in cals.items():
        trace = calibrated_trace(cal, float(c.get("duration_s") or 30.0),
                                 {"calibrated_from": str(run_dir.resolve()), "campaign": c.get("name"),
                                  "iteration": iteration})
        f = write_trace(trace, out / f"{p}.json", "json")
        doc["paths"][p] = {"trace_file": f.name, "description": (descr.get(p) or {}).get("description", ""),
                           **cal.to_json()}
    atomic_write_text(out / CALIBRATION_FILE, json.dumps(doc, indent=1, default=_jsonable) + "\n")
    return doc


def _jsonable(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def read_calibration(out_dir: str | Path) -> dict:
    f = Path(out_dir) / CALIBRATION_FILE
    try:
        doc = json.loads(f.read_text())
    except FileNotFoundError:
        raise BadInputError(f"{out_dir}: no {CALIBRATION_FILE} (run `genet emulate calibrate RUN_DIR --out "
                            f"{out_dir}` first)") from None
    except ValueError:
        raise BadInputError(f"{f}: not JSON (damaged? rerun `genet emulate calibrate`)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise BadInputError(f"{f}: not a calibration file (no \"paths\" object)")
    return doc


def compare(run_dir: str | Path, emu_dir: str | Path, schemes: dict | None = None,
            tolerance: float = 0.10) -> list[dict]:
    """Per path and scheme: the real runs' and the calibrated emulation's mean throughput and mean RTT (each
    scheme's own view, the same definition on both sides: iperf3's receiver goodput and smoothed RTT, our
    sender's summary), the gaps (emulated / real - 1) and whether the throughput is within ``tolerance``."""
    _, real, _, found = campaign_observations(run_dir)
    labels = campaign_labels(found)
    schemes = schemes or {s: {**v, "label": labels[s]} for s, v in found.items()}
    emu = emulation_observations(emu_dir)
    rows = []
    for path, obs in real.items():
        for s in dict.fromkeys(o.scheme for o in obs):
            label = (schemes.get(s) or {}).get("label", s)
            r = [o for o in obs if o.scheme == s]
            e = [o for o in emu.get(path, []) if o.scheme == label]
            row = {"path": path, "scheme": s, "policy": label, "real_runs": len(r), "emulated_runs": len(e)}
            for key in ("throughput_mbps", "mean_rtt_ms", "min_rtt_ms"):
                rv = _mean([getattr(o, key) for o in r])
                ev = _mean([getattr(o, key) for o in e])
                row[f"real_{key}"], row[f"emulated_{key}"] = rv, ev
                row[f"{key}_gap"] = ev / rv - 1.0 if rv and math.isfinite(ev) and math.isfinite(rv) else math.nan
            g = row["throughput_mbps_gap"]
            row["within_tolerance"] = bool(math.isfinite(g) and abs(g) <= tolerance)
            rows.append(row)
    return rows


def _mean(xs) -> float:
    xs = [float(x) for x in xs if x is not None and math.isfinite(float(x))]
    return statistics.fmean(xs) if xs else math.nan


def format_comparison(rows: list[dict], tolerance: float = 0.10) -> str:
    head = ["path", "scheme", "n real/emu", "throughput real -> emulated (Mbit/s)", "gap", "mean RTT real -> "
            "emulated (ms)", "gap", f"within {tolerance:.0%}"]
    body = []
    for r in rows:
        body.append([r["path"], r["scheme"], f"{r['real_runs']}/{r['emulated_runs']}",
                     f"{r['real_throughput_mbps']:.3f} -> {r['emulated_throughput_mbps']:.3f}",
                     _pct(r["throughput_mbps_gap"]), f"{r['real_mean_rtt_ms']:.2f} -> {r['emulated_mean_rtt_ms']:.2f}",
                     _pct(r["mean_rtt_ms_gap"]), "yes" if r["within_tolerance"] else "NO"])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + body)


def _pct(x: float) -> str:
    return f"{x:+.1%}" if math.isfinite(x) else "-"


def refine(run_dir: str | Path, cal_dir: str | Path, emu_dir: str | Path, bandwidth: str = "auto") -> dict:
    """One iteration: the same figures read from the calibrated emulation's runs (``emu_dir``, a ``genet emulate
    cc`` folder over ``cal_dir``'s traces) and from the real runs; the delay moved by half the difference of their
    minimum RTTs and the bandwidth (every sample) scaled by the ratio of the delivered link rates of the scheme
    that set it (whole runs, receiver side on both), traces and calibration.json rewritten in ``cal_dir`` (the
    values before in ``previous``). The queue and the loss are kept: the emulated runs' iperf3 reports sample
    the RTT once a second (the campaign's every 0.2 s), too coarse to compare queue peaks. Returns the new
    calibration.json content."""
    run_dir, cal_dir = Path(run_dir), Path(cal_dir)
    prev = read_calibration(cal_dir)
    camp, real, skipped, schemes = campaign_observations(run_dir)
    labels = {label: s for s, label in campaign_labels(schemes).items()}
    emu = emulation_observations(emu_dir)
    cals = {}
    for p, used in prev["paths"].items():
        e_obs = [replace(o, scheme=labels.get(o.scheme, o.scheme)) for o in emu.get(p, [])]
        if not e_obs:
            raise BadInputError(f"{emu_dir}: no emulated run on trace {p} (run `genet emulate cc --traces {cal_dir}` "
                                f"first)")
        cur = calibrate_path(p, real.get(p, []), bandwidth)
        used_delay = float(used["delay_ms"]["value"])
        real_min, emu_min = cur.delay_ms.details["min_rtt_ms"], estimate_delay(e_obs).details["min_rtt_ms"]
        d_delay = (real_min - emu_min) / 2.0
        cur.delay_ms = Estimate(max(0.0, used_delay + d_delay), "ms", f"refined: {used_delay:.3f} ms + (real - "
                                f"emulated minimum RTT)/2 = {used_delay:.3f} + ({real_min:.3f} - {emu_min:.3f})/2; "
                                f"first: {used['delay_ms']['method']}", cur.delay_ms.runs,
                                {**cur.delay_ms.details, "emulated_min_rtt_ms": emu_min})
        scheme = used["bandwidth_mbps"].get("details", {}).get("scheme") or cur.bandwidth_mbps.details["scheme"]
        r_rate = _median_or_nan([o.link_rate_mbps for o in real.get(p, []) if o.scheme == scheme])
        e_rate = _median_or_nan([o.link_rate_mbps for o in e_obs if o.scheme == scheme])
        if not (math.isfinite(r_rate) and math.isfinite(e_rate) and e_rate > 0):
            raise BadInputError(f"{emu_dir}: trace {p}: no emulated run of {scheme} (the scheme that set the "
                                f"bandwidth) to compare with")
        ratio = r_rate / e_rate
        cur.series_mbps = [float(x) * ratio for x in used["bandwidth_series_mbps"]]
        cur.interval_s = float(used.get("bandwidth_interval_s") or cur.interval_s)
        cur.bandwidth_mbps = Estimate(statistics.fmean(cur.series_mbps), "Mbit/s", f"refined: x {ratio:.4f} (real / "
                                      f"emulated delivered link rate of {scheme}, whole runs: {r_rate:.3f} / "
                                      f"{e_rate:.3f}); first: {used['bandwidth_mbps']['method']}",
                                      cur.bandwidth_mbps.runs, {**cur.bandwidth_mbps.details, "ratio": ratio})
        for key in ("queue_packets", "loss_rate"):
            u = used[key]
            setattr(cur, key, Estimate(float(u["value"]), u.get("unit", ""), u["method"], list(u.get("runs", [])),
                                       dict(u.get("details", {}))))
        cals[p] = cur
    previous = {"iteration": prev.get("iteration", 0), "emulated_dir": str(Path(emu_dir).resolve()),
                "paths": {p: {k: prev["paths"][p][k]["value"]
                              for k in ("delay_ms", "bandwidth_mbps", "queue_packets", "loss_rate")}
                          for p in prev["paths"]}}
    return _write(run_dir, cal_dir, camp, cals, skipped, schemes, int(prev.get("iteration", 0)) + 1, previous)


def _median_or_nan(xs) -> float:
    return _median(xs) if xs else math.nan


def format_calibration(doc: dict) -> str:
    lines = [f"calibrated from {doc['run_dir']} (campaign {doc.get('campaign')}, iteration {doc.get('iteration', 0)})"]
    for p, d in doc["paths"].items():
        bw = d["bandwidth_mbps"]
        kind = d["bandwidth_kind"]
        lines.append(f"path {p}: bandwidth {bw['value']:.3f} Mbit/s ({kind}"
                     + (f", {len(d['bandwidth_series_mbps'])} samples of {d['bandwidth_interval_s']:g} s" if
                        kind == "trace" else "") + f"), one-way delay {d['delay_ms']['value']:.2f} ms, queue "
                     f"{d['queue_packets']['value']:g} packets, random loss {d['loss_rate']['value']:.4f} "
                     f"-> {d['trace_file']}")
        for k in ("bandwidth_mbps", "delay_ms", "queue_packets", "loss_rate"):
            lines.append(f"  {k}: {d[k]['method']}")
    if doc.get("skipped_runs"):
        lines.append(f"skipped runs: {', '.join(f'{k} ({v})' for k, v in doc['skipped_runs'].items())}")
    lines.append(f"run the calibrated emulation: {doc['emulate_command']}")
    return "\n".join(lines)
