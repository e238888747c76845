"""How a scheme runs on real packets: its server side and its client side (Pantheon's wrappers, as one small
abstract class).

A :class:`SchemeRunner` turns a :class:`SchemeContext` (what the scheme is, where its server listens, how each
side runs ``genet``, how long) into the two command lines, :class:`Side` ``server(ctx)`` and ``client(ctx)``.
Each use case defines its runners once, beside its real-packet code (CC: ``sender/schemes.py``, kernel TCP
through iperf3 and our UDP sender; ABR: ``player/schemes.py``, our DASH server and the headless player), and its
:class:`foundation.usecase.UseCase` names the factory (``schemes``). Every tier that runs schemes on real packets
starts them from these command lines: ``genet emulate`` on an emulated link's two sides (``sender/runs.py``,
``player/emulate.py``) and ``genet deploy run`` on two SSH hosts (``deploy/campaign.py``). How a tier measures the
run (an emulated link's own logs, the sides' logs fetched from the hosts) is the tier's.

Standard library only (the runtime install imports this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Side:
    """One side of a run: its command line and the base name of its logs (NAME.out / NAME.err / NAME.rc)."""

    argv: list[str]
    name: str


@dataclass(frozen=True)
class SchemeContext:
    """What a scheme's two sides need, wherever they run.

    scheme_name: as the user wrote it (``cubic``, ``const:5``, ``models/cc/genet.onnx``, ``bba``)
    scheme_kind: ``kernel``, ``const``, ``onnx`` (CC); ``abr-baseline``, ``abr-onnx`` (ABR)
    scheme_value: the kernel algorithm, the rate, the model's path as the client side sees it, the baseline name
    server_genet / client_genet: how each side runs ``genet`` (an argv prefix: the pushed venv's ``genet``, or
        ``python -m app.cli``)
    server_address: what the client connects to; bind_address: what the server listens on
    port: the server's port; duration_s: the run's length (CC)
    log_dir: where the sides write their logs ("" = their working directory)
    options: per scheme kind extras (CC: ``min_rtt_ms``, ``summary``, ``ready_file``, ``receiver_interval_s``;
        ABR: ``video`` args, ``chunks``, ``threads``, ``tcp_cc``, ``server_log``, ``quiet``)
    """

    scheme_name: str
    scheme_kind: str
    scheme_value: str
    server_genet: tuple[str, ...]
    client_genet: tuple[str, ...]
    server_address: str
    port: int
    duration_s: float = 0.0
    bind_address: str = "0.0.0.0"
    log_dir: str = ""
    options: Mapping = field(default_factory=dict)

    def log(self, name: str) -> str:
        """``name`` in :attr:`log_dir`."""
        return f"{self.log_dir.rstrip('/')}/{name}" if self.log_dir else name


class SchemeRunner:
    """One scheme kind's two sides. Subclasses set the class attributes and define :meth:`server` and
    :meth:`client`."""

    #: protocol the server listens on (its readiness check)
    proto = "tcp"
    #: the server side ends by itself after its client (iperf3 -s -1): it gets a grace period to write its
    #: report before it is stopped
    server_exits_itself = False
    #: files (besides NAME.out/.err/.rc) each side writes in its run directory
    client_files: tuple[str, ...] = ()
    server_files: tuple[str, ...] = ()
    #: the ``genet`` command the sides need (None: none, e.g. iperf3)
    genet_command: str | None = None

    def server(self, ctx: SchemeContext) -> Side:
        raise NotImplementedError(f"{type(self).__name__} has no server side")

    def client(self, ctx: SchemeContext) -> Side:
        raise NotImplementedError(f"{type(self).__name__} has no client side")


def url_host(address: str) -> str:
    """An address as a URL's host (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address else address


__all__ = ["Side", "SchemeContext", "SchemeRunner", "url_host"]
