"""``genet emulate cc --flows P1,P2,...``: competing flows through one bottleneck (Pantheon's multi-flow tests).

All flows start together over one netns link per (trace, repeat) and run for the run's duration (Trace.run_duration_s).
Per-flow figures come from the link's packet captures (:func:`emulation.pcap.flow_summary`: each
flow's delivered throughput over its own first-to-last delivery span as Pantheon's per-flow
throughput, one-way delay and loss through the link, by its 5-tuple); the flow's share is its
throughput over the sum of the flows' throughputs, and Jain's fairness index (:func:`foundation.stats.jain_index`)
summarises the shares (1 = equal). ``flows.csv``/``flows.json`` hold one row per flow (in
``flows.json`` an undefined figure, e.g. the delay of a flow that delivered nothing, is ``null``),
and ``flows.txt`` the table.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from foundation.atomic import atomic_write_text
from foundation.jsonout import dumps as json_dumps
from foundation.packets import PACKET_BYTES
from foundation.stats import jain_index
from sender.runs import csv_text, make_link, sender_cmd, start_receiver, union_columns

BASE_UDP_PORT = 9000
BASE_TCP_PORT = 5201


def _flow_rows(pcap_dir: Path, link, flows, ports, duration_s: float) -> list[dict]:
    from emulation.pcap import flow_summary
    summary = flow_summary(pcap_dir / "emulated.pcap", pcap_dir / "host.pcap", link.emulated.address,
                           link.host.address)
    rows = []
    for i, (p, port) in enumerate(zip(flows, ports)):
        cands = [f for f in summary if f.direction == "uplink" and f.dport == port
                 and f.protocol == (6 if p.is_kernel_tcp else 17)]
        f = max(cands, key=lambda c: c.delivered_packets, default=None)  # iperf3: the data, not the control connection
        rows.append({"flow": i, "policy": p.label, "port": port,
                     "throughput_mbps": f.throughput_mbps if f else 0.0,
                     "p95_one_way_delay_ms": f.p95_one_way_delay_ms if f else float("nan"),
                     "loss_rate": f.loss_rate if f else float("nan"),
                     "delivered_packets": f.delivered_packets if f else 0})
    return rows


def run_flows(flows, traces, settings, args, out: Path, loaded) -> int:
    all_rows = []
    for rep in range(args.repeats):
        for t, s in zip(traces, settings):
            run_dir = out / "flows" / "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{t.name}__r{rep}")
            run_dir.mkdir(parents=True, exist_ok=True)
            ports = [(BASE_TCP_PORT if p.is_kernel_tcp else BASE_UDP_PORT) + i for i, p in enumerate(flows)]
            with make_link(t, s, "netns", run_dir, pcap_dir=str(run_dir)) as link:
                procs, servers = [], []
                for i, (p, port) in enumerate(zip(flows, ports)):
                    if p.is_kernel_tcp:
                        from sender import iperf3
                        servers.append(link.host.popen(iperf3.server_command(port, link.host.address),
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                        iperf3.wait_listening(link.host, port, link.host.address)
                    else:
                        servers.append(start_receiver(link, run_dir, port, name=f"receiver{i}"))
                for i, (p, port) in enumerate(zip(flows, ports)):
                    if p.is_kernel_tcp:
                        from sender import iperf3
                        cmd = iperf3.client_command(link.host.address, p.tcp_name, s.duration_s, port)
                    else:
                        cmd = sender_cmd(p, link, s, run_dir, port, name=f"sender{i}")
                    procs.append(link.emulated.popen(cmd, stdout=open(run_dir / f"flow{i}.out", "w"),
                                                     stderr=subprocess.STDOUT))
                deadline = time.monotonic() + s.duration_s + 60
                for pr in procs + servers:
                    pr.wait(timeout=max(1.0, deadline - time.monotonic()))
            rows = _flow_rows(run_dir, link, flows, ports, s.duration_s)
            total = sum(r["throughput_mbps"] for r in rows)
            jain = jain_index([r["throughput_mbps"] for r in rows])
            for r in rows:
                r.update(trace=t.name, repeat=rep, share=r["throughput_mbps"] / total if total > 0 else float("nan"),
                         jain_index=jain, link_mbps=s.mean_bandwidth_mbps)
            for f in ("emulated.pcap", "host.pcap", "uplink.log"):
                (run_dir / f).unlink(missing_ok=True)
            all_rows.extend(rows)
    atomic_write_text(out / "flows.csv", csv_text(all_rows, union_columns(all_rows)))
    atomic_write_text(out / "flows.json", json_dumps(all_rows, indent=1))  # strict JSON: NaN -> null
    text = format_flows(all_rows)
    atomic_write_text(out / "flows.txt", text + "\n")
    print(text)
    return 0


def format_flows(rows) -> str:
    lines = [f"{'trace':<28} {'rep':>3} {'flow':<20} {'Mbit/s':>8} {'share':>6} {'p95 OWD ms':>10} {'loss':>6} {'Jain':>5}"]
    for r in rows:
        lines.append(f"{r['trace'][:28]:<28} {r['repeat']:>3} {r['policy'][:20]:<20} {r['throughput_mbps']:>8.2f} "
                     f"{r['share']:>6.2f} {r['p95_one_way_delay_ms']:>10.1f} {r['loss_rate']:>6.3f} "
                     f"{r['jain_index']:>5.3f}")
    return "\n".join(lines)


__all__ = ["run_flows", "format_flows", "PACKET_BYTES", "sys"]
