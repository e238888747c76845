"""Simulator conventions (the two modes) and per-environment properties.

:class:`SimConventions` is everything that is a *convention* of a reference
implementation rather than a property of the network; two are predefined:

============================  ==========================  ==============================
                              ``PENSIEVE`` (default)       ``GENET_COMPAT`` (``--compat genet``)
============================  ==========================  ==============================
chunks per video              48 (video_length_s = 192)    49 (video_length_s = 196)
rebuffer penalty mu           4.3 (Pensieve, PPO)          10 (Genet ABR-A ``constants.py``)
first chunk's quality         1 (Pensieve, PPO)            0 (Genet ABR-A)
trace wrap-around time        ``t[0]`` of the trace        0 s (Genet ``last_mahimahi_time = 0``)
============================  ==========================  ==============================

RobustMPC is the same in both modes apart from mu: the look-ahead starts at
the next chunk and the predictor is reset per video. Genet ABR-A (the
compatibility reference) already indexes the look-ahead correctly, and issue
3's reference numbers reset the predictor per trace. The documented quirks of
Pensieve / Genet ABR-B stay reproducible as
``RobustMPC(lookahead_offset=True, share_predictor_state=True)`` (genet/abr/mpc.py).

Both: 4 s chunks of the size files, 80 ms RTT, 60 s buffer, 0.95 payload
factor, 500 ms drain quantum, start pointer 1, wrap to pointer 1
(genet-simulators.md §1.1-1.3), delay noise off unless asked for
(``delay_noise=True`` multiplies every chunk's delay by U(0.9, 1.1), as in
Pensieve/Genet training) and the start pointer random only when asked for
(``random_start=True``, Pensieve training: ptr ~ U{1..len-1}).

:class:`EnvParams` holds the per-environment properties that the ABR config
space (``traces/spaces/abr.json``) randomises: ``max_buffer_s``,
``chunk_length_s``, ``min_rtt_ms``, ``video_length_s``.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from genet.abr.qoe import REBUFFER_PENALTY_GENET, REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY

PARAM_NAMES = ("max_buffer_s", "chunk_length_s", "min_rtt_ms", "video_length_s")


@dataclass(frozen=True)
class EnvParams:
    """Per-environment ABR properties (the simulator-side dimensions of the ABR config space).

    max_buffer_s: playback buffer above which the player sleeps, s (60)
    chunk_length_s: playback duration of one chunk, s (4)
    min_rtt_ms: round-trip time added to every chunk download, ms (80)
    video_length_s: video duration, s; chunks = round(video_length_s / chunk_length_s) (192 = 48 chunks)
    """

    max_buffer_s: float = 60.0
    chunk_length_s: float = 4.0
    min_rtt_ms: float = 80.0
    video_length_s: float = 192.0

    def __post_init__(self) -> None:
        for name in PARAM_NAMES:
            v = float(getattr(self, name))
            if not v == v or v < 0 or (name != "min_rtt_ms" and v <= 0):
                raise BadInputError(f"EnvParams.{name} must be positive, got {v}")
            object.__setattr__(self, name, v)
        if self.n_chunks < 1:
            raise BadInputError(f"EnvParams: video_length_s={self.video_length_s} is shorter than one chunk "
                             f"of chunk_length_s={self.chunk_length_s}")

    @property
    def n_chunks(self) -> int:
        return int(round(self.video_length_s / self.chunk_length_s))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], base: "EnvParams | None" = None,
                    validate: bool = True) -> "EnvParams":
        """Take the simulator-side dimensions from an ABR config dict (others are ignored).

        With ``validate`` the dict is checked against the ABR config space first (values outside
        the widest range raise ``ConfigSpaceError`` naming the dimension)."""
        if validate:
            from traces.config_space import load_space
            space = load_space("abr")
            given = {k: v for k, v in config.items() if k in space.names}
            space.validate(given)
        base = base or cls()
        values = {k: float(config[k]) for k in PARAM_NAMES if k in config}
        return dataclasses.replace(base, **values)

    @classmethod
    def from_trace(cls, trace: Any, base: "EnvParams | None" = None) -> "EnvParams":
        """Properties carried by a generated trace (``trace.meta["config"]``), else ``base``."""
        cfg = trace.meta.get("config") if isinstance(getattr(trace, "meta", None), dict) else None
        if isinstance(cfg, dict):
            return cls.from_config(cfg, base)
        return base or cls()


@dataclass(frozen=True)
class SimConventions:
    """Conventions of a reference implementation (see the module docstring).

    name: label ("pensieve" or "genet")
    rebuffer_penalty: mu, reward lost per second of rebuffering (4.3)
    smooth_penalty: reward lost per Mbps of bitrate change (1.0)
    first_quality: quality index of each video's first chunk (1)
    delay_noise: multiply each chunk's delay by U(noise_low, noise_high) (False)
    noise_low, noise_high: delay-noise range (0.9, 1.1)
    random_start: start each video at a random trace pointer instead of 1 (False)
    wrap_time_zero: on trace wrap-around set the trace clock to 0 s (Genet) instead of t[0] (False)
    payload_fraction: share of the link rate carrying video bytes (0.95)
    drain_quantum_ms: sleep granularity when the buffer is above its maximum, ms (500)
    params: default per-environment properties (EnvParams(), 48 chunks)
    """

    name: str = "pensieve"
    rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE
    smooth_penalty: float = SMOOTH_PENALTY
    first_quality: int = 1
    delay_noise: bool = False
    noise_low: float = 0.9
    noise_high: float = 1.1
    random_start: bool = False
    wrap_time_zero: bool = False
    payload_fraction: float = 0.95
    drain_quantum_ms: float = 500.0
    params: EnvParams = EnvParams()

    @property
    def compat(self) -> bool:
        return self.name == "genet"

    def replace(self, **changes: Any) -> "SimConventions":
        return dataclasses.replace(self, **changes)


#: The default mode: Pensieve's conventions (48 chunks, mu = 4.3, first quality 1).
PENSIEVE = SimConventions()

#: Compatibility mode reproducing Genet ABR-A's simulator and test harness
#: (``G:src/simulator/abr_simulator/{env,bba,mpc,constants}.py``).
GENET_COMPAT = SimConventions(name="genet", rebuffer_penalty=REBUFFER_PENALTY_GENET, first_quality=0,
                              wrap_time_zero=True, params=EnvParams(video_length_s=196.0))

MODES = {"pensieve": PENSIEVE, "genet": GENET_COMPAT}


def conventions(mode: str | None) -> SimConventions:
    """``None``/"pensieve" -> PENSIEVE, "genet" -> GENET_COMPAT."""
    key = mode or "pensieve"
    if key not in MODES:
        raise BadInputError(f"unknown simulator mode {mode!r}; choose one of {', '.join(MODES)}")
    return MODES[key]
