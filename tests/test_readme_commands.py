"""Every shell command in README.md runs (issue 16: "every command in the README is run by a test").

How commands are recognised: every fenced block whose info string is ``bash`` is a list of shell commands
(the README's one ``python`` block is Python, not a command line). In such a block a line ending in ``\\``
continues on the next, ``#`` outside quotes starts a comment, ``;`` separates two commands, ``[...]`` is the
README's notation for optional arguments (dropped), and a leading ``sudo`` is dropped (the suite runs as
root). Nothing else is skipped: every recognised command is either run here or named in ``NOT_IN_CI`` /
``CHECKED_NOT_RUN`` below with the reason, and a test fails when one of those lists names a command the
README no longer has (so neither can rot either).

How they run: blocks that share a server (the browser player and the `genet player serve` before it) form a
group; groups run three at a time (``PARALLEL_GROUPS``), each in its own scratch folder laid out like a clone
alone (symlinks to the repository's folders; beside it a ``../shared`` holding only ``models/``, for the one
command that says it needs the paper's checkpoints; ``GENET_SHARED`` points there and ``GENET_OFFLINE=1``), so
the README's trace sets are the shipped samples (``traces/samples/...``), relative paths such as
``models/abr/genet.onnx`` and ``examples/campaign-cc.toml`` resolve as in the README, and every output lands in
the scratch folder, never in the repository (issue 32: the README's commands work from a clone alone). ``genet`` is the venv's, ``python`` this interpreter.
Placeholders the README leaves to the reader (``TRACE``, ``DIR``, ``WH``, ``model.onnx``, ``12mbps.mahi``)
are given real files (``PLACEHOLDERS``). Long commands keep every option they have but get a small budget
(``BUDGETS``: training steps, seconds of real-time emulation, traces per emulated set, campaign repetitions);
the quickstart (``demo.sh``) is run for real on a copy of ``examples/quickstart.toml`` with small budgets, and
``genet run examples/lb.toml`` on a copy of its config (``LB_RUN_BUDGET``).
Servers (``genet sender receive``, ``genet player serve``) start in the background for the commands after
them and must still be running when they are stopped. A README command that is misspelled, names a missing
file or option, or crashes fails its block.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, SHARED

README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent
HANG_GUARD_S = 900  # a hang guard only: a loaded machine is slow (no wall-clock asserts)

# Commands that cannot run in CI, and why (matched on the start of the README command, `sudo` dropped).
NOT_IN_CI = {
    "bash scripts/test.sh": "it is the test suite itself: CI runs exactly this command (.ci/run), so running it "
                            "from inside the suite would recurse",
}

# Commands the README says need material a clone does not have (matched anywhere in the command): that
# material under ../shared. Without it, their block skips with the reason.
NEEDS_SHARED = {"../shared/models/paper-abr": "models/paper-abr", "genet-paper.onnx": "models/paper-abr"}

# Benchmarks measure speed or fidelity over minutes of real time on a quiet machine (DEVELOPERS.md: speed is
# measured by benchmarks/, never in tests). CI checks that each script exists, parses, guards its entry point,
# imports cleanly and knows every option the README passes it; it does not run them.
CHECKED_NOT_RUN = "python benchmarks/"

# The README's placeholders and the real files they stand for (made by Scratch.placeholders).
PLACEHOLDERS = ("TRACE", "DIR", "WH", "model.onnx", "12mbps.mahi")

# Small budgets for the long commands: (start of the README command, {token: replacement}, tokens appended).
# Every option the README gives is kept; only numbers and trace sets shrink.
ONE_CC_TRACE = "one-cc-trace"    # the first Pantheon Ethernet trace (emulation runs in real time)
ONE_ABR_TRACE = "one-abr-trace"  # the first FCC validation trace
BUDGETS: list[tuple[str, dict[str, str], list[str]]] = [
    ("genet eval cc --policy bbr,cubic,const:5", {"--traces traces/samples/pantheon-ethernet":
                                                  f"--traces {ONE_CC_TRACE}"}, []),
    ("genet emulate shell", {"-t 20": "-t 3"}, []),
    ("genet sender send", {"--duration-s 30": "--duration-s 3"}, []),
    ("genet emulate cc --policy", {"--traces traces/samples/pantheon-ethernet": f"--traces {ONE_CC_TRACE}"},
     ["--duration-s", "3"]),
    ("genet emulate cc --flows", {}, ["--duration-s", "3"]),
    ("genet player make-video", {"--duration-s 32": "--duration-s 8"}, []),
    ("genet emulate abr --policy", {"--traces traces/samples/fcc-val": f"--traces {ONE_ABR_TRACE}"},
     ["--chunks", "2"]),
    ("genet emulate abr --player chromium", {}, ["--chunks", "2"]),
    ("genet deploy run examples/campaign-cc.toml", {"examples/campaign-cc.toml": "campaign-cc-small.toml"}, []),
    ("genet deploy run examples/campaign-lb.toml", {"examples/campaign-lb.toml": "campaign-lb-small.toml"}, []),
    ("genet eval lb --policy least_work,jsq --config rl3", {"-n 20": "-n 2"}, []),
    ("genet emulate lb --policy", {"-n 2": "-n 1", "--num-jobs 40": "--num-jobs 10"}, []),
    ("genet run examples/lb.toml", {"examples/lb.toml": "lb-small.toml"}, []),
    ("genet train cc --method genet --baseline bbr --steps", {"--steps 720000": "--steps 1200"},
     ["--rounds", "1", "--trials", "1", "--random-trials", "1", "--envs-per-trial", "1", "--n-envs", "2",
      "--steps-per-update", "400", "--no-progress"]),
    ("genet train cc --method genet --baseline bbr,cubic", {},
     ["--steps", "1200", "--rounds", "1", "--trials", "1", "--random-trials", "1", "--envs-per-trial", "1",
      "--n-envs", "2", "--steps-per-update", "400", "--no-progress"]),
    ("genet train cc --method udr", {}, ["--steps", "800", "--n-envs", "2", "--steps-per-update", "400",
                                         "--no-progress"]),
    ("genet train lb --method genet", {"--steps 200000": "--steps 2048", "--rounds 4": "--rounds 1"},
     ["--trials", "1", "--random-trials", "1", "--envs-per-trial", "1", "--n-envs", "4", "--steps-per-update",
      "1024", "--no-progress"]),
    ("genet train abr --agent dagger", {}, ["--steps", "1536", "--n-envs", "4", "--steps-per-update", "384",
                                           "--no-progress"]),
    ("genet train abr --method", {"--steps 6000000": "--steps 1536"},
     ["--rounds", "1", "--trials", "1", "--random-trials", "1", "--envs-per-trial", "1", "--n-envs", "4",
      "--steps-per-update", "384", "--no-progress"]),
]

# The quickstart's small budget (demo.sh runs `genet run examples/quickstart.toml`; the test runs the same
# script on a copy of that config with these values). Dropped from the copy, to keep CI time: [deploy] (the
# README's deploy block runs every deploy command, test_run_pipeline.py the deploy stage) and the UDR
# policies (the same train/export path as the Genet ones, and as test_run_pipeline.py's UDR run).
QUICKSTART_BUDGET = {
    ("abr", "policies", "genet"): {"steps": 768, "rounds": 1, "trials": 1, "random_trials": 1,
                                   "envs_per_trial": 1, "n_envs": 4, "steps_per_update": 384},
    ("cc", "policies", "genet"): {"steps": 1200, "rounds": 1, "trials": 1, "random_trials": 1, "envs_per_trial": 1,
                                  "n_envs": 2, "steps_per_update": 400},
    ("traces", "ethernet-30"): {"n": 2},
    ("traces", "cc-rl3"): {"n": 2},
    ("traces", "fcc-emu"): {"n": 1},
    ("traces", "cellular-emu"): {"n": 1},
    ("abr", "emulate"): {"chunks": 1, "policies": ["genet"]},
    ("cc", "emulate"): {"duration_s": 2, "policies": ["genet"]},
    ("abr", "simulate"): {"traces": ["fcc-emu"]},
    ("cc", "simulate"): {"traces": ["cc-rl3"]},
}
# `genet run examples/lb.toml` runs on a copy of that config with these values (every stage still runs).
LB_RUN_BUDGET = {
    ("lb", "policies", "udr"): {"steps": 2048, "n_envs": 4, "steps_per_update": 1024},
    ("lb", "simulate"): {"n": 2},
    ("lb", "emulate"): {"n": 1, "jobs": 10},
}
# Servers: a command the README ends with `&` runs in the background; so do these two, which the README
# shows as commands for a terminal of their own.
SERVERS = ("genet sender receive", "genet player serve")


@dataclass
class Command:
    text: str           # as the README writes it (continuations joined, comment and optional [...] dropped)
    tokens: list[str]   # without a trailing `&`

    @property
    def background(self) -> bool:
        return self.text.endswith(" &") or self.text.startswith(SERVERS)


@dataclass
class Block:
    line: int           # the README line of the block's opening fence
    commands: list[Command] = field(default_factory=list)

    @property
    def id(self) -> str:
        first = self.commands[0].text.split()
        return f"L{self.line}-" + "-".join(t.replace("/", "-") for t in first[:3] if re.fullmatch(r"[\w./-]+", t))


def _split_commands(logical: str) -> list[list[str]]:
    lex = shlex.shlex(logical, posix=True, punctuation_chars=";&")
    lex.whitespace_split = True
    lex.commenters = "#"
    commands, cur = [], []
    for tok in lex:
        if tok in (";", "&"):
            commands.append(cur + (["&"] if tok == "&" else []))
            cur = []
        else:
            cur.append(tok)
    commands.append(cur)
    return [c for c in commands if c]


def _drop_optional(tokens: list[str]) -> list[str]:
    out, depth = [], 0
    for tok in tokens:
        opens, closes = tok.startswith("["), tok.endswith("]")
        if opens:
            depth += 1
        if depth == 0:
            out.append(tok)
        if closes and depth:
            depth -= 1
    return out


def readme_blocks(text: str | None = None) -> list[Block]:
    lines = (README.read_text() if text is None else text).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start, body = m.group(1), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang != "bash":
            continue
        block, logical = Block(line=start), ""
        for raw in body + [""]:
            logical += raw
            if raw.rstrip().endswith("\\"):
                logical = logical.rstrip()[:-1] + " "
                continue
            for tokens in _split_commands(logical):
                tokens = _drop_optional(tokens)
                if tokens[:1] == ["sudo"]:
                    tokens = tokens[1:]
                if tokens:
                    amp = tokens[-1] == "&"
                    tokens = tokens[:-1] if amp else tokens
                    block.commands.append(Command(shlex.join(tokens) + (" &" if amp else ""), tokens))
            logical = ""
        if block.commands:
            blocks.append(block)
    return blocks


def _replace(tokens: list[str], old: str, new: str) -> list[str]:
    o, n = old.split(), new.split()
    for k in range(len(tokens) - len(o) + 1):
        if tokens[k:k + len(o)] == o:
            return tokens[:k] + n + tokens[k + len(o):]
    for k, tok in enumerate(tokens):  # inside one quoted argument (sh -c '...')
        if re.search(rf"(^|\s){re.escape(old)}(\s|$)", tok):
            return tokens[:k] + [re.sub(rf"(^|\s){re.escape(old)}(\s|$)", rf"\g<1>{new}\g<2>", tok)] + tokens[k + 1:]
    raise AssertionError(f"budget {old!r} -> {new!r} does not match the README command {shlex.join(tokens)!r}")


def budgeted(cmd: Command, cwd: Path) -> list[str]:
    tokens = list(cmd.tokens)
    for prefix, repl, extra in BUDGETS:
        if cmd.text.startswith(prefix):
            for old, new in repl.items():
                for path in (t for t in old.split() if "/" in t or t.endswith(".toml")):
                    assert (cwd / path).exists(), f"README command {cmd.text!r} names {path}, which does not exist"
                tokens = _replace(tokens, old, new)
            tokens += extra
    return tokens


def _children_cpu_s() -> float:
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    """A TCP socket listens on the port (read from /proc/net/tcp*, so nothing connects: `iperf3 -s -1`
    would take a probe connection for its one test)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with status {proc.returncode} before listening")
        if _listening(port):
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout_s:.0f} s")


class Scratch:
    """A scratch clone alone: the repository's folders as symlinks, a ../shared with only the paper's models
    beside it (no traces, no video: what a user has), outputs stay here."""

    def __init__(self, root: Path):
        self.dir = root / "repo"
        self.dir.mkdir()
        for entry in REPO.iterdir():
            if entry.name in (".git", "demo-output", "runs", "results") or (entry.name.startswith(".") and entry.name != ".venv"):
                continue
            (self.dir / entry.name).symlink_to(entry)
        (root / "shared").mkdir()
        if (SHARED / "models").is_dir():
            (root / "shared" / "models").symlink_to((SHARED / "models").resolve())
        self.servers: list[tuple[Command, subprocess.Popen, Path]] = []
        self.ports: dict[str, int] = {"9000": _free_port(), "8000": _free_port()}
        self.env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                        PYTHONDONTWRITEBYTECODE="1", GENET_SHARED=str(root / "shared"), GENET_OFFLINE="1")
        self.env.pop("GENET_TRACES_DIR", None)
        self.env.pop("GENET_VIDEO_DIR", None)
        self.placeholders: dict[str, str] = {}

    def path(self, p: str) -> Path:
        return self.dir / p

    def make_placeholders(self) -> None:
        samples = REPO / "traces" / "samples"
        fcc = sorted((samples / "fcc-val").iterdir())
        eth = sorted((samples / "pantheon-ethernet").rglob("*.json"))
        (self.path(ONE_ABR_TRACE)).mkdir()
        shutil.copy(fcc[0], self.path(ONE_ABR_TRACE) / fcc[0].name)
        (self.path(ONE_CC_TRACE)).mkdir()
        shutil.copy(eth[0], self.path(ONE_CC_TRACE) / eth[0].name)
        # 12 Mbit/s in Mahimahi's format: one 1500-byte delivery opportunity per ms (the file loops).
        self.path("12mbps.mahi").write_text("".join(f"{ms}\n" for ms in range(1, 1001)))
        shutil.copy(REPO / "models" / "cc" / "genet.onnx", self.path("model.onnx"))
        self.placeholders = {"TRACE": fcc[0].name, "DIR": ONE_CC_TRACE}
        campaign = (REPO / "examples" / "campaign-cc.toml").read_text()
        campaign = re.sub(r"(?m)^repetitions = \d+", "repetitions = 1", campaign)
        campaign = re.sub(r"(?m)^duration_s = \d+", "duration_s = 3", campaign)
        self.path("campaign-cc-small.toml").write_text(campaign)
        campaign = (REPO / "examples" / "campaign-lb.toml").read_text()
        campaign = re.sub(r"(?m)^repetitions = \d+", "repetitions = 1", campaign)
        campaign = re.sub(r"(?m)^jobs = \d+", "jobs = 30", campaign)
        self.path("campaign-lb-small.toml").write_text(campaign)
        lb = tomllib.loads((REPO / "examples" / "lb.toml").read_text())
        for path, values in LB_RUN_BUDGET.items():
            node = lb
            for key in path:
                node = node[key]
            node.update(values)
        self.path("lb-small.toml").write_text(_toml(lb))

    def resolve(self, cmd: Command, block: Block) -> list[str]:
        tokens = budgeted(cmd, self.dir)
        out = []
        for tok in tokens:
            if tok == "TRACE" or tok.endswith("/TRACE"):
                tok = tok[:-len("TRACE")] + self.placeholders["TRACE"]
            elif tok == "DIR":
                # DIR is a trace folder: a CC one for `emulate cc`, an ABR one for `emulate abr`
                tok = ONE_ABR_TRACE if "abr" in cmd.tokens else ONE_CC_TRACE
            elif tok == "WH":
                tok = str(self.wheelhouse())
            for port, free in self.ports.items():
                tok = tok.replace(f":{port}", f":{free}")
            tok = tok.replace("10.0.0.1:", "127.0.0.1:")  # the README's remote receiver: here, loopback
            out.append(tok)
        for k, tok in enumerate(out):
            if tok == "--port" and out[k + 1] in self.ports:
                out[k + 1] = str(self.ports[out[k + 1]])
            if tok == "--bind" and out[k + 1] == "0.0.0.0":
                out[k + 1] = "127.0.0.1"  # test traffic stays on loopback
        if out[0] == "genet":
            out[0] = str(VENV_BIN / "genet")
        elif out[0] == "python":
            out[0] = sys.executable
        return out

    _wheelhouse: Path | None = None

    def wheelhouse(self) -> Path:
        """WH: the runtime wheels genet needs, for hosts without a package index (as the deploy stage gathers)."""
        if self._wheelhouse is None:
            from deploy.push import build_wheel
            wh = self.dir / "WH"
            wheel = build_wheel(self.dir / "dist")
            dl = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d",
                                 str(wh), str(wheel)], capture_output=True, text=True, timeout=600)
            if dl.returncode != 0:
                pytest.skip(f"cannot gather the runtime wheels for WH: {dl.stderr.strip()[-300:]}")
            for w in wh.glob("genet_testbed-*"):
                w.unlink()
            self._wheelhouse = wh
        return self._wheelhouse

    def run(self, cmd: Command, block: Block) -> None:
        argv = self.resolve(cmd, block)
        where = f"README.md block at line {block.line}: {cmd.text}\n  ran: {shlex.join(argv)}"
        if cmd.background:
            log = self.dir / f"server-{len(self.servers)}.log"
            proc = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                    start_new_session=True)
            port = {"serve": lambda: int(argv[argv.index("--port") + 1]), "iperf3": lambda: 5201}
            try:
                for word, get in port.items():
                    if word in argv:
                        _wait_port(get(), proc, cmd.text)
                        break
                else:
                    time.sleep(1.0)  # a UDP receiver: nothing to connect to
            except AssertionError as e:
                raise AssertionError(f"{where}\n{e}\n{log.read_text()[-3000:]}") from None
            if proc.poll() is not None:
                raise AssertionError(f"{where}\nexited with {proc.returncode}\n{log.read_text()[-3000:]}")
            self.servers.append((cmd, proc, log))
            return
        t0, c0 = time.monotonic(), _children_cpu_s()
        r = subprocess.run(argv, cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=HANG_GUARD_S)
        print(f"[readme] {time.monotonic() - t0:6.1f} s wall {_children_cpu_s() - c0:6.1f} s CPU  {cmd.text[:100]}")
        assert r.returncode == 0, f"{where}\nexit status {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    def stop_servers(self, later: list[Block] = ()) -> list[str]:
        """Stop the background commands no later block needs (one that uses its port: the browser player
        plays from the `genet player serve` of the block before); return what went wrong with them."""
        problems, kept = [], []
        for cmd, proc, log in self.servers:
            text = cmd.text
            port = cmd.tokens[cmd.tokens.index("--port") + 1] if "--port" in cmd.tokens else None
            if port and proc.poll() is None and any(f":{port}" in c.text for b in later for c in b.commands):
                kept.append((cmd, proc, log))
                continue
            if proc.poll() is not None:  # finished by itself (`iperf3 -s -1`): fine if it succeeded
                if proc.returncode != 0:
                    problems.append(f"{text}: exited with status {proc.returncode}\n{log.read_text()[-2000:]}")
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                problems.append(f"{text}: did not stop on SIGTERM")
        self.servers = kept
        return problems


_AST_LOCK = threading.Lock()


def _parse_script(script: Path) -> ast.Module:
    """``ast.parse`` one thread at a time: CPython 3.11 keeps the AST converter's recursion depth in one
    interpreter-wide counter, so two threads parsing at once can fail with "SystemError: AST constructor
    recursion depth mismatch" (the counter of python/cpython#106905; it failed this test once in CI)."""
    with _AST_LOCK:
        return ast.parse(script.read_text(), filename=str(script))


def check_benchmarks(cmds: list[Command], cwd: Path) -> None:
    """Benchmarks: each exists, parses, guards its entry point and knows the README's options; then all of
    them are imported in one interpreter (their imports resolve; nothing runs: their entry points are guarded)."""
    scripts = []
    for cmd in cmds:
        script = cwd / cmd.tokens[1]
        assert script.is_file(), f"README names {cmd.tokens[1]}, which does not exist"
        tree = _parse_script(script)
        guarded = any(isinstance(n, ast.If) and "__name__" in ast.unparse(n.test) for n in tree.body)
        assert guarded, f"{script.name} has no `if __name__ == '__main__'` guard"
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        for opt in (t for t in cmd.tokens[2:] if t.startswith("--")):
            assert any(opt in s for s in strings), f"README passes {opt} to {script.name}, which has no such option"
        scripts.append(str(script))
    code = ("import runpy, sys\nfor s in sys.argv[1:]:\n    sys.path.insert(0, s.rsplit('/', 1)[0])\n"
            "    runpy.run_path(s, run_name='readme_check')\n")
    r = subprocess.run([sys.executable, "-c", code, *dict.fromkeys(scripts)], cwd=cwd, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"a benchmark does not import:\n{r.stderr[-3000:]}"


def quickstart_small(scratch: Scratch) -> Path:
    """A copy of examples/quickstart.toml with the quickstart's small budget (QUICKSTART_BUDGET)."""
    cfg = tomllib.loads((REPO / "examples" / "quickstart.toml").read_text())
    for path, values in QUICKSTART_BUDGET.items():
        node = cfg
        for key in path:
            node = node[key]
        node.update(values)  # keys the quickstart leaves at their defaults are added; `genet run` validates them
    cfg.pop("deploy", None)
    cfg["cc"].pop("deploy", None)
    cfg["abr"].pop("deploy", None)
    for use_case in ("abr", "cc"):
        cfg[use_case]["policies"].pop("udr")
    out = scratch.dir / "quickstart-small.toml"
    out.write_text(_toml(cfg))
    return out


def _toml(cfg: dict, prefix: str = "") -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)
    scalars = [f"{k} = {val(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    text = (f"[{prefix}]\n" if prefix and scalars else "") + "".join(s + "\n" for s in scalars)
    for k, v in cfg.items():
        if isinstance(v, dict):
            key = k if re.fullmatch(r"[\w-]+", k) else val(k)
            text += _toml(v, f"{prefix}.{key}" if prefix else key)
    return text


BLOCKS = readme_blocks()


def _served_ports(block: Block) -> set[str]:
    """The ports the block's background commands listen on (README numbering)."""
    return {c.tokens[c.tokens.index("--port") + 1] for c in block.commands if c.background and "--port" in c.tokens}


def block_groups(blocks: list[Block]) -> list[list[Block]]:
    """Blocks in README order, a block that talks to a port served by an earlier block joining that block's
    group (the browser player plays from the `genet player serve` of the block before). Groups are
    independent: each runs in its own scratch checkout."""
    groups: list[list[Block]] = []
    for b in blocks:
        for g in groups:
            if any(f":{port}" in c.text for blk in g for port in _served_ports(blk) for c in b.commands):
                g.append(b)
                break
        else:
            groups.append([b])
    return groups


#: Blocks run three groups at a time (2 cores: the real-time blocks — browser, campaign, emulation — mostly wait
#: while the CPU-bound ones — training, the quickstart — compute; nothing here asserts a time). The longest
#: groups start first.
PARALLEL_GROUPS = 3
LONG_FIRST = ("chromium", "demo.sh", "testbed", "train", "make-video", "sender")


def run_block(block: Block, scratch: Scratch, later: list[Block]) -> None:
    """Every command of one README block, in order, in ``scratch``; raises on the first failure (or skips)."""
    if os.geteuid() != 0 and any("emulate" in c.tokens or "testbed" in c.tokens for c in block.commands):
        pytest.skip("emulation and the SSH testbed need root")
    needs = {"chromium": "chromium", "make-video": "ffmpeg"}
    for c in block.commands:
        for word, material in NEEDS_SHARED.items():
            if word in c.text and not (scratch.dir.parent / "shared" / material).exists():
                pytest.skip(f"{c.text.split(' -o ')[0]} needs ../shared/{material}, which is not here (the README "
                            f"says where it comes from)")
        for word, program in needs.items():
            if word in c.text and shutil.which(program) is None:
                pytest.skip(f"{program} is not installed (scripts/provision.sh installs it best effort)")
    benchmarks = [c for c in block.commands if c.text.startswith(CHECKED_NOT_RUN)]
    if benchmarks:
        check_benchmarks(benchmarks, scratch.dir)
    try:
        for cmd in block.commands:
            if any(cmd.text.startswith(p) for p in NOT_IN_CI) or cmd in benchmarks:
                continue
            if cmd.text.startswith("bash scripts/demo.sh"):
                # demo.sh forwards options after the output folder to `genet run`; the config is the
                # quickstart's own with a small budget, passed through the documented GENET_DEMO_CONFIG
                small = quickstart_small(scratch)
                argv = ["bash", "scripts/demo.sh", str(scratch.dir / "demo-output")]
                t0 = time.monotonic()
                r = subprocess.run(argv, cwd=scratch.dir, env=dict(scratch.env, GENET_DEMO_CONFIG=str(small)),
                                   capture_output=True, text=True, timeout=HANG_GUARD_S)
                print(f"[readme] {time.monotonic() - t0:6.1f} s wall  {cmd.text[:100]} (quickstart-small.toml)")
                assert r.returncode == 0, f"{cmd.text}\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
                assert (scratch.dir / "demo-output" / "report" / "index.html").is_file(), r.stdout[-3000:]
                dry = subprocess.run([str(VENV_BIN / "genet"), "run", "examples/quickstart.toml", "--dry-run"],
                                     cwd=scratch.dir, env=scratch.env, capture_output=True, text=True, timeout=300)
                assert dry.returncode == 0, f"the quickstart's own config: {dry.stdout[-2000:]}{dry.stderr[-2000:]}"
            else:
                scratch.run(cmd, block)
    finally:
        problems = scratch.stop_servers(later=later)
    assert not problems, "\n".join(problems)


def _run_group(group: list[Block], root: Path) -> dict[int, BaseException | None]:
    """One group in its own scratch checkout: each block's outcome (None: it ran), keyed by README line."""
    outcomes: dict[int, BaseException | None] = {}
    scratch = Scratch(root)
    try:
        scratch.make_placeholders()
        for k, block in enumerate(group):
            try:
                run_block(block, scratch, group[k + 1:])
                outcomes[block.line] = None
            except BaseException as e:  # AssertionError, pytest's Skipped/Failed: re-raised in the block's test
                outcomes[block.line] = e
    finally:
        scratch.stop_servers()
        if any("testbed" in c.tokens for b in group for c in b.commands):
            subprocess.run([str(VENV_BIN / "genet"), "deploy", "testbed", "down", "--out", "tb"], cwd=scratch.dir,
                           capture_output=True, timeout=300)
    return outcomes


@pytest.fixture(scope="module")
def block_outcomes(tmp_path_factory):
    """Runs every block once (groups side by side, PARALLEL_GROUPS at a time) and hands each test its block's
    outcome. The `[readme]` lines print each command's wall time (CPU figures are the whole process's)."""
    from concurrent.futures import ThreadPoolExecutor
    groups = sorted(block_groups(BLOCKS), key=lambda g: -max((sum(w in c.text for w in LONG_FIRST)
                                                               for b in g for c in b.commands), default=0))
    with ThreadPoolExecutor(PARALLEL_GROUPS) as pool:
        futures = [pool.submit(_run_group, g, tmp_path_factory.mktemp("readme")) for g in groups]
        outcomes: dict[int, BaseException | None] = {}
        for f in futures:
            outcomes.update(f.result())
    return outcomes


def test_the_readme_has_commands_and_every_list_here_names_one_it_has():
    texts = [c.text for b in BLOCKS for c in b.commands]
    assert len(texts) > 40, texts
    for prefix in list(NOT_IN_CI) + [p for p, _, _ in BUDGETS]:
        assert any(t.startswith(prefix) for t in texts), f"{prefix!r} is listed here but not in README.md"
    assert any(t.startswith(CHECKED_NOT_RUN) for t in texts)


def test_no_readme_command_needs_shared_material_unless_it_says_so():
    """Issue 32: the README's commands run from a clone alone; one that needs ../shared says so in the
    README (a comment on its line) and is listed in NEEDS_SHARED, so its block skips with the reason."""
    lines = README.read_text().splitlines()
    for b in BLOCKS:
        for c in b.commands:
            if "../shared" in c.text or "genet-paper.onnx" in c.text:
                assert any(w in c.text for w in NEEDS_SHARED), c.text
            if "../shared" in c.text:
                line = next(ln for ln in lines if "../shared" in ln and c.tokens[1] in ln)
                assert "# needs" in line, f"README: {line!r} must say what it needs"


def test_the_parser_follows_the_readme_notation():
    (b,) = readme_blocks("x\n```bash\ngenet a --x 1 [--y Y] \\\n   --z 2   # note; not a command\n"
                         "python one.py; sudo python two.py [--q]\niperf3 -s -1 &   # server\n"
                         "sh -c 'a; b # c'\n```\n```python\nprint(1)\n```\n")
    assert [c.tokens for c in b.commands] == [["genet", "a", "--x", "1", "--z", "2"], ["python", "one.py"],
                                              ["python", "two.py"], ["iperf3", "-s", "-1"], ["sh", "-c", "a; b # c"]]
    assert [c.background for c in b.commands] == [False, False, False, True, False]


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs(block: Block, block_outcomes):
    """Every command of one README block runs (ids: README line of the block and its first command)."""
    outcome = block_outcomes[block.line]
    if outcome is not None:
        raise outcome


def test_blocks_that_share_a_server_run_in_one_group():
    groups = block_groups(BLOCKS)
    assert sum(len(g) for g in groups) == len(BLOCKS)
    (player,) = [g for g in groups if any("player serve" in c.text for b in g for c in b.commands)]
    assert any("--browser chromium" in c.text for b in player for c in b.commands), [b.id for b in player]
