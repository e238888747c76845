"""The one error base of genet-testbed, at the bottom of the import graph (imports nothing).

Every error that means "the input is wrong" or "the environment cannot do this" derives from
:class:`GenetError`; the ``genet`` command line prints exactly those as one line
(``genet: error: ...``; ``GENET_DEBUG=1`` shows the traceback) and lets anything else — a bug —
raise with its traceback. Messages name where the problem is: the file and line, the field or
option, the host.

- :class:`BadInputError` (also a :class:`ValueError`): a value, option, file or model that is
  malformed or out of range. Subclasses: ``TraceFormatError``, ``ConfigSpaceError``,
  ``VideoFormatError``, ``CheckpointFormatError``, ``PolicyMismatchError``...
- :class:`GenetRuntimeError` (also a :class:`RuntimeError`): the machine or a remote side cannot do
  what was asked (a missing tool, no root, a download that failed). Subclasses: ``DatasetError``,
  ``EmulationError``...
- :class:`MissingExtraError`: a command needs an optional part of the install (``pip install
  'genet-testbed[sim]'``); the message names the extra.
"""

from __future__ import annotations


class GenetError(Exception):
    """Base of every error the command line reports as one line."""


class BadInputError(GenetError, ValueError):
    """A value, option, file or model is malformed or out of range (the message names which)."""


class GenetRuntimeError(GenetError, RuntimeError):
    """The machine, a tool or a remote side cannot do what was asked (the message says why)."""


class MissingExtraError(GenetError, ImportError):
    """A command needs an optional dependency group that is not installed."""

    def __init__(self, extra: str, what: str, missing: str | None = None):
        self.extra = extra
        self.missing = missing
        detail = f" ({missing} {'are' if ',' in missing else 'is'} not installed)" if missing else ""
        super().__init__(f"{what} needs the '{extra}' extra{detail}: "
                         f"pip install 'genet-testbed[{extra}]'")
