"""Packet capture on both sides of a netns link and the per-flow summary (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emulation.pcap import five_tuple, read_pcap

pytestmark = [pytest.mark.root, pytest.mark.flaky(reruns=1, reruns_delay=2)]  # real-time delays: one rerun after a scheduling stall

if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
    pytest.skip("needs root and /dev/net/tun (network namespaces, TUN devices)", allow_module_level=True)

from emulation import LinkEmulator  # noqa: E402
from emulation.pcap import flow_summary  # noqa: E402
from emulation.probes import udp_constant_stream, udp_count_receiver  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_capture_and_flow_summary(tmp_path):
    n = 1500
    with LinkEmulator(12, 12, delay_ms=10, uplink_loss=0.1, isolate_host=True, pcap_dir=tmp_path, seed=7) as link:
        got = {}
        rx = threading.Thread(target=lambda: got.setdefault(
            "n", link.host.call(udp_count_receiver, link.host.address, 9200, 1.0)))
        rx.start()
        time.sleep(0.3)
        link.emulated.call(udp_constant_stream, link.host.address, 9200, 1500, n, 500)
        rx.join()
        emu, host = link.emulated.address, link.host.address
    meta = json.loads((tmp_path / "link.json").read_text())
    assert meta == {"emulated_address": emu, "host_address": host, "run": link.run_name}
    sent = [p for _, p in read_pcap(tmp_path / "emulated.pcap") if five_tuple(p)[3] == 9200]
    assert len(sent) == n and all(len(p) == 528 for p in sent)  # 500 B payload + UDP + IP headers
    flows = [f for f in flow_summary(tmp_path / "emulated.pcap", tmp_path / "host.pcap", emu, host)
             if f.dport == 9200]
    assert len(flows) == 1
    f = flows[0]
    assert (f.direction, f.src, f.dst, f.protocol, f.sent_packets) == ("uplink", emu, host, 17, n)
    assert f.delivered_packets == got["n"] == n - link.stats["uplink_lost"]
    assert 0.07 <= f.loss_rate <= 0.13
    # The link's own delay. No packet is early: the delay line counts whole ms (Mahimahi's), so a packet read late in
    # ms t leaves in ms t + 10, at least 9 ms after it came (10.06-10.16 ms measured). The median is 10 ms + up to 1 ms
    # to the next opportunity + that ms tick: 10.7 ms measured. The mean and the tail are the machine's as much as the
    # link's: on a 2-core CI machine at load 8-18 a scheduling stall put 10 % of the packets 3-5 ms late (mean 12.6,
    # p90 15.2, p95 17.0 ms), so they only bound a gross error such as a doubled delay.
    assert f.min_one_way_delay_ms >= 9.0 and 10.0 <= f.median_one_way_delay_ms <= 12.5
    assert f.mean_one_way_delay_ms <= 16.0 and f.p90_one_way_delay_ms <= 19.0
    # 1500 pkt/s x 528 B x (1 - loss) ~ 5.7 Mbit/s delivered
    assert f.throughput_mbps == pytest.approx(1500 * 528 * 8 * (1 - f.loss_rate) / 1e6, rel=0.1)
    from scapy.all import IP, rdpcap  # the captures are ordinary pcap files
    pkts = rdpcap(str(tmp_path / "host.pcap"))
    assert pkts[0].haslayer(IP) and len(pkts) == len(read_pcap(tmp_path / "host.pcap"))
    out = subprocess.run([sys.executable, "-m", "app.cli", "emulate", "flow-stats", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and f"udp {emu}:" in out.stdout and f"-> {host}:9200" in out.stdout
