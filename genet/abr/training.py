"""Pensieve-PPO training of ABR policies: the ABR use case of the Genet curriculum.

:class:`AbrUseCase` implements :class:`genet.curriculum.usecase.UseCase` (the
paper's Train/Test interface, §4.3):

* ``new_model(seed)`` -> an :class:`AbrAgent`: a
  :class:`~genet.ppo.networks.PensieveActorCritic` (Pensieve 6x8 state, 6
  direct actions by default; the Genet 6x6 / 3 jump actions layout on
  request), one Adam over actor + critic, the adaptive entropy weight, counters,
  learning-curve history and the rollout state;
* ``train(agent, distribution, iterations, seed)``: ``iterations`` PPO updates,
  each on ``n_envs x rollout_steps`` transitions of ``n_envs`` sessions stepped
  together on ONE :class:`~genet.abr.core.BatchedAbrSim` (the numba core, no
  per-session Python env). Every new video (episode) plays an environment drawn
  from the :class:`~genet.curriculum.distribution.ConfigDistribution`: the
  config's trace from :func:`traces.generators.generate_trace` plus the
  config's buffer / RTT / chunk length / video length (:class:`EnvParams`), or
  a real trace (default EnvParams, as Genet wraps real traces with 80 ms /
  60 s) when the distribution draws ``real_trace_index``;
* ``test(policy, configs, seed)``: per-config QoE of one video (§1.6) expressed
  as a 48-chunk video (mean per-chunk reward x 48) of the model (argmax
  action), ``"mpc"``, ``"bba"`` or ``"optimal"``
  through :func:`genet.abr.evaluate.evaluate` (trace pointer 1, no delay noise);
  environment i's trace comes from ``default_rng([seed, i])``, so the RL policy
  and every baseline see the same traces;
* ``save_model``/``load_model``: one file with the network, optimiser,
  adaptive-entropy weight, counters, history and the whole rollout state
  (the batched simulator mid-video, the state matrices, the numpy RNG), so a
  resumed run continues exactly (tested: equal parameters after 2 + 2 and 4 updates).

The PPO arithmetic goes through the agent interface (:class:`genet.agents.ppo.PpoAgent`, built by
:attr:`AbrAgent.learner` over the agent's network, optimiser and entropy weight; genet/agents/base.py): ``collect``
asks it for actions, ``update`` for the batch and the update. The other ABR agents reuse this use case's
environments, rollouts, checkpoints and ``test``: ``a3c`` (genet/abr/a3c.py) with another learner, ``bc`` and
``dagger`` (genet/abr/imitation.py) with a teacher labelling every state.

PPO follows Pensieve-PPO's torch version (genet-simulators.md §8.2): Adam
1e-4, 5 full-batch epochs, clip 0.2, dual clip 3, value coefficient 10,
adaptive entropy from ln 6 towards a target entropy of 0.1 (updated with the
entropy of the rollout policy, floor 0.01), γ = 0.99 discounted returns
without GAE, advantage R - V (not normalised). Environment (training): the
Pensieve conventions (48-chunk default video, μ = 4.3, first quality 1) with
Pensieve training's delay noise U(0.9, 1.1) and random start pointer (§1.7).

Choices where references differ or are silent:

* ``test`` (and so the BO gap) scales each video's total QoE to 48 chunks.
  Genet's gap is the plain sum over its fixed 49-chunk video (§6.2); our
  ABR space also varies the chunk length and the video length (RL3: 1-10 s
  chunks, videos up to 800 s), and a plain sum would make the search promote
  the longest videos with the shortest chunks simply because they have the
  most chunks to lose QoE on. For a 48-chunk video the two are equal.

* Episodes are whole videos (video end = *terminated*, no bootstrap) and carry
  across updates and ``train`` calls: each update runs exactly ``rollout_steps``
  decisions in every session, the last partial video of a batch is bootstrapped
  with V(s_T) (Pensieve-PPO stops rollouts at the video end instead; with a
  lockstep batch and video lengths from 4 to 800 chunks (RL3) fixed-length
  rollouts keep the batch dense).
* As in Pensieve-PPO's env, each video's first chunk is downloaded at the first
  quality without a decision; its reward is not a training transition but is
  part of the logged episode QoE (as in evaluation).
* Actions are sampled by inverse CDF from the numpy RNG (Pensieve-PPO uses
  Gumbel-max: the same distribution).
* The trace pool: the batched simulator holds the traces of the running videos
  plus ``fresh_traces`` newly drawn environments; it is rebuilt before every
  update (running sessions keep their exact state), and a new video takes the
  next unused fresh environment (a uniformly chosen one from the pool once all
  are used within one update).
* A drawn config whose trace cannot carry one chunk in a whole pass (possible
  near 0 Mbps; the simulator refuses such traces) is redrawn from the same RNG
  (training and test alike, so test stays a function of (config, seed, i)).
* ``seed`` of ``train`` seeds the rollout only when the agent has none yet;
  afterwards the agent's own saved RNG continues (training in several calls
  with checkpoints in between equals one long call).
* Threads: torch uses ``torch_threads`` intra-op threads (0 = every core),
  set with :func:`genet.ppo.threads.set_torch_threads` at every ``new_model``/``train``; the numba
  simulator is single-threaded and runs between the network calls.
* Several cores: ``rollout_workers`` N > 1 (0 = every core) splits the sessions into N slices, each
  with its own batched simulator, trace pool (``fresh_traces`` split the same way) and RNG streams
  seeded from (seed, N, slice), in worker processes (or Ray actors with ``ray_address``); the
  rollout and the PPO update run data-parallel on them (:mod:`genet.ppo.workers`). N = 1 is the
  in-process path above.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import os
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from genet.abr.core import BatchedAbrSim
from genet.abr.observations import PENSIEVE_6X8, StateBuilder, get_layout, to_quality
from genet.abr.params import EnvParams, SimConventions, conventions
from genet.abr.video import Video
from genet.agents.base import Trajectory
from genet.agents.ppo import PpoAgent
from genet.curriculum.distribution import ConfigDistribution
from genet.ppo.checkpoint import load_checkpoint, save_checkpoint
from genet.ppo.algorithm import AdaptiveEntropy, PPOConfig, learning_rate
from genet.ppo.networks import PensieveActorCritic
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads, torch_thread_count
from genet.ppo.workers import (WorkerPool, WorkerPoolOwner, column_sums, data_parallel_update,
                               explained_variance_from_sums, parameters_vector, shard_sizes, worker_count)
from traces.config_space import ConfigSpace, load_space
from traces.errors import TraceFormatError
from traces.trace import Trace

#: Baseline names ``test`` accepts besides a model ("optimal": the offline optimum, genet/abr/optimal.py).
ABR_BASELINES = ("mpc", "bba")
CHECKPOINT_FORMAT = "genet-abr-agent-v1"
#: Checkpoints of the imitation agents (bc, dagger; genet/abr/imitation.py): the same network under ``net``.
IMITATION_FORMAT = "genet-abr-imitation-v1"
#: Checkpoint formats whose ``net`` is a :class:`PensieveActorCritic` (what ``--init-from`` starts PPO from).
NETWORK_FORMATS = (CHECKPOINT_FORMAT, IMITATION_FORMAT)
#: ``test`` reports QoE per video of this many chunks (Pensieve's 48; see the module docstring).
TEST_VIDEO_CHUNKS = 48
#: Redraws of a config whose trace cannot carry one chunk before giving up.
MAX_TRACE_REDRAWS = 100


@dataclass
class AbrTrainConfig:
    """Pensieve-PPO settings (genet-simulators.md §8.2) and the training environment.

    n_envs: sessions stepped together on the batched simulator (16: Pensieve-PPO's workers)
    rollout_steps: decisions per session per update (48: about one default video per worker)
    epochs: full-batch optimisation passes per update (5)
    minibatch: transitions per gradient step (None: the full batch, as Pensieve-PPO)
    learning_rate: Adam step size over actor + critic (1e-4)
    gamma: discount (0.99)
    clip: PPO ratio clip (0.2)
    dual_clip: dual-clip constant c for negative advantages (3.0)
    value_coef: value-loss weight (10.0)
    entropy_init: initial entropy weight (ln 6)
    entropy_target: target entropy of the adaptive weight (0.1)
    entropy_floor: smallest entropy weight (0.01)
    entropy_rate: step size of the adaptive entropy weight (None: learning_rate, as Pensieve-PPO, which
        needs ~20 k updates to go from ln 6 to the target; larger values anneal faster for short budgets)
    reward_scale: multiplier on rewards for training only (1.0: none)
    mode: simulator conventions, "pensieve" or "genet" (genet/abr/params.py) ("pensieve")
    layout: observation layout, "abr.pensieve-6x8" or "abr.genet-6x6" ("abr.pensieve-6x8")
    delay_noise: multiply chunk delays by U(0.9, 1.1) in training (True, Pensieve training)
    random_start: random trace start pointer per training video (True, Pensieve training)
    fresh_traces: new environments drawn per update (None: 2 x n_envs)
    torch_threads: torch intra-op threads (0: every core)
    rollout_workers: worker processes stepping slices of the sessions (1: in this process; 0: every core)
    critic_warmup_updates: the agent's first N updates train the critic alone, the actor and its entropy weight
        stay as they are (0: none; for a fine-tune from a student whose critic never learned, ``--init-from``)
    critic_warmup_lr: Adam's step size during the critic warm-up (None: learning_rate; a fresh critic must reach
        returns of a few hundred, which 1e-4 steps take thousands of updates to do)
    anchor_coef: weight of KL(start ‖ policy) in the PPO loss, start = the network the agent started from
        (``model_from``, ``--init-from``): a fine-tune that keeps what a student had unless the returns say
        otherwise (0: none; in this process only, ``rollout_workers`` 1)
    """

    n_envs: int = 16
    rollout_steps: int = 48
    epochs: int = 5
    minibatch: int | None = None
    learning_rate: float = 1e-4
    gamma: float = 0.99
    clip: float = 0.2
    dual_clip: float | None = 3.0
    value_coef: float = 10.0
    entropy_init: float = float(np.log(6))
    entropy_target: float = 0.1
    entropy_floor: float = 0.01
    entropy_rate: float | None = None
    reward_scale: float = 1.0
    mode: str = "pensieve"
    layout: str = PENSIEVE_6X8.name
    delay_noise: bool = True
    random_start: bool = True
    fresh_traces: int | None = None
    torch_threads: int = 0
    rollout_workers: int = 1
    critic_warmup_updates: int = 0
    critic_warmup_lr: float | None = None
    anchor_coef: float = 0.0

    def __post_init__(self):
        if self.n_envs < 1 or self.rollout_steps < 1:
            raise BadInputError(f"need n_envs >= 1 and rollout_steps >= 1, got {self.n_envs}, {self.rollout_steps}")
        if self.epochs < 1 or (self.minibatch is not None and self.minibatch < 1):
            raise BadInputError(f"need epochs >= 1 and minibatch None or >= 1, got {self.epochs}, {self.minibatch}")
        if not (0 < self.gamma <= 1 and self.clip > 0 and self.learning_rate > 0):
            raise BadInputError(f"need 0 < gamma <= 1, clip > 0, learning_rate > 0; got {self.gamma}, {self.clip}, "
                             f"{self.learning_rate}")
        if self.fresh_traces is not None and self.fresh_traces < 1:
            raise BadInputError(f"fresh_traces must be None or >= 1, got {self.fresh_traces}")
        if self.entropy_rate is not None and not self.entropy_rate > 0:
            raise BadInputError(f"entropy_rate must be None or > 0, got {self.entropy_rate}")
        if not self.entropy_init >= 0 or self.critic_warmup_updates < 0:
            raise BadInputError(f"need entropy_init >= 0 and critic_warmup_updates >= 0, got {self.entropy_init}, "
                                f"{self.critic_warmup_updates}")
        if self.critic_warmup_lr is not None and not self.critic_warmup_lr > 0:
            raise BadInputError(f"critic_warmup_lr must be None or > 0, got {self.critic_warmup_lr}")
        if not self.anchor_coef >= 0:
            raise BadInputError(f"anchor_coef must be >= 0, got {self.anchor_coef}")
        if self.anchor_coef > 0 and self.rollout_workers != 1:
            raise BadInputError("anchor_coef > 0 (a fine-tune kept near its start) runs its update in this process: "
                                f"rollout_workers must be 1, got {self.rollout_workers}")
        torch_thread_count(self.torch_threads)  # raises on a negative count
        worker_count(self.rollout_workers, self.n_envs)  # raises on a negative or too large count
        conventions(self.mode)  # raises on an unknown mode
        lay = get_layout(self.layout)
        if lay.name not in ("abr.pensieve-6x8", "abr.genet-6x6"):
            raise BadInputError(f"layout {self.layout!r}: training needs a matrix layout (abr.pensieve-6x8 or "
                             f"abr.genet-6x6)")

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.rollout_steps

    @property
    def n_fresh(self) -> int:
        return self.fresh_traces or 2 * self.n_envs

    def train_conventions(self) -> SimConventions:
        return conventions(self.mode).replace(delay_noise=self.delay_noise, random_start=self.random_start)

    def test_conventions(self) -> SimConventions:
        return conventions(self.mode)


def ppo_config(cfg: AbrTrainConfig, updates_done: int = 0) -> PPOConfig:
    """The PPO update settings of an ABR training config (Pensieve-PPO: advantages not normalised) for an agent
    with ``updates_done`` updates behind it (the critic alone learns during the first ``critic_warmup_updates``)."""
    return PPOConfig(clip=cfg.clip, dual_clip=cfg.dual_clip, epochs=cfg.epochs, minibatch=cfg.minibatch,
                     value_coef=cfg.value_coef, normalize_adv=False,
                     train_actor=updates_done >= cfg.critic_warmup_updates, anchor_coef=cfg.anchor_coef)


def warmup_lr(cfg: AbrTrainConfig, ppo: PPOConfig) -> float | None:
    """The step size of an update with settings ``ppo``: ``critic_warmup_lr`` during a critic warm-up, else None
    (the optimiser's own)."""
    return None if ppo.train_actor else cfg.critic_warmup_lr


@dataclass
class AbrRollout:
    """What a rollout leaves behind for the next one (all of it is checkpointed).

    sim: the batched simulator (pool = running sessions' traces + fresh ones)
    params: EnvParams of every pool trace
    builder: the sessions' current state matrices
    rng: config draws, action sampling, pool choice (the simulator keeps its own Generator for noise/start)
    n_kept: pool entries 0..n_kept-1 are the traces of videos running at the last refresh; the rest are fresh
    next_fresh: pool index of the next unused fresh environment
    episode_return: running QoE of each session's current video
    """

    sim: BatchedAbrSim
    params: list[EnvParams]
    builder: StateBuilder
    rng: np.random.Generator
    n_kept: int
    next_fresh: int
    episode_return: np.ndarray


@dataclass
class AbrAgent(TrainingProgress):
    """A Pensieve-PPO policy in training: network, optimiser, entropy weight, rollout, and the counters
    and history of :class:`~genet.ppo.progress.TrainingProgress`."""

    net: PensieveActorCritic
    optimizer: torch.optim.Optimizer
    entropy: AdaptiveEntropy
    config: AbrTrainConfig
    rollout: AbrRollout | None = None
    #: the frozen network a fine-tune started from (``anchor_coef`` > 0: the update stays near its probabilities)
    anchor: PensieveActorCritic | None = None

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net(torch.as_tensor(np.asarray(observations, np.float32))).numpy()

    @property
    def learner(self) -> PpoAgent:
        """This agent behind the agent interface (:class:`genet.agents.ppo.PpoAgent`, sharing the network,
        the optimiser and the entropy weight)."""
        ppo = ppo_config(self.config, self.updates)
        if ppo.anchor_coef > 0 and self.anchor is None:
            raise BadInputError("anchor_coef > 0 keeps a fine-tune near the network it started from: start the "
                                "agent with model_from (--init-from)")
        return PpoAgent(self.net, self.optimizer, ppo, self.config.gamma, self.entropy, self.config.reward_scale,
                        anchor=self.anchor)


def network_weights(path: str | Path) -> dict:
    """The :class:`PensieveActorCritic` weights (``net``) of an ABR checkpoint of any agent (PPO, BC, DAgger);
    a one-line error naming the file when it is none (:func:`genet.ppo.checkpoint.network_weights`)."""
    from genet.ppo.checkpoint import network_weights as _weights
    return _weights(path, NETWORK_FORMATS, "ABR")


def default_video() -> Video:
    """``$GENET_VIDEO_DIR`` when set, else the shipped EnvivioDash3 table (genet/abr/video.py)."""
    from genet.abr.video import resolve_video
    return resolve_video(os.environ.get("GENET_VIDEO_DIR") or None)


class AbrUseCase(WorkerPoolOwner):
    """The ABR use case for :func:`genet.curriculum.loop.run_curriculum` (see the module docstring).

    config: PPO and environment settings (:class:`AbrTrainConfig`)
    video: ladder and chunk sizes (None: :func:`default_video`)
    real_traces: traces a distribution with ``real_prob > 0`` draws from (None: none)
    on_update: called as ``on_update(agent, record)`` after every PPO update (learning curves, progress)
    space: the config space environments are drawn from (None: traces/spaces/abr.json; ``--space``)
    ray_address: run the rollout workers as Ray actors on this cluster (None: local processes)
    """

    name = "abr"
    baselines = ABR_BASELINES

    def __init__(self, config: AbrTrainConfig | None = None, video: Video | None = None,
                 real_traces: Sequence[Trace] | None = None,
                 on_update: Callable[[AbrAgent, dict], None] | None = None, space: ConfigSpace | None = None,
                 ray_address: str | None = None):
        self.config = config or AbrTrainConfig()
        self.ray_address = ray_address
        self._pool: WorkerPool | None = None
        self.space = space if space is not None else load_space("abr")
        self.video = video if video is not None else default_video()
        self.layout = get_layout(self.config.layout)
        self.on_update = on_update
        #: real traces left out because one pass cannot carry the largest chunk (the simulator refuses them)
        self.skipped_real_traces: list[str] = []
        self.real_traces = self._usable_real_traces(list(real_traces or []))

    # ---------------------------------------------------------------- models
    def new_model(self, seed: int) -> AbrAgent:
        cfg = self.config
        set_torch_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        net = PensieveActorCritic(s_len=self.layout.shape[1], n_actions=self.layout.n_actions,
                                  row4_len=self.video.n_levels)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
        ent = AdaptiveEntropy(weight=cfg.entropy_init, target=cfg.entropy_target,
                              lr=cfg.entropy_rate if cfg.entropy_rate is not None else cfg.learning_rate,
                              epochs=cfg.epochs, floor=cfg.entropy_floor)
        return AbrAgent(net, opt, ent, cfg, seed=seed)

    def save_model(self, agent: AbrAgent, path: Path) -> None:
        """Write the agent to ``path`` atomically (network, optimiser, entropy weight, counters, history,
        rollout state)."""
        path = Path(path)
        learner = agent.learner
        blob = {"format": CHECKPOINT_FORMAT, "use_case": self.name, "agent": learner.name,
                "config": asdict(agent.config), **learner.state_dict(), **agent.progress_state(),
                "anchor": None if agent.anchor is None else agent.anchor.state_dict(),
                "rollout": None if agent.rollout is None else pickle.dumps(agent.rollout)}
        save_checkpoint(blob, path)

    def load_model(self, path: Path) -> AbrAgent:
        path = Path(path)
        blob = load_checkpoint(path, CHECKPOINT_FORMAT, "ABR")
        self.config = AbrTrainConfig(**blob["config"])
        self.layout = get_layout(self.config.layout)
        agent = self.new_model(blob["seed"])
        if blob.get("anchor") is not None:
            agent.anchor = self._frozen_copy(agent.net, blob["anchor"])
        learner = agent.learner
        if blob.get("agent", "ppo") != learner.name:  # another agent's optimiser (--init-from takes its network)
            raise BadInputError(f"{path}: an ABR {blob.get('agent', 'ppo')} checkpoint, not {learner.name}'s")
        learner.load_state_dict(blob)  # net, optimizer, entropy
        agent.restore_progress(blob)
        agent.rollout = None if blob["rollout"] is None else pickle.loads(blob["rollout"])
        return agent

    def model_from(self, path: Path, seed: int) -> AbrAgent:
        """A new PPO agent (fresh optimiser, entropy weight, counters and rollout) whose network starts from the
        weights of the ABR checkpoint at ``path``: a PPO run's or an imitation run's (``--init-from``); its
        layout must be this config's."""
        agent = self.new_model(seed)
        try:
            agent.net.load_state_dict(network_weights(path))
        except RuntimeError as exc:  # another layout or ladder: the tensors' shapes differ
            raise BadInputError(f"{path}: its network does not fit layout {self.layout.name} with "
                                f"{self.video.n_levels} levels ({str(exc).splitlines()[0]})") from None
        if self.config.anchor_coef > 0:
            agent.anchor = self._frozen_copy(agent.net, agent.net.state_dict())
        return agent

    @staticmethod
    def _frozen_copy(net: PensieveActorCritic, weights: dict) -> PensieveActorCritic:
        """A network of ``net``'s shape holding ``weights``, out of every optimiser (the anchor)."""
        import copy
        anchor = copy.deepcopy(net)
        anchor.load_state_dict(weights)
        anchor.eval()
        for p in anchor.parameters():
            p.requires_grad_(False)
        return anchor

    def _usable_real_traces(self, traces: list[Trace]) -> list[Trace]:
        """The real traces the simulator accepts; the others are skipped with a warning naming them
        (some public traces are too short or too slow to carry one top-quality chunk in a pass).
        No usable trace at all is an error before training starts."""
        if not traces:
            return []
        import warnings
        conv = self.config.train_conventions()
        kept: list[Trace] = []
        for t in traces:
            (kept if self._usable(t, conv.params, conv) else self.skipped_real_traces).append(t)
        self.skipped_real_traces = [t.name for t in self.skipped_real_traces]
        if not kept:
            raise BadInputError(f"none of the {len(traces)} real traces can carry one video chunk in a pass "
                             f"(first: {self.skipped_real_traces[0]})")
        if self.skipped_real_traces:
            warnings.warn(f"skipping {len(self.skipped_real_traces)} of {len(traces)} real traces that cannot "
                          f"carry one video chunk in a pass: {', '.join(self.skipped_real_traces[:3])}"
                          f"{' ...' if len(self.skipped_real_traces) > 3 else ''}", stacklevel=3)
        return kept

    # ---------------------------------------------------------- environments
    def _usable(self, trace: Trace, params: EnvParams, conv: SimConventions) -> bool:
        try:
            BatchedAbrSim([trace], self.video, conv, params=[params], n_envs=1)
        except TraceFormatError:
            return False
        return True

    def environment(self, config: dict, rng: np.random.Generator, conv: SimConventions,
                    name: str = "") -> tuple[Trace, EnvParams]:
        """One environment (trace, EnvParams) from a config dict (or ``{"real_trace_index": i}``).

        A generated trace that cannot carry one chunk in a pass is redrawn from ``rng``."""
        from traces.generators import generate_trace
        if "real_trace_index" in config:
            if not self.real_traces:
                raise BadInputError("the distribution mixes in real traces but AbrUseCase was given none "
                                 "(pass real_traces=...)")
            return self.real_traces[int(config["real_trace_index"]) % len(self.real_traces)], conv.params
        for _ in range(MAX_TRACE_REDRAWS):
            trace = generate_trace("abr", config, rng, name=name, space=self.space)
            params = EnvParams.from_config(trace.meta["config"], conv.params, validate=False)
            if self._usable(trace, params, conv):
                return trace, params
        raise BadInputError(f"ABR config {config}: {MAX_TRACE_REDRAWS} generated traces in a row cannot carry one "
                         f"video chunk (bandwidth too close to 0 Mbps)")

    def _build_sim(self, roll: AbrRollout | None, distribution: ConfigDistribution,
                   rng: np.random.Generator) -> tuple[BatchedAbrSim, list[EnvParams]]:
        """A simulator whose pool is [running sessions' traces] + [fresh environments]; running
        sessions keep their exact state (pointer, clock, buffer, chunk, last quality)."""
        cfg, conv = self.config, self.config.train_conventions()
        n = cfg.n_envs
        kept_traces: list[Trace] = []
        kept_params: list[EnvParams] = []
        if roll is not None:
            ids = roll.sim.tr_id
            kept_traces = [roll.sim.traces[int(k)] for k in ids]
            kept_params = [roll.params[int(k)] for k in ids]
        fresh = [self.environment(distribution.sample(rng), rng, conv, name="train") for _ in range(cfg.n_fresh)]
        traces = kept_traces + [t for t, _ in fresh]
        params = kept_params + [p for _, p in fresh]
        sim = BatchedAbrSim(traces, self.video, conv, params=params, n_envs=n, autoreset=False)
        if roll is None:
            sim.rng = np.random.default_rng(rng.integers(2**63))
            return sim, params
        old = roll.sim
        sim.rng = old.rng  # the simulator's noise / start-pointer stream continues
        state = {k: getattr(old, k).copy() for k in ("ptr", "last_time_s", "buffer_ms", "chunk_idx",
                                                    "last_quality", "episode")}
        rng_state = sim.rng.bit_generator.state
        sim.reset(trace_ids=np.arange(n))  # the sizes/RTT/buffer of each session's trace
        sim.rng.bit_generator.state = rng_state  # ... without consuming start-pointer draws
        for k, v in state.items():
            getattr(sim, k)[:] = v
        return sim, params

    def _start_videos(self, roll: AbrRollout, mask: np.ndarray) -> None:
        """New videos in the sessions of ``mask``: next fresh environments, first chunk at the first quality."""
        sim = roll.sim
        n_pool = len(sim.traces)
        idx = np.flatnonzero(mask)
        ids = np.empty(idx.size, np.int64)
        for j in range(idx.size):
            if roll.next_fresh < n_pool:
                ids[j] = roll.next_fresh
                roll.next_fresh += 1
            else:
                ids[j] = roll.n_kept + int(roll.rng.integers(n_pool - roll.n_kept))
        sim.reset(mask, trace_ids=ids)
        roll.builder.reset(mask)
        q = np.where(mask, sim.conv.first_quality, 0)
        r = sim.step(q, active=mask)
        roll.builder.update(r, sim.bitrates_kbps)
        roll.episode_return[mask] = r.reward[mask]
        self._videos_started(roll, mask, r)
        if r.end_of_video[mask].any():  # a one-chunk video: start another
            sim.done[:] = False
            self._start_videos(roll, mask & r.end_of_video)

    def _videos_started(self, roll: AbrRollout, mask: np.ndarray, first: Any) -> None:
        """Hook after new videos' first chunk (``first``: its StepResult) in the sessions of ``mask`` (imitation
        keeps its teacher's view of the sessions here; PPO needs nothing)."""

    def _start_rollout(self, distribution: ConfigDistribution, seed: int) -> AbrRollout:
        rng = np.random.default_rng(seed)
        sim, params = self._build_sim(None, distribution, rng)
        builder = StateBuilder(self.layout, self.config.n_envs, float(np.max(sim.bitrates_kbps)))
        roll = AbrRollout(sim, params, builder, rng, 0, 0, np.zeros(self.config.n_envs))
        self._start_videos(roll, np.ones(self.config.n_envs, bool))
        return roll

    def _refresh_pool(self, roll: AbrRollout, distribution: ConfigDistribution) -> None:
        roll.sim, roll.params = self._build_sim(roll, distribution, roll.rng)
        roll.n_kept = roll.next_fresh = self.config.n_envs

    # -------------------------------------------------------------- training
    def collect(self, agent: AbrAgent, distribution: ConfigDistribution) -> dict[str, Any]:
        """One rollout of ``rollout_steps`` decisions in every session (one batched simulator)."""
        cfg, roll = agent.config, agent.rollout
        T, N = cfg.rollout_steps, cfg.n_envs
        sim = roll.sim
        shape = self.layout.shape
        obs_buf = np.zeros((T, N, *shape), np.float32)
        act_buf = np.zeros((T, N), np.int64)
        logp_buf = np.zeros((T, N), np.float32)
        ent_buf = np.zeros((T, N), np.float32)
        rew = np.zeros((T, N))
        term = np.zeros((T, N), bool)
        episodes: list[float] = []
        semantics = self.layout.action_semantics
        learner = agent.learner
        for t in range(T):
            obs = roll.builder.observation()
            choice = learner.act(obs, roll.rng)
            a = choice.actions
            obs_buf[t] = obs
            act_buf[t] = a
            logp_buf[t] = choice.log_probs
            ent_buf[t] = choice.entropies
            q = to_quality(a, sim.last_quality, semantics, sim.n_levels)
            r = sim.step(q)
            roll.builder.update(r, sim.bitrates_kbps)
            rew[t] = r.reward
            term[t] = r.end_of_video
            roll.episode_return += r.reward
            if r.end_of_video.any():
                ended = r.end_of_video.copy()
                episodes.extend(roll.episode_return[ended].tolist())
                sim.done[:] = False  # autoreset off: restart the ended sessions ourselves
                self._start_videos(roll, ended)
        final_obs = roll.builder.observation()
        return {"obs": obs_buf, "final_obs": final_obs, "actions": act_buf, "logp": logp_buf, "entropy": ent_buf,
                "rewards": rew, "terminated": term, "episode_returns": episodes}

    @staticmethod
    def trajectory(batch: dict[str, Any]) -> Trajectory:
        """A :meth:`collect` batch as the agent interface's :class:`~genet.agents.base.Trajectory`."""
        return Trajectory(batch["obs"], batch["actions"], batch["rewards"], batch["terminated"],
                          final_observations=batch["final_obs"], log_probs=batch["logp"], entropies=batch["entropy"],
                          episode_returns=batch["episode_returns"])

    def update(self, agent: AbrAgent, batch: dict[str, Any]) -> dict[str, float]:
        """Discounted returns (no GAE) and the Pensieve-PPO update on one rollout batch, through the agent
        interface (:class:`genet.agents.ppo.PpoAgent`)."""
        learner = agent.learner
        if not isinstance(learner, PpoAgent):  # a3c, dqn and the imitation agents reuse this loop
            return learner.train_on(learner.make_batch(self.trajectory(batch)))
        with learning_rate(learner.optimizer, warmup_lr(agent.config, learner.ppo)):
            return learner.train_on(learner.make_batch(self.trajectory(batch)))

    def train(self, agent: AbrAgent, distribution: ConfigDistribution, iterations: int, seed: int) -> AbrAgent:
        """``iterations`` PPO updates on environments drawn from ``distribution``."""
        if distribution.space.use_case != "abr":
            raise BadInputError(f"AbrUseCase.train: distribution is for use case {distribution.space.use_case!r}")
        if distribution.real_prob > 0 and not self.real_traces:
            raise BadInputError("AbrUseCase.train: the distribution mixes in real traces (real_prob "
                             f"{distribution.real_prob}) but the use case was given none")
        return self._run_updates(agent, distribution, iterations, seed)

    def _before_collect(self, agent: AbrAgent, distribution: ConfigDistribution) -> None:
        self._refresh_pool(agent.rollout, distribution)

    # ------------------------------------------------------- rollout workers
    def shard_use_case(self, index: int, n_workers: int) -> "AbrUseCase":
        """A picklable copy for worker ``index`` of ``n_workers``: its slice of the sessions and of the fresh
        environments, one torch thread, no callback, no pool."""
        cfg = self.config
        uc = self._shard_copy()
        uc.config = AbrTrainConfig(**{**asdict(cfg), "n_envs": shard_sizes(cfg.n_envs, n_workers)[index],
                                      "fresh_traces": max(1, shard_sizes(cfg.n_fresh, n_workers)[index]),
                                      "torch_threads": 1, "rollout_workers": 1})
        return uc

    def collect_shard(self, agent: AbrAgent, distribution: ConfigDistribution) -> dict[str, Any]:
        """What one training iteration's rollout does in this process: refresh the pool, collect."""
        self._refresh_pool(agent.rollout, distribution)
        return self.collect(agent, distribution)

    def prepare_shard(self, agent: AbrAgent, batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A slice's training tensors (values, discounted returns, advantages as in :meth:`update`) and the
        summary the parent needs (rewards, episodes, sums for the statistics)."""
        T, N = batch["rewards"].shape
        b = agent.learner.make_batch(self.trajectory(batch))
        values, ret, adv = b["values"], b["ret"], b["adv_np"]
        data = {k: b[k] for k in ("obs", "actions", "logp", "adv", "returns")}
        summary = {"n": T * N, "rewards": batch["rewards"], "episode_returns": batch["episode_returns"],
                   "entropy_sum": float(batch["entropy"].astype(np.float64).sum()),
                   **column_sums("adv", adv), **column_sums("ret", ret), **column_sums("resid", ret - values)}
        return data, summary

    def _train_sharded(self, agent: AbrAgent, distribution: ConfigDistribution, iterations: int,
                       seed: int) -> AbrAgent:
        cfg = agent.config
        pool = self._worker_pool(agent)
        try:
            for _ in range(iterations):
                ppo = ppo_config(cfg, agent.updates)
                t0 = time.perf_counter()
                summaries = pool.collect(parameters_vector(agent.net), distribution, seed)
                t1 = time.perf_counter()
                with learning_rate(agent.optimizer, warmup_lr(cfg, ppo)):
                    stats = data_parallel_update(pool, agent.net, agent.optimizer, summaries, ppo,
                                                 agent.entropy.weight)
                n = sum(s["n"] for s in summaries)
                rollout_entropy = float(sum(s["entropy_sum"] for s in summaries) / n)
                stats["rollout_entropy"] = rollout_entropy
                stats["entropy_weight"] = agent.entropy.weight
                if ppo.train_actor:  # a critic warm-up leaves the weight as it is
                    agent.entropy.update(rollout_entropy)
                stats["explained_variance"] = explained_variance_from_sums(summaries)
                t2 = time.perf_counter()
                self._record_sharded(agent, summaries, t1 - t0, t2 - t1, stats)
        except BaseException:
            self.close()  # the workers' state no longer matches the agent's
            raise
        pool.save_to(agent.rollout)
        return agent

    # ------------------------------------------------------------------ test
    def policy_object(self, policy: Any, deterministic: bool = True, seed: int | None = None) -> Any:
        """What :func:`genet.abr.evaluate.evaluate` runs for ``policy``: names and paths pass through,
        an :class:`AbrAgent` / PensieveActorCritic becomes a :class:`genet.policy.TorchPolicy`."""
        from genet.policy import TorchPolicy
        if isinstance(policy, str):
            if policy not in (*ABR_BASELINES, "optimal") and not policy.endswith(".onnx"):
                raise BadInputError(f"unknown ABR baseline {policy!r}; choose one of {', '.join(ABR_BASELINES)}, "
                                 f"'optimal' or an .onnx policy path")
            return policy
        if isinstance(policy, AbrAgent):
            return TorchPolicy(policy.net, self.layout.policy_spec(), deterministic, seed, name="rl")
        if isinstance(policy, torch.nn.Module):
            return TorchPolicy(policy, self.layout.policy_spec(), deterministic, seed, name="rl")
        if hasattr(policy, "act") and hasattr(policy, "spec"):
            return policy
        raise TypeError(f"AbrUseCase.test: cannot run a policy of type {type(policy).__name__}")

    def test_environments(self, configs: list[dict], seed: int) -> tuple[list[Trace], list[EnvParams]]:
        """Environment i from (config i, seed, i): ``generate_trace`` with ``default_rng([seed, i])``."""
        conv = self.config.test_conventions()
        envs = [self.environment(c, np.random.default_rng([seed, i]), conv, name=f"test-{i}")
                for i, c in enumerate(configs)]
        return [t for t, _ in envs], [p for _, p in envs]

    def test(self, policy: Any, configs: list[dict], seed: int) -> np.ndarray:
        """Per-config QoE of one video scaled to 48 chunks (see the module docstring)."""
        from genet.abr.evaluate import evaluate
        if not configs:
            return np.zeros(0)
        pol = self.policy_object(policy)
        traces, params = self.test_environments(configs, seed)
        results = evaluate(pol, traces, self.video, self.config.test_conventions(), params=params,
                           label=None if isinstance(pol, str) else "rl")
        return np.array([r.qoe_per_chunk * TEST_VIDEO_CHUNKS for r in results], float)


# ------------------------------------------------------------- speed
def train_steps_per_second(use_case: AbrUseCase | None = None, updates: int = 5, warmup: int = 1,
                           range_name: str = "rl3", seed: int = 0) -> dict[str, float]:
    """Training throughput: environment transitions per second including the PPO update.

    Runs ``warmup`` updates (numba compilation, allocator warm-up), then times ``updates`` more.
    Returns transitions_per_s, rollout_s and update_s per update, batch size and torch threads."""
    uc = use_case or AbrUseCase()
    dist = ConfigDistribution.udr(uc.space, range_name)
    agent = uc.new_model(seed)
    uc.train(agent, dist, warmup, seed)
    n0 = len(agent.history)
    workers = uc._pool.engine.cpu_seconds if uc._pool is not None and hasattr(uc._pool.engine, "cpu_seconds") \
        else (lambda: [])
    w0, c0 = workers(), time.process_time()
    t0 = time.perf_counter()
    uc.train(agent, dist, updates, seed)
    wall = time.perf_counter() - t0
    parent_cpu, worker_cpu = time.process_time() - c0, [b - a for a, b in zip(w0, workers())]
    recs = agent.history[n0:]
    steps = updates * uc.config.batch_size
    return {"transitions_per_s": steps / wall, "rollout_s": float(np.mean([r["rollout_s"] for r in recs])),
            "update_s": float(np.mean([r["update_s"] for r in recs])), "batch": uc.config.batch_size,
            "torch_threads": torch.get_num_threads(), "updates": updates,
            # CPU seconds per transition: this process, and the busiest worker (quiet-machine critical path)
            "parent_cpu_s": parent_cpu / steps, "max_worker_cpu_s": max(worker_cpu, default=0.0) / steps}


# ------------------------------------------------------------- CLI hooks
def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[AbrAgent, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> AbrUseCase:
    """The ABR use case from ``genet train abr`` options (see :mod:`genet.train_cli`).

    Reads ``n_envs``, ``steps_per_update`` (-> rollout_steps = steps_per_update / n_envs), ``epochs``,
    ``lr`` and ``minibatch`` when present (the ABR defaults are :class:`AbrTrainConfig`'s)."""
    return AbrUseCase(train_config_from_args(args), real_traces=real_traces, on_update=on_update, space=space,
                      ray_address=getattr(args, "ray_address", None))


def train_config_from_args(args: Any) -> AbrTrainConfig:
    """The :class:`AbrTrainConfig` of ``genet train abr`` options (those not given: its defaults)."""
    d = AbrTrainConfig()
    n_envs = int(getattr(args, "n_envs", None) or d.n_envs)
    spu = getattr(args, "steps_per_update", None)
    rollout = max(1, int(spu) // n_envs) if spu else d.rollout_steps
    mb = getattr(args, "minibatch", None)
    cfg = AbrTrainConfig(n_envs=n_envs, rollout_steps=rollout, epochs=int(getattr(args, "epochs", None) or d.epochs),
                         learning_rate=float(getattr(args, "lr", None) or d.learning_rate),
                         minibatch=None if not mb or mb >= n_envs * rollout else int(mb),
                         entropy_rate=getattr(args, "entropy_rate", None),
                         entropy_init=d.entropy_init if getattr(args, "entropy_init", None) is None
                         else float(args.entropy_init),
                         critic_warmup_updates=int(getattr(args, "critic_warmup", None) or 0),
                         critic_warmup_lr=getattr(args, "critic_warmup_lr", None),
                         anchor_coef=float(getattr(args, "anchor_coef", None) or 0.0),
                         torch_threads=d.torch_threads if getattr(args, "torch_threads", None) is None
                         else int(args.torch_threads),
                         rollout_workers=d.rollout_workers if getattr(args, "rollout_workers", None) is None
                         else int(args.rollout_workers))
    return cfg


def train_config_dict(use_case: AbrUseCase) -> dict:
    return {**asdict(use_case.config), "video": use_case.video.source}


def export_policy(use_case: AbrUseCase, agent: AbrAgent, path: str | Path,
                  metadata: dict[str, Any] | None = None, n_check: int = 1000) -> Path:
    """Export the actor (action probabilities) as a self-describing ONNX policy
    (:func:`genet.policy.export_onnx`), checked against torch on ``n_check`` random states."""
    from genet.policy import export_onnx
    rng = np.random.default_rng(0)
    obs = rng.uniform(0.0, 2.0, size=(n_check, *use_case.layout.shape)).astype(np.float32)
    extra = {"bitrates_kbps": list(use_case.video.bitrates_kbps), "mode": agent.config.mode,
             "train_config": asdict(agent.config), "updates": agent.updates, "env_steps": agent.env_steps,
             "train_wall_s": agent.wall_s, "seed": agent.seed, **(metadata or {})}
    return export_onnx(agent.net, use_case.layout.policy_spec(), path, extra_metadata=extra,
                       check_observations=obs)


__all__ = ["ABR_BASELINES", "AbrAgent", "AbrRollout", "AbrTrainConfig", "AbrUseCase", "build_use_case",
           "train_config_from_args", "ppo_config", "network_weights", "NETWORK_FORMATS",
           "default_video", "export_policy", "train_config_dict", "train_steps_per_second"]
