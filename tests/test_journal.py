"""The one results journal (foundation/journal.py): torn last lines, fsync, damaged lines, concurrent appends, a
writer SIGKILLed mid-line; the one run-folder lock: a second holder is refused at once naming the PID, the
lock goes with its holder (SIGKILL too), and every command that writes a run folder takes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from conftest import REPO
from foundation.errors import BadInputError, GenetRuntimeError
from foundation.journal import LOCK_FILE, Journal, run_folder_lock


def _lines(path: Path) -> list[dict]:
    """Every line of the file, parsed: fails if any line is not a whole JSON object."""
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(x) for x in data.decode("ascii").splitlines()]


def _py(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, **kw)


# -------------------------------------------------------------------------------------------- journal
def test_a_torn_last_line_is_ignored_then_cut_away_and_every_record_is_there_once(tmp_path):
    path = tmp_path / "results.jsonl"
    j = Journal(path)
    for i in range(3):
        j.append({"key": {"i": i}, "value": i * 1.5})
    with open(path, "ab") as fh:  # a crash while writing record 3
        fh.write(b'{"key": {"i": 3}, "val')
    warnings = []
    j = Journal(path, warn=warnings.append)
    assert [r["key"]["i"] for r in j.records] == [0, 1, 2] and j.torn_tail and j.skipped == []
    assert len(warnings) == 1 and "line 4 is cut short" in warnings[0] and str(path) in warnings[0]
    j.append({"key": {"i": 3}, "value": 4.5})  # the rerun records it again
    j.append({"key": {"i": 4}, "value": 6.0})
    again = Journal(path, warn=warnings.append)
    assert [r["key"]["i"] for r in again.records] == [0, 1, 2, 3, 4] and not again.torn_tail
    assert [r["key"]["i"] for r in _lines(path)] == [0, 1, 2, 3, 4]  # the fragment is gone, no glued line
    assert again.find(key={"i": 3}) == [{"key": {"i": 3}, "value": 4.5}]
    assert again.last(key={"i": 9}) is None and again.count() == 5
    assert set(again.index(lambda r: r["key"]["i"])) == {0, 1, 2, 3, 4}


def test_a_last_record_that_only_lacks_its_newline_is_kept(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}')
    j = Journal(path, warn=None)
    assert [r["a"] for r in j.records] == [1, 2] and not j.torn_tail
    j.append({"a": 3})
    assert [r["a"] for r in _lines(path)] == [1, 2, 3]


def test_only_a_torn_fragment_then_append(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"a": 1, "b": [1, 2')  # the very first write was cut
    j = Journal(path, warn=None)
    assert j.records == [] and j.torn_tail
    j.append({"a": 1})
    assert _lines(path) == [{"a": 1}]


def test_every_append_is_flushed_and_fsynced(tmp_path, monkeypatch):
    path = tmp_path / "j.jsonl"
    synced = []
    real = os.fsync

    def fsync(fd):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = "?"
        synced.append((target, os.fstat(fd).st_size))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    j = Journal(path)
    j.append({"n": 1})
    j.append({"n": 2})
    j.extend([{"n": 3}, {"n": 4}])
    mine = [size for target, size in synced if target == str(path)]
    assert len(mine) == 3  # one per append / extend, after the whole line(s) were written
    assert mine[-1] == path.stat().st_size and _lines(path) == [{"n": n} for n in (1, 2, 3, 4)]


def test_damaged_lines_anywhere_are_skipped_with_one_warning_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"n": 1}\n'
                     b'\xff\xfe{"n": 2}\n'  # not UTF-8
                     b'{"n": 3, "gl{"n": 4}\n'  # a fragment a pre-fix version glued a record onto
                     b'[1, 2]\n'  # JSON, not an object
                     b'\n'  # blank: ignored
                     + b"[" * 100_000 + b"\n"  # deeply nested
                     + b'{"n": 5}\n')
    j = Journal(path)
    assert [r["n"] for r in j.records] == [1, 5] and j.skipped == [2, 3, 4, 6] and not j.torn_tail
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"genet: warning: {path}: skipped 4 line(s)")
    assert "not UTF-8 (line 2)" in err and "not JSON (line 3)" in err and "not a JSON object (line 4)" in err
    j.append({"n": 6})  # appends after the damage, which stays for a person to look at
    assert path.read_bytes().endswith(b'{"n": 5}\n{"n": 6}\n')


@pytest.mark.parametrize("content", [b"policy,trace,qoe\nbba,a,1.0\n", b"\x89PNG\r\n\x1a\n\0\0", b"hello"])
def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=f"{path} is not a journal of genet results"):
        Journal(path)
    assert path.read_bytes() == content


def test_a_journal_record_is_a_dict(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    with pytest.raises(TypeError, match="a dict"):
        j.append(["not", "a", "dict"])
    with pytest.raises(TypeError):  # no silent str() of what JSON cannot hold, unless asked for
        j.append({"x": object()})
    Journal(tmp_path / "k.jsonl", json_default=str).append({"x": Path("/a")})
    assert _lines(tmp_path / "k.jsonl") == [{"x": "/a"}]
    assert not (tmp_path / "j.jsonl").exists() or (tmp_path / "j.jsonl").read_bytes() == b""


def test_concurrent_appends_from_two_processes_interleave_whole_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    code = """
        import sys
        from foundation.journal import Journal
        j = Journal(sys.argv[1])
        for i in range(150):
            j.append({"who": sys.argv[2], "i": i, "pad": sys.argv[2] * (1000 + 97 * i)})  # up to ~15 KB a line
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(path), who], cwd=REPO)
             for who in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=120) == 0
    rows = _lines(path)  # every line whole
    assert len(rows) == 300
    for who in ("a", "b"):
        assert [r["i"] for r in rows if r["who"] == who] == list(range(150))
        assert all(r["pad"] == who * (1000 + 97 * r["i"]) for r in rows if r["who"] == who)


def test_a_writer_sigkilled_mid_line_then_two_reruns_leave_every_record_once(tmp_path):
    """A real SIGKILL in the middle of a record's write() (the child writes half the line, then kills
    itself); two resuming reruns: each record exactly once, none redone by the second."""
    path = tmp_path / "j.jsonl"
    child = _py(f"""
        import os, signal
        import foundation.journal as gj
        j = gj.Journal({str(path)!r})
        for i in range(3):
            j.append({{"key": {{"run": i}}, "ok": True}})
        real = os.write
        def half_then_die(fd, data):
            real(fd, bytes(data[:len(data) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
        gj.os.write = half_then_die
        j.append({{"key": {{"run": 3}}, "ok": True, "pad": "x" * 5000}})
    """)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert not path.read_bytes().endswith(b"\n")  # torn
    redone = []
    for rerun in range(2):  # what a resuming command does: skip what the journal has, record the rest
        j = Journal(path, warn=None)
        for i in range(5):
            if not j.find(key={"run": i}):
                redone.append((rerun, i))
                j.append({"key": {"run": i}, "ok": True})
    assert redone == [(0, 3), (0, 4)]
    assert sorted(r["key"]["run"] for r in _lines(path)) == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------------------------- run-folder lock
def _holder(out: Path, command: str) -> subprocess.Popen:
    """A child process that holds ``out``'s lock until its stdin closes."""
    p = _py(f"""
        import sys
        from foundation.journal import run_folder_lock
        with run_folder_lock({str(out)!r}, {command!r}):
            print("held", flush=True)
            sys.stdin.read()
    """, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_holder_is_refused_at_once_naming_the_pid_and_the_lock_goes_with_its_holder(tmp_path):
    out = tmp_path / "demo-output"
    out.mkdir()
    first = _holder(out, "genet deploy run")
    try:
        info = json.loads((out / LOCK_FILE).read_text())
        assert info["pid"] == first.pid and info["command"] == "genet deploy run"
        with pytest.raises(GenetRuntimeError) as exc:
            with run_folder_lock(out, "genet eval cc"):
                pass
        assert str(exc.value) == (f"{out} is in use by PID {first.pid} (genet deploy run); wait for it or use "
                                  f"another --out")
    finally:
        first.stdin.close()
    assert first.wait(timeout=30) == 0
    with run_folder_lock(out, "genet eval cc"):  # released when the holder ended
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert (out / LOCK_FILE).read_text() == ""  # nobody holds it now
    killed = _holder(out, "genet run")
    killed.kill()  # SIGKILL: the kernel drops the lock with the process
    killed.wait(timeout=30)
    killed.stdin.close()
    with run_folder_lock(out, "genet eval abr"):
        pass


def test_nesting_in_one_thread_is_allowed_another_thread_is_refused(tmp_path):
    out = tmp_path / "o"
    errors = []
    with run_folder_lock(out, "genet run"):
        with run_folder_lock(out, "genet eval cc"):  # a command calling another in-process on its folder
            (out / "x").write_text("kept")
        t = threading.Thread(target=lambda: errors.append(_try_lock(out)))
        t.start()
        t.join()
    assert len(errors) == 1 and f"in use by PID {os.getpid()}" in errors[0]
    with run_folder_lock(out, "genet run"):  # released after the outer block
        pass
    assert (out / "x").read_text() == "kept"


def _try_lock(out: Path) -> str:
    try:
        with run_folder_lock(out, "thread"):
            return ""
    except GenetRuntimeError as exc:
        return str(exc)


def test_a_file_where_the_run_folder_should_be_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(BadInputError, match="f exists and is not a folder"):
        with run_folder_lock(tmp_path / "f", "genet eval cc"):
            pass
    assert (tmp_path / "f").read_text() == "mine"


def test_a_folder_the_lock_made_and_nothing_filled_is_removed_again(tmp_path):
    with run_folder_lock(tmp_path / "a" / "b", "genet eval cc"):
        pass  # e.g. the command stopped at bad input before writing anything
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    with run_folder_lock(tmp_path / "kept", "genet eval cc"):
        pass
    assert (tmp_path / "kept").is_dir()
    with run_folder_lock(tmp_path / "c", "genet eval cc") as out:
        (out / "results.csv").write_text("x")
    assert (tmp_path / "c" / "results.csv").is_file()


# every command that writes a run folder takes the lock (refused while another process holds it, before
# it writes anything there)
INV = ('[defaults]\nuser = "genet"\nkey_file = "id_test"\nport = 9\n[hosts.h1]\naddress = "127.0.0.1"\n'
       '[hosts.h2]\naddress = "127.0.0.2"\n[paths.p1]\nserver = "h1"\nclient = "h2"\n')  # loopback, were it contacted


def _command(name: str, tmp_path: Path, out: Path) -> list[str]:
    traces = tmp_path / "traces"
    traces.mkdir(exist_ok=True)
    (traces / "const3").write_text("".join(f"{t} 3.0\n" for t in range(0, 60)))
    if name == "eval abr":
        return ["eval", "abr", "--traces", str(traces), "--policy", "bba", "--no-progress", "--out", str(out)]
    if name == "eval cc":
        return ["eval", "cc", "--policy", "bbr", "--config", "rl1", "-n", "1", "--no-progress", "--out", str(out)]
    if name == "emulate abr":
        return ["emulate", "abr", "--policy", "bba", "--traces", str(traces), "--out", str(out)]
    if name == "emulate cc":
        return ["emulate", "cc", "--policy", "const:3", "--traces", str(traces), "--out", str(out)]
    if name == "deploy run":
        (tmp_path / "inv.toml").write_text(INV)
        (tmp_path / "c.toml").write_text('name = "c"\nuse_case = "cc"\nschemes = ["cubic"]\nrepetitions = 1\n')
        return ["deploy", "run", str(tmp_path / "c.toml"), "--inventory", str(tmp_path / "inv.toml"), "--accept-new",
                "--out", str(out)]
    if name == "run":
        (tmp_path / "run.toml").write_text('[run]\nname = "t"\n[traces.s]\ngen = "cc"\nrange = "rl1"\nn = 1\n'
                                           '[cc]\nbaselines = ["bbr"]\n[cc.simulate]\ntraces = ["s"]\n')
        return ["run", str(tmp_path / "run.toml"), "--out", str(out)]
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["eval abr", "eval cc", "emulate abr", "emulate cc", "deploy run", "run"])
def test_every_command_that_writes_a_run_folder_is_refused_while_another_holds_it(name, tmp_path, capsys):
    from app.cli import main
    out = tmp_path / "busy"
    holder = _holder(out, "genet emulate cc")
    try:
        rc = main(_command(name, tmp_path, out))
        assert sorted(os.listdir(out)) == [LOCK_FILE]  # nothing written by the refused command
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    err = capsys.readouterr().err
    assert rc == 1 and err == (f"genet: error: {out.resolve() if name == 'run' else out} is in use by PID "
                               f"{holder.pid} (genet emulate cc); wait for it or use another --out\n")


def test_two_eval_cc_on_one_out_the_second_fails_at_once_and_the_lock_goes_with_a_sigkill(tmp_path):
    """Two real `genet eval cc` processes: the second is refused while the first holds the folder (stopped
    with SIGSTOP once it has journaled a run, so it is surely still there); the first is then SIGKILLed,
    and a third runs into the same folder and resumes what the first journaled."""
    out = tmp_path / "o"
    genet = [sys.executable, "-m", "app.cli", "eval", "cc", "--policy", "bbr", "--config", "rl1", "--seed", "1",
             "-n", "400", "--no-progress", "--no-plots", "--out", str(out)]
    first = subprocess.Popen(genet, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / "results.jsonl"
    try:
        for _ in range(30000):  # until the first has journaled a run (bounded: 30000 polls of 2 ms)
            if journal.is_file() and journal.read_bytes().count(b"\n") >= 1:
                first.send_signal(signal.SIGSTOP)
                break
            assert first.poll() is None, "the first command ended before it journaled a run"
            threading.Event().wait(0.002)
        assert first.poll() is None, "the first command ended before it could be stopped"
        second = subprocess.run(genet, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert second.stderr == (f"genet: error: {out} is in use by PID {first.pid} (genet eval cc); wait for it "
                                 f"or use another --out\n")
    finally:
        first.kill()  # SIGKILL (a stopped process too)
        first.wait(timeout=30)
    done = len(Journal(journal, warn=None).records)
    third = subprocess.run(genet, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr
    rows = Journal(journal, warn=None).records
    assert 1 <= done < 400 and len(rows) == 400
    assert len({(r["policy"], r["trace"]) for r in rows}) == 400  # none twice: the first's runs were kept
