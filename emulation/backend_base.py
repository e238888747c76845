"""What the backends share: a link driven by one child process, with two endpoints.

``ProcessLink`` gives ``running``, ``wait_finished`` and ``close_endpoints``;
a backend sets ``self.proc`` (the process whose end is the link's end),
``self.emulated`` and ``self.host``.
"""

from __future__ import annotations

import subprocess


class ProcessLink:
    proc: subprocess.Popen | None = None
    emulated = None
    host = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_finished(self, timeout_s: float | None = None) -> int | None:
        """Wait for the link process to end by itself (``once``: the trace ended; status 77);
        None when it is still running after ``timeout_s`` seconds (or never started)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def close_endpoints(self) -> None:
        """End the commands started on both sides."""
        for ep in (self.emulated, self.host):
            if ep is not None:
                ep.close()
