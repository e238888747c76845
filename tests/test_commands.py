"""Commands register through one mechanism (issue 26): each module declares its commands by path
(foundation/commands.py), app/cli.py builds the one argparse tree from the declarations in any module order,
``registered()`` answers from the declarations, and no product code reaches into argparse's internals."""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys

import pytest

from conftest import REPO
from foundation.commands import Command, CommandDeclarationError, CommandTree, Group

#: argparse's private names: what the old `emulate abr`/`emulate cc` registration and `registered()` used.
PRIVATE_ARGPARSE = re.compile(r"argparse\._\w|_SubParsersAction|\._(actions|subparsers|option_string_actions|"
                              r"name_parser_map|registries|positionals|optionals|action_groups|"
                              r"mutually_exclusive_groups)\b")


def _product_files():
    packages = sorted(p.parent for p in REPO.glob("*/__init__.py") if p.parent.name != "tests")
    assert {p.name for p in packages} >= {"foundation", "traces", "genet", "emulation", "sender", "player",
                                          "deploy", "app"}
    return [f for pkg in packages for f in sorted(pkg.rglob("*.py"))]


def test_no_product_code_reaches_into_argparse_internals():
    # the pattern finds what the old code did (sender/cli.py, player/cli.py, app/run/plan.py)
    assert PRIVATE_ARGPARSE.search("group = next((a for a in em._actions if isinstance(a, "
                                   "argparse._SubParsersAction)), None)")
    assert not PRIVATE_ARGPARSE.search("sub = parser.add_subparsers(dest='command'); n_actions = 3")
    found = [f"{f.relative_to(REPO)}:{i}: {line.strip()}" for f in _product_files()
             for i, line in enumerate(f.read_text().splitlines(), 1) if PRIVATE_ARGPARSE.search(line)]
    assert not found, "\n".join(found)


@pytest.fixture
def fresh_commands(monkeypatch):
    """app.cli's command tree read again (after the test too: it may have changed SUBCOMMAND_MODULES)."""
    import app.cli
    app.cli.commands.cache_clear()
    yield app.cli
    monkeypatch.undo()
    app.cli.commands.cache_clear()


def _children(tree: CommandTree, prefix: tuple) -> list[str]:
    return [p[-1] for p in tree.paths() if p[:-1] == prefix]


@pytest.mark.parametrize("order", ["reversed", "shuffled-0", "shuffled-1"])
def test_the_tree_does_not_depend_on_module_order(fresh_commands, monkeypatch, order):
    cli = fresh_commands
    normal = cli.commands()
    modules = list(cli.SUBCOMMAND_MODULES)
    if order == "reversed":
        modules.reverse()
    else:
        random.Random(int(order[-1])).shuffle(modules)
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", modules)
    cli.commands.cache_clear()
    tree = cli.commands()
    assert set(tree.paths()) == set(normal.paths())
    for path in normal.paths():  # each group holds the same commands (listed in the modules' order)
        assert sorted(_children(tree, path)) == sorted(_children(normal, path)), path
    # the commands that other modules add to `emulate` parse whichever module comes first
    from player.cli import cmd_emulate_abr
    from sender.cli import cmd_emulate_cc
    parser = cli.build_parser()
    args = parser.parse_args(["emulate", "cc", "--traces", "T", "--out", "O", "--policy", "bbr"])
    assert args.func is cmd_emulate_cc and args.traces == "T" and args.policy == ["bbr"]
    args = parser.parse_args(["emulate", "abr", "--traces", "T", "--jobs", "2"])
    assert args.func is cmd_emulate_abr and args.jobs == 2 and args.backend == "netns"


def test_emulate_lists_its_own_commands_then_those_of_the_sender_and_the_player():
    from app.cli import commands
    assert _children(commands(), ("emulate",)) == ["shell", "link-stats", "flow-stats", "cleanup", "cc",
                                                   "selfcheck", "calibrate", "abr", "lb"]
    assert _children(commands(), ("deploy", "testbed")) == ["up", "down"]
    assert _children(commands(), ("eval",)) == ["abr", "cc", "lb"]


def test_registered_answers_from_the_declarations_without_building_a_parser(fresh_commands, monkeypatch):
    def no_parsers(*args, **kwargs):
        raise AssertionError("registered() built an argparse parser")
    monkeypatch.setattr(argparse.ArgumentParser, "add_subparsers", no_parsers)
    from app.run import plan
    assert plan.registered("emulate", "cc") and plan.registered("deploy", "testbed", "up")
    assert plan.registered("eval") and plan.registered("eval", "lb") and not plan.registered("eval", "video")
    assert not plan.registered("nothing")


def _ok(parser):
    parser.add_argument("--x", type=int, default=1)


def _run(args):
    return 0


def test_bad_declarations_are_refused_naming_the_module():
    cases = [
        ([("m1", Command(("a",), "h", _ok, _run)), ("m2", Command(("a",), "h", _ok, _run))],
         r"m2: `genet a` is declared twice \(also by m1\)"),
        ([("m1", Command(("emulate", "lb"), "h", _ok, _run))],
         r"m1: `genet emulate lb` is in `genet emulate`, which is not declared"),
        ([("m1", Command(("a",), "h", _ok, _run)), ("m2", Command(("a", "b"), "h", _ok, _run))],
         r"m2: `genet a b` is in `genet a`, which is a command, not a group"),
        ([("m1", Command(("a", "--b"), "h", _ok, _run))], r"m1: bad command path"),
        ([("m1", Command((), "h", _ok, _run))], r"m1: bad command path"),
        ([("m1", "not a declaration")], r"m1: COMMANDS holds"),
    ]
    for declared, message in cases:
        with pytest.raises(CommandDeclarationError, match=message):
            CommandTree(declared)


def test_a_group_declared_after_its_commands_is_listed_where_it_is_first_named():
    tree = CommandTree([("m1", Command(("g", "b"), "b", _ok, _run)), ("m1", Command(("top",), "t", _ok, _run)),
                        ("m2", Command(("g", "a"), "a", _ok, _run)), ("m2", Group(("g",), "group g"))])
    assert tree.paths() == [("g",), ("g", "b"), ("g", "a"), ("top",)]
    parser = argparse.ArgumentParser(prog="t")
    tree.build(parser)
    assert parser.parse_args(["g", "a", "--x", "3"]).x == 3
    assert parser.parse_args(["g"]).func(None) == 2  # a group alone prints its help, status 2


PARSE_CASES = [
    ["eval", "abr", "--traces", "T", "--policy", "bba,mpc", "--seed", "3"],
    ["eval", "cc", "--config", "rl1", "--policy", "bbr"],
    ["train", "cc", "--method", "genet", "--steps", "100"],
    ["train", "abr"],
    ["traces", "gen", "cc", "-o", "out", "--format", "csv"],
    ["emulate", "shell", "--uplink", "12mbps", "--downlink", "12mbps", "--", "true"],
    ["deploy", "testbed", "up", "--out", "tb"],
    ["sender", "send", "--to", "127.0.0.1:9", "--policy", "const:1", "--duration-s", "1"],
    ["models", "ship", "--dry-run"],
    ["run", "c.toml", "--dry-run"],
    ["emulate"],
    [],
]


@pytest.mark.parametrize("argv", PARSE_CASES, ids=lambda a: " ".join(a) or "(none)")
def test_main_parses_with_only_its_command_as_with_the_whole_tree(argv):
    """genet's main() adds the options of the one command it runs; the namespace is the same."""
    from app.cli import build_parser, commands
    path = commands().select(argv)
    assert path == tuple(argv[:len(path)])
    whole, alone = vars(build_parser().parse_args(argv)), vars(build_parser(only=path).parse_args(argv))
    if path and isinstance(commands()[path], Group):  # print-the-help functions of two parsers
        assert alone.pop("func").__qualname__ == whole.pop("func").__qualname__
    assert alone == whole


def test_genet_help_and_the_declarations_load_no_numpy():
    code = ("import sys, app.cli\n"
            "app.cli.commands()\n"
            "try:\n    app.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'traces.io', 'foundation.runmeta') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
    assert "usage: genet [-h] COMMAND ..." in res.stdout


def test_every_command_module_declares_and_none_registers():
    import importlib

    from app.cli import SUBCOMMAND_MODULES
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(name)
        assert isinstance(module.COMMANDS, tuple) and module.COMMANDS, name
        assert not hasattr(module, "register"), name


def test_python_m_player_runs_the_player_commands_alone(capsys):
    from player.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m player serve [-h]")
    with pytest.raises(SystemExit) as exc:
        main([])  # a command is required
    assert exc.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["abr"])  # `genet emulate abr` is not a player command
    assert "invalid choice: 'abr'" in capsys.readouterr().err
