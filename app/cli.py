"""The ``genet`` command line: one entry point, subcommands contributed by modules.

Each module in :data:`SUBCOMMAND_MODULES` exposes ``register(subparsers, groups)``:
``subparsers`` is the root ``argparse`` sub-parser action (add top-level
commands such as ``traces`` or ``emulate``), ``groups`` maps a command group
("eval", "train") to its own sub-parser action (add ``eval abr``,
``eval cc``...). A command sets ``func`` with ``set_defaults(func=...)``; the
function takes the parsed namespace and returns an exit status.

``register`` must stay cheap: heavy imports (torch, onnxruntime, numba
kernels, matplotlib) belong inside the command functions, so ``genet --help``
is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from foundation.helpformat import HelpFormatter

#: Modules that contribute subcommands (a module not present yet is skipped).
SUBCOMMAND_MODULES = [
    "traces.cli",
    "genet.abr.cli",
    "genet.cc.cli",
    "genet.train_cli",
    "emulation.cli",
    "sender.cli",
    "deploy.cli",
    "player.cli",
    "app.demo",
    "app.run.cli",
    "app.study.cli",
]

#: Command groups with sub-subcommands, and what their --help says.
GROUPS = {
    "eval": "evaluate policies in simulation (eval abr, eval cc)",
    "train": "train RL policies with PPO: UDR, the Genet curriculum, CL1-3 (train abr, train cc)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genet",
        description="genet-testbed: train network-adaptation policies (ABR, CC) in simulation with the "
                    "Genet curriculum and evaluate them on emulated and real networks.\n"
                    "Units are in option names (_ms, _s, _mbps); `genet COMMAND --help` explains each command.",
        formatter_class=HelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups = {}
    for name, help_text in GROUPS.items():
        gp = subparsers.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        groups[name] = gp.add_subparsers(dest=f"{name}_command", metavar="USE_CASE")
        gp.set_defaults(func=lambda args, _gp=gp: (_gp.print_help(), 2)[1])
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # this part of the product is not installed/written yet
            raise
        module.register(subparsers, groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from foundation.runmeta import command_context
    try:
        with command_context(["genet", *(sys.argv[1:] if argv is None else argv)]):  # for run-metadata.json
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one-line errors for bad input (GenetError); tracebacks with GENET_DEBUG=1
        import os

        from foundation.errors import GenetError
        # OSError for a path the user gave (no such file, permission denied) names that path.
        clear = (GenetError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
        if os.environ.get("GENET_DEBUG") or not isinstance(exc, clear):
            raise
        print(f"genet: error: {exc}", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
