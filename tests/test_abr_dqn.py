"""Double DQN (genet/agents/dqn.py, genet/abr/dqn.py): the learner solves a chain it must solve, it is seeded,
its ABR checkpoints resume exactly, its ONNX export agrees with the Q-network, and ``genet train abr --agent dqn``
-> ``genet export`` -> ``genet eval abr`` runs end to end."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch

from app.cli import main
from genet.abr.dqn import DQN_FORMAT, AbrDqnUseCase, export_policy
from genet.abr.training import AbrTrainConfig, AbrUseCase
from genet.agents.base import Trajectory
from genet.agents.dqn import DqnAgent, DqnConfig, Q_VALUES_OUTPUT
from genet.agents.registry import AGENTS
from genet.curriculum.distribution import ConfigDistribution


# ------------------------------------------------------------------ the toy task
class Chain:
    """A deterministic chain of ``length`` states in ``n`` copies, observed one-hot, starting in state 0.

    In state s, action ``RIGHT[s]`` moves one state right (a combination lock: which of the two actions does so
    changes from state to state, so no constant preference of an untrained network solves it); reaching the last
    state pays 1 and ends the episode. The other action moves one state left, and from state 0 leaves at once with
    0.2: the near, small exit a learner must learn to pass by. Episodes longer than ``4 x length`` steps are cut
    (truncated, bootstrapped). The optimal policy moves right everywhere: return 1, and
    Q*(s, RIGHT[s]) = γ^(length - 2 - s).
    """

    EXIT_REWARD = 0.2
    RIGHT = np.array([1, 0, 0, 1, 0, 1, 1])

    def __init__(self, n: int, length: int = 8) -> None:
        assert length == len(self.RIGHT) + 1
        self.n, self.length = n, length
        self.state = np.zeros(n, np.int64)
        self.t = np.zeros(n, np.int64)

    def observe(self, states: np.ndarray | None = None) -> np.ndarray:
        s = self.state if states is None else states
        return np.eye(self.length, dtype=np.float32)[s]

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rewards, terminated, truncated, next observations before any reset); ended copies restart."""
        right = actions == self.RIGHT[np.minimum(self.state, self.length - 2)]
        exit_left = ~right & (self.state == 0)
        self.state = np.where(right, self.state + 1, np.maximum(self.state - 1, 0))
        goal = self.state == self.length - 1
        rewards = np.where(goal, 1.0, np.where(exit_left, self.EXIT_REWARD, 0.0))
        terminated = goal | exit_left
        self.t += 1
        truncated = ~terminated & (self.t >= 4 * self.length)
        nxt = self.observe()
        ended = terminated | truncated
        self.state[ended], self.t[ended] = 0, 0
        return rewards, terminated, truncated, nxt


def _chain_learner(seed: int, length: int = 8) -> DqnAgent:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(length, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    cfg = DqnConfig(learning_rate=3e-3, gamma=0.9, buffer_size=5000, minibatch=64, train_every=4, learning_starts=256,
                    target_every=50, epsilon_decay_steps=3000, epsilon_end=0.05)
    return AGENTS.make("dqn", network=net, config=cfg, seed=seed)


def _train_chain(agent: DqnAgent, transitions: int, seed: int, n: int = 16, T: int = 16) -> None:
    """Rollouts of T steps in n chains, each handed to the agent as a Trajectory (what a use case's driver does)."""
    env, rng = Chain(n), np.random.default_rng(seed)
    for _ in range(transitions // (n * T)):
        obs = np.zeros((T, n, env.length), np.float32)
        nxt = np.zeros_like(obs)
        acts, rew = np.zeros((T, n), np.int64), np.zeros((T, n))
        term, trunc = np.zeros((T, n), bool), np.zeros((T, n), bool)
        ent = np.zeros((T, n), np.float32)
        for t in range(T):
            obs[t] = env.observe()
            choice = agent.act(obs[t], rng)
            acts[t], ent[t] = choice.actions, choice.entropies
            rew[t], term[t], trunc[t], nxt[t] = env.step(choice.actions)
        agent.train_on(agent.make_batch(Trajectory(obs, acts, rew, term, truncated=trunc, next_observations=nxt,
                                                   entropies=ent)))


def _greedy_return(agent: DqnAgent, length: int = 8) -> float:
    env = Chain(1, length)
    total = 0.0
    for _ in range(4 * length):
        r, term, trunc, _ = env.step(agent.act(env.observe(), None, deterministic=True).actions)
        total += float(r[0])
        if term[0] or trunc[0]:
            break
    return total


#: The chain's optimal return is 1 (the greedy policy must go right all the way; passing the 0.2 exit by).
CHAIN_OPTIMUM = 1.0
#: Greedy return after training must reach this share of the optimum (and Q(s, right) be within
#: CHAIN_Q_TOLERANCE of γ^(length - 2 - s) in every state); 6144 transitions (24 rollouts of 16 x 16).
CHAIN_SHARE = 0.95
CHAIN_Q_TOLERANCE = 0.1
CHAIN_TRANSITIONS = 6144


def test_dqn_solves_a_chain_with_a_tempting_early_exit():
    agent = _chain_learner(seed=0)
    assert _greedy_return(agent) < CHAIN_SHARE * CHAIN_OPTIMUM  # an untrained network does not solve it
    _train_chain(agent, CHAIN_TRANSITIONS, seed=0)
    assert _greedy_return(agent) >= CHAIN_SHARE * CHAIN_OPTIMUM
    env = Chain(1)
    q = agent.q_values(env.observe(np.arange(env.length - 1)))
    optimal = 0.9 ** (env.length - 2 - np.arange(env.length - 1))
    assert np.array_equal(np.argmax(q, axis=1), Chain.RIGHT), q
    np.testing.assert_allclose(q[np.arange(env.length - 1), Chain.RIGHT], optimal, atol=CHAIN_Q_TOLERANCE)
    assert agent.epsilon == pytest.approx(0.05)  # decayed linearly to its end value
    assert agent.grad_steps == (CHAIN_TRANSITIONS - 256) // 4 + 1  # one step per train_every after learning_starts


def test_dqn_is_deterministic_for_a_seed():
    runs = []
    for seed in (3, 3, 4):
        agent = _chain_learner(seed)
        _train_chain(agent, 1024, seed=seed)
        runs.append(torch.cat([p.detach().reshape(-1) for p in agent.q_network.parameters()]))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_epsilon_greedy_reports_its_distribution_and_epsilon_decays_linearly():
    cfg = DqnConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=1000)
    assert [cfg.epsilon_at(s) for s in (0, 500, 1000, 5000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    agent = DqnAgent(torch.nn.Linear(3, 4), DqnConfig(epsilon_start=0.4, epsilon_decay_steps=10))
    obs = np.random.default_rng(0).normal(size=(4000, 3)).astype(np.float32)
    choice = agent.act(obs, np.random.default_rng(1))
    greedy = np.argmax(agent.q_values(obs), axis=1)
    share = float(np.mean(choice.actions == greedy))
    assert abs(share - (0.6 + 0.4 / 4)) < 0.03, share
    np.testing.assert_allclose(np.exp(choice.log_probs[choice.actions == greedy]), 0.7, rtol=1e-6)
    np.testing.assert_allclose(np.exp(choice.log_probs[choice.actions != greedy]), 0.1, rtol=1e-6)
    p = np.array([0.7, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(choice.entropies, -(p * np.log(p)).sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="dqn minibatch must be >= 1"):
        DqnConfig(minibatch=0)


def test_replay_keeps_the_newest_transitions_and_the_double_dqn_target():
    """A ring buffer of 5 after 7 transitions holds the last 5; the loss's target is Double DQN's (the online
    network picks the next action, the target network values it; no bootstrap after a terminated step)."""
    agent = DqnAgent(torch.nn.Linear(2, 3), DqnConfig(buffer_size=5, gamma=0.5, huber_delta=100.0))
    obs = np.arange(14, dtype=np.float32).reshape(7, 1, 2)
    traj = Trajectory(obs, np.zeros((7, 1), np.int64), np.arange(7.0).reshape(7, 1), np.eye(7, 1, -6, dtype=bool),
                      final_observations=np.full((1, 2), 99, np.float32))
    agent.make_batch(traj)
    held = agent.replay.get(np.arange(5))
    assert sorted(held["rewards"].tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0] and agent.replay.size == 5
    with torch.no_grad():  # a target network that ranks the actions the other way round
        agent.target.weight.mul_(-1.0)
        agent.target.bias.mul_(-1.0)
    sample = agent.replay.get(np.arange(5))
    loss, q = agent.td_loss(sample)
    with torch.no_grad():
        nxt, live = sample["next_obs"], 0.5 * (1 - sample["terminated"])
        best = agent.q_network(nxt).argmax(1)
        y = sample["rewards"] + live * agent.target(nxt)[range(5), best]
        vanilla = sample["rewards"] + live * agent.target(nxt).max(1).values  # the target picking its own best
    assert float(sample["terminated"].sum()) == 1.0  # the last transition ended its episode
    assert not torch.allclose(y, vanilla)  # the two rules differ on this sample
    np.testing.assert_allclose(float(loss.detach()), float(torch.mean(0.5 * (q.detach() - y) ** 2)), rtol=1e-5)


# ---------------------------------------------------------------------- ABR
SMALL = dict(torch_threads=1, n_envs=4, rollout_steps=16)


def _small_dqn() -> DqnConfig:
    return DqnConfig(learning_starts=32, train_every=8, minibatch=32, target_every=3)


def test_abr_dqn_checkpoints_resume_exactly_and_are_not_actor_critics(tmp_path):
    dist = ConfigDistribution.udr(AbrUseCase(AbrTrainConfig(**SMALL)).space, "rl3")
    full_uc = AbrDqnUseCase(AbrTrainConfig(**SMALL), _small_dqn())
    full = full_uc.train(full_uc.new_model(2), dist, 4, seed=3)
    uc = AbrDqnUseCase(AbrTrainConfig(**SMALL), _small_dqn())
    uc.save_model(uc.train(uc.new_model(2), dist, 2, seed=3), tmp_path / "dqn.pt")
    resumed = AbrDqnUseCase().load_model(tmp_path / "dqn.pt")
    uc.train(resumed, dist, 2, seed=3)
    for a, b in ((full.learner.q_network, resumed.learner.q_network), (full.learner.target, resumed.learner.target)):
        for (k, v), (_, v2) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(v, v2), k
    assert resumed.learner.grad_steps == full.learner.grad_steps > 0
    assert [r["td_loss"] for r in resumed.history] == [r["td_loss"] for r in full.history]
    assert torch.load(tmp_path / "dqn.pt", weights_only=False)["format"] == DQN_FORMAT
    with pytest.raises(ValueError, match="not an ABR agent checkpoint"):
        AbrUseCase(AbrTrainConfig(**SMALL)).load_model(tmp_path / "dqn.pt")
    ppo_uc = AbrUseCase(AbrTrainConfig(**SMALL))
    ppo_uc.save_model(ppo_uc.new_model(0), tmp_path / "ppo.pt")
    with pytest.raises(ValueError, match="not an ABR dqn agent checkpoint"):
        AbrDqnUseCase(AbrTrainConfig(**SMALL)).model_from(tmp_path / "ppo.pt", 0)  # --init-from a PPO run


def test_abr_dqn_export_agrees_with_the_q_network(tmp_path):
    import onnxruntime as ort
    from genet.abr.registry import make_policy
    uc = AbrDqnUseCase(AbrTrainConfig(**SMALL), _small_dqn())
    agent = uc.train(uc.new_model(0), ConfigDistribution.udr(uc.space, "rl2"), 3, seed=0)
    assert agent.learner.grad_steps > 0  # the exported network has been trained
    path = export_policy(uc, agent, tmp_path / "dqn.onnx", {"command": "test"})
    obs = np.random.default_rng(1).uniform(0, 2, (500, *uc.layout.shape)).astype(np.float32)
    q = agent.learner.q_values(obs)
    greedy = np.argmax(q, axis=1)
    # the Q-values the file carries (its second output)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output", Q_VALUES_OUTPUT]
    onnx_probs, onnx_q = session.run(None, {"observation": obs})
    assert np.max(np.abs(onnx_q - q)) <= 1e-5
    assert np.max(np.abs(onnx_probs - np.eye(q.shape[1])[greedy])) <= 1e-5
    # through the policy registry (what genet eval abr --policy dqn.onnx runs): argmax Q, sampled or not
    policy = make_policy(str(path))
    assert policy.spec == uc.layout.policy_spec()
    assert np.array_equal(policy.act(obs), greedy)
    assert np.array_equal(make_policy(str(path), deterministic=False, seed=0).act(obs), greedy)
    assert policy.extra_metadata("agent") == "dqn" and policy.extra_metadata("dqn")["minibatch"] == 32
    assert np.array_equal(agent.learner.act(obs, None, deterministic=True).actions, greedy)


# ------------------------------------------------------------------ commands
def test_train_abr_dqn_runs_exports_and_evaluates(tmp_path, shared_dir):
    run = tmp_path / "dqn"
    assert main(["train", "abr", "--no-progress", "--n-envs", "8", "--steps-per-update", "256", "--agent", "dqn",
                 "--steps", "1024", "--out", str(run), "--checkpoint-every", "2"]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["agent"] == "dqn" and "--agent dqn" in meta["command"]
    assert meta["train_config"]["dqn"]["learning_starts"] == 102 and meta["train_config"]["torch_threads"] == 1
    rows = list(csv.DictReader((run / "learning_curve.csv").open()))
    assert len(rows) == 4 and {"td_loss", "q_mean", "epsilon", "grad_steps"} <= set(rows[0])
    assert math.isfinite(float(rows[-1]["td_loss"])) and float(rows[-1]["grad_steps"]) == (1024 - 102) // 16 + 1
    assert float(rows[0]["epsilon"]) == 1.0 > float(rows[-1]["epsilon"])
    assert (run / "learning_curve.png").is_file() and (run / "checkpoints" / "latest.pt").is_file()
    onnx = tmp_path / "abr-dqn.onnx"
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    from genet.policy import load_policy
    assert load_policy(onnx).extra_metadata("agent") == "dqn"
    traces = tmp_path / "traces"
    traces.mkdir()
    for name in ("norway_bus_11_0", "norway_bus_12_0"):
        shutil.copy(shared_dir / "traces" / "abr" / "norway-val" / name, traces / name)
    out = tmp_path / "eval"
    assert main(["eval", "abr", "--traces", str(traces), "--policy", f"{onnx},bba", "--out", str(out),
                 "--no-progress"]) == 0
    assert "abr-dqn" in (out / "summary.txt").read_text()


def test_train_every_sets_dqns_replay_ratio(tmp_path):
    run = tmp_path / "dqn"
    assert main(["train", "abr", "--no-progress", "--n-envs", "8", "--steps-per-update", "256", "--agent", "dqn",
                 "--steps", "1024", "--train-every", "64", "--minibatch", "32", "--out", str(run)]) == 0
    dqn = json.loads((run / "run.json").read_text())["train_config"]["dqn"]
    assert dqn["train_every"] == 64 and dqn["minibatch"] == 32
    rows = list(csv.DictReader((run / "learning_curve.csv").open()))
    assert float(rows[-1]["grad_steps"]) == (1024 - 102) // 64 + 1


@pytest.mark.parametrize("extra, message", [
    (["--train-every", "0"], "--train-every must be >= 1"),
    (["--agent", "ppo", "--train-every", "4"], "--train-every is an option of --agent dqn, not --agent ppo"),
    (["--rollout-workers", "2"], "--agent dqn steps its sessions in this process"),
    (["--teacher", "mpc"], "--teacher is an option of the imitation agents (bc, dagger), not --agent dqn"),
])
def test_bad_dqn_options_fail_before_training(tmp_path, capsys, extra, message):
    # (an --agent in extra overrides the first: argparse keeps the last)
    assert main(["train", "abr", "--no-progress", "--agent", "dqn", "--out", str(tmp_path / "r"), *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
