"""The mininet backend: LinuxBridge + htb bandwidth replay, and the clear refusal of delay/loss without netem."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import numpy as np
import pytest

from emulation import EmulationError, LinkEmulator
from emulation.mininet_backend import kernel_has_netem, mininet_problem
from traces.trace import Trace

pytestmark = [pytest.mark.root]

_problem = mininet_problem()
if _problem:
    pytest.skip(_problem, allow_module_level=True)
if shutil.which("iperf3") is None:
    pytest.skip("needs iperf3", allow_module_level=True)

#: iperf3 goodput per Mbit/s of htb rate: htb counts 1514-byte Ethernet frames carrying 1448 bytes of TCP payload
GOODPUT_PER_MBIT = 1448 / 1514


def test_step_trace_is_replayed_with_htb():
    """12 -> 3 -> 12 Mbit/s, 4 s each, followed by iperf3 (receiver side, 1-s intervals) within 15%."""
    trace = Trace(np.array([0.0, 4.0, 8.0, 12.0]), np.array([12.0, 3.0, 12.0, 12.0]), name="step")
    with LinkEmulator(trace, 12, backend="mininet") as link:
        assert link.run_name.startswith("gt-")
        out = link.emulated.run("echo $MAHIMAHI_BASE", check=True).stdout.strip()
        assert out == link.host.address
        server = link.host.popen(["iperf3", "-s", "-1", "-B", link.host.address], stdout=subprocess.DEVNULL)
        for _ in range(50):
            if link.host.run(["sh", "-c", f"ss -ltn | grep -q '{link.host.address}:5201 '"]).returncode == 0:
                break
            time.sleep(0.1)
        offset_s = time.monotonic() - link.backend.replay_start_monotonic
        res = link.emulated.run(["iperf3", "-c", link.host.address, "-C", "cubic", "-t", "11", "-J",
                                 "--get-server-output"], timeout_s=40)
        server.wait(timeout=10)
        assert link.backend.stats["rate_changes"] >= 3
    text = json.loads(res.stdout)["server_output_text"]
    rates = [float(line.split()[-2]) * (1e-3 if line.split()[-1].startswith("K") else 1.0)
             for line in text.splitlines() if "bits/sec" in line and "sec" in line and "receiver" not in line]
    checked = 0
    for k, mbps in enumerate(rates[:11]):
        a, b = offset_s + k, offset_s + k + 1  # trace time covered by this interval
        phase_a, phase_b = int(a // 4), int(b // 4)
        if phase_a != phase_b or a - 4 * phase_a < 1.0 or b > 12:
            continue  # straddles a step, or within 1 s after one (TCP and the queue adjust)
        expected = [12.0, 3.0, 12.0][phase_a] * GOODPUT_PER_MBIT
        assert abs(mbps - expected) / expected <= 0.15, (k, mbps, expected, rates)
        checked += 1
    assert checked >= 4, rates


def test_delay_or_loss_without_netem_fails_clearly():
    if kernel_has_netem():
        pytest.skip("this kernel has netem: the mininet backend adds delay/loss with it")
    for kwargs in ({"delay_ms": 20}, {"uplink_loss": 0.01}):
        with pytest.raises(EmulationError, match=r"no netem.*--backend netns.*Vagrant VM"):
            with LinkEmulator(12, 12, backend="mininet", **kwargs):
                pass
    with pytest.raises(ValueError, match="no Mahimahi logs"):
        LinkEmulator(12, 12, backend="mininet", uplink_log="/tmp/x.log")


def test_sigkill_leftovers_of_a_mininet_run_are_cleaned():
    import subprocess
    import sys
    from pathlib import Path
    from emulation.resources import find_leftovers
    from emulation.sysnet import list_links
    owner = ("import time\nfrom emulation import LinkEmulator\n"
             "with LinkEmulator(12, 12, backend='mininet') as link:\n"
             "    print(link.run_name, flush=True)\n    time.sleep(60)\n")
    repo = Path(__file__).resolve().parents[1]
    p = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True, cwd=repo)
    run = p.stdout.readline().strip()
    k = run[len("gt-"):-1]
    assert f"gt-{k}s" in list_links("gt-")
    p.kill()
    p.wait()
    assert run in [r.run for r in find_leftovers().records]
    res = subprocess.run([sys.executable, "-m", "genet.cli", "emulate", "cleanup"], capture_output=True, text=True,
                         cwd=repo)
    assert res.returncode == 0 and run in res.stdout
    assert not [n for n in list_links("gt-") if n.startswith(f"gt-{k}s")]
