"""PPO training of Aurora policies: the CC use case of the Genet curriculum.

:class:`CcUseCase` implements :class:`genet.curriculum.usecase.UseCase` (the
paper's Train/Test interface, §4.3):

* ``new_model(seed)`` -> a :class:`CcAgent`: the :class:`~genet.ppo.networks.AuroraActorCritic`
  ([32, 16] tanh policy and value MLPs, Gaussian action), its Adam optimiser
  and the rollout state (environments, current observations, RNG streams);
* ``train(agent, distribution, iterations, seed)``: ``iterations`` PPO updates,
  each on ``steps_per_update`` transitions (Aurora: 7200) collected from
  ``n_envs`` :class:`~genet.cc.env.AuroraEnv` environments stepped in lockstep.
  Every new episode draws a config from the
  :class:`~genet.curriculum.distribution.ConfigDistribution` and builds its
  30-s trace with :func:`traces.generators.generate_trace` (or takes a real
  trace when the distribution mixes them in);
* ``test(policy, configs, seed)``: the packet-level reward
  (:func:`genet.cc.metrics.summarize`, genet-simulators.md §4.6) of the model
  (deterministic: the Gaussian mean) or of a baseline (``"bbr"``, ``"cubic"``)
  on one environment per config; environment i's trace comes from
  (config, seed, i), so RL and baseline see the same traces. ``"optimal"`` is
  the reward of an ideal sender (see :func:`optimal_reward`).
* ``save_model``/``load_model``: one file holding the network and optimiser
  state dicts, the counters, the learning-curve history and the whole rollout
  state (pickled environments mid-episode, numpy and torch RNG states), so a
  resumed run continues exactly where the checkpoint was taken.

PPO settings are Aurora's (stable-baselines PPO1, genet-simulators.md §8.3):
Adam 1e-3 (eps 1e-5), γ 0.99, GAE λ 0.95, clip 0.2, 12 epochs, minibatches
of steps_per_update / 12, standardised advantages, entropy coefficient 0.01,
value loss added unweighted (PPO1's ``total_loss = pol_surr + pol_entpen +
vf_loss``: value_coef 1), no reward scaling.

Choices where references differ or are silent:

* Episode end at the trace horizon is *truncated* (Gymnasium; the env says so)
  and is bootstrapped with V(s'), where PPO1 treated it as terminal.
* Episodes carry across updates and across ``train`` calls (as PPO1's
  rollout generator does); the last partial episode of a batch is bootstrapped.
* ``seed`` of ``train`` seeds the rollout state only when the agent has none
  yet; afterwards the agent's own saved RNG streams continue, so training in
  several calls (with checkpoints in between) equals one long call.
* The environments run in this process; torch is set to ``torch_threads``
  threads (1: the simulator, not the 30->32->16 MLP, dominates).
* Several cores: ``rollout_workers`` N > 1 (0 = every core, at most ``n_envs``) puts slices of the
  environments in worker processes (Ray actors with ``ray_address``), seeded from (seed, N, slice);
  the rollout runs on them, the PPO update in this process on their concatenated tensors (for this
  small network the data-parallel update's per-step round trips cost more than they save:
  :mod:`genet.ppo.workers`); the minibatch order comes from the parent's own torch generator.
  N = 1 is the in-process path above.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from genet.agents.base import Trajectory
from genet.agents.ppo import PpoAgent
from genet.cc.env import AuroraConfig, AuroraEnv
from genet.curriculum.distribution import ConfigDistribution
from genet.ppo.checkpoint import load_checkpoint, save_checkpoint
from genet.ppo.algorithm import PPOConfig, gae, ppo_update
from genet.ppo.networks import AuroraActorCritic
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads, torch_thread_count
from genet.ppo.workers import (ShardedRollout, WorkerPoolOwner, column_sums,
                               explained_variance_from_sums, parameters_vector, shard_sizes, worker_count)
from traces import Trace
from traces.config_space import ConfigSpace, load_space

#: Baseline names ``test`` accepts besides a model.
CC_BASELINES = ("bbr", "cubic")
CHECKPOINT_FORMAT = "genet-cc-agent-v1"
#: Checkpoints of the CC imitation agents (genet/cc/imitation.py); every format whose ``net`` PPO can start from.
IMITATION_FORMAT = "genet-cc-imitation-v1"
NETWORK_FORMATS = (CHECKPOINT_FORMAT, IMITATION_FORMAT)


#: Genet's simulator, exactly (the shipped CC models' rules; ``genet train cc --startup aurora
#: --interval-serialisation link``): Aurora's start-up and the link's true bandwidth in the next-interval rule.
GENET_RULES = {"startup": "aurora", "interval_serialisation": "link"}


@dataclass
class CcTrainConfig:
    """Aurora PPO settings (genet-simulators.md §8.3).

    n_envs: environments stepped in lockstep per rollout (2: Aurora's 2 MPI workers)
    steps_per_update: transitions per PPO update, all environments together (7200)
    epochs: optimisation passes over each batch (12)
    minibatch: transitions per gradient step (600; PPO1 300 per each of 2 workers)
    learning_rate: Adam step size (1e-3)
    adam_eps: Adam epsilon (1e-5)
    gamma: discount (0.99)
    gae_lambda: GAE λ (0.95)
    clip: PPO ratio clip (0.2)
    entropy_coef: entropy bonus weight (0.01)
    value_coef: value-loss weight (1.0: PPO1 adds it unweighted)
    reward_scale: multiplier on the environment reward for training only (1.0: none, as Genet)
    history_length: monitor intervals in the observation (10 -> 30 values)
    reward_form: "genet" (bandwidth-normalised) or "aurora" ("genet")
    torch_threads: torch intra-op threads (1; 0 = every core)
    rollout_workers: worker processes stepping slices of the environments (1: in this process; 0: every core)
    startup: the Aurora sender's start-up, "window" (an initial window until the first ACK, as the real UDP
        sender: :mod:`genet.cc.aurora`) or "aurora" (Aurora's reference and Genet's, the shipped models');
        recorded in the exported model ("window")
    initial_window_packets: the "window" start-up's window, packets (10)
    interval_serialisation: the next-interval rule of the simulator, "measured" (the real sender's: the measured
        delivery rate, genet/cc/aurora.py) or "link" (Genet's oracle, the shipped models') ("measured").
        The defaults are the real sender's rules (issue 31: a model trained on them is predicted by its
        simulator within 3-6 % on the emulated link, docs/fidelity.md); ``startup="aurora",
        interval_serialisation="link"`` is Genet's simulator, exactly (:data:`GENET_RULES`)
    gap_after_first_ack: score the curriculum's BO trials (model and baseline alike) on the packets each
        sender sent after its first ACK (:func:`genet.cc.metrics.after_first_ack`; False: the whole run, as
        Genet). Evaluation (``genet eval``) always scores the whole run.
    """

    n_envs: int = 2
    steps_per_update: int = 7200
    epochs: int = 12
    minibatch: int = 600
    learning_rate: float = 1e-3
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy_coef: float = 0.01
    value_coef: float = 1.0
    reward_scale: float = 1.0
    history_length: int = 10
    reward_form: str = "genet"
    torch_threads: int = 1
    rollout_workers: int = 1
    gap_after_first_ack: bool = False
    startup: str = "window"
    initial_window_packets: int = 10
    interval_serialisation: str = "measured"

    def __post_init__(self):
        if self.n_envs < 1 or self.steps_per_update < self.n_envs:
            raise BadInputError(f"need n_envs >= 1 and steps_per_update >= n_envs, got {self.n_envs}, "
                             f"{self.steps_per_update}")
        if self.epochs < 1 or self.minibatch < 1:
            raise BadInputError(f"epochs and minibatch must be >= 1, got {self.epochs}, {self.minibatch}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1 and self.clip > 0 and self.learning_rate > 0):
            raise BadInputError("need 0 < gamma <= 1, 0 <= gae_lambda <= 1, clip > 0, learning_rate > 0")
        torch_thread_count(self.torch_threads)  # raises on a negative count
        worker_count(self.rollout_workers, self.n_envs)  # raises on a negative or too large count
        self.aurora()  # raises on a bad start-up or window

    @property
    def steps_per_env(self) -> int:
        return self.steps_per_update // self.n_envs

    @property
    def batch_size(self) -> int:
        """Transitions per update actually collected (steps_per_env x n_envs)."""
        return self.steps_per_env * self.n_envs

    def aurora(self) -> AuroraConfig:
        return AuroraConfig(history_length=self.history_length, reward_form=self.reward_form, startup=self.startup,
                            initial_window_packets=self.initial_window_packets,
                            interval_serialisation=self.interval_serialisation)


@dataclass
class RolloutState:
    """What a rollout leaves behind for the next one (all of it is checkpointed)."""

    envs: list[AuroraEnv]
    obs: np.ndarray  # (n_envs, obs_dim) current observations
    episode_return: np.ndarray  # running return of each environment's episode
    episode_steps: np.ndarray
    rng: np.random.Generator  # config draws and episode seeds
    torch_gen: torch.Generator  # action noise and minibatch order


@dataclass
class CcAgent(TrainingProgress):
    """An Aurora policy in training: network, optimiser, rollout state, and the counters and history of
    :class:`~genet.ppo.progress.TrainingProgress`."""

    net: AuroraActorCritic
    optimizer: torch.optim.Optimizer
    config: CcTrainConfig
    rollout: RolloutState | None = None

    @property
    def learner(self) -> PpoAgent:
        """This agent behind the agent interface (:class:`genet.agents.ppo.PpoAgent`: GAE, standardised
        advantages, the constant entropy coefficient; the minibatch order from the rollout's torch Generator)."""
        cfg = self.config
        ppo = PPOConfig(clip=cfg.clip, epochs=cfg.epochs, minibatch=cfg.minibatch, value_coef=cfg.value_coef,
                        normalize_adv=True)
        return PpoAgent(self.net, self.optimizer, ppo, cfg.gamma, cfg.entropy_coef, cfg.reward_scale,
                        advantage="gae", gae_lambda=cfg.gae_lambda,
                        generator=None if self.rollout is None else getattr(self.rollout, "torch_gen", None))

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Deterministic actions (the Gaussian mean) for a (n, obs_dim) batch."""
        with torch.no_grad():
            return self.net(torch.as_tensor(np.asarray(observations, np.float32))).numpy()


def optimal_reward(trace: Trace, aurora: AuroraConfig | None = None) -> float:
    """Packet-level reward of an ideal sender on ``trace``: it delivers the whole
    mean bandwidth minus random loss at the minimum RTT (no queueing). Genet's
    ``trace.optimal_reward`` plays this role for CL2/CL3; this is our own
    closed form of the same idea (an upper bound of what a sender can get)."""
    from genet.cc.link import LinkConfig, mbps_to_pps
    from genet.cc.reward import aurora_reward
    aurora = aurora or AuroraConfig()
    link = LinkConfig.from_trace(trace)
    bw = float(mbps_to_pps(link.mean_bandwidth_mbps))
    loss = float(link.loss_rate)
    return aurora_reward(bw * (1 - loss), 2 * link.delay_ms / 1000.0, loss, bw, aurora.reward_form)


class CcUseCase(WorkerPoolOwner):
    """The CC use case for :func:`genet.curriculum.loop.run_curriculum` (see the module docstring).

    config: PPO settings (:class:`CcTrainConfig`)
    real_traces: traces a distribution with ``real_prob > 0`` draws from (None: none)
    on_update: called as ``on_update(agent, record)`` after every PPO update (learning curves, progress)
    space: the config space environments are drawn from (None: traces/spaces/cc.json; ``--space``)
    ray_address: run the rollout workers as Ray actors on this cluster (None: local processes)
    """

    name = "cc"
    baselines = CC_BASELINES

    def __init__(self, config: CcTrainConfig | None = None, real_traces: Sequence[Trace] | None = None,
                 on_update: Callable[[CcAgent, dict], None] | None = None, space: ConfigSpace | None = None,
                 ray_address: str | None = None):
        self.config = config or CcTrainConfig()
        self.ray_address = ray_address
        self._pool = None
        self.space = space if space is not None else load_space("cc")
        self.real_traces = list(real_traces or [])
        self.on_update = on_update

    # ---------------------------------------------------------------- models
    def new_model(self, seed: int) -> CcAgent:
        cfg = self.config
        set_torch_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        net = AuroraActorCritic(obs_dim=cfg.aurora().observation_size)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)
        return CcAgent(net, opt, cfg, seed=seed)

    def save_model(self, agent: CcAgent, path: Path) -> None:
        """Write the agent to ``path`` atomically (network, optimiser, counters, history, rollout state)."""
        path = Path(path)
        roll = agent.rollout
        rollout = None
        if isinstance(roll, ShardedRollout):
            rollout = {"sharded": pickle.dumps(roll)}
        elif roll is not None:
            rollout = {"envs": pickle.dumps(roll.envs), "obs": roll.obs, "episode_return": roll.episode_return,
                       "episode_steps": roll.episode_steps, "rng": roll.rng.bit_generator.state,
                       "torch_gen": roll.torch_gen.get_state()}
        blob = {"format": CHECKPOINT_FORMAT, "use_case": self.name, "config": asdict(agent.config),
                "net": agent.net.state_dict(), "optimizer": agent.optimizer.state_dict(),
                **agent.progress_state(), "rollout": rollout}
        save_checkpoint(blob, path)

    def load_model(self, path: Path) -> CcAgent:
        path = Path(path)
        blob = load_checkpoint(path, CHECKPOINT_FORMAT, "CC")
        cfg = CcTrainConfig(**blob["config"])
        self.config = cfg
        agent = self.new_model(blob["seed"])
        agent.net.load_state_dict(blob["net"])
        agent.optimizer.load_state_dict(blob["optimizer"])
        agent.restore_progress(blob)
        r = blob["rollout"]
        if r is not None and "sharded" in r:
            agent.rollout = pickle.loads(r["sharded"])
        elif r is not None:
            rng = np.random.default_rng()
            rng.bit_generator.state = r["rng"]
            gen = torch.Generator()
            gen.set_state(r["torch_gen"])
            agent.rollout = RolloutState(pickle.loads(r["envs"]), r["obs"], r["episode_return"], r["episode_steps"],
                                         rng, gen)
        return agent

    def model_from(self, path: Path, seed: int) -> CcAgent:
        """A new PPO agent (fresh optimiser, counters and rollout) whose network starts from the weights of the CC
        checkpoint at ``path``: a PPO, A3C or bc/dagger run's (``--init-from``); its observation size must be this
        config's."""
        from genet.ppo.checkpoint import network_weights
        agent = self.new_model(seed)
        try:
            agent.net.load_state_dict(network_weights(path, NETWORK_FORMATS, "CC"))
        except RuntimeError as exc:  # another history length: the tensors' shapes differ
            raise BadInputError(f"{path}: its network does not fit {self.config.aurora().observation_size} "
                                f"observation values (--history-length {self.config.history_length}) "
                                f"({str(exc).splitlines()[0]})") from None
        return agent

    # -------------------------------------------------------------- training
    def _episode_trace(self, distribution: ConfigDistribution, rng: np.random.Generator) -> Trace:
        from traces.generators import generate_trace
        cfg = distribution.sample(rng)
        if "real_trace_index" in cfg:
            if not self.real_traces:
                raise BadInputError("the training distribution mixes in real traces but CcUseCase has none")
            return self.real_traces[cfg["real_trace_index"] % len(self.real_traces)]
        return generate_trace("cc", cfg, rng, name="train", space=self.space)

    def _reset_env(self, env: AuroraEnv, distribution: ConfigDistribution, rng: np.random.Generator) -> np.ndarray:
        trace = self._episode_trace(distribution, rng)
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)), options={"trace": trace})
        env.episode_logs.clear()
        return obs

    def _start_rollout(self, distribution: ConfigDistribution, seed: int) -> RolloutState:
        cfg = self.config
        rng = np.random.default_rng(seed)
        gen = torch.Generator()
        gen.manual_seed(seed)
        envs, obs = [], []
        for _ in range(cfg.n_envs):
            env = AuroraEnv(env_config=self.space.default(), aurora=cfg.aurora())
            envs.append(env)
            obs.append(self._reset_env(env, distribution, rng))
        return RolloutState(envs, np.stack(obs), np.zeros(cfg.n_envs), np.zeros(cfg.n_envs, np.int64), rng, gen)

    def collect(self, agent: CcAgent, distribution: ConfigDistribution) -> dict[str, Any]:
        """One rollout of ``steps_per_env`` steps in every environment."""
        cfg, roll = agent.config, agent.rollout
        T, N = cfg.steps_per_env, cfg.n_envs
        D = roll.obs.shape[1]
        obs_buf = np.zeros((T, N, D), np.float32)
        next_obs = np.zeros((T, N, D), np.float32)
        act_buf = np.zeros((T, N, 1), np.float32)
        logp_buf = np.zeros((T, N), np.float32)
        rew = np.zeros((T, N))
        term = np.zeros((T, N), bool)
        trunc = np.zeros((T, N), bool)
        episodes: list[float] = []
        learner = agent.learner
        for t in range(T):
            choice = learner.act(roll.obs.astype(np.float32), roll.torch_gen)  # mean + std x N(0, 1)
            obs_buf[t] = roll.obs
            act_buf[t] = choice.actions
            logp_buf[t] = choice.log_probs
            for i, env in enumerate(roll.envs):
                o2, r, te, tr, _ = env.step(act_buf[t, i])
                env.episode_logs.clear()
                rew[t, i], term[t, i], trunc[t, i] = r, te, tr
                next_obs[t, i] = o2
                roll.episode_return[i] += r
                roll.episode_steps[i] += 1
                if te or tr:
                    episodes.append(float(roll.episode_return[i]))
                    roll.episode_return[i], roll.episode_steps[i] = 0.0, 0
                    o2 = self._reset_env(env, distribution, roll.rng)
                roll.obs[i] = o2
        return {"obs": obs_buf, "next_obs": next_obs, "actions": act_buf, "logp": logp_buf, "rewards": rew,
                "terminated": term, "truncated": trunc, "episode_returns": episodes}

    def update(self, agent: CcAgent, batch: dict[str, Any]) -> dict[str, float]:
        """GAE(λ) and the PPO update on one rollout batch, through the agent interface
        (:class:`genet.agents.ppo.PpoAgent`)."""
        learner = agent.learner
        traj = Trajectory(batch["obs"], batch["actions"], batch["rewards"], batch["terminated"],
                          truncated=batch["truncated"], next_observations=batch["next_obs"], log_probs=batch["logp"],
                          episode_returns=batch["episode_returns"])
        return learner.train_on(learner.make_batch(traj))

    def train(self, agent: CcAgent, distribution: ConfigDistribution, iterations: int, seed: int) -> CcAgent:
        """``iterations`` PPO updates on environments drawn from ``distribution``."""
        if distribution.space.use_case != "cc":
            raise BadInputError(f"CcUseCase.train: distribution is for use case {distribution.space.use_case!r}")
        return self._run_updates(agent, distribution, iterations, seed)

    def _record_extras(self, agent: CcAgent) -> dict[str, float]:
        return {"log_std": float(agent.net.log_std.detach()[0])}

    # ------------------------------------------------------- rollout workers
    def shard_use_case(self, index: int, n_workers: int) -> "CcUseCase":
        """A picklable copy for worker ``index`` of ``n_workers``: its slice of the environments (the same
        steps per environment), one torch thread, no callback, no pool."""
        cfg = self.config
        n = shard_sizes(cfg.n_envs, n_workers)[index]
        uc = self._shard_copy()
        uc.config = CcTrainConfig(**{**asdict(cfg), "n_envs": n, "steps_per_update": cfg.steps_per_env * n,
                                     "torch_threads": 1, "rollout_workers": 1})
        return uc

    def collect_shard(self, agent: CcAgent, distribution: ConfigDistribution) -> dict[str, Any]:
        return self.collect(agent, distribution)

    def prepare_shard(self, agent: CcAgent, batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A slice's training tensors (values and GAE as in :meth:`update`; the parent's update standardises
        the advantages over the whole batch) and the summary the parent needs."""
        cfg, net = agent.config, agent.net
        T, N, D = batch["obs"].shape
        obs = torch.from_numpy(batch["obs"].reshape(-1, D))
        with torch.no_grad():
            values = net.value(obs).numpy().reshape(T, N)
            next_values = net.value(torch.from_numpy(batch["next_obs"].reshape(-1, D))).numpy().reshape(T, N)
        adv, ret = gae(batch["rewards"] * cfg.reward_scale, values, batch["terminated"], batch["truncated"],
                       next_values, cfg.gamma, cfg.gae_lambda)
        adv32 = adv.reshape(-1).astype(np.float32)
        data = {"obs": obs, "actions": torch.from_numpy(batch["actions"].reshape(-1, 1)),
                "logp": torch.from_numpy(batch["logp"].reshape(-1)), "adv": torch.from_numpy(adv32),
                "returns": torch.from_numpy(ret.reshape(-1).astype(np.float32))}
        summary = {"n": T * N, "rewards": batch["rewards"], "episode_returns": batch["episode_returns"],
                   **column_sums("adv", adv32), **column_sums("ret", ret), **column_sums("resid", ret - values)}
        return data, summary

    def _train_sharded(self, agent: CcAgent, distribution: ConfigDistribution, iterations: int,
                       seed: int) -> CcAgent:
        cfg, roll = agent.config, agent.rollout
        pool = self._worker_pool(agent)
        gen = torch.Generator()
        if roll.update_gen is None:
            gen.manual_seed(seed)
        else:
            gen.set_state(roll.update_gen)
        ppo = PPOConfig(clip=cfg.clip, epochs=cfg.epochs, minibatch=cfg.minibatch, value_coef=cfg.value_coef,
                        normalize_adv=True)
        try:
            for _ in range(iterations):
                t0 = time.perf_counter()
                summaries = pool.collect(parameters_vector(agent.net), distribution, seed)
                t1 = time.perf_counter()
                # the update in this process on the slices' tensors (genet.ppo.workers: for Aurora's small
                # network the data-parallel update's per-step round trips cost more than they save)
                d = pool.training_data()
                stats = ppo_update(agent.net, agent.optimizer, ppo, d["obs"], d["actions"], d["logp"], d["adv"],
                                   d["returns"], cfg.entropy_coef, generator=gen)
                stats["explained_variance"] = explained_variance_from_sums(summaries)
                t2 = time.perf_counter()
                self._record_sharded(agent, summaries, t1 - t0, t2 - t1, stats)
        except BaseException:
            self.close()  # the workers' state no longer matches the agent's
            raise
        roll.update_gen = gen.get_state()
        pool.save_to(roll)
        return agent

    # ------------------------------------------------------------------ test
    def test(self, policy: Any, configs: list[dict], seed: int) -> np.ndarray:
        """Packet-level reward of ``policy`` (a :class:`CcAgent`, a torch module — both run as a
        :class:`genet.policy.TorchPolicy`, through the policy protocol's ``act`` —, a
        :class:`genet.policy.Policy`, a batched ``act(obs)`` callable, or "bbr"/"cubic"/"optimal") per config;
        of the packets sent after the sender's first ACK with ``config.gap_after_first_ack``."""
        from genet.cc.metrics import after_first_ack, summarize
        from genet.cc.policies import run_aurora, run_policy
        from genet.cc.registry import cc_policy_spec, parse_policy
        from genet.policy import TorchPolicy, act_one

        aurora = self.config.aurora()
        if isinstance(policy, str):
            if policy not in (*CC_BASELINES, "optimal"):
                raise BadInputError(f"unknown CC baseline {policy!r}; choose one of {', '.join(CC_BASELINES)} "
                                 f"(or 'optimal')")
            act = None
        else:
            if isinstance(policy, CcAgent):
                policy = TorchPolicy(policy.net, cc_policy_spec(aurora), name="rl")
            elif isinstance(policy, torch.nn.Module):
                policy = TorchPolicy(policy, cc_policy_spec(aurora), name="rl")
            if hasattr(policy, "spec") and hasattr(policy, "act"):  # a genet.policy.Policy
                policy.bind(aurora)
                policy.reset()

                def act(obs, _p=policy):
                    return float(act_one(_p, obs)[0])
            elif callable(policy):
                def act(obs, _f=policy):
                    return float(np.asarray(_f(obs[None, :])).reshape(-1)[0])
            else:
                raise TypeError(f"CcUseCase.test: cannot run a policy of type {type(policy).__name__}")
        out = []
        for trace, link, sim_seed in trial_runs(configs, seed, self.space):
            if policy == "optimal":
                out.append(optimal_reward(trace, aurora))
                continue
            if act is None:
                log = run_policy(parse_policy(policy), trace, link, seed=sim_seed)
            else:
                log, _ = run_aurora(act, trace, aurora, sim_seed)
            if self.config.gap_after_first_ack:
                log = after_first_ack(log)
            out.append(summarize(log, link, str(policy), trace.name, aurora.reward_form, sim_seed).reward)
        return np.array(out, float)


def trial_runs(configs: Sequence[dict], seed: int, space: ConfigSpace | None = None):
    """(trace, link, simulator seed) per config, as the curriculum's test (BO trial) runs them: config i's
    30-s trace and its random-loss seed come from ``default_rng([seed, i])`` (``genet study cc-startup``
    replays a trial's traces with this)."""
    from genet.cc.link import LinkConfig
    from traces.generators import generate_trace

    for i, config in enumerate(configs):
        rng = np.random.default_rng([seed, i])
        trace = generate_trace("cc", config, rng, name=f"test-{i}", space=space)
        sim_seed = int(rng.integers(2**31 - 1))
        yield trace, LinkConfig.from_trace(trace), sim_seed


# ------------------------------------------------------------- CLI hooks
def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[CcAgent, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> CcUseCase:
    """The CC use case from ``genet train cc`` options (see :mod:`genet.train_cli`)."""
    return CcUseCase(train_config_from_args(args), real_traces=real_traces, on_update=on_update, space=space,
                     ray_address=getattr(args, "ray_address", None))


def train_config_from_args(args: Any) -> CcTrainConfig:
    """The :class:`CcTrainConfig` of ``genet train cc`` options (not given: its defaults)."""
    d = CcTrainConfig()

    def opt(name, default):
        v = getattr(args, name, None)
        return default if v is None else v
    cfg = CcTrainConfig(n_envs=opt("n_envs", d.n_envs), steps_per_update=opt("steps_per_update", d.steps_per_update),
                        epochs=opt("epochs", d.epochs), minibatch=opt("minibatch", d.minibatch),
                        learning_rate=opt("lr", d.learning_rate), history_length=opt("history_length", d.history_length),
                        torch_threads=opt("torch_threads", d.torch_threads),
                        rollout_workers=opt("rollout_workers", d.rollout_workers),
                        gap_after_first_ack=bool(opt("gap_after_first_ack", d.gap_after_first_ack)),
                        startup=opt("startup", d.startup),
                        initial_window_packets=opt("initial_window_packets", d.initial_window_packets),
                        interval_serialisation=opt("interval_serialisation", d.interval_serialisation))
    return cfg


def train_config_dict(use_case: CcUseCase) -> dict:
    return asdict(use_case.config)


def export_policy(use_case: CcUseCase, agent: CcAgent, path: str | Path,
                  metadata: dict[str, Any] | None = None, n_check: int = 1000) -> Path:
    """Export the deterministic actor (the Gaussian mean) as a self-describing ONNX policy
    (:func:`genet.policy.export_onnx`, spec :func:`genet.cc.policies.cc_policy_spec`),
    checked against torch on ``n_check`` random observations inside the observation bounds."""
    from genet.cc.monitor import ObservationHistory
    from genet.cc.policies import cc_policy_spec
    from genet.policy import export_onnx
    aurora = agent.config.aurora()
    lo, hi = ObservationHistory(aurora.features, aurora.history_length).bounds()
    rng = np.random.default_rng(0)
    lo_f = np.maximum(np.asarray(lo, np.float64), -10.0)
    hi_f = np.minimum(np.asarray(hi, np.float64), 10.0)
    obs = rng.uniform(lo_f, hi_f, size=(n_check, lo_f.size)).astype(np.float32)
    extra = {"delta_scale": aurora.delta_scale, "features": list(aurora.features),
             "startup": aurora.startup, "initial_window_packets": aurora.initial_window_packets,
             "interval_serialisation": aurora.interval_serialisation,
             "history_length": aurora.history_length, "reward_form": aurora.reward_form,
             "train_config": asdict(agent.config), "updates": agent.updates, "env_steps": agent.env_steps,
             "train_wall_s": agent.wall_s, "seed": agent.seed, **(metadata or {})}
    return export_onnx(agent.net.pi, cc_policy_spec(aurora), path, extra_metadata=extra, check_observations=obs)
