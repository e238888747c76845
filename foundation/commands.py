"""How a command of the ``genet`` command line is declared, and the one place that builds the parser from the
declarations (standard library only).

A module that contributes commands lists them in a module-level ``COMMANDS`` tuple, each by its path in the
command tree::

    COMMANDS = (
        Group(("emulate",), help="trace-driven emulated links", description="..."),
        Command(("emulate", "shell"), help="run CMD behind an emulated link", description="...",
                arguments=_shell_arguments, run=cmd_shell),
    )

- :class:`Group`: a command that only holds others (``genet emulate``, ``genet deploy testbed``); run alone it
  prints its help and exits with 2. The name of the command chosen in it is ``args.<group>_command``.
- :class:`Command`: a command that runs. ``arguments(parser)`` adds its options to the parser it is given
  (``parser.set_defaults`` for extra defaults); ``run(args)`` takes the parsed namespace and returns the exit
  status.

A path names where a command sits, not who declares its group: ``sender/cli.py`` declares
``("emulate", "cc")`` in the group ``emulation/cli.py`` declares, and the modules may be read in any order.
:class:`CommandTree` checks the declarations (a path once, the parent of every path a declared group), answers
:meth:`CommandTree.registered` from them alone, and builds the argparse tree through argparse's public API
(``add_subparsers``/``add_parser``). Commands are listed in ``--help`` in the order they are first named
(a group at its own declaration or its first command's, whichever comes first).

Declaring stays cheap: a command module imports nothing heavy at import time, and ``arguments`` runs only
when the parser is built (heavy imports go inside ``run``). :meth:`CommandTree.build` with ``only`` adds
the arguments of that one command and leaves the others' parsers empty, which is all ``genet`` needs to
parse one command line (``genet --help`` then reads no command's options).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence, Union

CommandPath = tuple  # of command names, e.g. ("emulate", "abr")


@dataclass(frozen=True)
class Group:
    """``genet PATH...`` holds other commands (listed under ``metavar`` in its usage line)."""

    path: CommandPath
    help: str
    description: str | None = None
    metavar: str = "COMMAND"


@dataclass(frozen=True)
class Command:
    """``genet PATH... [OPTIONS]``: ``arguments(parser)`` adds the options, ``run(args) -> int`` runs it."""

    path: CommandPath
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


Declaration = Union[Group, Command]


class CommandDeclarationError(ValueError):
    """A ``COMMANDS`` declaration is inconsistent (a bug of the declaring module; the message names it)."""


def _group_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return show


class CommandTree:
    """The declared commands, checked, in listing order; builds the argparse tree.

    ``declarations``: (source, declaration) pairs, source being the declaring module's name (for errors).
    """

    def __init__(self, declarations: Iterable[tuple[str, Declaration]]):
        self._decl: dict[CommandPath, Declaration] = {}
        self._source: dict[CommandPath, str] = {}
        self._children: dict[CommandPath, list[str]] = {(): []}
        for source, decl in declarations:
            if not isinstance(decl, (Group, Command)):
                raise CommandDeclarationError(f"{source}: COMMANDS holds {decl!r}, not a Group or Command")
            path = tuple(decl.path)
            if not path or not all(isinstance(n, str) and n and not n.startswith("-") and " " not in n
                                    for n in path):
                raise CommandDeclarationError(f"{source}: bad command path {decl.path!r} (a tuple of names)")
            if path in self._decl:
                raise CommandDeclarationError(f"{source}: `genet {' '.join(path)}` is declared twice "
                                              f"(also by {self._source[path]})")
            self._decl[path], self._source[path] = decl, source
            for i in range(1, len(path) + 1):  # listing order: where a name first appears
                siblings = self._children.setdefault(path[:i - 1], [])
                if path[i - 1] not in siblings:
                    siblings.append(path[i - 1])
                self._children.setdefault(path[:i], [])
        for path in self._decl:
            for i in range(1, len(path)):
                parent = self._decl.get(path[:i])
                if not isinstance(parent, Group):
                    what = "is a command, not a group" if parent else "is not declared (as a Group)"
                    raise CommandDeclarationError(
                        f"{self._source[path]}: `genet {' '.join(path)}` is in `genet {' '.join(path[:i])}`, "
                        f"which {what}")

    def registered(self, *path: str) -> bool:
        """Whether ``genet PATH...`` is a command or a group of this build."""
        return tuple(path) in self._decl

    def paths(self) -> list[CommandPath]:
        """Every declared path, parents before children, in listing order."""
        out: list[CommandPath] = []

        def walk(prefix: CommandPath) -> None:
            for name in self._children[prefix]:
                out.append(prefix + (name,))
                walk(prefix + (name,))
        walk(())
        return out

    def __getitem__(self, path: Sequence[str]) -> Declaration:
        return self._decl[tuple(path)]

    def select(self, argv: Sequence[str]) -> CommandPath:
        """The longest path that ``argv`` starts with (``()`` when it names no command)."""
        path: CommandPath = ()
        for token in argv:
            if token not in self._children.get(path, ()):
                break
            path = path + (token,)
        return path

    def build(self, parser: argparse.ArgumentParser, *, formatter_class: type = argparse.HelpFormatter,
              only: Sequence[str] | None = None, dest: str = "command", metavar: str = "COMMAND",
              required: bool = False) -> None:
        """Add the tree's commands below ``parser`` (all options, or with ``only`` those of that path alone);
        ``required``: a command must be given (argparse's error otherwise)."""
        self._attach(parser, (), formatter_class, None if only is None else tuple(only), dest, metavar, required)

    def _attach(self, parser: argparse.ArgumentParser, prefix: CommandPath, fmt: type, only: CommandPath | None,
                dest: str, metavar: str, required: bool = False) -> None:
        sub = parser.add_subparsers(dest=dest, metavar=metavar, required=required)
        for name in self._children[prefix]:
            path = prefix + (name,)
            decl = self._decl[path]
            p = sub.add_parser(name, help=decl.help, description=decl.description, formatter_class=fmt)
            if isinstance(decl, Group):
                p.set_defaults(func=_group_help(p))
                self._attach(p, path, fmt, only, f"{name}_command", decl.metavar)
            else:
                if only is None or only == path:
                    decl.arguments(p)
                p.set_defaults(func=decl.run)


def declarations_under(prefix: Sequence[str], declared: Iterable[tuple[str, Declaration]]
                       ) -> list[tuple[str, Declaration]]:
    """The declarations below ``prefix``, their paths relative to it (a command line of one group alone,
    as ``python -m player``)."""
    prefix = tuple(prefix)
    n = len(prefix)
    return [(source, replace(decl, path=tuple(decl.path)[n:])) for source, decl in declared
            if tuple(decl.path)[:n] == prefix and len(decl.path) > n]


def declarations_of(module: object) -> list[tuple[str, Declaration]]:
    """A command module's ``COMMANDS``, each with the module's name."""
    name = getattr(module, "__name__", repr(module))
    commands = getattr(module, "COMMANDS", None)
    if not isinstance(commands, (tuple, list)):
        raise CommandDeclarationError(f"{name}: no COMMANDS tuple of Group/Command declarations")
    return [(name, decl) for decl in commands]


def run_standalone(module: object, group: str, argv: Sequence[str] | None = None) -> int:
    """``python -m GROUP COMMAND``: the commands ``module`` declares under ``group`` alone, as ``genet GROUP``
    has them (what a remote host runs needs nothing else of the command line); a user's error is one line."""
    import sys

    from foundation.errors import GenetError
    from foundation.helpformat import HelpFormatter
    parser = argparse.ArgumentParser(prog=f"python -m {group}", formatter_class=HelpFormatter)
    tree = CommandTree(declarations_under((group,), declarations_of(module)))
    tree.build(parser, formatter_class=HelpFormatter, dest=f"{group}_command", required=True)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (GenetError, FileNotFoundError) as exc:
        print(f"genet: error: {exc}", file=sys.stderr)
        return 1


__all__ = ["Group", "Command", "CommandTree", "CommandDeclarationError", "declarations_of", "declarations_under",
           "run_standalone"]
