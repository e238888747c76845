"""ABR decisions for a real player, and Pensieve's dash.js <-> ABR-server protocol (testbeds.md §2.2).

:class:`AbrDecider` is one session's policy (any name or ``.onnx`` path of the registry,
genet/abr/registry.py) fed through the one observation builder (genet/abr/observations.py) from plain
:class:`~genet.abr.observations.ChunkMeasurement` records. The headless player uses it directly
(policy in the player) and the server's ABR endpoint uses it per session (policy on the server): the
same observation either way.

The ABR endpoint: ``POST /abr`` (also ``POST /``, where Pensieve's dash.js posts), JSON body with
Pensieve's field names (:data:`FIELDS`, each at most :data:`FIELD_MAX`; unknown keys such as
``nextChunkSize``, ``Type``, ``bandwidthEst``, ``bufferAdjusted`` are accepted and ignored; bodies with
``pastThroughput`` are end-of-load summaries: answered with an empty body). The session id comes from the
``session`` query parameter, the ``X-Session-Id`` header or a ``session`` body field (default ``"default"``;
at most 128 characters, player/server.py).
Reply: ``200 text/plain``, the next chunk's quality index as decimal text, or ``REFRESH`` once the last
chunk has been requested (the session's state is then reset, as Pensieve's server does). A malformed
body gets ``400`` with a one-line message naming the field.

Field semantics (units as dash.js sends them):

=====================  =====================================================================
lastquality            quality index (0 = lowest) of the chunk just downloaded
buffer                 buffer level after it, s
RebufferTime           CUMULATIVE stall time of the session, ms (the server differences it)
lastChunkStartTime     epoch ms: dash.js sends the first-byte time; our headless player sends the
                       request time, so ``finish - start`` is the simulator's delay (request to last
                       byte, one RTT included)
lastChunkFinishTime    epoch ms of the last byte
lastChunkSize          bytes of the chunk
lastRequest            index (0-based) of the chunk just downloaded; the reply is for lastRequest + 1
=====================  =====================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from genet.abr.observations import ChunkMeasurement, Observer, chunk_measurement, get_layout, to_quality
from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY
from genet.abr.registry import make_policy, policy_label
from genet.abr.video import SessionVideos, Video
from foundation.errors import BadInputError

#: Pensieve's POST fields: name -> (type, unit / meaning)
FIELDS = {
    "lastquality": (int, "quality index"),
    "buffer": (float, "s"),
    "RebufferTime": (float, "ms, cumulative"),
    "lastChunkStartTime": (float, "epoch ms"),
    "lastChunkFinishTime": (float, "epoch ms"),
    "lastChunkSize": (float, "bytes"),
    "lastRequest": (int, "chunk index"),
}
#: Largest value each field may take (400 beyond): far past any real session, small enough that the
#: observation arithmetic stays finite.
FIELD_MAX = {
    "lastquality": 10**6,
    "buffer": 1e6,                    # s
    "RebufferTime": 1e12,             # ms
    "lastChunkStartTime": 1e15,       # epoch ms (year ~33,700)
    "lastChunkFinishTime": 1e15,      # epoch ms
    "lastChunkSize": 1e12,            # bytes
    "lastRequest": 10**9,             # chunk index
}
#: Reply once the last chunk has been requested (Pensieve's server; the page reloads).
END_OF_VIDEO = "REFRESH"
#: Quality of each video's first chunk (Pensieve convention, genet/abr/params.py PENSIEVE.first_quality).
FIRST_QUALITY = 1


class AbrRequestError(BadInputError):
    """A malformed ABR request (names the field)."""


def _show(raw: Any) -> str:
    """A client's value for a one-line message (its repr, cut at 40 characters)."""
    text = repr(raw) if not isinstance(raw, int) or abs(raw) < 10**40 else "an integer beyond 10**40"
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class AbrRequest:
    """One decision request in Pensieve's protocol (see the module docstring for units)."""

    lastquality: int
    buffer: float
    RebufferTime: float
    lastChunkStartTime: float
    lastChunkFinishTime: float
    lastChunkSize: float
    lastRequest: int

    @classmethod
    def from_json(cls, body: Any, n_levels: int) -> "AbrRequest":
        if not isinstance(body, Mapping):
            raise AbrRequestError("ABR request body must be a JSON object with Pensieve's fields "
                                  f"({', '.join(FIELDS)})")
        values = {}
        for name, (kind, unit) in FIELDS.items():
            if name not in body:
                raise AbrRequestError(f"ABR request: missing field {name!r} ({unit})")
            raw = body[name]
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise AbrRequestError(f"ABR request: field {name!r} must be a number ({unit}), got {_show(raw)}")
            try:
                v = float(raw)
            except (ValueError, OverflowError):  # OverflowError: an integer beyond a double (10**400)
                raise AbrRequestError(f"ABR request: field {name!r} must be a number ({unit}), "
                                      f"got {_show(raw)}") from None
            if not math.isfinite(v) or v < 0:
                raise AbrRequestError(f"ABR request: field {name!r} must be finite and >= 0 ({unit}), "
                                      f"got {_show(raw)}")
            if v > FIELD_MAX[name]:
                raise AbrRequestError(f"ABR request: field {name!r} must be at most {FIELD_MAX[name]:g} ({unit}), "
                                      f"got {_show(raw)}")
            if kind is int:
                if v != int(v):
                    raise AbrRequestError(f"ABR request: field {name!r} must be an integer, got {_show(raw)}")
                v = int(v)
            values[name] = v
        if values["lastquality"] >= n_levels:
            raise AbrRequestError(f"ABR request: lastquality {values['lastquality']} outside [0, {n_levels - 1}]")
        if values["lastChunkFinishTime"] <= values["lastChunkStartTime"]:  # the throughput divides by it
            raise AbrRequestError("ABR request: lastChunkFinishTime must be after lastChunkStartTime "
                                  f"(got {values['lastChunkStartTime']!r} -> {values['lastChunkFinishTime']!r})")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AbrDecider:
    """One session's ABR policy: measurements in, next quality out.

    policy: registry name ("bba", "mpc") or ``.onnx`` path (or a policy object)
    video: the video played (ladder and chunk sizes)
    rebuffer_penalty / smooth_penalty: the QoE weights (RobustMPC plans with them)
    deterministic / seed: ONNX action choice
    label: the policy's name in logs (None: :func:`~genet.abr.registry.policy_label` of ``policy``)
    warm_up: take one decision now (compiles RobustMPC's kernels, loads the ONNX session's code paths);
        False when another decider of the process already did
    """

    def __init__(self, policy: Any, video: Video, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE,
                 smooth_penalty: float = SMOOTH_PENALTY, deterministic: bool = True, seed: int | None = None,
                 label: str | None = None, warm_up: bool = True) -> None:
        self.label = label if label is not None else policy_label(policy)
        self.policy = make_policy(policy, rebuffer_penalty=rebuffer_penalty, smooth_penalty=smooth_penalty,
                                  deterministic=deterministic, seed=seed)
        self.video = video
        self.layout = get_layout(self.policy.spec.observation_layout)
        self.observer = Observer(self.layout, video.bitrates_kbps)
        self.policy.bind(SessionVideos.from_video(video, 1))
        # one decision before the session starts: numba kernels (RobustMPC) or the ONNX session load now,
        # not as a multi-second stall after the first chunk (measured: up to 7 s with 8 sessions on 2 cores)
        if warm_up:
            self.decide(self.measurement(FIRST_QUALITY, 4.0, float(video.chunk_sizes_bytes[FIRST_QUALITY, 0]),
                                         1000.0, 0, 0.0))
        self.reset()

    @property
    def n_chunks(self) -> int:
        return self.video.n_source_chunks

    def reset(self) -> None:
        self.policy.reset()
        self.observer.reset()

    def measurement(self, quality: int, buffer_s: float, chunk_size_bytes: float, delay_ms: float,
                    chunk_index: int, rebuffer_s: float) -> ChunkMeasurement:
        """The measurement record after chunk ``chunk_index`` (0-based) of this video."""
        return chunk_measurement(self.video.chunk_sizes_bytes, chunk_index, quality, buffer_s, chunk_size_bytes,
                                 delay_ms, rebuffer_s)

    def decide(self, m: ChunkMeasurement) -> int:
        """The next chunk's quality index after measurement ``m``."""
        obs = self.observer.observe(m)  # a batch of one session: the policy protocol's one verb, act
        a = self.policy.act(obs, np.ones(1, dtype=bool))
        return int(to_quality(np.asarray(a)[:1], np.array([m.quality]), self.policy.spec.action_semantics,
                              self.video.n_levels)[0])


def shared_policy(policy: Any, rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE,
                  smooth_penalty: float = SMOOTH_PENALTY) -> tuple[Any, str]:
    """What every session of one server decides with, and its label: an ONNX policy is loaded here, once
    (its network is stateless and its actions the argmax, and onnxruntime's ``run`` is thread-safe, so all
    sessions share one InferenceSession); a registry name is returned as is (each session builds its own
    policy: RobustMPC keeps a per-session throughput history; nothing is loaded from disk)."""
    from genet.policy import OnnxPolicy
    label = policy_label(policy)
    obj = make_policy(policy, rebuffer_penalty=rebuffer_penalty, smooth_penalty=smooth_penalty, deterministic=True)
    return (obj if isinstance(obj, OnnxPolicy) else policy), label


class AbrServerSession:
    """The ABR endpoint's state for one session id: turns Pensieve requests into measurements."""

    def __init__(self, decider: AbrDecider) -> None:
        import threading
        self.decider = decider
        self.last_total_rebuffer_ms = 0.0
        self.decisions = 0
        self.lock = threading.Lock()  # one request of a session at a time

    def handle(self, req: AbrRequest) -> tuple[str, dict[str, Any]]:
        """Reply text and a log record for one request."""
        rebuffer_s = max(req.RebufferTime - self.last_total_rebuffer_ms, 0.0) / 1000.0
        self.last_total_rebuffer_ms = req.RebufferTime
        if req.lastRequest + 1 >= self.decider.n_chunks:
            self.decider.reset()
            self.last_total_rebuffer_ms = 0.0
            self.decisions = 0
            return END_OF_VIDEO, {"reply": END_OF_VIDEO, "rebuffer_s": rebuffer_s}
        m = self.decider.measurement(req.lastquality, req.buffer, req.lastChunkSize,
                                     req.lastChunkFinishTime - req.lastChunkStartTime, req.lastRequest, rebuffer_s)
        q = self.decider.decide(m)
        self.decisions += 1
        return str(q), {"reply": q, "next_chunk_index": m.next_chunk_index, "buffer_s": m.buffer_s,
                        "delay_ms": m.delay_ms, "chunk_size_bytes": m.chunk_size_bytes, "rebuffer_s": rebuffer_s}


__all__ = ["AbrDecider", "AbrRequest", "AbrRequestError", "AbrServerSession", "FIELDS", "END_OF_VIDEO",
           "FIRST_QUALITY", "FIELD_MAX", "shared_policy"]
