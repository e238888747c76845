"""`genet emulate calibrate` end to end on the local SSH testbed, whose path has known parameters: a short CC campaign
(kernel cubic and bbr through iperf3, our sender at a constant 6 Mbit/s) over a 12 Mbit/s path with 15 ms each way
and a 40-packet droptail queue, calibrated; the fit must recover the path, and `genet emulate cc` over the
calibrated trace must reproduce the real runs' throughput within 10 % (the issue's target).

Errors allowed, and why (measured on this 2-core machine, 2 x 6-s runs per scheme: delay 15.70 ms, bandwidth
12.00 Mbit/s, queue 40 packets; emulated vs real throughput within 1 % for all three schemes):
* delay within 1.5 ms: min RTT / 2 holds half a packet's serialization at 12 Mbit/s (0.5 ms) and the emulator's
  own millisecond clock (about 0.7 ms each way), both of which the calibrated emulation reproduces;
* bandwidth within 10 %;
* queue within x 4/3 either way: it is read from cubic's smoothed RTT (sampled every 0.2 s, lagging the queue),
  and a stalled sample on a busy machine can lift one run's peak;
* loss below 0.005 (the path has none; our sender's unsaturated intervals measure it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root]

from conftest import require_ssh_testbed  # noqa: E402

require_ssh_testbed()

from deploy import testbed  # noqa: E402
from deploy.calibrate import compare, format_comparison, refine, write_calibration  # noqa: E402
from deploy.campaign import run_campaign  # noqa: E402
from deploy.config import load_campaign, load_inventory  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BW_MBPS, DELAY_MS, QUEUE_PACKETS, DURATION_S, REPS = 12.0, 15.0, 40, 6, 2


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("calbed")
    path = testbed.TestbedPath("p1", "h1", "h2", BW_MBPS, BW_MBPS, DELAY_MS,
                               uplink_queue_args=f"packets={QUEUE_PACKETS}",
                               downlink_queue_args=f"packets={QUEUE_PACKETS}", description="12 Mbit/s, 15 ms, 40 pkts")
    inv_file = testbed.up(out / "bed", 2, [path])
    try:
        inv = load_inventory(inv_file)
        schemes = ["cubic", "bbr"]
        genet = Path(sys.prefix) / "bin" / "genet"
        if genet.is_file():
            # the hosts are namespaces of this machine: their WORK_DIR/venv is this venv (what `genet deploy push`
            # would install there, without a wheel build and install of minutes)
            for h in inv.hosts.values():
                (Path(h.work_dir) / "venv").symlink_to(sys.prefix)
            schemes.append("const:6")
        f = out / "campaign.toml"
        f.write_text(f'name = "cal"\nuse_case = "cc"\nschemes = {json.dumps(schemes)}\nrepetitions = {REPS}\n'
                     f'paths = ["p1"]\nduration_s = {DURATION_S}\nseed = 3\n')
        s = run_campaign(load_campaign(f, inv), inv, out / "run")
        assert s.complete, s.describe()
    finally:
        testbed.down(out / "bed")
    return out / "run", schemes


def test_calibration_recovers_the_path_and_the_emulation_reproduces_the_runs(campaign_dir, tmp_path):
    run, schemes = campaign_dir
    cal = tmp_path / "cal"
    doc = write_calibration(run, cal)
    p = doc["paths"]["p1"]
    delay, bw, queue = p["delay_ms"]["value"], p["bandwidth_mbps"]["value"], p["queue_packets"]["value"]
    print(f"\ncalibrated: delay {delay:.2f} ms (path {DELAY_MS:g}), bandwidth {bw:.3f} Mbit/s (path {BW_MBPS:g}), "
          f"queue {queue:g} packets (path {QUEUE_PACKETS}), loss {p['loss_rate']['value']:.4f} (path 0)")
    assert abs(delay - DELAY_MS) <= 1.5
    assert abs(bw - BW_MBPS) <= 0.10 * BW_MBPS and p["bandwidth_kind"] == "constant"
    assert QUEUE_PACKETS * 3 / 4 <= queue <= QUEUE_PACKETS * 4 / 3
    assert p["loss_rate"]["value"] < 0.005
    if "const:6" in schemes:
        assert p["loss_rate"]["details"]["measured"] and p["delay_ms"]["details"]["min_rtt_run"].endswith("const_6")
    emu = tmp_path / "emu"
    res = subprocess.run([sys.executable, "-m", "app.cli", "emulate", "cc", "--traces", str(cal), "--policy",
                          ",".join(v["policy"] for v in doc["schemes"].values()), "--duration-s", str(DURATION_S),
                          "--repeats", str(REPS), "--no-sim", "--no-plots", "--out", str(emu)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = compare(run, emu, doc["schemes"])
    print(format_comparison(rows))
    assert {r["scheme"] for r in rows} == set(schemes)
    for r in rows:
        assert r["real_runs"] == r["emulated_runs"] == REPS, r
        assert abs(r["throughput_mbps_gap"]) <= 0.10, r  # the target
    # one refinement: the emulator's own delay measured and taken back; the path is still recovered
    again = refine(run, cal, emu)["paths"]["p1"]
    print(f"refined: delay {again['delay_ms']['value']:.2f} ms, bandwidth {again['bandwidth_mbps']['value']:.3f} Mbit/s")
    assert abs(again["delay_ms"]["value"] - DELAY_MS) <= 1.5
    assert abs(again["bandwidth_mbps"]["value"] - BW_MBPS) <= 0.10 * BW_MBPS
