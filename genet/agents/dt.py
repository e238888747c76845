"""The Decision Transformer (Chen et al. 2021) behind the agent interface: offline RL from an experience pool.

A small causal transformer, trained from scratch (no downloaded weights), reads the last ``K`` steps of a
session as tokens ``(return-to-go, observation, action)`` per step, 3K tokens in all, and predicts each step's
action from its observation token (which sees the step's return-to-go and everything before, not the step's
own action). Conditioned at run time on a high return-to-go, it picks the actions that led to such returns in
the pool. Sizes (:class:`DtConfig`): 2 layers, 4 heads, 64 dimensions, K = 10 steps: ~110 k parameters, an Adam
step on 64 windows takes a few milliseconds on one CPU core.

Network inputs (a batch of ``n`` windows, right-aligned: the newest step last, missing older steps padded on the
left with ``mask`` 0):

=============  ===============  ======================================================================
rtg            (n, K) float32   return-to-go at each step (raw QoE units; scaled inside by ``rtg_scale``)
observation    (n, K, *obs)     the step's observation (ABR: ``abr.pensieve-6x8``, (6, 8))
actions        (n, K) int64     the step's action (the newest step's is unknown at run time: any value,
                                the causal mask hides it from the prediction)
mask           (n, K) float32   1 = a real step, 0 = padding (attended by nobody)
=============  ===============  ======================================================================

``forward`` returns the newest step's action probabilities (n, n_actions): what the exported ONNX model
returns (:meth:`DtAgent.export_onnx`); :meth:`DecisionTransformer.logits_all` gives every step's logits for
training (cross-entropy against the pool's actions at every real step of sampled windows).

The attention is written out (matmuls, an additive -1e4 mask, softmax) so the TorchScript ONNX exporter writes
plain ops and onnxruntime agrees with torch within 1e-5. How the history reaches the exported model at run time
(per-session windows, return-to-go decremented by each chunk's QoE): genet/abr/dt_policy.py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from foundation.errors import BadInputError
from genet.agents.base import ActionChoice, TrainableAgent, Trajectory, sample_actions

#: The additive attention mask of a hidden token (not -inf: a fully hidden row stays finite).
MASK_VALUE = -1e4
#: Names of the exported model's inputs, in order.
ONNX_INPUTS = ("rtg", "observation", "actions", "mask")


@dataclass
class DtConfig:
    """Settings of the Decision Transformer.

    context: K, the steps of history per window (10)
    d_model: token width (64); n_layers: transformer blocks (2); n_heads: attention heads (4)
    dropout: dropout after embeddings, attention and MLP in training (0.1)
    learning_rate: AdamW step size (1e-3, after a linear warm-up over ``warmup_steps`` Adam steps: 100)
    weight_decay: AdamW weight decay (1e-4)
    minibatch: windows per Adam step (64)
    grad_steps: Adam steps per update (one learning-curve row) (20)
    grad_clip: gradient norm clip (1.0)
    rtg_scale: return-to-go divisor inside the network (the trainer sets it from the pool: its largest
        |episode return|; 1.0 here)
    """

    context: int = 10
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.1
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    minibatch: int = 64
    grad_steps: int = 20
    grad_clip: float = 1.0
    rtg_scale: float = 1.0

    def __post_init__(self) -> None:
        ints = ("context", "d_model", "n_layers", "n_heads", "minibatch", "grad_steps")
        if any(int(getattr(self, k)) < 1 for k in ints) or self.warmup_steps < 0:
            raise BadInputError(f"dt {', '.join(ints)} must be >= 1 (warmup_steps >= 0), got "
                                f"{', '.join(str(getattr(self, k)) for k in ints)}")
        if self.d_model % self.n_heads:
            raise BadInputError(f"dt d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if not (self.learning_rate > 0 and self.rtg_scale > 0 and 0 <= self.dropout < 1 and self.grad_clip > 0):
            raise BadInputError("dt learning_rate, rtg_scale and grad_clip must be > 0 and dropout in [0, 1)")


class _Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)); x + MLP(LN(x))."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).reshape(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h)) + bias
        att = self.drop(torch.softmax(att, dim=-1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(n, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class DecisionTransformer(nn.Module):
    """The network (see the module docstring for its inputs).

    observation_shape: shape of one observation ((6, 8)); n_actions: discrete actions (6)
    config: :class:`DtConfig` (context, widths, dropout, rtg_scale)
    """

    def __init__(self, observation_shape: tuple[int, ...], n_actions: int, config: DtConfig | None = None) -> None:
        super().__init__()
        cfg = config or DtConfig()
        self.config = cfg
        self.observation_shape = tuple(int(s) for s in observation_shape)
        self.n_actions = int(n_actions)
        self.context = int(cfg.context)
        d = cfg.d_model
        obs_dim = int(np.prod(self.observation_shape))
        self.embed_rtg = nn.Linear(1, d)
        self.embed_obs = nn.Linear(obs_dim, d)
        self.embed_act = nn.Embedding(self.n_actions, d)
        self.embed_step = nn.Parameter(torch.zeros(1, self.context, d))
        self.embed_kind = nn.Parameter(torch.zeros(1, 3, d))  # rtg, observation, action tokens
        nn.init.normal_(self.embed_step, std=0.02)
        nn.init.normal_(self.embed_kind, std=0.02)
        self.ln_in = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([_Block(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers)])
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.n_actions)
        self.register_buffer("rtg_scale", torch.tensor(float(cfg.rtg_scale)))
        t = 3 * self.context  # token i may see token j <= i (the causal mask)
        self.register_buffer("causal", torch.tril(torch.ones(t, t)))

    def logits_all(self, rtg: torch.Tensor, observation: torch.Tensor, actions: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """(n, K, n_actions) action logits of every step (predicted from its observation token)."""
        n, k = rtg.shape
        d = self.embed_step.shape[-1]
        r = self.embed_rtg((rtg / self.rtg_scale).unsqueeze(-1))
        o = self.embed_obs(observation.reshape(n, k, -1))
        a = self.embed_act(actions.clamp(0, self.n_actions - 1))
        tokens = torch.stack([r, o, a], dim=2) + self.embed_step.unsqueeze(2) + self.embed_kind.unsqueeze(1)
        x = self.drop(self.ln_in(tokens.reshape(n, 3 * k, d)))
        keys = mask.repeat_interleave(3, dim=1)  # (n, 3K): a padded step's tokens are hidden
        allowed = self.causal.unsqueeze(0) * keys.unsqueeze(1)
        allowed = torch.maximum(allowed, torch.eye(3 * k).unsqueeze(0))  # a token always sees itself
        bias = ((1.0 - allowed) * MASK_VALUE).unsqueeze(1)
        for block in self.blocks:
            x = block(x, bias)
        x = self.ln_out(x).reshape(n, k, 3, d)[:, :, 1]  # the observation tokens
        return self.head(x)

    def forward(self, rtg: torch.Tensor, observation: torch.Tensor, actions: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """(n, n_actions) action probabilities of the newest (last) step of each window."""
        return torch.softmax(self.logits_all(rtg, observation, actions, mask)[:, -1], dim=-1)


@dataclass
class Episodes:
    """Training data: episodes of (observation, action, return-to-go) rows, concatenated.

    observations (N, *obs) float32; actions (N,) int64; rtg (N,) float32 (return from each step on);
    starts (N,) int64: the row where each row's episode starts
    """

    observations: np.ndarray
    actions: np.ndarray
    rtg: np.ndarray
    starts: np.ndarray

    @classmethod
    def from_arrays(cls, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                    dones: np.ndarray) -> "Episodes":
        dones = np.asarray(dones, bool)
        ends = np.flatnonzero(dones) + 1
        starts_e = np.concatenate([[0], ends[:-1]])
        starts = np.zeros(len(dones), np.int64)
        rtg = np.zeros(len(dones), np.float64)
        for a, b in zip(starts_e.tolist(), ends.tolist()):
            starts[a:b] = a
            rtg[a:b] = np.cumsum(np.asarray(rewards[a:b], np.float64)[::-1])[::-1]
        n = int(ends[-1]) if len(ends) else 0
        return cls(np.ascontiguousarray(observations[:n], np.float32), np.asarray(actions[:n], np.int64),
                   rtg[:n].astype(np.float32), starts[:n])

    def windows(self, ends: np.ndarray, k: int) -> dict[str, np.ndarray]:
        """The right-aligned windows of ``k`` steps ending at rows ``ends`` (inclusive), older steps of the same
        episode only (left padding masked)."""
        ends = np.asarray(ends, np.int64)
        idx = ends[:, None] - np.arange(k - 1, -1, -1)[None, :]
        valid = idx >= self.starts[ends][:, None]
        idx = np.where(valid, idx, ends[:, None])
        obs = self.observations[idx] * valid.reshape(*valid.shape, *([1] * (self.observations.ndim - 1)))
        return {"rtg": np.where(valid, self.rtg[idx], 0.0).astype(np.float32), "observation": obs.astype(np.float32),
                "actions": np.where(valid, self.actions[idx], 0), "mask": valid.astype(np.float32)}


class DtAgent(TrainableAgent):
    """A Decision Transformer learning from episodes (see the module docstring).

    network: a :class:`DecisionTransformer`; config: :class:`DtConfig`; seed: the window draws' seed
    """

    name = "dt"

    def __init__(self, network: DecisionTransformer, config: DtConfig | None = None, seed: int = 0) -> None:
        self.network = network
        self.config = config or network.config
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=self.config.learning_rate,
                                           weight_decay=self.config.weight_decay)
        self.rng = np.random.default_rng(seed)
        self.data: Episodes | None = None
        self.steps = 0  # Adam steps taken

    # ------------------------------------------------------------------ act
    def act(self, observations: Any, rng: np.random.Generator, deterministic: bool = False) -> ActionChoice:
        """Actions for a batch of windows: ``observations`` is the dict of the network's inputs
        (:meth:`Episodes.windows`)."""
        probs = self.probabilities(observations).astype(np.float64)
        a = np.argmax(probs, axis=1) if deterministic else sample_actions(probs, rng)
        return ActionChoice(a, np.log(probs[np.arange(len(a)), a] + 1e-30).astype(np.float32))

    def probabilities(self, windows: Mapping[str, np.ndarray]) -> np.ndarray:
        self.network.eval()
        with torch.no_grad():
            return self.network(*self._tensors(windows)).numpy()

    @staticmethod
    def _tensors(w: Mapping[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        return (torch.as_tensor(np.asarray(w["rtg"], np.float32)), torch.as_tensor(np.asarray(w["observation"],
                np.float32)), torch.as_tensor(np.asarray(w["actions"], np.int64)),
                torch.as_tensor(np.asarray(w["mask"], np.float32)))

    # ---------------------------------------------------------------- batch
    def make_batch(self, trajectory: Trajectory) -> dict[str, Any]:
        """Logged episodes (a :class:`Trajectory` of T decisions of one stream, N = 1, or several streams
        concatenated) become the agent's training data (replacing any earlier); the batch is that data."""
        T, N = trajectory.shape
        obs = np.swapaxes(trajectory.observations, 0, 1).reshape(T * N, *trajectory.observations.shape[2:])
        self.data = Episodes.from_arrays(obs, np.swapaxes(trajectory.actions, 0, 1).reshape(-1),
                                         np.swapaxes(trajectory.rewards, 0, 1).reshape(-1),
                                         np.swapaxes(trajectory.terminated, 0, 1).reshape(-1))
        return {"data": self.data}

    # ---------------------------------------------------------------- train
    def learning_rate_at(self, step: int) -> float:
        w = self.config.warmup_steps
        return self.config.learning_rate * (min(1.0, (step + 1) / w) if w else 1.0)

    def train_on(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """``grad_steps`` AdamW steps, each on ``minibatch`` windows ending at rows drawn uniformly from the data
        (cross-entropy at every real step); returns the mean loss, the accuracy of the argmax on the pool's actions
        and the transitions (real steps) trained on."""
        data: Episodes = batch["data"]
        cfg = self.config
        self.network.train()
        loss_sum = acc = steps = 0.0
        for _ in range(cfg.grad_steps):
            lr = self.learning_rate_at(self.steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            w = data.windows(self.rng.integers(0, len(data.actions), cfg.minibatch), cfg.context)
            rtg, obs, act, mask = self._tensors(w)
            logits = self.network.logits_all(rtg, obs, act, mask)
            real = mask.reshape(-1) > 0
            flat, labels = logits.reshape(-1, logits.shape[-1])[real], act.reshape(-1)[real]
            loss = nn.functional.cross_entropy(flat, labels)
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.network.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.steps += 1
            loss_sum += float(loss.detach())
            acc += float((flat.detach().argmax(dim=1) == labels).float().mean())
            steps += float(real.sum())
        g = cfg.grad_steps
        return {"dt_loss": loss_sum / g, "action_accuracy": acc / g, "transitions": steps, "learning_rate": lr}

    # ------------------------------------------------------------ save/load
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.network.state_dict(), "optimizer": self.optimizer.state_dict(), "dt": asdict(self.config),
                "rng": self.rng.bit_generator.state, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.steps = int(state["steps"])

    # --------------------------------------------------------------- export
    def export_onnx(self, path: str | Path, spec: Any, extra_metadata: Mapping[str, Any] | None = None,
                    check_windows: Mapping[str, np.ndarray] | None = None, atol: float = 1e-5) -> Path:
        """Write the network as an ONNX model with inputs :data:`ONNX_INPUTS` (batch axis dynamic, K fixed) and
        output ``output`` (the newest step's probabilities), ``spec`` (:class:`genet.policy.PolicySpec`: the
        per-step observation) and ``extra_metadata`` in its metadata plus ``genet.context_window``; checked
        against torch on ``check_windows`` (a dict of the inputs) within ``atol`` before the file takes its
        name."""
        return export_dt_onnx(self.network, spec, path, extra_metadata, check_windows, atol)


def export_dt_onnx(module: DecisionTransformer, spec: Any, path: str | Path,
                   extra_metadata: Mapping[str, Any] | None = None,
                   check_windows: Mapping[str, np.ndarray] | None = None, atol: float = 1e-5) -> Path:
    """See :meth:`DtAgent.export_onnx`."""
    import json
    import os
    import tempfile
    import warnings

    import onnx

    from foundation.atomic import publish
    from genet.policy import META_PREFIX
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    k = module.context
    example = (torch.zeros(1, k), torch.zeros(1, k, *module.observation_shape), torch.zeros(1, k, dtype=torch.int64),
               torch.ones(1, k))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part.onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(tmp), input_names=list(ONNX_INPUTS), output_names=["output"],
                              dynamic_axes={**{n: {0: "batch"} for n in ONNX_INPUTS}, "output": {0: "batch"}},
                              opset_version=17, dynamo=False)
        model = onnx.load(str(tmp))
        meta = spec.to_metadata()
        extra = {"policy_kind": "decision-transformer", "context_window": k, **(extra_metadata or {})}
        for key, v in extra.items():
            meta[META_PREFIX + key] = v if isinstance(v, str) else json.dumps(v)
        del model.metadata_props[:]
        for key, v in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, v
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        if check_windows is not None:
            import onnxruntime as ort
            feeds = {"rtg": np.asarray(check_windows["rtg"], np.float32),
                     "observation": np.asarray(check_windows["observation"], np.float32),
                     "actions": np.asarray(check_windows["actions"], np.int64),
                     "mask": np.asarray(check_windows["mask"], np.float32)}
            with torch.no_grad():
                ref = module(*(torch.from_numpy(feeds[n]) for n in ONNX_INPUTS)).numpy()
            got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
            err = float(np.max(np.abs(ref - got))) if ref.size else 0.0
            if err > atol:
                raise BadInputError(f"{path}: onnxruntime output differs from torch by {err:.3g} (> atol {atol})")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["DecisionTransformer", "DtAgent", "DtConfig", "Episodes", "ONNX_INPUTS", "export_dt_onnx"]
