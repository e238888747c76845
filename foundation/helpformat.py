"""The ``--help`` formatter every ``genet`` subcommand uses (standard library only).

Shows defaults and keeps description paragraphs as written. An option whose help already says its
default ("default: ...", "not given: ...") or whose default is None (nothing to show) gets no extra
"(default: ...)".
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown once, descriptions kept as written (see the module docstring)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        low = text.lower()
        if action.default is None or "default" in low or "not given" in low:
            return text
        return super()._get_help_string(action)
