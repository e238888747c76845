"""The one policy interface of genet-testbed, for every use case (ABR and CC; LB will use it too).

A *policy* maps a batch of observations to a batch of actions, with one verb::

    policy.bind(context)                    # what the sessions are about to run (see below)
    policy.reset()                          # start of new sessions (all, or a boolean mask)
    actions = policy.act(observations, active)   # observations: (n, *spec.observation_shape);
                                            # active: which sessions decide now (None: all)

``act`` is the only decision verb, and it is batched: the ABR simulator decides for every trace
of an evaluation at once (290 sessions in one call), training steps many environments, and a
policy written once for batches serves a single session as a batch of one. Callers with one
session (the ABR player and server, the CC simulator, the UDP sender) go through
:func:`act_one` (``act`` on a batch of one, no copy) or pass a batch of one themselves; nothing
calls a network's ``forward`` behind the protocol's back. ``bind`` context per use case: ABR,
a :class:`genet.abr.video.SessionVideos` (RobustMPC plans with it, BBA reads the ladder's size);
CC, the :class:`genet.cc.aurora.AuroraConfig` the sender runs with. Stateless networks ignore
both ``bind`` and ``reset``.

Each policy says what it expects and what it returns through its :class:`PolicySpec`:

* ``use_case``: "abr", "cc", ... (free text, compared exactly);
* ``observation_layout``: the name of a layout defined by the use case's
  observation module (e.g. ``"abr.genet-6x6"``; ``genet/abr/observations.py``
  owns the ABR ones) — the layout name fixes the meaning of every entry;
* ``observation_shape``: the shape of ONE observation (no batch axis);
* ``action_semantics``: the name of the action mapping (e.g. ``"abr.jump3"``:
  0 = one level down, 1 = keep, 2 = one level up; ``"abr.direct6"``: the
  bitrate index; ``"cc.aurora-rate"``: Aurora's continuous rate change);
* ``n_actions``: number of discrete actions, or the action dimension for
  continuous actions (``action_type == "continuous"``).

Names and paths become policies through each use case's registry (a :class:`foundation.registry.Registry`:
``genet.abr.registry.POLICIES``, ``genet.cc.registry.POLICIES``).

Three kinds of policies implement the protocol:

* rule-based ones (BBA, RobustMPC, the replayed offline optimum), plain classes with a ``spec``,
  ``bind``, ``reset`` and ``act`` (:class:`PolicyBase` supplies no-op ``bind``/``reset``). CC's
  rule-based schemes (BBR, Cubic, a constant rate) are not policies of this protocol: they are
  congestion controllers that react to every packet and ACK inside the simulator's event loop or
  the kernel, not functions of Aurora's per-interval observation; the CC registry names them;
* :class:`TorchPolicy`: a ``torch.nn.Module`` that maps observations to
  action probabilities (discrete) or action means (continuous);
* :class:`OnnxPolicy`: the same network exported to ONNX and run with
  onnxruntime. The ``.onnx`` file carries its spec in the model's
  ``metadata_props`` (keys :data:`META_KEYS`, prefixed ``genet.``) plus any
  extra metadata (normalisation constants, the bitrate ladder, provenance),
  so a file is self-describing. Loading checks the spec and the graph's input
  shape against what the caller expects and raises :class:`PolicyMismatchError`
  naming the expected and the actual layout.

Discrete action choice: ``deterministic=True`` takes the argmax; otherwise
the policy samples with Pensieve/Genet's A3C rule (``u = randint(1, 1000)/1000``,
the first action whose cumulative probability exceeds ``u``;
genet-simulators.md §1.5), drawing from its own ``numpy`` Generator.

Heavy dependencies (torch, onnx, onnxruntime) are imported lazily.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from foundation.atomic import publish

#: metadata_props keys (without the ``genet.`` prefix) that make up a PolicySpec.
META_KEYS = ("use_case", "observation_layout", "observation_shape", "action_semantics",
             "action_type", "n_actions", "output")
META_PREFIX = "genet."

#: What the network's first output holds.
OUTPUTS = ("probabilities", "logits", "mean")
ACTION_TYPES = ("discrete", "continuous")

#: Pensieve/Genet A3C discretisation of the sampling draw (genet-simulators.md §1.5).
RAND_RANGE = 1000


class PolicyMismatchError(BadInputError):
    """A policy (file) does not fit the environment it is used with."""


@dataclass(frozen=True)
class PolicySpec:
    """What a policy consumes and produces.

    use_case: "abr" or "cc" (e.g. "abr")
    observation_layout: layout name owned by the use case (e.g. "abr.genet-6x6")
    observation_shape: shape of one observation, no batch axis (e.g. (6, 6))
    action_semantics: name of the action mapping (e.g. "abr.jump3")
    n_actions: number of discrete actions / continuous action dimension (e.g. 3)
    action_type: "discrete" or "continuous" ("discrete")
    output: what the network returns: "probabilities", "logits" or "mean" ("probabilities")
    """

    use_case: str
    observation_layout: str
    observation_shape: tuple[int, ...]
    action_semantics: str
    n_actions: int
    action_type: str = "discrete"
    output: str = "probabilities"

    def __post_init__(self) -> None:
        object.__setattr__(self, "observation_shape", tuple(int(d) for d in self.observation_shape))
        object.__setattr__(self, "n_actions", int(self.n_actions))
        if self.action_type not in ACTION_TYPES:
            raise BadInputError(f"PolicySpec.action_type must be one of {ACTION_TYPES}, got {self.action_type!r}")
        if self.output not in OUTPUTS:
            raise BadInputError(f"PolicySpec.output must be one of {OUTPUTS}, got {self.output!r}")

    def describe(self) -> str:
        shape = "x".join(str(d) for d in self.observation_shape)
        return (f"use_case={self.use_case}, observation={self.observation_layout} [{shape}], "
                f"actions={self.action_semantics} ({self.action_type}, {self.n_actions})")

    def to_metadata(self) -> dict[str, str]:
        """``genet.*`` string metadata for an ONNX file."""
        d = asdict(self)
        d["observation_shape"] = ",".join(str(x) for x in self.observation_shape)
        return {META_PREFIX + k: str(d[k]) for k in META_KEYS}

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], where: str = "model") -> "PolicySpec":
        missing = [META_PREFIX + k for k in META_KEYS if META_PREFIX + k not in meta]
        if missing:
            raise PolicyMismatchError(
                f"{where}: metadata_props lack {', '.join(missing)} (not a genet-testbed policy file; "
                f"export it with genet.policy.export_onnx or `genet import-tf-checkpoint`)")
        try:
            shape = tuple(int(x) for x in meta[META_PREFIX + "observation_shape"].split(","))
            n_actions = int(meta[META_PREFIX + "n_actions"])
        except ValueError as exc:
            raise PolicyMismatchError(f"{where}: malformed genet.observation_shape/n_actions metadata: {exc}") from None
        return cls(use_case=meta[META_PREFIX + "use_case"],
                   observation_layout=meta[META_PREFIX + "observation_layout"],
                   observation_shape=shape,
                   action_semantics=meta[META_PREFIX + "action_semantics"],
                   n_actions=n_actions,
                   action_type=meta[META_PREFIX + "action_type"],
                   output=meta[META_PREFIX + "output"])

    def check_compatible(self, expected: "PolicySpec", where: str = "policy") -> None:
        """Raise :class:`PolicyMismatchError` unless this spec fits ``expected``.

        The network's ``output`` kind may differ (it only changes how actions
        are read off); everything else must match exactly.
        """
        diffs = [k for k in ("use_case", "observation_layout", "observation_shape", "action_semantics",
                             "n_actions", "action_type") if getattr(self, k) != getattr(expected, k)]
        if diffs:
            raise PolicyMismatchError(
                f"{where} does not fit this environment (differs in {', '.join(diffs)}):\n"
                f"  expected: {expected.describe()}\n  actual:   {self.describe()}")


@runtime_checkable
class Policy(Protocol):
    """A batched policy over ``n`` sessions (see the module docstring).

    ``bind(context)``: what the sessions are about to run, before their first ``act`` (and again when
    it changes): ABR a :class:`genet.abr.video.SessionVideos`, CC an :class:`genet.cc.aurora.AuroraConfig`.

    ``act(observations, active=None)``: (n, *spec.observation_shape) -> (n,) actions (int64 for
    discrete actions, or (n, n_actions) float for continuous ones). ``active`` (bool, n) marks
    the sessions that really take this decision (None: all); a stateful policy (RobustMPC's throughput
    history) updates only those, and the caller ignores the other entries.

    ``reset(mask=None)``: start of new sessions (all, or the sessions of a boolean mask).

    :class:`PolicyBase` gives the no-op ``bind``/``reset``; :func:`check_policy` says (one line) what an
    object lacks.
    """

    spec: PolicySpec
    name: str

    def bind(self, context: Any) -> None: ...

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray: ...

    def reset(self, mask: np.ndarray | None = None) -> None: ...


def check_policy(obj: Any) -> Any:
    """``obj`` if it implements :class:`Policy` (``spec``, ``name``, ``bind``, ``reset``, ``act``), else a
    one-line :class:`~foundation.errors.BadInputError` naming what it lacks."""
    missing = [m for m in ("spec", "name", "bind", "reset", "act") if not hasattr(obj, m)]
    if missing:
        raise BadInputError(f"{type(obj).__name__} is not a policy (genet.policy.Policy): it lacks "
                            f"{', '.join(missing)}")
    return obj


def act_one(policy: Policy, observation: np.ndarray) -> np.ndarray:
    """One session's decision: ``policy.act`` on a batch of one (a view, no copy); returns that session's
    action (a 0-d int64 for discrete actions, (n_actions,) floats for continuous ones)."""
    return policy.act(np.asarray(observation)[None])[0]


class PolicyBase:
    """Defaults for the :class:`Policy` protocol: ``bind`` and ``reset`` do nothing."""

    spec: PolicySpec
    name: str = "policy"

    def bind(self, context: Any) -> None:
        return None

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def choose_actions(output: np.ndarray, spec: PolicySpec, deterministic: bool,
                   rng: np.random.Generator | None) -> np.ndarray:
    """Turn a network output batch into actions according to ``spec``."""
    out = np.asarray(output, dtype=np.float64)
    if spec.action_type == "continuous":
        return out.reshape(out.shape[0], -1)
    if spec.output == "logits":
        z = out - out.max(axis=1, keepdims=True)
        out = np.exp(z)
        out /= out.sum(axis=1, keepdims=True)
    if deterministic:
        return np.argmax(out, axis=1).astype(np.int64)
    if rng is None:
        rng = np.random.default_rng()
    u = rng.integers(1, RAND_RANGE, size=out.shape[0]) / float(RAND_RANGE)
    cum = np.cumsum(out, axis=1)
    return np.argmax(cum > u[:, None], axis=1).astype(np.int64)


class _NetworkPolicy(PolicyBase):
    """Shared part of the torch and ONNX policies (stateless feed-forward networks: ``bind`` and
    ``active`` change nothing)."""

    spec: PolicySpec
    name: str

    def __init__(self, spec: PolicySpec, deterministic: bool, seed: int | None, name: str) -> None:
        self.spec = spec
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self.name = name

    def _check_obs(self, observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float32)
        if obs.shape[1:] != self.spec.observation_shape:
            raise PolicyMismatchError(
                f"{self.name}: observation batch has shape {obs.shape} but the policy expects "
                f"(n, {', '.join(str(d) for d in self.spec.observation_shape)}) "
                f"[{self.spec.observation_layout}]")
        return np.ascontiguousarray(obs)

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        return choose_actions(self.forward(self._check_obs(observations)), self.spec, self.deterministic, self.rng)

    def forward(self, observations: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TorchPolicy(_NetworkPolicy):
    """A ``torch.nn.Module`` (observations -> probabilities/logits/means) as a policy.

    module: the network; called under ``torch.no_grad()`` in eval mode
    spec: what it consumes and produces
    deterministic: argmax instead of sampling (True)
    seed: seed of the sampling Generator (None)
    """

    def __init__(self, module: Any, spec: PolicySpec, deterministic: bool = True, seed: int | None = None,
                 name: str = "torch") -> None:
        super().__init__(spec, deterministic, seed, name)
        self.module = module

    def forward(self, observations: np.ndarray) -> np.ndarray:
        import torch
        self.module.eval()
        with torch.no_grad():
            out = self.module(torch.from_numpy(observations))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().cpu().numpy()


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """All metadata_props of an ONNX file as a dict."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def open_onnx_session(path: str | os.PathLike) -> Any:
    """An onnxruntime session of ``path`` on the CPU with one intra- and one inter-op thread (what every policy of
    the product runs with); a one-line :class:`PolicyMismatchError` naming the file when it is not a model."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise PolicyMismatchError(f"{path}: not a loadable ONNX model ({exc})") from None


class OnnxPolicy(_NetworkPolicy):
    """An ONNX policy file run with onnxruntime (CPU).

    path: the ``.onnx`` file
    expected: the spec the environment needs; when given, loading fails with
        :class:`PolicyMismatchError` naming expected vs actual if the file's
        metadata or its graph input shape differ (None: accept the file's spec)
    deterministic: argmax instead of sampling (True)
    seed: seed of the sampling Generator (None)

    ``metadata`` holds every metadata property of the file (spec keys and extras).
    """

    def __init__(self, path: str | os.PathLike, expected: PolicySpec | None = None, deterministic: bool = True,
                 seed: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX policy file {path} does not exist")
        session = open_onnx_session(path)
        meta = dict(session.get_modelmeta().custom_metadata_map)
        spec = PolicySpec.from_metadata(meta, where=str(path))
        if expected is not None:
            spec.check_compatible(expected, where=str(path))
        inp = session.get_inputs()[0]
        graph_shape = tuple(inp.shape[1:])
        if len(graph_shape) != len(spec.observation_shape) or any(
                isinstance(g, int) and g != s for g, s in zip(graph_shape, spec.observation_shape)):
            raise PolicyMismatchError(
                f"{path}: graph input {inp.name!r} has shape {tuple(inp.shape)} but its metadata declares "
                f"(n, {', '.join(str(d) for d in spec.observation_shape)}) [{spec.observation_layout}]")
        out = session.get_outputs()[0]
        out_shape = tuple(out.shape[1:])
        if len(out_shape) != 1 or (isinstance(out_shape[0], int) and out_shape[0] != spec.n_actions):
            raise PolicyMismatchError(
                f"{path}: graph output {out.name!r} has shape {tuple(out.shape)} but its metadata declares "
                f"(n, {spec.n_actions}) [{spec.action_semantics}, {spec.action_type}]")
        super().__init__(spec, deterministic, seed, name=meta.get(META_PREFIX + "name", path.stem))
        self.path = path
        self.metadata = meta
        self._session = session
        self._input_name = inp.name

    def forward(self, observations: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input_name: observations})[0]

    def extra_metadata(self, key: str, default: Any = None) -> Any:
        """A JSON-decoded extra metadata value (``genet.<key>``), or ``default``."""
        raw = self.metadata.get(META_PREFIX + key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError:
            return raw


def export_onnx(module: Any, spec: PolicySpec, path: str | os.PathLike, *,
                extra_metadata: Mapping[str, Any] | None = None,
                check_observations: np.ndarray | None = None, atol: float = 1e-5,
                opset: int = 17, more_outputs: tuple[str, ...] | None = None) -> Path:
    """Export a torch module as a self-describing ONNX policy file.

    module: maps (n, *spec.observation_shape) float32 to the first output
    spec: written into metadata_props as ``genet.*`` keys
    path: output ``.onnx`` file (parent directories are created)
    extra_metadata: more ``genet.<key>`` entries; non-strings are JSON-encoded
        (e.g. normalisation constants, the bitrate ladder, provenance)
    check_observations: a batch of recorded observations; when given,
        onnxruntime's output must agree with torch within ``atol`` (else ValueError)
    opset: ONNX opset (17)
    more_outputs: names of the module's outputs after the first, when it returns a tuple (a DQN policy's
        ``q_values``); the policy reads the first, the others are for inspection (None: the module's
        ``more_outputs`` attribute, else none)
    """
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    example = (torch.from_numpy(np.asarray(check_observations[:1], dtype=np.float32))
               if check_observations is not None else torch.zeros((1, *spec.observation_shape)))
    import tempfile
    import warnings
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part.onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    with warnings.catch_warnings():  # the TorchScript exporter (no onnxscript needed) warns it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        outputs = ["output", *(getattr(module, "more_outputs", ()) if more_outputs is None else more_outputs)]
        torch.onnx.export(module, (example,), str(tmp), input_names=["observation"], output_names=outputs,
                          dynamic_axes={"observation": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
                          opset_version=opset, dynamo=False)
    model = onnx.load(str(tmp))
    meta = spec.to_metadata()
    for k, v in (extra_metadata or {}).items():
        meta[META_PREFIX + k] = v if isinstance(v, str) else json.dumps(v)
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    try:
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        if check_observations is not None:  # checked before the file takes its name: a bad export never lands
            obs = np.asarray(check_observations, dtype=np.float32)
            with torch.no_grad():
                ref = module(torch.from_numpy(obs))
                ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).numpy()
            got = OnnxPolicy(tmp).forward(np.ascontiguousarray(obs))
            err = float(np.max(np.abs(ref - got))) if ref.size else 0.0
            if err > atol:
                raise BadInputError(f"{path}: onnxruntime output differs from torch by {err:.3g} (> atol {atol})")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_policy(path: str | os.PathLike, expected: PolicySpec | None = None, **kwargs: Any) -> OnnxPolicy:
    """Load a policy file (ONNX, the only on-disk policy format)."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise BadInputError(f"{path}: policy files are ONNX (.onnx); got suffix {path.suffix!r}")
    return OnnxPolicy(path, expected=expected, **kwargs)


__all__ = ["PolicySpec", "Policy", "PolicyBase", "PolicyMismatchError", "TorchPolicy", "OnnxPolicy", "open_onnx_session",
           "export_onnx",
           "read_onnx_metadata", "load_policy", "choose_actions", "check_policy", "act_one", "META_KEYS",
           "META_PREFIX"]
