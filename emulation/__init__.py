"""emulation/: trace-driven links with Mahimahi semantics (testbeds.md §1).

One interface, three backends: :class:`LinkEmulator` (a context manager
yielding the ``emulated`` and ``host`` endpoints) with ``netns`` (embedded
user-space link, default), ``mahimahi`` (mm-delay/mm-loss/mm-link) and
``mininet`` (htb bandwidth replay on a LinuxBridge).
"""

from emulation.config import EmulationError, QueueSpec, Schedule, load_schedule
from emulation.emulator import BACKENDS, LinkEmulator, open_link

__all__ = ["LinkEmulator", "open_link", "BACKENDS", "QueueSpec", "Schedule", "load_schedule", "EmulationError"]
