"""The ``genet`` command line: one entry point, its commands declared by the modules that hold them.

Every module in :data:`SUBCOMMAND_MODULES` has a ``COMMANDS`` tuple of :class:`foundation.commands.Group` and
:class:`foundation.commands.Command` declarations, each by its path (``("traces", "gen")``, ``("emulate",
"abr")``); :data:`COMMANDS` here declares the groups that span the use cases (``eval``, ``train``).
:func:`commands` reads them all into one :class:`~foundation.commands.CommandTree`, which checks them and
builds the argparse tree; a module may add a command to a group another module declares, in any module
order. ``--help`` lists the commands in the order they are first declared (this file's, then the modules'
in :data:`SUBCOMMAND_MODULES` order).

Declaring must stay cheap: heavy imports (torch, onnxruntime, numba kernels, matplotlib) belong inside the
command functions, so ``genet --help`` is instant. :func:`main` adds the options of the one command it runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys

from foundation.commands import CommandTree, Group, declarations_of
from foundation.helpformat import HelpFormatter

#: Modules that declare commands (a module not present yet is skipped).
SUBCOMMAND_MODULES = [
    "traces.cli",
    "genet.abr.cli",
    "genet.cc.cli",
    "genet.lb.cli",
    "genet.train_cli",
    "emulation.cli",
    "sender.cli",
    "deploy.cli",
    "player.cli",
    "balancer.cli",
    "app.demo",
    "app.run.cli",
    "app.study.cli",
]

_EVAL = "evaluate policies in simulation (eval abr, eval cc)"
_TRAIN = "train RL policies with PPO: UDR, the Genet curriculum, CL1-3 (train abr, train cc)"
#: The command groups with one command per use case (the use cases' modules declare ``eval abr``...).
COMMANDS = (
    Group(("eval",), help=_EVAL, description=_EVAL, metavar="USE_CASE"),
    Group(("train",), help=_TRAIN, description=_TRAIN, metavar="USE_CASE"),
)

DESCRIPTION = ("genet-testbed: train network-adaptation policies (ABR, CC) in simulation with the "
               "Genet curriculum and evaluate them on emulated and real networks.\n"
               "Units are in option names (_ms, _s, _mbps); `genet COMMAND --help` explains each command.")


@functools.lru_cache(maxsize=1)
def commands() -> CommandTree:
    """Every declared command of this build (read from :data:`SUBCOMMAND_MODULES`; no parser is built)."""
    declared = declarations_of(sys.modules[__name__])
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # this part of the product is not installed/written yet
            raise
        declared += declarations_of(module)
    return CommandTree(declared)


def build_parser(only: list[str] | tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The ``genet`` parser: every command with its options, or with ``only`` (a command's path) the
    options of that command alone (the others' parsers stay empty; what :func:`main` parses with)."""
    parser = argparse.ArgumentParser(prog="genet", description=DESCRIPTION, formatter_class=HelpFormatter)
    commands().build(parser, formatter_class=HelpFormatter, only=only)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``genet`` command; returns its exit status. ``argv`` None: this process's own command line (the
    ``genet`` script, ``python -m app.cli``), and the process exits when this returns (see :func:`_before_exit`);
    a list: a call from Python (tests, ``genet demo``) that goes on afterwards."""
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=commands().select(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from foundation.runmeta import command_context
    try:
        with command_context(["genet", *argv]):  # for run-metadata.json
            status = int(args.func(args) or 0)
        if as_program:
            _before_exit()
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `genet ... | head`: the reader left; no traceback, and none at exit either
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # one-line errors for bad input (GenetError); tracebacks with GENET_DEBUG=1
        import os

        from foundation.errors import GenetError
        # OSError for a path the user gave (no such file, permission denied) names that path.
        clear = (GenetError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
        if os.environ.get("GENET_DEBUG") or not isinstance(exc, clear):
            raise
        print(f"genet: error: {exc}", file=sys.stderr)
        return 1


def _before_exit() -> None:
    """The command has finished and the process exits next: move every object to the garbage collector's
    permanent generation (``gc.freeze``), so the collections of the interpreter's shutdown do not walk them.
    After a simulator's kernels loaded they are ~10^5 objects (numba's typing and lowering registries), and those
    walks took ~0.1 s of CPU, a tenth of a 50-episode ``genet eval lb``. What exit still does: atexit handlers
    (logging's flush, temporary folders), the standard streams' flush, and freeing what module teardown
    releases (a file object's last reference dropped: closed and flushed); what it no longer does: collect
    reference cycles still alive at exit (Python never promised their finalizers at exit; a command's outputs are
    closed before it returns)."""
    import gc
    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
