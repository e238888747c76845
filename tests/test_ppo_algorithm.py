"""PPO pieces: returns, GAE, losses, adaptive entropy, networks, and learning on a real Gymnasium env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from genet.ppo.algorithm import (AdaptiveEntropy, PPOConfig, discounted_returns, explained_variance, gae,
                                 ppo_policy_loss, ppo_update)
from genet.ppo.networks import AuroraActorCritic, PensieveActorCritic


def test_discounted_returns_respect_terminated_and_truncated():
    r = np.array([[1.0], [2.0], [3.0], [4.0]])
    term = np.array([[False], [True], [False], [False]])
    trunc = np.zeros_like(term)
    nv = np.array([[10.0], [10.0], [10.0], [5.0]])
    R = discounted_returns(r, term, trunc, nv, gamma=0.5)
    # step 3 bootstraps V(s4)=5; step 2 uses R3; step 1 terminated; step 0 uses R1
    assert R[:, 0].tolist() == [1 + 0.5 * 2, 2.0, 3 + 0.5 * (4 + 0.5 * 5), 4 + 0.5 * 5]
    trunc[2] = True
    R2 = discounted_returns(r, term, trunc, nv, gamma=0.5)
    assert R2[2, 0] == 3 + 0.5 * 10


def test_gae_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    T, N, g, lam = 6, 3, 0.9, 0.8
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term = rng.random((T, N)) < 0.2
    trunc = rng.random((T, N)) < 0.2
    adv, ret = gae(r, v, term, trunc, nv, g, lam)
    for n in range(N):
        for t in range(T):
            total, coef = 0.0, 1.0
            for k in range(t, T):
                delta = r[k, n] + g * (0 if term[k, n] else nv[k, n]) - v[k, n]
                total += coef * delta
                if term[k, n] or trunc[k, n]:
                    break
                coef *= g * lam
            assert adv[t, n] == pytest.approx(total)
    assert np.allclose(ret, adv + v)


def test_clipped_and_dual_clipped_losses():
    logp_old = torch.zeros(4)
    logp = torch.log(torch.tensor([1.5, 0.5, 1.5, 10.0]))
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss = ppo_policy_loss(logp, logp_old, adv, clip=0.2)
    expected = -np.mean([1.2, 0.5, -1.5, -10.0])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    dual = ppo_policy_loss(logp, logp_old, adv, clip=0.2, dual_clip=3.0)
    assert float(dual) == pytest.approx(-np.mean([1.2, 0.5, -1.5, -3.0]), rel=1e-5)


def test_adaptive_entropy_moves_towards_target_with_floor():
    ent = AdaptiveEntropy(weight=1.0, target=0.1, lr=1e-4, epochs=5)
    assert ent.update(1.1) == pytest.approx(1.0 - 1e-4 * 1.0 * 0.5)
    ent.weight = 0.0100001
    assert ent.update(5.0) == 0.01


def test_networks_shapes_and_probabilities():
    net = PensieveActorCritic(s_len=8, n_actions=6)
    x = torch.randn(5, 6, 8)
    p = net(x).detach()
    assert p.shape == (5, 6) and torch.allclose(p.sum(-1), torch.ones(5), atol=1e-3)
    assert float(p.min()) >= 1e-4 and net.value(x).shape == (5,)
    genet = PensieveActorCritic(s_len=6, n_actions=3)
    assert genet(torch.randn(2, 6, 6)).shape == (2, 3)
    aurora = AuroraActorCritic(30)
    assert aurora(torch.randn(7, 30)).shape == (7, 1) and aurora.value(torch.randn(7, 30)).shape == (7,)
    assert float(aurora.log_std.detach()) == 0.0


def test_ppo_learns_cartpole():
    """A real Gymnasium environment (CartPole-v1), discrete PPO with GAE: mean episode length must grow."""
    torch.manual_seed(0)
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(8)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pi = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))
            self.vf = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))

        def distribution(self, o):
            return torch.distributions.Categorical(logits=self.pi(o))

        def value(self, o):
            return self.vf(o).squeeze(-1)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2.5e-3)
    cfg = PPOConfig(epochs=4, minibatch=256, value_coef=0.5, normalize_adv=True)
    obs, _ = envs.reset(seed=0)
    lengths, ep_len = [], np.zeros(8)
    first, last = None, None
    for it in range(30):
        buf = {k: [] for k in ("obs", "act", "logp", "rew", "term", "trunc", "val", "nval")}
        for _ in range(128):
            o = torch.as_tensor(obs, dtype=torch.float32)
            with torch.no_grad():
                d = net.distribution(o)
                a = d.sample()
                v = net.value(o)
            nobs, rew, term, trunc, info = envs.step(a.numpy())
            final = nobs.copy()
            done = term | trunc
            if done.any():
                fo = info.get("final_obs")
                for i in np.flatnonzero(done):
                    final[i] = fo[i]
            with torch.no_grad():
                nv = net.value(torch.as_tensor(final, dtype=torch.float32)).numpy()
            ep_len += 1
            for i in np.flatnonzero(done):
                lengths.append(ep_len[i])
                ep_len[i] = 0
            for k, x in zip(buf, (obs, a.numpy(), d.log_prob(a).numpy(), rew, term, trunc, v.numpy(), nv)):
                buf[k].append(x)
            obs = nobs
        B = {k: np.array(v) for k, v in buf.items()}
        adv, ret = gae(B["rew"], B["val"], B["term"], B["trunc"], B["nval"], 0.99, 0.95)
        ppo_update(net, opt, cfg, torch.as_tensor(B["obs"].reshape(-1, 4), dtype=torch.float32),
                   torch.as_tensor(B["act"].reshape(-1)), torch.as_tensor(B["logp"].reshape(-1)),
                   torch.as_tensor(adv.reshape(-1), dtype=torch.float32),
                   torch.as_tensor(ret.reshape(-1), dtype=torch.float32), entropy_weight=0.0)
        if it == 2:
            first = np.mean(lengths[-20:])
        last = np.mean(lengths[-20:])
    assert first < 60 and last > 2 * first and last > 100, (first, last)
    assert explained_variance(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 1.0


@pytest.mark.parametrize("make", [lambda: PensieveActorCritic(s_len=8, n_actions=6), lambda: AuroraActorCritic(30)],
                         ids=["pensieve", "aurora"])
def test_a_critic_warmup_update_moves_the_critic_alone(make):
    """PPOConfig(train_actor=False): the actor (Aurora's log std included) stays bit for bit, the critic learns;
    the same batch with train_actor=True moves both."""
    torch.manual_seed(0)
    net = make()
    n = 64
    obs = torch.randn(n, *net.obs_shape)
    with torch.no_grad():
        dist = net.distribution(obs)
        actions = dist.sample()
        logp = dist.log_prob(actions)
        if logp.dim() > 1:
            logp = logp.sum(-1)
    adv, returns = torch.randn(n), torch.randn(n) + 3.0
    actor_ids = {id(p) for p in net.actor_parameters()}
    critic = [p for p in net.parameters() if id(p) not in actor_ids]
    assert actor_ids and critic
    for train_actor in (False, True):
        before = {id(p): p.detach().clone() for p in net.parameters()}
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        stats = ppo_update(net, opt, PPOConfig(epochs=2, minibatch=32, train_actor=train_actor), obs, actions, logp,
                           adv, returns, entropy_weight=0.5)
        moved = {id(p) for p in net.parameters() if not torch.equal(p.detach(), before[id(p)])}
        assert {id(p) for p in critic} <= moved
        assert (moved & actor_ids) == (actor_ids if train_actor else set()), train_actor
        assert np.isfinite(stats["value_loss"])


def test_an_anchor_keeps_the_update_near_the_start():
    """anchor_coef: KL(anchor ‖ policy) in the loss. On the same batch a heavy anchor ends nearer the start (the
    anchor) than no anchor, and reports that KL; anchor_coef > 0 without the anchor's probabilities is an error."""
    torch.manual_seed(0)
    start = PensieveActorCritic(s_len=8, n_actions=6)
    obs = torch.randn(128, 6, 8)
    with torch.no_grad():
        dist = start.distribution(obs)
        actions = dist.sample()
        logp = dist.log_prob(actions)
        anchor_probs = dist.probs
    adv = torch.where(actions == 0, 5.0, -1.0)  # the returns favour action 0 everywhere
    returns = torch.zeros(128)

    def kl_to_start(coef):
        net = PensieveActorCritic(s_len=8, n_actions=6)
        net.load_state_dict(start.state_dict())
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        stats = ppo_update(net, opt, PPOConfig(epochs=4, anchor_coef=coef), obs, actions, logp, adv, returns, 0.0,
                           anchor_probs=anchor_probs if coef else None)
        with torch.no_grad():
            p = net.distribution(obs).probs
        return float((anchor_probs * (anchor_probs.log() - p.log())).sum(-1).mean()), stats

    free, free_stats = kl_to_start(0.0)
    held, held_stats = kl_to_start(100.0)
    assert "anchor_kl" not in free_stats and held_stats["anchor_kl"] >= 0
    assert free > 0.05 and held < free / 5
    with pytest.raises(ValueError, match="anchor_probs"):
        ppo_update(start, torch.optim.Adam(start.parameters()), PPOConfig(anchor_coef=1.0), obs, actions, logp, adv,
                   returns, 0.0)
