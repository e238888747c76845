"""`genet emulate calibrate` (deploy/calibrate.py) on synthetic campaign logs: each estimator recovers the parameters
of a known path model (delay, bandwidth as a constant or a trace, queue, random loss), the campaign and
emulation folders are read as `genet deploy run` / `genet emulate cc` write them, the calibrated folder reads back
as traces, one refinement step moves the delay and the bandwidth by what the emulated runs show, and bad input is
one line; `genet deploy report --calibrated` puts a calibrated emulation's figures (read from its runs' logs by the real
runs' definitions) beside a campaign's and gives the paired gap per scheme, and without it the report is unchanged.
The real thing (a testbed campaign, calibrated, emulated) is tests/test_deploy_calibrate_testbed.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from deploy.calibrate import (NOT_LOSS_BASED, RunObservation, calibrate_path, calibrated_trace,
                              compare, emulation_observations, estimate_bandwidth, estimate_delay, estimate_loss,
                              estimate_queue, iperf3_observation, read_calibration, refine, sender_observation,
                              write_calibration)
from foundation.errors import BadInputError
from sender.iperf3 import parse_report

MSS = 1448
GOODPUT = MSS / 1500  # TCP payload per 1500-byte IP packet


# ------------------------------------------------------------------ a synthetic path model
def iperf3_json(bw_mbps, delay_ms, queue_packets, algorithm="cubic", duration_s=6, rtt_every_s=0.2,
                series=None, retransmits=50, receiver=False, seed=0):
    """iperf3 -J output of a backlogged flow on a path of ``bw_mbps`` (link rate; or a per-second ``series``),
    ``delay_ms`` each way and a droptail queue of ``queue_packets``: the first second in slow start (half the rate),
    then the path's rate; the smoothed RTT saws between the base RTT (+ one packet's serialization) and the full
    queue (cubic), or stays within a few ms of the base (bbr), never quite down to the per-packet minimum. ``receiver``: the server's report (1-s intervals,
    no RTT)."""
    import random
    rnd = random.Random(seed)
    base = 2 * delay_ms + 1500 * 8 / (bw_mbps * 1e3)
    q_ms = queue_packets * 1500 * 8 / (bw_mbps * 1e3)
    step = 1.0 if receiver else rtt_every_s
    n = int(round(duration_s / step))
    ivs = []
    for k in range(n):
        t = k * step
        rate = series[int(t) % len(series)] if series else bw_mbps
        gp = rate * GOODPUT * (0.5 if t < 1.0 else 1.0) * (1 + rnd.uniform(-0.005, 0.005))
        phase = (k % 10) / 9.0
        rtt = base + 0.5 + (q_ms * (0.3 + 0.7 * phase) if algorithm not in NOT_LOSS_BASED else 3.0 * phase)
        iv = {"sum": {"start": t, "end": t + step, "seconds": step, "bits_per_second": gp * 1e6}}
        iv["streams"] = [{"rtt": int(rtt * 1000)}] if not receiver else [{}]
        ivs.append(iv)
    if receiver:  # iperf3's cut last interval: a burst over a few ms
        ivs.append({"sum": {"start": n * step, "end": n * step + 0.06, "seconds": 0.06, "bits_per_second": 3 * bw_mbps * 1e6},
                    "streams": [{}]})
    rtts = [iv["streams"][0]["rtt"] for iv in ivs if "rtt" in iv["streams"][0]]
    mean_gp = sum(iv["sum"]["bits_per_second"] * iv["sum"]["seconds"] for iv in ivs) / duration_s
    end = {"sum_received": {"bits_per_second": mean_gp, "seconds": duration_s},
           "sum_sent": {"bytes": int(mean_gp * duration_s / 8), "retransmits": 0 if receiver else retransmits},
           "streams": [{"sender": {} if receiver else {"min_rtt": min(rtts), "max_rtt": max(rtts),
                                                       "mean_rtt": sum(rtts) // len(rtts)}}],
           "sender_tcp_congestion": algorithm}
    return {"start": {"tcp_mss_default": MSS}, "intervals": ivs, "end": end}


def sender_records(rate_mbps, delay_ms, bw_mbps, loss=0.0, mis=60, packets_per_mi=50, seed=0, rtt_extra_ms=0.0):
    """genet sender send --log records of a constant-rate flow: per MI, ``loss`` of the packets lost."""
    import random
    rnd = random.Random(seed)
    base = 2 * delay_ms + 1500 * 8 / (bw_mbps * 1e3)
    recs = [{"type": "start"}]
    lost_total = acked_total = 0
    for k in range(mis):
        lost = sum(rnd.random() < loss for _ in range(packets_per_mi))
        lost_total += lost
        acked_total += packets_per_mi - lost
        recs.append({"type": "mi", "t_s": 0.1 * k, "send_rate_mbps": rate_mbps, "throughput_mbps": rate_mbps * (1 - loss),
                     "rtt_mean_ms": base + 1.0 + rtt_extra_ms, "rtt_min_ms": base + rnd.uniform(0, 0.3) + rtt_extra_ms,
                     "loss_rate": lost / packets_per_mi, "packets_sent": packets_per_mi,
                     "packets_acked": packets_per_mi - lost, "packets_lost": lost})
    recs.append({"type": "summary", "throughput_mbps": rate_mbps * (1 - loss), "loss_rate": loss + 0.005,
                 "min_rtt_ms": base + rtt_extra_ms, "mean_rtt_ms": base + 1.0 + rtt_extra_ms, "p90_rtt_ms": base + 2,
                 "p95_rtt_ms": base + 2, "reward": 1.0, "packets_sent": mis * packets_per_mi})
    return recs


def kernel_obs(rid, scheme, bw, delay, queue, **kw):
    client = parse_report(iperf3_json(bw, delay, queue, scheme, **kw))
    server = parse_report(iperf3_json(bw, delay, queue, scheme, receiver=True, **kw))
    return iperf3_observation(rid, "p1", scheme, scheme, client, server)


PATHS = [(12.0, 15.0, 40), (48.0, 5.0, 100), (3.0, 40.0, 20)]


# ------------------------------------------------------------------ the estimators
@pytest.mark.parametrize("bw,delay,queue", PATHS)
def test_estimators_recover_a_known_constant_path(bw, delay, queue):
    obs = [kernel_obs(f"r{r}-cubic", "cubic", bw, delay, queue, seed=r) for r in (1, 2)]
    obs += [kernel_obs(f"r{r}-bbr", "bbr", bw, delay, queue, seed=10 + r) for r in (1, 2)]
    obs.append(sender_observation("r1-const", "p1", "const:1", "const",
                                  sender_records(0.5 * bw, delay, bw, loss=0.0)))
    cal = calibrate_path("p1", obs)
    serialization_ms = 1500 * 8 / (bw * 1e3)
    assert cal.delay_ms.value == pytest.approx(delay + serialization_ms / 2, abs=0.2)
    assert cal.delay_ms.details["min_rtt_run"] == "r1-const"  # the flow that never queues gives the minimum
    assert not cal.delay_ms.details["upper_bound"]
    kernel_only = estimate_delay(obs[:-1])
    assert kernel_only.details["upper_bound"] and "upper bound" in kernel_only.method
    assert kernel_only.value > cal.delay_ms.value
    assert cal.bandwidth_mbps.value == pytest.approx(bw, rel=0.01)  # goodput x 1500/MSS, start-up left out
    assert len(cal.series_mbps) == 1  # constant
    assert cal.queue_packets.value == pytest.approx(queue, rel=0.1, abs=1.5)
    assert "cubic" in cal.queue_packets.method and not cal.queue_packets.details["lower_bound"]
    assert cal.loss_rate.value == 0.0 and cal.loss_rate.details["measured"]


def test_bandwidth_is_the_link_rate_after_start_up_not_goodput_of_the_whole_run():
    o = kernel_obs("r1", "cubic", 12.0, 15.0, 40)
    assert o.throughput_mbps < 0.93 * 12.0  # the whole run's goodput: start-up and TCP headers
    est, series, interval_s = estimate_bandwidth([o])
    assert est.value == pytest.approx(12.0, rel=0.01) and interval_s == pytest.approx(1.0)
    assert all(x < 13 for x in o.series_mbps)  # the cut last interval (a burst) is left out


def test_the_scheme_that_gets_most_through_sets_the_bandwidth():
    slow = kernel_obs("r1-reno", "reno", 6.0, 15.0, 40)  # a scheme that falls short of the path
    fast = kernel_obs("r1-bbr", "bbr", 12.0, 15.0, 40)
    est, _, _ = estimate_bandwidth([slow, fast])
    assert est.details["scheme"] == "bbr" and est.value == pytest.approx(12.0, rel=0.01)


def test_a_varying_path_becomes_a_trace_of_the_delivered_rate():
    series = [4.0, 12.0, 8.0, 2.0, 10.0, 6.0]
    obs = [kernel_obs("r1-cubic", "cubic", 8.0, 20.0, 50, series=series, duration_s=6)]
    cal = calibrate_path("p1", obs)
    assert cal.bandwidth_mbps.details["cv"] > 0.15 and "varying" in cal.bandwidth_mbps.method
    assert cal.series_mbps == pytest.approx(series[1:], rel=0.01)  # the first second left out
    tr = calibrated_trace(cal, 6.0)
    assert list(tr.timestamps_s) == pytest.approx([0, 1, 2, 3, 4, 5]) and tr.bandwidth_mbps[-1] == tr.bandwidth_mbps[-2]
    assert tr.mean_bandwidth_mbps == pytest.approx(sum(series[1:]) / 5, rel=0.01)
    forced, one, _ = estimate_bandwidth(obs, "constant")
    assert len(one) == 1 and "--bandwidth constant" in forced.method
    steady = [kernel_obs("r1-cubic", "cubic", 12.0, 20.0, 50)]
    assert len(estimate_bandwidth(steady)[1]) == 1 and len(estimate_bandwidth(steady, "trace")[1]) == 5


def test_queue_from_bbr_alone_or_without_losses_is_a_lower_bound():
    bbr = [kernel_obs("r1-bbr", "bbr", 12.0, 15.0, 40)]
    q = estimate_queue(bbr, 31.0, 12.0)
    assert q.details["lower_bound"] and "lower bound" in q.method and q.value < 10
    cubic = [kernel_obs("r1-cubic", "cubic", 12.0, 15.0, 40, retransmits=0)]
    q = estimate_queue(cubic, 31.0, 12.0)
    assert q.details["lower_bound"] and "never full" in q.method
    with pytest.raises(BadInputError, match="add cubic"):
        estimate_queue([sender_observation("r1", "p1", "const:6", "const", sender_records(6, 15, 12))], 31.0, 12.0)


def test_queue_is_the_median_over_runs_so_one_stalled_run_does_not_set_it():
    obs = [kernel_obs(f"r{r}", "cubic", 12.0, 15.0, 40, seed=r) for r in range(3)]
    spike = RunObservation("spike", "p1", "cubic", "kernel", "cubic", 11.0, 11.4, (12.0,), 1.0, 31.0, 400.0, 60.0, 30)
    q = estimate_queue(obs + [spike], 31.0 + 1.0, 12.0)
    assert q.value == pytest.approx(40, abs=2)


def test_random_loss_from_unsaturated_intervals_only():
    bw, delay = 12.0, 15.0
    lossy = sender_observation("r1", "p1", "const:6", "const", sender_records(6.0, delay, bw, loss=0.02, mis=200))
    # a sender above the path's rate (its queue overflows): its losses are congestion, not the path's
    over = sender_observation("r2", "p1", "const:14", "const", sender_records(14.0, delay, bw, loss=0.2, mis=200))
    # below the mean rate but behind a standing queue (the rate had dropped, the queue may overflow): left out too
    queued = sender_observation("r3", "p1", "const:6", "const", sender_records(6.0, delay, bw, loss=0.2, mis=200,
                                                                              rtt_extra_ms=30))
    est = estimate_loss([lossy, over, queued], bw, 31.0, 40.0)
    assert est.details["measured"] and est.runs == ["r1"]
    assert est.value == pytest.approx(0.02, abs=0.006)
    lo, hi = est.details["ci95"]
    assert lo < 0.02 < hi
    # too few packets, or kernel runs only: not measured, 0, and said so
    few = sender_observation("r3", "p1", "const:6", "const", sender_records(6.0, delay, bw, loss=0.02, mis=5))
    est = estimate_loss([few, kernel_obs("r4", "cubic", bw, delay, 40)], bw, 31.0, 40.0)
    assert est.value == 0.0 and not est.details["measured"] and "not measured" in est.method


def test_delay_needs_an_rtt_sample():
    o = RunObservation("r1", "p1", "cubic", "kernel", "cubic", 10.0, 10.4, (10.4,), 1.0)
    with pytest.raises(BadInputError, match="RTT sample"):
        estimate_delay([o])


def test_estimates_move_with_the_path():
    """The estimators read the logs, not constants: another path gives other figures."""
    a = calibrate_path("p1", [kernel_obs("r1", "cubic", 12.0, 15.0, 40)])
    b = calibrate_path("p1", [kernel_obs("r1", "cubic", 24.0, 30.0, 80)])
    assert b.bandwidth_mbps.value == pytest.approx(2 * a.bandwidth_mbps.value, rel=0.02)
    assert b.delay_ms.value > a.delay_ms.value + 14
    assert b.queue_packets.value == pytest.approx(2 * a.queue_packets.value, rel=0.1)
    assert math.isfinite(a.delay_ms.value)


# ------------------------------------------------------------------ folders
def write_campaign(out: Path, bw=12.0, delay=15.0, queue=40, loss=0.0, schemes=("cubic", "bbr", "const:6"),
                   reps=2, use_case="cc", duration_s=6):
    """A campaign folder as `genet deploy run` writes it (campaign.json, journal.jsonl, runs/<run>/a1/ logs)."""
    out.mkdir(parents=True, exist_ok=True)
    camp = {"campaign": {"name": "syn", "use_case": use_case, "schemes": list(schemes), "repetitions": reps,
                         "duration_s": duration_s, "paths": ["p1"]},
            "inventory": {"paths": {"p1": {"server": "h1", "client": "h2", "description": "synthetic"}}}}
    (out / "campaign.json").write_text(json.dumps(camp))
    recs = []
    for r in range(1, reps + 1):
        for s in schemes:
            rid = f"r{r:02d}-p1-{s.replace(':', '_')}"
            d = out / "runs" / rid / "a1"
            d.mkdir(parents=True)
            kind = "const" if s.startswith("const:") else "kernel"
            if kind == "kernel":
                (d / "client.out").write_text(json.dumps(iperf3_json(bw, delay, queue, s, duration_s=duration_s, seed=r)))
                (d / "server.out").write_text(json.dumps(iperf3_json(bw, delay, queue, s, duration_s=duration_s,
                                                                     receiver=True, seed=r)))
            else:
                rate = float(s.split(":")[1])
                (d / "run.jsonl").write_text("\n".join(json.dumps(x) for x in sender_records(
                    rate, delay, bw, loss=loss, mis=100, seed=r)) + "\n")
            recs.append({"run_id": rid, "attempt": 1, "status": "ok", "path": "p1", "scheme": s, "scheme_kind": kind,
                         "duration_s": duration_s, "dir": f"runs/{rid}/a1", "metrics": {}})
    recs.insert(0, {"run_id": "r01-p1-cubic", "attempt": 0, "status": "failed", "path": "p1", "scheme": "cubic"})
    (out / "journal.jsonl").write_text("\n".join(json.dumps(x) for x in recs) + "\n")
    return out


def test_campaign_folder_to_calibrated_traces(tmp_path):
    from traces import load_traces
    run = write_campaign(tmp_path / "run", loss=0.01)
    doc = write_calibration(run, tmp_path / "cal")
    p = doc["paths"]["p1"]
    assert p["bandwidth_mbps"]["value"] == pytest.approx(12.0, rel=0.01)
    assert p["delay_ms"]["value"] == pytest.approx(15.5, abs=0.2)
    assert p["queue_packets"]["value"] == pytest.approx(40, abs=2)
    assert p["loss_rate"]["value"] == pytest.approx(0.01, abs=0.005) and p["loss_rate"]["details"]["measured"]
    assert sorted(p["runs"]) == sorted(f"r{r:02d}-p1-{s}" for r in (1, 2) for s in ("cubic", "bbr", "const_6"))
    assert doc["schemes"]["const:6"]["policy"] == "const:6" and doc["schemes"]["cubic"]["policy"] == "cubic"
    assert "--policy cubic,bbr,const:6" in doc["emulate_command"] and "--duration-s 6" in doc["emulate_command"]
    # the folder is a trace folder: calibration.json is skipped, the trace carries the path's properties
    [tr] = load_traces(tmp_path / "cal")
    assert tr.name == "p1" and tr.duration_s == pytest.approx(6.0)
    assert tr.delay_ms == pytest.approx(p["delay_ms"]["value"], abs=1e-3)
    assert tr.queue_packets == p["queue_packets"]["value"] and tr.loss_rate == pytest.approx(p["loss_rate"]["value"])
    assert read_calibration(tmp_path / "cal")["campaign"] == "syn"


def test_kernel_only_campaign_says_loss_is_not_measured(tmp_path):
    run = write_campaign(tmp_path / "run", schemes=("cubic", "bbr"))
    doc = write_calibration(run, tmp_path / "cal")
    loss = doc["paths"]["p1"]["loss_rate"]
    assert loss["value"] == 0.0 and "not measured" in loss["method"] and "const:MBPS" in loss["method"]


def test_bad_campaigns_are_one_line_errors(tmp_path):
    with pytest.raises(BadInputError, match="not a campaign folder"):
        write_calibration(tmp_path, tmp_path / "cal")
    abr = write_campaign(tmp_path / "abr", use_case="abr")
    with pytest.raises(BadInputError, match="abr campaign"):
        write_calibration(abr, tmp_path / "cal")
    const_only = write_campaign(tmp_path / "const", schemes=("const:6",))
    with pytest.raises(BadInputError, match="path p1: no saturating run"):
        write_calibration(const_only, tmp_path / "cal")
    ok = write_campaign(tmp_path / "ok")
    with pytest.raises(BadInputError, match="--paths: p9"):
        write_calibration(ok, tmp_path / "cal", paths=["p9"])
    (ok / "runs" / "r01-p1-cubic" / "a1" / "client.out").write_text('{"start": {')  # a truncated log: skipped, said so
    doc = write_calibration(ok, tmp_path / "cal")
    assert "r01-p1-cubic" in doc["skipped_runs"] and "r01-p1-cubic" not in doc["paths"]["p1"]["runs"]


def write_emulation(out: Path, bw, delay, queue, delay_overhead_ms=1.0, rate_factor=1.0):
    """A `genet emulate cc` folder over trace p1 (results.json, runs/<run>/iperf3.json or sender.jsonl) whose runs see
    ``delay + delay_overhead_ms`` each way and ``rate_factor`` x ``bw``."""
    rows = []
    for label in ("cubic", "bbr", "const:6"):
        for rep in (0, 1):
            rd = f"runs/{label.replace(':', '_')}-{rep}"
            (out / rd).mkdir(parents=True)
            if label == "const:6":
                recs = sender_records(6.0, delay + delay_overhead_ms, bw * rate_factor, mis=100, seed=rep)
                (out / rd / "sender.jsonl").write_text("\n".join(json.dumps(x) for x in recs) + "\n")
            else:
                (out / rd / "iperf3.json").write_text(json.dumps(iperf3_json(
                    bw * rate_factor, delay + delay_overhead_ms, queue, label, rtt_every_s=1.0, seed=rep)))
            rows.append({"policy": label, "trace": "p1", "repeat": rep, "run_dir": rd})
    (out / "results.json").write_text(json.dumps(rows))
    return out


def test_compare_and_one_refinement(tmp_path):
    run = write_campaign(tmp_path / "run")
    cal = tmp_path / "cal"
    first = write_calibration(run, cal)
    # an emulator that adds 1 ms each way to the path's 15 ms and delivers 5 % less than its rate
    emu = write_emulation(tmp_path / "emu", 12.0, 15.0, 40, delay_overhead_ms=1.0, rate_factor=0.95)
    assert {o.scheme for o in emulation_observations(emu)["p1"]} == {"cubic", "bbr", "const:6"}
    rows = {r["scheme"]: r for r in compare(run, emu, first["schemes"])}
    assert set(rows) == {"cubic", "bbr", "const:6"}
    assert rows["cubic"]["throughput_mbps_gap"] == pytest.approx(-0.05, abs=0.01) and rows["cubic"]["within_tolerance"]
    assert rows["cubic"]["real_runs"] == rows["cubic"]["emulated_runs"] == 2
    assert not compare(run, emu, first["schemes"], tolerance=0.02)[0]["within_tolerance"]
    doc = refine(run, cal, emu)
    p, before = doc["paths"]["p1"], first["paths"]["p1"]
    assert doc["iteration"] == 1 and doc["previous"]["paths"]["p1"]["delay_ms"] == before["delay_ms"]["value"]
    # the emulated runs saw 1 ms more each way and 5 % less rate: the refined path takes both back
    assert p["delay_ms"]["value"] == pytest.approx(before["delay_ms"]["value"] - 1.0, abs=0.15)
    assert p["bandwidth_mbps"]["value"] == pytest.approx(before["bandwidth_mbps"]["value"] / 0.95, rel=0.01)
    assert p["queue_packets"]["value"] == before["queue_packets"]["value"]
    from traces import load_traces
    [tr] = load_traces(cal)
    assert tr.delay_ms == pytest.approx(p["delay_ms"]["value"], abs=1e-3)
    with pytest.raises(BadInputError, match="no results.json"):
        refine(run, cal, tmp_path)


def test_command_line(tmp_path, capsys):
    from app.cli import main
    run = write_campaign(tmp_path / "run")
    assert main(["emulate", "calibrate", str(run), "--out", str(tmp_path / "cal")]) == 0
    out = capsys.readouterr().out
    assert "path p1: bandwidth 12.0" in out and "genet emulate cc --traces" in out
    assert (tmp_path / "cal" / "p1.json").is_file() and (tmp_path / "cal" / "calibration.json").is_file()
    emu = write_emulation(tmp_path / "emu", 12.0, 15.5, 40)
    assert main(["emulate", "calibrate", str(run), "--out", str(tmp_path / "cal"), "--emulated", str(emu)]) == 0
    out = capsys.readouterr().out
    assert "real runs vs calibrated emulation" in out and "within 10%" in out
    assert json.loads((tmp_path / "cal" / "calibration-check.json").read_text())["rows"]
    assert main(["emulate", "calibrate", str(run), "--out", str(tmp_path / "cal"), "--refine"]) != 0
    assert "--refine needs --emulated" in capsys.readouterr().err


# ------------------------------------------------------------------ genet deploy report --calibrated
CAL_PATHS = {"p1": (12.0, 15.0, 40), "p2": (24.0, 5.0, 60), "p3": (6.0, 30.0, 20)}  # bw Mbit/s, delay ms, queue


def summary_log(tput, p90, loss, reward):
    """A `genet sender send --log` whose summary holds the Table-7 columns (what deploy.schemes reads)."""
    recs = [{"type": "start"}, {"type": "summary", "throughput_mbps": tput, "p90_rtt_ms": p90, "mean_rtt_ms": p90 - 2,
                                "min_rtt_ms": p90 - 4, "loss_rate": loss, "reward": reward}]
    return "\n".join(json.dumps(r) for r in recs) + "\n"


def const_figures(path_index, rep, emulated):
    """Our sender's (throughput, p90 RTT, loss, reward) on path k, repetition r: the calibrated emulation delivers
    10 % less, adds 2 ms, loses a little more."""
    tput = 6.0 - path_index + 0.1 * rep
    if emulated:
        return tput * 0.9, 30.0 + 10 * path_index + 2.0, 0.011 + 0.001 * rep, 50.0 + path_index
    return tput, 30.0 + 10 * path_index, 0.01 + 0.001 * rep, 60.0 + 2 * path_index


def write_cal_campaign(out: Path, reps=2, duration_s=6):
    """A CC campaign over three paths (CAL_PATHS) of our sender at 6 Mbit/s and kernel cubic, as `genet deploy run`
    writes it."""
    out.mkdir(parents=True)
    camp = {"campaign": {"name": "calrep", "use_case": "cc", "schemes": ["const:6", "cubic"], "repetitions": reps,
                         "duration_s": duration_s, "paths": list(CAL_PATHS)},
            "inventory": {"paths": {p: {"server": "h1", "client": "h2", "description": f"{bw:g} Mbit/s"}
                                    for p, (bw, _, _) in CAL_PATHS.items()}}}
    (out / "campaign.json").write_text(json.dumps(camp))
    recs = []
    for k, (p, (bw, delay, queue)) in enumerate(CAL_PATHS.items()):
        for r in range(1, reps + 1):
            for s in ("const:6", "cubic"):
                rid = f"r{r:02d}-{p}-{s.replace(':', '_')}"
                d = out / "runs" / rid / "a1"
                d.mkdir(parents=True)
                if s == "cubic":
                    kw = dict(duration_s=duration_s, seed=r + 10 * k)
                    (d / "client.out").write_text(json.dumps(iperf3_json(bw, delay, queue, "cubic", **kw)))
                    (d / "server.out").write_text(json.dumps(iperf3_json(bw, delay, queue, "cubic", receiver=True,
                                                                         **kw)))
                else:
                    (d / "run.jsonl").write_text(summary_log(*const_figures(k, r, emulated=False)))
                recs.append({"run_id": rid, "attempt": 1, "status": "ok", "path": p, "scheme": s,
                             "scheme_kind": "kernel" if s == "cubic" else "const", "duration_s": duration_s,
                             "dir": f"runs/{rid}/a1", "metrics": {}})
    (out / "journal.jsonl").write_text("\n".join(json.dumps(x) for x in recs) + "\n")
    return out


def write_cal_emulation(out: Path, reps=2, duration_s=6, traces=tuple(CAL_PATHS)):
    """A `genet emulate cc --traces CALIBRATED_DIR` folder: results.json (whose link-log headline columns are
    deliberately absurd: the report must read each run's own logs, as the real runs') and runs/<run>/ logs; plus a run
    of another policy, one on a trace of no path and one whose log is truncated, which must not count."""
    rows = []
    for k, p in enumerate(traces):
        bw, delay, queue = CAL_PATHS.get(p, (10.0, 10.0, 10))
        for rep in range(reps):
            for label in ("const:6", "cubic"):
                rd = f"runs/{label.replace(':', '_')}__{p}__r{rep}"
                (out / rd).mkdir(parents=True)
                if label == "cubic":
                    (out / rd / "iperf3.json").write_text(json.dumps(iperf3_json(
                        0.9 * bw, delay + 1.0, queue, "cubic", duration_s=duration_s, rtt_every_s=1.0, seed=rep)))
                else:
                    (out / rd / "sender.jsonl").write_text(summary_log(*const_figures(k, rep + 1, emulated=True)))
                rows.append({"policy": label, "trace": p, "repeat": rep, "run_dir": rd, "throughput_mbps": 999.0,
                             "p90_rtt_ms": 999.0, "loss_rate": 0.9, "reward": -999.0, "run_duration_s": duration_s})
    for label, trace in (("bbr", traces[0]), ("const:6", "elsewhere")):
        rd = f"runs/{label.replace(':', '_')}__{trace}__r0"
        (out / rd).mkdir(parents=True)
        (out / rd / "sender.jsonl").write_text(summary_log(1.0, 1.0, 0.5, -1.0))
        rows.append({"policy": label, "trace": trace, "repeat": 0, "run_dir": rd})
    rd = f"runs/cubic__{traces[0]}__r9"
    (out / rd).mkdir(parents=True)
    (out / rd / "iperf3.json").write_text('{"start": {')
    rows.append({"policy": "cubic", "trace": traces[0], "repeat": 9, "run_dir": rd})
    (out / "results.json").write_text(json.dumps(rows))
    return out


def test_deploy_report_calibrated_column_and_paired_gap(tmp_path, capsys):
    from app.cli import main
    from deploy.report import CALIBRATED_GAP_FILE, write_report
    from deploy.schemes import iperf3_metrics
    from foundation.stats import paired_gap
    from genet.cc.metrics import TABLE7
    names = [c.name for c in TABLE7]
    run = write_cal_campaign(tmp_path / "run")
    emu = write_cal_emulation(tmp_path / "emu")
    rep = write_report(run, calibrated=emu)
    rows = {(r["path"], r["scheme"]): r for r in rep.rows}
    # the figures each side should show, from the logs written above
    expect_real, expect_cal = {}, {}
    for k, (p, (bw, delay, queue)) in enumerate(CAL_PATHS.items()):
        real_const = [dict(zip(names, const_figures(k, r, False))) for r in (1, 2)]
        cal_const = [dict(zip(names, const_figures(k, r, True))) for r in (1, 2)]
        real_cubic = [iperf3_metrics(parse_report(iperf3_json(bw, delay, queue, "cubic", seed=r + 10 * k)), 6,
                                     "cubic", parse_report(iperf3_json(bw, delay, queue, "cubic", receiver=True,
                                                                       seed=r + 10 * k))) for r in (1, 2)]
        cal_cubic = [iperf3_metrics(parse_report(iperf3_json(0.9 * bw, delay + 1.0, queue, "cubic", rtt_every_s=1.0,
                                                             seed=r)), 6, "cubic") for r in (0, 1)]
        for s, real, cal in (("const:6", real_const, cal_const), ("cubic", real_cubic, cal_cubic)):
            expect_real[p, s] = {n: sum(m[n] for m in real) / 2 for n in names}
            expect_cal[p, s] = {n: sum(m[n] for m in cal) / 2 for n in names}
    for key, row in rows.items():
        assert row["runs"] == 2 and row["calibrated_runs"] == 2, key  # other policies / traces, broken logs: out
        for n in names:
            assert row[n] == pytest.approx(expect_real[key][n], rel=1e-9), (key, n)
            assert row[f"calibrated_{n}"] == pytest.approx(expect_cal[key][n], rel=1e-9), (key, n)
            assert math.isfinite(row[f"calibrated_{n}_ci95"])
    assert rows["p1", "cubic"]["calibrated_throughput_mbps"] < 0.95 * rows["p1", "cubic"]["throughput_mbps"]
    # per scheme and column: the paired gap over the paths, as foundation.stats computes it
    doc = json.loads((run / "report.json").read_text())
    gaps = {(g["scheme"], g["metric"]): g for g in doc["calibrated"]["gaps"]}
    assert set(gaps) == {(s, n) for s in ("const:6", "cubic") for n in names}
    for (s, n), g in gaps.items():
        want = paired_gap([expect_cal[p, s][n] for p in CAL_PATHS], [expect_real[p, s][n] for p in CAL_PATHS], 0.10,
                          names=("calibrated emulation", "real"))
        assert g["n"] == want.n == 3
        for f in ("gap", "low", "high", "relative", "calibrated", "real"):
            want_f = {"calibrated": want.mean_a, "real": want.mean_b}.get(f, getattr(want, f, None))
            assert g[f] == pytest.approx(want_f, rel=1e-9, abs=1e-12), (s, n, f)
        assert g["verdict"] == want.verdict and g["decision"] == want.decision
    assert gaps["const:6", "throughput_mbps"]["decision"] == "differs"
    assert "calibrated emulation lower than real by 10.0 %" in gaps["const:6", "throughput_mbps"]["verdict"]
    assert "r9" in " ".join(doc["calibrated"]["skipped_runs"])  # the truncated log, said so
    assert doc["calibrated"]["policies"] == {"const:6": "const:6", "cubic": "cubic"}
    # the CSV rows carry the columns (units in the names, as the real ones), the gap file the verdicts
    head = (run / "report.csv").read_text().splitlines()[0].split(",")
    assert head[-(1 + 2 * len(names)):] == ["calibrated_runs"] + [f"calibrated_{n}{x}" for n in names
                                                                  for x in ("", "_ci95")]
    gap_lines = (run / CALIBRATED_GAP_FILE).read_text().splitlines()
    assert gap_lines[0].startswith("scheme,metric,n,calibrated,real,gap,low,high")
    assert len(gap_lines) == 1 + 2 * len(names)
    assert "calibrated emulation (" in rep.text and "real | calibrated" in rep.text
    assert "throughput_mbps (Mbit/s) real | calibrated" in rep.text and "lower than real by 10.0 %" in rep.text
    # the command line
    assert main(["deploy", "report", str(run), "--calibrated", str(emu)]) == 0
    out = capsys.readouterr().out
    assert "paired gap, calibrated emulation - real" in out and CALIBRATED_GAP_FILE in out


def test_deploy_report_calibrated_bad_folder_is_one_line(tmp_path, capsys):
    from app.cli import main
    from deploy.report import write_report
    run = write_cal_campaign(tmp_path / "run")
    missing = tmp_path / "nowhere"
    with pytest.raises(BadInputError, match=f"{missing}: no results.json") as e:
        write_report(run, calibrated=missing)
    assert "\n" not in str(e.value)
    other = write_cal_emulation(tmp_path / "other", traces=("q1", "q2"))  # a calibrated emulation of other paths
    with pytest.raises(BadInputError, match=f"{other}: no emulated run of the campaign's schemes on its paths") as e:
        write_report(run, calibrated=other)
    assert "\n" not in str(e.value) and "wanted traces p1, p2, p3" in str(e.value) and "cubic on q1" in str(e.value)
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "results.json").write_text("[{")
    with pytest.raises(BadInputError, match="damaged/results.json: not JSON"):
        write_report(run, calibrated=tmp_path / "damaged")
    abr = write_campaign(tmp_path / "abr", use_case="abr")
    with pytest.raises(BadInputError, match="calibrated emulation is for CC campaigns"):
        write_report(abr, calibrated=write_cal_emulation(tmp_path / "emu"))
    assert not (run / "report.txt").exists()  # nothing written on bad input
    assert main(["deploy", "report", str(run), "--calibrated", str(missing)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("genet: error:") and str(missing) in err and "\n" not in err


def test_deploy_report_without_calibrated_is_unchanged(tmp_path):
    from deploy.report import CALIBRATED_GAP_FILE, write_report
    from genet.cc.metrics import TABLE7
    names = [c.name for c in TABLE7]
    run = write_cal_campaign(tmp_path / "run")
    rep = write_report(run)
    files = ("report.txt", "report.csv", "report.json")
    before = {f: (run / f).read_text() for f in files}
    assert (run / "report.csv").read_text().splitlines()[0].split(",") == (
        ["path", "scheme", "runs", "failed_attempts"] + [x for n in names for x in (n, f"{n}_ci95")]
        + ["max_abs_clock_offset_ms", "mean_overhead_s"])
    assert "calibrated" not in json.loads(before["report.json"]) and "calibrated" not in rep.text
    assert not (run / CALIBRATED_GAP_FILE).exists()
    write_report(run, calibrated=write_cal_emulation(tmp_path / "emu"))
    assert (run / CALIBRATED_GAP_FILE).exists() and (run / "report.txt").read_text() != before["report.txt"]
    write_report(run)  # again without: the same files as before, the gap file of the calibrated one gone
    assert {f: (run / f).read_text() for f in files} == before
    assert not (run / CALIBRATED_GAP_FILE).exists()
