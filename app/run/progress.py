"""One progress display for a whole ``genet run``: stage, item, elapsed time and ETA.

On a terminal it is one status line redrawn in place (with the running command's last output line);
otherwise (a pipe, a log file, CI) it prints plain lines when an item starts and ends. Items run at once
(``genet run --jobs N``) print plain lines only, each prefixed by the item's name.
"""

from __future__ import annotations

import sys
import threading
import time


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """ETA = the remaining items' estimates, scaled by how the finished items' real times compared with
    their estimates (with a 30-s prior at 1x, clamped to 0.25-4x), minus the running item's elapsed time."""

    def __init__(self, total_est_s: float, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.remaining_est = total_est_s
        self.done_est = 0.0
        self.done_real = 0.0
        self.stage = ""
        self.stage_pos = ""
        self.item = ""
        self.item_pos = ""
        self.item_est = 0.0
        self.item_t0 = 0.0
        self.last_line = ""
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._stop = threading.Event()
        if self.tty:  # redraw every second, also while the running command prints nothing
            threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw(force=True)

    #: seconds of pseudo-observation at ratio 1: a few quick items do not swing the ETA
    PRIOR_S = 30.0

    @property
    def scale(self) -> float:
        ratio = (self.done_real + self.PRIOR_S) / (self.done_est + self.PRIOR_S)
        return min(4.0, max(0.25, ratio))

    def eta_s(self) -> float:
        running = time.monotonic() - self.item_t0 if self.item else 0.0
        rest = self.remaining_est - (self.item_est if self.item else 0.0)
        current = max(self.item_est * self.scale - running, 0.0) if self.item else 0.0
        return rest * self.scale + current

    def _emit(self, text: str) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r\x1b[K" + text + "\n")
                self._draw(force=True)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        if not self.tty or not self.item:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        status = (f"[{self.stage_pos} {self.stage}] {self.item_pos} {self.item} · "
                  f"{fmt_s(now - self.item_t0)} · ETA {fmt_s(self.eta_s())}")
        if self.last_line:
            status += " · " + self.last_line
        try:
            import shutil
            width = shutil.get_terminal_size((100, 20)).columns
        except Exception:  # noqa: BLE001
            width = 100
        self.stream.write("\r\x1b[K" + status[: max(width - 1, 20)])
        self.stream.flush()

    def stage_start(self, stage: str, pos: str, n_items: int) -> None:
        self.stage, self.stage_pos = stage, pos
        if not n_items:
            self._emit(f"== stage {pos} {stage}: nothing to do for this config")
            return
        self._emit(f"== stage {pos} {stage}: {n_items} item{'s' if n_items != 1 else ''} "
                   f"(run elapsed {fmt_s(time.monotonic() - self.t0)}, ETA {fmt_s(self.eta_s())})")

    def note(self, text: str) -> None:
        self._emit(text)

    def item_start(self, name: str, pos: str, est_s: float, what: str) -> None:
        self.item, self.item_pos, self.item_est = name, pos, est_s
        self.item_t0 = time.monotonic()
        self.last_line = ""
        if self.tty:
            self._emit(f"  {self.stage} {pos} {name}: {what}")
        else:
            self._emit(f"  {self.stage} {pos} {name}: {what} (est {fmt_s(est_s * self.scale)}, "
                       f"ETA {fmt_s(self.eta_s())})")

    def item_output(self, line: str) -> None:
        line = line.strip()
        if line:
            self.last_line = line
            with self._lock:
                self._draw()

    def item_end(self, est_s: float, status: str, wall_s: float | None = None) -> None:
        name = self.item
        self.item = ""
        self.item_ended(name, est_s, status, wall_s)

    # items of a stage at once (`genet run --jobs N`): a plain line when each starts and ends, prefixed by its
    # name, never the in-place status line (``item`` stays empty; the ETA counts the running items in full)
    def item_began(self, name: str, pos: str, est_s: float, what: str) -> None:
        self._emit(f"  {self.stage} {pos} {name}: started: {what} (est {fmt_s(est_s * self.scale)})")

    def item_ended(self, name: str, est_s: float, status: str, wall_s: float | None = None) -> None:
        with self._lock:
            self.remaining_est -= est_s
            if wall_s is not None:
                self.done_est += est_s
                self.done_real += wall_s
        took = f" in {fmt_s(wall_s)}" if wall_s is not None else ""
        self._emit(f"  {self.stage} {name}: {status}{took}")

    def close(self) -> None:
        self._stop.set()
        if self.tty:
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
