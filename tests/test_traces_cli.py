"""The `genet traces` command line, the dataset fetcher against a real local HTTP server."""

from __future__ import annotations

import functools
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading

import pytest

from conftest import REPO, shared_path
from app.cli import main
from traces import read_trace
from traces.datasets import DatasetError, fetch_archive, fetch_dataset, get_dataset, sha256_bytes


def run_cli(*argv: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "app.cli", *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_help_of_every_traces_command_explains_units():
    for cmd in (["traces", "--help"], ["traces", "convert", "--help"], ["traces", "gen", "--help"],
                ["traces", "stats", "--help"], ["traces", "plot", "--help"], ["traces", "fetch", "--help"]):
        code, out, _ = run_cli(*cmd)
        assert code == 0 and "usage: genet traces" in out
    _, out, _ = run_cli("traces", "--help")
    assert "Mbps" in out and "ms" in out


def test_stats_on_shared_sets_prints_sensible_figures(capsys):
    fcc = shared_path("traces", "abr", "fcc-val")
    assert main(["traces", "stats", str(fcc), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["count"] == 150
    assert 0.1 < stats["p10_bandwidth_mbps"] <= stats["median_bandwidth_mbps"] <= stats["p90_bandwidth_mbps"] < 20
    assert 40_000 < stats["total_duration_s"] < 60_000
    cell = shared_path("traces", "cc", "pantheon-cellular")
    assert main(["traces", "stats", str(cell)]) == 0
    out = capsys.readouterr().out
    assert "traces            177" in out and "one-way delay" in out


def test_gen_convert_stats_plot_pipeline(tmp_path, capsys):
    gen = tmp_path / "gen"
    assert main(["traces", "gen", "cc", "--range", "rl2", "-n", "4", "--seed", "3", "-o", str(gen)]) == 0
    files = sorted(gen.glob("*.json"))
    assert len(files) == 4
    assert main(["traces", "convert", str(gen), str(tmp_path / "mm"), "--to", "mahimahi"]) == 0
    mm = sorted((tmp_path / "mm").iterdir())
    assert len(mm) == 4
    for j, m in zip(files, mm):
        assert read_trace(m).mean_bandwidth_mbps == pytest.approx(read_trace(j).mean_bandwidth_mbps, rel=0.01)
    assert main(["traces", "plot", str(gen), "-o", str(tmp_path / "cdf.png")]) == 0
    assert main(["traces", "plot", str(files[0]), "-o", str(tmp_path / "one.png")]) == 0
    for png in ("cdf.png", "one.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_bad_input_gives_one_line_error_not_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1 oops\n")
    code, out, err = run_cli("traces", "stats", str(bad))
    assert code == 1 and f"{bad}:2:" in err and "Traceback" not in err
    code, _, err = run_cli("traces", "stats", str(tmp_path / "missing"))
    assert code == 1 and "missing" in err


@pytest.fixture()
def http_server(shared_dir):
    """A real HTTP server on loopback serving ../shared/traces (a dataset mirror)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_dir / "traces"))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


def test_fetch_downloads_verifies_and_resumes(tmp_path, http_server, shared_dir):
    base, _ = http_server
    dest = tmp_path / "data"
    out = fetch_dataset("norway-val", dest, base_url=base)
    ds = get_dataset("norway-val")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) == len(ds.files) == 74
    for p in files:
        assert p.read_bytes() == (shared_dir / "traces" / "abr" / "norway-val" / p.name).read_bytes()
    # resume: a damaged file is fetched again, intact ones are kept
    victim = files[0]
    victim.write_text("garbage")
    fetch_dataset("norway-val", dest, base_url=base)
    assert victim.read_bytes() == (shared_dir / "traces" / "abr" / "norway-val" / victim.name).read_bytes()
    # the CLI does the same for a nested set
    assert main(["traces", "fetch", "pantheon-ethernet", "--dest", str(dest), "--base-url", base]) == 0
    assert len(list((dest / "pantheon-ethernet").rglob("*.json"))) == len(get_dataset("pantheon-ethernet").files)


def test_fetch_rejects_bad_checksum_and_writes_nothing(tmp_path, http_server):
    base, _ = http_server
    mirror = tmp_path / "mirror" / "abr" / "fcc-val"
    mirror.mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "mirror"))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for rel in get_dataset("fcc-val").files:
            (mirror / rel).write_text("0 1\n1 1\n")  # right names, wrong content
        with pytest.raises(DatasetError, match="checksum mismatch"):
            fetch_dataset("fcc-val", tmp_path / "dest", base_url=f"http://127.0.0.1:{server.server_address[1]}")
        assert not any(p.is_file() for p in (tmp_path / "dest").rglob("*"))
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(DatasetError, match="unknown dataset"):
        get_dataset("nope")


def test_fetch_archive_checks_and_unpacks(tmp_path, http_server, shared_dir):
    base, server = http_server
    # build an archive of one shared set inside the served tree's temp copy
    buf = io.BytesIO()
    src = shared_dir / "traces" / "abr" / "fcc-val"
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for p in sorted(src.iterdir())[:5]:
            tf.add(p, arcname=f"fcc-val/{p.name}")
    data = buf.getvalue()
    served = tmp_path / "served"
    served.mkdir()
    (served / "fcc.tar.gz").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/fcc.tar.gz"
        with pytest.raises(DatasetError, match="checksum"):
            fetch_archive(url, tmp_path / "x", sha256="0" * 64)
        out = fetch_archive(url, tmp_path / "x", sha256=sha256_bytes(data))
        assert len(list((out / "fcc-val").iterdir())) == 5
    finally:
        srv.shutdown()
        srv.server_close()


def test_unreachable_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="download failed: http://127.0.0.1:9/"):
        fetch_dataset("fcc-val", tmp_path, base_url="http://127.0.0.1:9", timeout_s=2)


def test_manifest_checksums_match_the_shared_sets(shared_dir):
    from traces.datasets import build_manifest_entry, load_manifest
    for name, ds in load_manifest().items():
        assert build_manifest_entry(shared_dir / "traces" / ds.mirror_path) == ds.files, name
