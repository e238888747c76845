"""sender/iperf3.py, the one definition of iperf3: commands, readiness probe and the JSON parser, on the
real iperf3 over loopback (client and server reports), plus malformed and truncated reports."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from types import SimpleNamespace

import pytest

from emulation.endpoint import Endpoint
from sender import iperf3

pytestmark = pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _allowed() -> list[str]:
    from sender.kernel import allowed_algorithms
    return allowed_algorithms()


def test_commands_always_name_the_congestion_control():
    argv = iperf3.client_command("10.0.0.1", "cubic", 19.6, 5300, interval_s=0.2)
    assert argv == ["iperf3", "-c", "10.0.0.1", "-p", "5300", "-C", "cubic", "-t", "20", "-i", "0.2", "-J"]
    assert iperf3.server_command(5300, "10.0.0.2") == ["iperf3", "-s", "-1", "-p", "5300", "-B", "10.0.0.2"]
    assert iperf3.client_command("h", "bbr", 0.2)[-2:] == ["1", "-J"]  # -t takes whole seconds, at least 1
    with pytest.raises(ValueError, match="must be named"):
        iperf3.client_command("h", "", 5)


def test_run_and_parse_real_iperf3_on_loopback(tmp_path):
    cc = "cubic" if "cubic" in _allowed() else _allowed()[0]
    port = _free_port()
    lo = Endpoint("host", "127.0.0.1")
    link = SimpleNamespace(host=lo, emulated=Endpoint("emulated", "127.0.0.1"))
    rep = iperf3.run_over_link(link, cc, 1, port=port, json_path=tmp_path / "client.json")
    assert rep.congestion_control == cc and rep.server_finished is True
    assert rep.throughput_mbps > 1.0 and rep.sent_bytes > 0 and rep.retransmits >= 0
    assert 0.8 <= rep.duration_s <= 1.5
    assert rep.rtt_mean_ms is not None and 0 < rep.rtt_min_ms <= rep.rtt_mean_ms <= rep.rtt_max_ms
    assert rep.intervals and all(iv.rtt_ms is not None for iv in rep.intervals)
    # the file kept is the client's report, and parses to the same figures
    again = iperf3.read_report(tmp_path / "client.json")
    raw = json.loads((tmp_path / "client.json").read_text())
    assert again.throughput_mbps == pytest.approx(raw["end"]["sum_received"]["bits_per_second"] / 1e6)
    assert again.retransmits == raw["end"]["sum_sent"]["retransmits"]
    assert again.rtt_mean_ms == pytest.approx(raw["end"]["streams"][0]["sender"]["mean_rtt"] / 1000.0)
    row = rep.to_row()
    assert row["iperf3_throughput_mbps"] == rep.throughput_mbps and "iperf3_intervals" not in row


def test_server_report_with_intervals_and_the_listening_probe(tmp_path):
    port = _free_port()
    lo = Endpoint("host", "127.0.0.1")
    with pytest.raises(iperf3.Iperf3Error, match=f"127.0.0.1:{port} did not start listening"):
        iperf3.wait_listening(lo, port, "127.0.0.1", timeout_s=0.1)
    out = open(tmp_path / "server.json", "w")
    server = lo.popen(iperf3.server_command(port, "127.0.0.1", interval_s=0.5, json_report=True), stdout=out,
                      stderr=subprocess.DEVNULL)
    try:
        iperf3.wait_listening(lo, port, "127.0.0.1")
        iperf3.wait_listening(lo, port)  # any address
        res = lo.run(iperf3.client_command("127.0.0.1", _allowed()[0], 1, port), timeout_s=30)
        assert res.returncode == 0, res.stderr
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
        out.close()
    srv = iperf3.read_report(tmp_path / "server.json")
    assert srv.throughput_mbps > 1.0 and len(srv.intervals) >= 2
    assert all(iv.duration_s > 0 for iv in srv.intervals)


def test_malformed_truncated_and_failed_reports_give_clear_errors(tmp_path):
    with pytest.raises(iperf3.Iperf3Error, match=r"client.out: not complete JSON .*12 bytes"):
        iperf3.parse_report('{"start": {,', "client.out")
    with pytest.raises(iperf3.Iperf3Error, match="client.out: empty"):
        iperf3.parse_report("", "client.out")
    with pytest.raises(iperf3.Iperf3Error, match="not a JSON object"):
        iperf3.parse_report("[1, 2]", "x")
    with pytest.raises(iperf3.Iperf3Error, match="iperf3 reported an error: unable to connect"):
        iperf3.parse_report({"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server"}, "x")
    with pytest.raises(iperf3.Iperf3Error, match=r"x: incomplete iperf3 report: end.sum_received lacks"):
        iperf3.parse_report({"start": {}, "intervals": [], "end": {"sum_sent": {"bytes": 1}}}, "x")
    with pytest.raises(iperf3.Iperf3Error, match="missing"):
        iperf3.read_report(tmp_path / "nope.json")
    # a real report cut in the middle (a log fetched while still being written)
    port = _free_port()
    lo = Endpoint("host", "127.0.0.1")
    link = SimpleNamespace(host=lo, emulated=lo)
    iperf3.run_over_link(link, _allowed()[0], 1, port=port, json_path=tmp_path / "c.json")
    text = (tmp_path / "c.json").read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(iperf3.Iperf3Error, match=r"cut.json: not complete JSON"):
        iperf3.read_report(tmp_path / "cut.json")
