"""Python-side descriptions of the senders (what the simulation is built from)."""

from __future__ import annotations

from foundation.errors import BadInputError

from dataclasses import dataclass

import numpy as np

from genet.cc.senders import bbr, cubic, rate

KIND_RATE, KIND_CUBIC, KIND_BBR = 0, 1, 2


@dataclass(frozen=True)
class SenderSpec:
    """Base of the sender descriptions; ``kind`` selects the numba callbacks."""

    kind = -1
    name = "sender"

    def new_state(self, seed: int) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class RateSender(SenderSpec):
    """Paces at a fixed rate (changeable between runs, as Aurora does).

    rate_mbps: sending rate in Mbit/s of 1500-byte packets (e.g. 5.0)
    startup_window_packets: Aurora's "window" start-up: at most this many packets in flight until the first
        ACK, then the rate min(rate, window / first RTT) (:mod:`genet.cc.senders.rate`); 0 = none (0)
    min_rate_pps: the floor of that first-ACK rate, packets/s (Aurora's 5)
    """

    rate_mbps: float = 1.0
    startup_window_packets: float = 0.0
    min_rate_pps: float = 5.0
    kind = KIND_RATE
    name = "const"

    def __post_init__(self):
        if not (self.rate_mbps > 0 and np.isfinite(self.rate_mbps)):
            raise BadInputError(f"constant sending rate must be > 0 Mbps, got {self.rate_mbps}")
        if not (0 <= self.startup_window_packets < np.inf):
            raise BadInputError(f"startup_window_packets must be >= 0, got {self.startup_window_packets}")

    def new_state(self, seed: int) -> np.ndarray:
        return rate.new_state(self.rate_mbps * 1e6 / 12000.0, window_packets=self.startup_window_packets,
                              min_rate_pps=self.min_rate_pps)


@dataclass(frozen=True)
class CubicSender(SenderSpec):
    """TCP Cubic with Genet's constants (genet.cc.senders.cubic)."""

    kind = KIND_CUBIC
    name = "cubic"

    def new_state(self, seed: int) -> np.ndarray:
        return cubic.new_state()


@dataclass(frozen=True)
class BbrSender(SenderSpec):
    """BBR v1 (genet.cc.senders.bbr); the simulation seed picks the initial gain-cycle phase.

    discard_recovery_samples: drop delivery-rate samples of packets sent in
        loss recovery, as Genet's new BBR does (False: keep them, as Linux)
    """

    discard_recovery_samples: bool = False
    kind = KIND_BBR
    name = "bbr"

    def new_state(self, seed: int) -> np.ndarray:
        return bbr.new_state(seed, self.discard_recovery_samples)
