"""player/: content, the Flask server over real HTTP (loopback), the headless player, reliability."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from genet.abr.qoe import video_qoe
from genet.abr.video import Video, default_video, load_video
from player.abr import AbrDecider, AbrRequest
from player.client import PlayerConfig, play, read_log
from player.content import load_content, segment_path, write_sized_video
from player.server import ServerProcess

LADDER = (300, 750, 1200, 1850, 2850, 4300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def Server(video_dir, policy="bba", port=0, log=None):
    """`python -m player.server` on loopback (a real process), ended on exit."""
    return ServerProcess(video_dir, port=port, args=["--policy", policy] + (["--log", str(log)] if log else []))


def _get(port, path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, r


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    return write_sized_video(tmp_path_factory.mktemp("sized") / "video", None, n_chunks=6)


@pytest.fixture(scope="module")
def server(sized, tmp_path_factory):
    log = tmp_path_factory.mktemp("srvlog") / "server.jsonl"
    with Server(sized.root, policy="mpc", log=log) as s:
        s.log = log
        yield s


def test_sized_content_matches_table_and_mpd(sized):
    table = default_video().chunk_sizes_bytes[:, :6]
    assert np.array_equal(sized.video.chunk_sizes_bytes, table)
    for q in range(6):
        for k in range(6):
            assert (sized.root / segment_path(q, k, 6)).stat().st_size == table[q, k]
    mpd = ET.parse(sized.root / "manifest.mpd").getroot()
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    reps = mpd.findall(".//d:Representation", ns)
    assert sorted(int(r.get("bandwidth")) for r in reps) == [b * 1000 for b in LADDER]
    tmpl = mpd.find(".//d:SegmentTemplate", ns)
    assert tmpl.get("media") == "$RepresentationID$/$Number$.m4s" and tmpl.get("startNumber") == "1"
    assert mpd.get("mediaPresentationDuration") == "PT24.000S"
    assert load_content(sized.root).kind == "sized"
    # the simulator reads the same directory
    assert np.array_equal(load_video(sized.root).chunk_sizes_bytes, table)


def test_segments_have_exact_length_and_nothing_outside_is_served(server, sized, tmp_path):
    status, data, r = _get(server.port, "/" + segment_path(5, 0, 6))
    assert status == 200 and len(data) == int(r.getheader("Content-Length")) == sized.video.chunk_sizes_bytes[5, 0]
    assert _get(server.port, "/manifest.mpd")[0] == 200
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    link = sized.root / "escape.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    for path in ("/../secret.txt", "/video1/../../secret.txt", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
                 "//etc/passwd", "/escape.txt", "/video1/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/nonexistent.m4s",
                 "/video1"):
        status, data, _ = _get(server.port, path)
        assert status in (400, 404), (path, status)
        assert b"secret" not in data and b"root:" not in data
    assert _get(server.port, "/video1/%00")[0] in (400, 404)
    assert _get(server.port, "/health")[0] == 200  # still serving


def _req(**over):
    body = {"lastquality": 1, "buffer": 4.0, "RebufferTime": 0, "lastChunkStartTime": 1000.0,
            "lastChunkFinishTime": 1500.0, "lastChunkSize": 400000, "lastRequest": 0}
    body.update(over)
    return body


def test_abr_endpoint_rejects_malformed_posts_and_keeps_serving(server):
    bad = [b"not json", json.dumps([1, 2]).encode(), json.dumps({"buffer": 3}).encode(),
           json.dumps(_req(lastquality=9)).encode(), json.dumps(_req(buffer=-1)).encode(),
           json.dumps(_req(lastquality="x")).encode(), json.dumps(_req(lastRequest=1.5)).encode(),
           json.dumps(_req(lastChunkFinishTime=10.0)).encode(), json.dumps(_req(buffer=float("nan"))).encode()]
    for body in bad:
        status, data, _ = _get(server.port, "/abr", "POST", body)
        assert status == 400, body
        assert data.strip()
    status, data, _ = _get(server.port, "/abr", "POST", json.dumps({"buffer": 3}).encode())
    assert b"lastquality" in data
    status, data, _ = _get(server.port, "/abr?session=ok", "POST", json.dumps(_req()).encode())
    assert status == 200 and data.decode().strip() in {str(q) for q in range(6)}
    # end of video: REFRESH, as Pensieve's server
    status, data, _ = _get(server.port, "/abr?session=ok", "POST", json.dumps(_req(lastRequest=5)).encode())
    assert data == b"REFRESH"
    # dash.js end-of-load summaries are accepted
    assert _get(server.port, "/", "POST", json.dumps({"pastThroughput": [1]}).encode())[0] == 200


def test_sessions_keep_separate_state(server, sized):
    """Interleaved sessions get the decisions each would get alone (RobustMPC keeps a throughput history)."""
    fast = [_req(lastRequest=k, lastChunkSize=2_000_000, buffer=4.0 + 3 * k,
                 lastChunkFinishTime=1000.0 + 100 * (k + 1)) for k in range(4)]
    slow = [_req(lastRequest=k, lastChunkSize=150_000, buffer=2.0, lastChunkFinishTime=1000.0 + 3000 * (k + 1))
            for k in range(4)]

    def expected(seq):
        d = AbrDecider("mpc", sized.video)
        out = []
        for body in seq:
            r = AbrRequest.from_json(body, 6)
            m = d.measurement(r.lastquality, r.buffer, r.lastChunkSize, r.lastChunkFinishTime - r.lastChunkStartTime,
                              r.lastRequest, 0.0)
            out.append(d.decide(m))
        return out

    got = {"A": [], "B": []}
    for a, b in zip(fast, slow):
        got["A"].append(int(_get(server.port, "/abr", "POST", json.dumps(a).encode(), {"X-Session-Id": "A"})[1]))
        got["B"].append(int(_get(server.port, "/abr", "POST", json.dumps(b).encode(), {"X-Session-Id": "B"})[1]))
    assert got["A"] == expected(fast) and got["B"] == expected(slow)
    assert got["A"] != got["B"]
    records = [json.loads(x) for x in Path(server.log).read_text().splitlines()]
    assert any(r["event"] == "decision" and r["session"] == "A" for r in records)
    assert any(r["event"] == "segment" and r["status"] == 200 for r in records)


def test_headless_player_local_and_abr_server_modes(server, sized, tmp_path):
    for abr_server in (False, True):
        log = tmp_path / f"run-{abr_server}.jsonl"
        res = play(PlayerConfig(server.url, policy="mpc", abr_server=abr_server), log)
        assert res.status == "complete" and res.n_chunks == 6
        parsed = read_log(log)
        assert parsed["session"]["n_chunks"] == 6 and parsed["summary"]["status"] == "complete"
        chunks = parsed["chunks"]
        assert [c["chunk_index"] for c in chunks] == list(range(6)) and chunks[0]["quality"] == 1
        for c in chunks:
            assert c["bytes"] == sized.video.chunk_sizes_bytes[c["quality"], c["chunk_index"]]
            assert c["t_request_s"] <= c["t_first_byte_s"] <= c["t_last_byte_s"]
        v = video_qoe([c["bitrate_kbps"] for c in chunks], [c["rebuffer_s"] for c in chunks], first_bitrate_kbps=750)
        assert res.qoe == pytest.approx(v.qoe) and parsed["summary"]["bitrate_mbps"] == pytest.approx(v.bitrate_mbps)
        # the start-up counts as stall (simulator semantics); nothing else stalls on loopback
        assert chunks[0]["rebuffer_s"] > 0 and sum(c["rebuffer_s"] for c in chunks[1:]) < 0.05


def test_server_survives_clients_that_disconnect_mid_segment(server, sized):
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(f"GET /{segment_path(5, 1, 6)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(1000)
        s.close()
    status, data, _ = _get(server.port, "/" + segment_path(5, 1, 6))
    assert status == 200 and len(data) == sized.video.chunk_sizes_bytes[5, 1]


def _short_chunk_video(root: Path, n=14) -> Path:
    """1-s chunks (so a 3-s buffer cap paces the player: one request per second)."""
    base = default_video()
    v = Video(base.bitrates_kbps, base.chunk_sizes_bytes[:, :n] / 40.0, 1.0, "short")
    return write_sized_video(root, Video(v.bitrates_kbps, np.round(v.chunk_sizes_bytes), 1.0, "short")).root


def test_player_retries_through_a_server_restart_and_counts_the_wait_as_stall(tmp_path):
    root = _short_chunk_video(tmp_path / "short")
    port = _free_port()
    srv = Server(root, port=port)
    log = tmp_path / "restart.jsonl"
    result = {}
    t = threading.Thread(target=lambda: result.update(r=play(
        PlayerConfig(f"http://127.0.0.1:{port}/", policy="bba", max_buffer_s=3.0, give_up_s=20.0), log)))
    t.start()
    time.sleep(4.0)
    srv.stop()
    time.sleep(2.0)  # the player's buffer (<= 3 s) runs dry while the server is down
    srv2 = Server(root, port=port)
    t.join(60)
    srv2.stop()
    res = result["r"]
    assert res.status == "complete" and res.n_chunks == 14
    parsed = read_log(log)
    assert parsed["retries"] >= 1
    assert sum(c["retries"] for c in parsed["chunks"]) >= 1
    assert res.rebuffer_s - parsed["chunks"][0]["rebuffer_s"] > 0.5  # the outage shows up as stall


def test_player_gives_up_with_the_reason_and_a_killed_run_leaves_a_readable_log(tmp_path):
    port = _free_port()  # nothing listens
    log = tmp_path / "down.jsonl"
    t0 = time.monotonic()
    res = play(PlayerConfig(f"http://127.0.0.1:{port}/", give_up_s=1.5), log)
    assert res.status == "gave_up" and "unreachable" in res.reason and time.monotonic() - t0 < 10
    assert read_log(log)["summary"]["status"] == "gave_up"
    # kill -9 a player mid-video: every line written is whole JSON
    root = _short_chunk_video(tmp_path / "short")
    with Server(root) as srv:
        log2 = tmp_path / "killed.jsonl"
        p = subprocess.Popen([sys.executable, "-m", "player", "play", "--url", srv.url, "--max-buffer-s", "3",
                              "--log", str(log2), "--quiet"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not log2.is_file() or log2.read_text().count('"chunk"') < 3):
            time.sleep(0.1)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    lines = log2.read_text().splitlines()
    assert all(json.loads(x) for x in lines)
    parsed = read_log(log2)
    assert parsed["session"] is not None and len(parsed["chunks"]) >= 3 and parsed["summary"] is None


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="ffmpeg not installed (scripts/provision.sh)")
def test_encoded_video_tracks_the_ladder_and_plays(tmp_path):
    from player.content import make_encoded_video
    c = make_encoded_video(tmp_path / "enc", duration_s=8.0, codec="h264")
    sizes = c.video.chunk_sizes_bytes
    assert sizes.shape == (6, 2)
    nominal = np.array(LADDER, dtype=float)[:, None] * 1000 / 8 * 4.0
    assert np.all(np.abs(sizes / nominal - 1) < 0.35), sizes / nominal  # CBR: sizes follow the ladder
    assert np.all(np.diff(sizes, axis=0) > 0)
    assert load_content(c.root).kind == "encoded"
    assert np.array_equal(load_video(c.root).chunk_sizes_bytes, sizes)  # `genet eval abr --video DIR` replays it
    mpd = (c.root / "manifest.mpd").read_text()
    assert 'codecs="avc1.' in mpd and (c.root / "video1" / "Header.m4s").stat().st_size > 0
    with Server(c.root) as srv:
        res = play(PlayerConfig(srv.url, policy="bba"), tmp_path / "enc.jsonl")
    assert res.status == "complete" and res.n_chunks == 2


def _server_side_cc(port: int) -> set[str]:
    """The congestion control of the server's established connections on ``port`` (``ss -ti``)."""
    out = subprocess.run(["ss", "-Htin", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return {name for name in ("cubic", "bbr", "reno") if f" {name} " in f" {out} ".replace("\n", " ")}


@pytest.mark.parametrize("tcp_cc", ["reno", "cubic"])
def test_server_names_its_tcp_congestion_control(sized, tcp_cc):
    """Every connection the server accepts uses --tcp-cc (default cubic), never the machine's default
    (BBR on this machine); an algorithm the kernel refuses is a one-line error naming the allowed ones."""
    args = ["--tcp-cc", tcp_cc] if tcp_cc != "cubic" else []
    with ServerProcess(sized.root, args=args) as s:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        c.request("GET", "/manifest.mpd")
        assert c.getresponse().read()
        try:
            assert _server_side_cc(s.port) == {tcp_cc}
        finally:
            c.close()
    p = subprocess.run([sys.executable, "-m", "player.server", "--video", str(sized.root), "--port", "0",
                        "--tcp-cc", "no-such-cc"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "no-such-cc" in p.stderr and "allowed here" in p.stderr, p.stderr[-500:]
