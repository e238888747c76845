"""The PPO pieces shared by ABR and CC training: returns, advantages, losses, the update.

Conventions (Gymnasium): ``terminated`` = the MDP ended (video end) — no
bootstrap; ``truncated`` = the rollout or time limit cut the episode — the
value of the next state is bootstrapped.

* ``discounted_returns``: Pensieve-PPO's targets (γ-discounted, no GAE; §8.2);
  the advantage is R - V.
* ``gae``: generalised advantage estimation (Aurora / stable-baselines PPO1: λ = 0.95).
* ``ppo_policy_loss``: clipped surrogate, with Pensieve-PPO's dual clip
  (``max(L, c·adv)`` where adv < 0, c = 3) as an option.
* ``AdaptiveEntropy``: Pensieve-PPO's entropy weight, pulled towards a target entropy.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch


def discounted_returns(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                       next_values: np.ndarray, gamma: float) -> np.ndarray:
    """γ-discounted returns over a (T, N) rollout. ``next_values[t]`` is V(s_{t+1}) of the
    true next state (before any reset). Terminated: R_t = r_t. Truncated, or the
    rollout's last step: R_t = r_t + γ·V(s_{t+1}). Otherwise R_t = r_t + γ·R_{t+1}."""
    T = rewards.shape[0]
    out = np.zeros(rewards.shape, dtype=np.float64)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(T - 1, -1, -1):
        boot = next_values[t] if t == T - 1 else np.where(truncated[t], next_values[t], running)
        running = rewards[t] + gamma * np.where(terminated[t], 0.0, boot)
        out[t] = running
    return out


def gae(rewards: np.ndarray, values: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
        next_values: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns) over a (T, N) rollout with GAE(λ). ``values[t]`` = V(s_t),
    ``next_values[t]`` = V(s_{t+1}) of the true next state (before any reset)."""
    T = rewards.shape[0]
    adv = np.zeros(rewards.shape, dtype=np.float64)
    last = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(T - 1, -1, -1):
        delta = rewards[t] + gamma * np.where(terminated[t], 0.0, next_values[t]) - values[t]
        last = delta + gamma * lam * np.where(terminated[t] | truncated[t], 0.0, last)
        adv[t] = last
    return adv, adv + values


def ppo_policy_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float = 0.2,
                    dual_clip: float | None = None) -> torch.Tensor:
    """Mean clipped-surrogate loss (to minimise)."""
    return -clipped_surrogate(logp, logp_old, adv, clip, dual_clip).mean()


def clipped_surrogate(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float = 0.2,
                      dual_clip: float | None = None) -> torch.Tensor:
    """Per-sample clipped surrogate (to maximise), with the optional dual clip."""
    ratio = torch.exp(logp - logp_old)
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    if dual_clip is not None:
        surrogate = torch.where(adv < 0, torch.max(surrogate, dual_clip * adv), surrogate)
    return surrogate


def ppo_loss_sums(model: torch.nn.Module, obs: torch.Tensor, actions: torch.Tensor, logp_old: torch.Tensor,
                  adv: torch.Tensor, returns: torch.Tensor, clip: float, dual_clip: float | None, value_coef: float,
                  entropy_weight: float, minibatch: int) -> tuple[torch.Tensor, dict[str, float]]:
    """One slice's share of a minibatch's PPO loss: the same terms as :func:`ppo_update`, summed over the
    slice's rows and divided by the whole minibatch's size ``minibatch`` (so the slices' losses, and their
    gradients, add up to the minibatch mean). Returns (loss, statistics shares)."""
    dist = model.distribution(obs)
    logp = dist.log_prob(actions)
    pl = -clipped_surrogate(logp, logp_old, adv, clip, dual_clip).sum() / minibatch
    vl = ((model.value(obs) - returns) ** 2).sum() / minibatch
    ent = dist.entropy().sum() / minibatch
    loss = pl + value_coef * vl - entropy_weight * ent
    with torch.no_grad():
        log_ratio = logp - logp_old
        kl = float(((log_ratio.exp() - 1) - log_ratio).sum()) / minibatch
        cf = float(((log_ratio.exp() - 1).abs() > clip).float().sum()) / minibatch
    return loss, {"policy_loss": float(pl.detach()), "value_loss": float(vl.detach()),
                  "entropy": float(ent.detach()), "approx_kl": kl, "clipfrac": cf}


@dataclass
class AdaptiveEntropy:
    """Pensieve-PPO: w <- max(floor, w - lr·(H - target)·0.1·epochs) after each update."""

    weight: float = float(np.log(6))
    target: float = 0.1
    lr: float = 1e-4
    epochs: int = 5
    floor: float = 0.01

    def update(self, entropy: float) -> float:
        self.weight = max(self.floor, self.weight - self.lr * (entropy - self.target) * 0.1 * self.epochs)
        return self.weight


@dataclass
class PPOConfig:
    """clip: ratio clip (0.2); dual_clip: None or c (Pensieve-PPO: 3); epochs: passes per batch;
    minibatch: samples per gradient step (None = full batch); value_coef: value-loss weight
    (Pensieve-PPO: 10, Aurora: 0.5); normalize_adv: standardise advantages (Aurora: yes);
    max_grad_norm: None or clip value; train_actor: False for a critic warm-up, the critic alone learns (the
    actor's gradients are dropped before each step, so Adam leaves the actor and its moments as they are; the
    network names them with ``actor_parameters()``); anchor_coef: weight of KL(anchor ‖ policy), the batch's
    ``anchor_probs`` (a fine-tune kept near the network it started from; discrete actions; 0: none)."""

    clip: float = 0.2
    dual_clip: float | None = None
    epochs: int = 5
    minibatch: int | None = None
    value_coef: float = 0.5
    normalize_adv: bool = False
    max_grad_norm: float | None = None
    train_actor: bool = True
    anchor_coef: float = 0.0


@contextlib.contextmanager
def learning_rate(optimizer: torch.optim.Optimizer, lr: float | None):
    """Every parameter group of ``optimizer`` at ``lr`` inside the block (None: as it is), restored after it."""
    if lr is None:
        yield optimizer
        return
    saved = [g["lr"] for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        g["lr"] = lr
    try:
        yield optimizer
    finally:
        for g, old in zip(optimizer.param_groups, saved):
            g["lr"] = old


def drop_actor_gradients(model: torch.nn.Module, cfg: PPOConfig) -> None:
    """A critic warm-up (``cfg.train_actor`` False): the actor's ``.grad`` set to None, so the optimiser's step
    skips it."""
    if not cfg.train_actor:
        for p in model.actor_parameters():
            p.grad = None


def ppo_update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg: PPOConfig, obs: torch.Tensor,
               actions: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, returns: torch.Tensor,
               entropy_weight: float, generator: torch.Generator | None = None,
               anchor_probs: torch.Tensor | None = None) -> dict[str, float]:
    """Run ``cfg.epochs`` passes of PPO over one batch; returns losses/approx_kl/clipfrac/entropy (and
    ``anchor_kl``, the mean KL(anchor ‖ policy), with ``cfg.anchor_coef`` > 0: ``anchor_probs`` (n, actions) the
    anchor network's probabilities of the batch's observations)."""
    anchored = cfg.anchor_coef > 0
    if anchored and anchor_probs is None:
        raise ValueError("PPOConfig.anchor_coef > 0 needs the anchor network's probabilities (anchor_probs)")
    if anchored:
        anchor_log = anchor_probs.clamp_min(1e-12).log()
    n = obs.shape[0]
    if cfg.normalize_adv and n > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    mb = cfg.minibatch or n
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
    if anchored:
        stats["anchor_kl"] = 0.0
    steps = 0
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator) if mb < n else torch.arange(n)
        for start in range(0, n, mb):
            idx = order[start:start + mb]
            dist = model.distribution(obs[idx])
            logp = dist.log_prob(actions[idx])
            pl = ppo_policy_loss(logp, logp_old[idx], adv[idx], cfg.clip, cfg.dual_clip)
            vl = torch.mean((model.value(obs[idx]) - returns[idx]) ** 2)
            ent = dist.entropy().mean()
            loss = pl + cfg.value_coef * vl - entropy_weight * ent
            if anchored:
                a_p, a_log = anchor_probs[idx], anchor_log[idx]
                akl = (a_p * (a_log - dist.probs.clamp_min(1e-12).log())).sum(-1).mean()
                loss = loss + cfg.anchor_coef * akl
                stats["anchor_kl"] += float(akl.detach())
            optimizer.zero_grad()
            loss.backward()
            drop_actor_gradients(model, cfg)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                log_ratio = logp - logp_old[idx]
                stats["approx_kl"] += float(((log_ratio.exp() - 1) - log_ratio).mean())
                stats["clipfrac"] += float(((log_ratio.exp() - 1).abs() > cfg.clip).float().mean())
            stats["policy_loss"] += float(pl.detach())
            stats["value_loss"] += float(vl.detach())
            stats["entropy"] += float(ent.detach())
            steps += 1
    return {k: v / max(steps, 1) for k, v in stats.items()}


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    var = np.var(returns)
    return float("nan") if var == 0 else float(1 - np.var(returns - values) / var)
