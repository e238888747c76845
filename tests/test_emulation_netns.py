"""The netns backend with real namespaces, TUN devices and the user-space link process (needs root).

Traffic stays inside namespaces these tests create (``isolate_host=True``),
except the tests of the Mahimahi layout, whose host side is a TUN device the
test creates in the root namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from emulation.sysnet import list_links, list_netns

REPO = Path(__file__).resolve().parents[1]
GENET = [sys.executable, "-m", "app.cli"]

pytestmark = [pytest.mark.root]


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    if subprocess.run(["sh", "-c", "command -v ip && command -v nsenter"], capture_output=True).returncode:
        return "needs iproute2 `ip` and util-linux `nsenter`"
    return None


if _requirements():
    pytest.skip(_requirements(), allow_module_level=True)

from emulation import LinkEmulator  # noqa: E402
from emulation.probes import (icmp_rtt_probe, udp_count_receiver, udp_constant_stream,  # noqa: E402
                              udp_echo_server, udp_rtt_probe)
from emulation.resources import find_leftovers, state_dir  # noqa: E402


def ours(run: str) -> tuple[list[str], list[str]]:
    return [n for n in list_netns() if n.startswith(run + "-")], [n for n in list_links(run + "-")]


def rtt(link, count=40, interval_s=0.05):
    """ping-style RTT (ICMP echo answered by the host side's kernel)."""
    return link.emulated.call(icmp_rtt_probe, link.host.address, count, interval_s)


def udp_rtt(link, count=40, interval_s=0.05):
    server = threading.Thread(target=link.host.call, args=(udp_echo_server, link.host.address, 9000,
                                                            count * interval_s + 4))
    server.start()
    time.sleep(0.3)
    try:
        return link.emulated.call(udp_rtt_probe, link.host.address, 9000, count, interval_s)
    finally:
        server.join()


def test_link_endpoints_and_teardown():
    with LinkEmulator(12, 12, delay_ms=5, isolate_host=True) as link:
        run = link.run_name
        netns, _ = ours(run)
        assert sorted(netns) == [f"{run}-e", f"{run}-h"]
        assert (state_dir() / f"{run}.json").exists()
        out = link.emulated.run("echo $MAHIMAHI_BASE; ip -4 -o addr show; ip route", check=True).stdout
        assert out.splitlines()[0] == link.host.address
        assert link.emulated.address in out and f"default via {link.host.address}" in out
        assert link.emulated.call(os.getpid) != os.getpid()
        assert link.emulated.call(lambda: open("/proc/self/net/dev").read()).count("gt-") == 1
    assert ours(run) == ([], [])
    assert not (state_dir() / f"{run}.json").exists()
    assert link.stats["uplink_arrived_packets"] == link.stats["uplink_departed_packets"]


@pytest.mark.flaky(reruns=1, reruns_delay=2)  # idle-VM wake-ups can spoil one run (see the bounds below)
def test_ping_style_rtt_with_20ms_each_way():
    # low-latency idle (foundation/cpuidle.py): on an idle VM the probes' wake-ups otherwise add ~1-2 ms (fresh-clone
    # runs on an idle machine: medians 44.7 and 44.5 ms without it)
    with LinkEmulator(12, 12, delay_ms=20, isolate_host=True, low_latency_idle=True) as link:
        s = rtt(link, count=60, interval_s=0.05)
    print(f"RTT min {s.min_ms:.2f} median {s.median_ms:.2f} avg {s.avg_ms:.2f} max {s.max_ms:.2f} "
          f"mdev {s.mdev_ms:.3f} trimmed mdev {s.trimmed_mdev_ms:.3f} MAD {s.mad_ms:.3f} ms")
    assert s.received == s.sent
    # Real Mahimahi here (mm-delay 20 mm-link 12mbps 12mbps, ping): min 41.7-42.5, median 42.6,
    # mdev 0.11-0.29 ms: its ms ticks alone spread RTTs over up to 1 ms (uniform: MAD 0.25, mdev 0.29),
    # and so do ours. The spread is bounded by statistics one scheduling outlier on a busy 2-core
    # machine cannot flip (issue 10: one 44-ms probe in 60 took the plain mdev to 0.54): the median
    # absolute deviation, robust to anything under half the probes. (The mdev without the top 2 % is
    # printed, not bounded: at load 15 here, with other users' real-time links sharing the 2 cores,
    # more than 2 % of the probes can be late — one run gave 6.3 ms with a MAD of 0.13.)
    assert 40.0 <= s.min_ms <= 43.5
    assert 40.0 <= s.median_ms <= 44.0
    # Measured MAD here: 0.05-0.37 ms at load 8-18, but 0.09-0.86 ms on a nearly idle machine (load 1.5-3),
    # where the four stages' ms ticks spread RTTs over 41.5-44 ms; Mahimahi's own idle MAD here: 0.22.
    # Four stages each release on a ms tick, so up to ~4 ms of tick spread (uniform sums: MAD ~0.5-0.9).
    # (Open: our idle spread is up to ~2x Mahimahi's; the bound catches anything beyond the ticks.)
    assert s.mad_ms <= 1.5


def test_precise_clock_removes_the_whole_ms_ticks():
    """--clock precise: the same 100 Mbit/s link with 5 ms each way, in fractional ms. Mahimahi's clock makes
    every stage wait for a whole ms (measured here: median RTT 12.8-12.9 ms for a path of 10 ms + 2 x 0.06 ms
    of opportunity wait; 13.3-13.9 ms on a busier day of the same VM); the precise clock leaves the opportunity
    wait and the host's own overhead (measured: 10.56-10.58 ms, 11.2-11.6 ms on that busier day; genet emulate
    selfcheck --clock precise: +0.5-0.7 ms over the model at 50-500 Mbit/s)."""
    with LinkEmulator(100, 100, delay_ms=5, isolate_host=True, low_latency_idle=True) as link:
        ms = rtt(link, count=40, interval_s=0.03)
    with LinkEmulator(100, 100, delay_ms=5, isolate_host=True, low_latency_idle=True, clock="precise") as link:
        precise = rtt(link, count=40, interval_s=0.03)
    print(f"ms clock: median {ms.median_ms:.2f} MAD {ms.mad_ms:.3f}; precise: median {precise.median_ms:.2f} "
          f"MAD {precise.mad_ms:.3f}")
    assert precise.received == precise.sent and ms.received == ms.sent
    assert precise.min_ms >= 10.0  # never below the configured path
    # the ticks are gone: a ms below the ms clock's median (measured 2.0-2.4 ms below), and what is left is
    # the host's own overhead (the same on both clocks: 0.6-1.6 ms here), not another tick
    assert precise.median_ms <= ms.median_ms - 1.0
    assert precise.median_ms <= 12.5


def test_bad_clock_is_refused_before_anything_is_created():
    from foundation.errors import BadInputError
    with pytest.raises(BadInputError, match="clock must be one of ms, precise"):
        LinkEmulator(12, 12, clock="us")
    with pytest.raises(BadInputError, match="netns backend only"):
        LinkEmulator(12, 12, clock="precise", backend="mininet")


def test_uplink_loss_rate_of_a_constant_udp_stream():
    n = 4000
    with LinkEmulator(12, 12, uplink_loss=0.05, isolate_host=True, seed=12345) as link:
        result = {}
        rx = threading.Thread(target=lambda: result.setdefault(
            "received", link.host.call(udp_count_receiver, link.host.address, 9100, 1.5)))
        rx.start()
        time.sleep(0.3)
        link.emulated.call(udp_constant_stream, link.host.address, 9100, 2000, n, 200)
        rx.join()
        # the other direction is loss-free
        back = {}
        rx2 = threading.Thread(target=lambda: back.setdefault(
            "received", link.emulated.call(udp_count_receiver, link.emulated.address, 9101, 1.5)))
        rx2.start()
        time.sleep(0.3)
        link.host.call(udp_constant_stream, link.emulated.address, 9101, 2000, 1000, 200)
        rx2.join()
    loss = 1 - result["received"] / n
    print(f"uplink loss {loss:.4f}")
    assert 0.04 <= loss <= 0.06
    assert back["received"] == 1000
    assert link.stats["uplink_lost"] == n - result["received"]


def test_host_side_in_root_namespace_and_parallel_links():
    """Mahimahi's layout: the host side is a TUN device in the root namespace; two links at once."""
    with LinkEmulator(12, 12, delay_ms=1) as a, LinkEmulator(24, 24, delay_ms=1) as b:
        assert a.host.address != b.host.address and a.host.netns_path is None
        assert a.emulated.env["MAHIMAHI_BASE"] == a.host.address
        assert os.path.exists(f"/sys/class/net/{a.run_name}-o")
        sa, sb = rtt(a, 10, 0.02), udp_rtt(b, 10, 0.02)
        assert sa.received == 10 and sb.received == 10
        assert 2.0 <= sa.min_ms <= 6 and 2.0 <= sb.min_ms <= 6
    assert ours(a.run_name) == ([], []) and ours(b.run_name) == ([], [])


def test_bad_input_fails_before_anything_is_created(tmp_path):
    bad = tmp_path / "bad.mahi"
    bad.write_text("5\n\n7\n")
    before = (list_netns(), list_links("gt-"))
    from traces.errors import TraceFormatError
    with pytest.raises(TraceFormatError, match=r"bad.mahi:2: invalid empty line"):
        LinkEmulator(bad, 12, isolate_host=True)
    with pytest.raises(ValueError, match="byte or packet limit"):
        LinkEmulator(12, 12, uplink_queue="droptail")
    with pytest.raises(ValueError, match=r"start_on_first_packet: netns backend only \(this link's backend is mininet\)"):
        LinkEmulator(12, 12, backend="mininet", start_on_first_packet=True)
    assert (list_netns(), list_links("gt-")) == before


def test_exception_and_command_timeout_clean_up():
    with pytest.raises(RuntimeError, match="boom"):
        with LinkEmulator(12, 12, isolate_host=True) as link:
            link.emulated.popen(["sleep", "60"])
            raise RuntimeError("boom")
    assert ours(link.run_name) == ([], [])
    with LinkEmulator(12, 12, isolate_host=True) as link:
        t0 = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            link.emulated.run(["sleep", "30"], timeout_s=0.5)
        assert time.monotonic() - t0 < 25  # returned on the timeout, not when the 30-s command ended
    assert ours(link.run_name) == ([], [])


# The owner takes SIGINT as an interactive program does (KeyboardInterrupt), even when this test runs
# from a background job, whose children inherit SIGINT *ignored* (POSIX shells do that to `cmd &`).
OWNER = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from emulation import LinkEmulator
    with LinkEmulator(12, 12, isolate_host=True) as link:
        link.emulated.popen(["sleep", "60"])
        print(link.run_name, flush=True)
        time.sleep(60)
""")


def _start_owner():
    p = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, cwd=REPO)
    run = p.stdout.readline().strip()
    assert run.startswith("gt-"), run
    assert ours(run)[0]
    return p, run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_remove_everything(sig):
    p, run = _start_owner()
    p.send_signal(sig)
    p.wait(timeout=20)
    assert ours(run) == ([], [])
    assert not (state_dir() / f"{run}.json").exists()


def test_sigkill_leftovers_are_detected_and_cleaned():
    from emulation.resources import state_lock
    p, run = _start_owner()
    # Other emulation users on this machine release dead owners' runs whenever they open a link (under
    # the state lock): holding the lock keeps the leftover ours to detect; after it is released, the run
    # may be gone by the time our cleanup looks, and then that cleanup only has to report nothing of it.
    with state_lock():
        p.kill()
        p.wait()
        time.sleep(0.3)
        found = find_leftovers()
        assert run in [r.run for r in found.records]
        assert f"{run}-e" in ours(run)[0]  # the namespace (and its sleep) survive a SIGKILL
        dry = subprocess.run(GENET + ["emulate", "cleanup", "--dry-run"], capture_output=True, text=True,
                             cwd=REPO)  # --dry-run takes no lock
        assert run in dry.stdout and ours(run)[0]
    res = subprocess.run(GENET + ["emulate", "cleanup"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0 and res.stdout.startswith("removed: "), res.stdout
    if run not in res.stdout:  # a concurrent link start released it first (see above)
        print(f"{run} was released by another emulation user before `genet emulate cleanup` looked")
    assert ours(run) == ([], [])
    assert not (state_dir() / f"{run}.json").exists()


def test_shell_runs_command_with_mahimahi_base_and_its_status(tmp_path):
    up, down = tmp_path / "up.log", tmp_path / "down.log"
    probe = f"{sys.executable} -c 'import emulation.probes as p; print(p.icmp_rtt_probe(\"100.64.0.1\", 20, 0.02))'"
    cmd = GENET + ["emulate", "shell", "--isolate-host", "--delay-ms", "10", "--uplink", "12mbps",
                   "--downlink", "12mbps", "--uplink-queue", "droptail", "--uplink-queue-args", "packets=20",
                   "--uplink-log", str(up), "--downlink-log", str(down), "--",
                   "sh", "-c", f"echo base=$MAHIMAHI_BASE; {probe} >/dev/null; exit 7"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 7, res.stderr
    assert res.stdout.strip() == "base=100.64.0.1"
    head = up.read_text().splitlines()[:5]
    assert head[0].startswith("# mahimahi mm-link (Uplink) [constant 12 Mbit/s] >")
    assert head[2] == "# queue: droptail [packets=20]" and head[4] == "# base timestamp: 0"
    png = tmp_path / "up.png"
    stats = subprocess.run(GENET + ["emulate", "link-stats", str(up), "--png", str(png)], capture_output=True,
                           text=True, cwd=REPO, timeout=60)
    assert stats.returncode == 0, stats.stderr
    lines = stats.stdout.splitlines()
    assert lines[0].startswith("Average capacity: 12.0") and "95th percentile per-packet queueing delay: 1 ms" in lines
    assert png.stat().st_size > 10000 and png.read_bytes()[:4] == b"\x89PNG"
    res = subprocess.run(GENET + ["emulate", "shell", "--isolate-host", "--uplink", "12mbps", "--downlink",
                                  "12mbps", "--timeout-s", "0.5", "--", "sleep", "30"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 124 and "ending it" in res.stderr


def test_once_ends_with_the_trace(tmp_path):
    trace = tmp_path / "short.mahi"
    trace.write_text("1\n300\n")
    res = subprocess.run(GENET + ["emulate", "shell", "--isolate-host", "--once", "--uplink", str(trace),
                                  "--downlink", str(trace), "--", "sleep", "30"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 77 and "trace ended" in res.stderr


def test_start_on_first_packet_starts_the_trace_when_the_emulated_side_first_sends(tmp_path):
    """A 1-s ``once`` trace with the clock on the first packet: 1.5 s of silence do not end it; the first
    packet starts it (the link's recorded start is that packet's time), and it ends 1 s later by itself."""
    trace = tmp_path / "one-second.mahi"
    trace.write_text("".join(f"{ms}\n" for ms in range(1, 1001)))
    log = tmp_path / "uplink.log"
    with LinkEmulator(trace, trace, once=True, isolate_host=True, start_on_first_packet=True,
                      uplink_log=log) as link:
        time.sleep(1.5)
        assert link.backend.proc.poll() is None  # a clock started at configuration would have ended it
        t_send = time.time()
        rtt(link, count=3, interval_s=0.05)
        assert link.wait_finished(timeout_s=10) == 77
        t_end = time.time()
    start = link.stats["trace_start_epoch_s"]
    # semantics, not speed: the start is the send (not the configuration 1.5 s before it), and the 1-s trace
    # ran out no earlier than 1 s after it (generous upper bounds for a loaded machine)
    assert 0 <= start - t_send < 1.0, (start, t_send)
    assert 0.95 <= t_end - start < 5.0, (t_end, start)
    header = {k.strip(): v.strip() for k, v in (ln[2:].split(":", 1) for ln in log.read_text().splitlines()
                                                 if ln.startswith("# ") and ":" in ln)}
    assert abs(int(header["init timestamp"]) / 1000 - start) < 0.002, header


def test_a_link_process_that_dies_is_reported_and_cleaned_up():
    with pytest.warns(RuntimeWarning, match=r"link process of gt-.* failed \(status -9\)"):
        with LinkEmulator(12, 12, isolate_host=True) as link:
            os.kill(link.backend.proc.pid, signal.SIGKILL)
            link.backend.proc.wait()
    assert ours(link.run_name) == ([], [])


def test_teardown_delivers_what_the_delay_line_holds(tmp_path):
    """Closing the link right after the sender finished: the datagrams still in the 300-ms delay line
    (all of them) reach the host side before the link goes (issue 18: a server on the far side then
    sees its client's end). Counted from the capture of what the link wrote to the host's device."""
    from emulation.pcap import five_tuple, read_pcap
    n = 100
    with LinkEmulator(12, 12, delay_ms=300, isolate_host=True, pcap_dir=tmp_path) as link:
        link.emulated.call(udp_constant_stream, link.host.address, 9400, 2000, n, 200)
        t_closed = time.monotonic()
    took_s = time.monotonic() - t_closed
    delivered = [p for _t, p in read_pcap(tmp_path / "host.pcap")
                 if (five_tuple(p) or (0, 0, 0, 0))[3] == 9400]
    sent = [p for _t, p in read_pcap(tmp_path / "emulated.pcap") if (five_tuple(p) or (0, 0, 0, 0))[3] == 9400]
    print(f"teardown took {took_s:.2f} s; {len(delivered)} of {len(sent)} delivered")
    assert len(sent) == n
    assert len(delivered) == n
    assert link.stats["uplink_departed_packets"] >= n
