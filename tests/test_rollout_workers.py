"""Rollout workers (genet/ppo/workers.py): slices and seeds, the data-parallel PPO update against the
one-process update on the same batch, and real worker processes — the same seed and worker count give
the same run, a checkpointed run resumes exactly (API and `genet train --rollout-workers 2 --resume`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from genet.cc.training import CcTrainConfig, CcUseCase
from genet.curriculum.distribution import ConfigDistribution
from genet.ppo.algorithm import PPOConfig, ppo_update
from genet.ppo.workers import (ShardWorker, WorkerPool, data_parallel_update, parameters_vector, shard_seed,
                               shard_sizes, worker_count)

TINY_CC = dict(n_envs=2, steps_per_update=200, minibatch=50, epochs=2)


def test_slices_seeds_and_counts():
    assert shard_sizes(16, 2) == [8, 8] and shard_sizes(7, 3) == [3, 2, 2] and sum(shard_sizes(5, 5)) == 5
    assert shard_seed(7, 2, 0) == shard_seed(7, 2, 0)
    assert len({shard_seed(7, 2, 0), shard_seed(7, 2, 1), shard_seed(7, 3, 0), shard_seed(8, 2, 0)}) == 4
    assert worker_count(1, 16) == 1 and 1 <= worker_count(0, 2) <= 2
    with pytest.raises(ValueError, match="at least 3 environments"):
        worker_count(3, 2)
    with pytest.raises(ValueError, match=">= 0"):
        CcTrainConfig(rollout_workers=-1)


class InProcessEngine:
    """The ShardWorker objects called directly (no process boundary): checks the update arithmetic only."""

    def __init__(self, workers):
        self.workers = workers

    def call(self, method, args_per_worker):
        return [getattr(w, method)(*args) for w, args in zip(self.workers, args_per_worker)]


def test_data_parallel_update_equals_the_one_process_update():
    import pickle
    uc = CcUseCase(CcTrainConfig(**TINY_CC, rollout_workers=2))
    dist = ConfigDistribution.udr(uc.space, "rl1")
    workers = [ShardWorker(pickle.dumps(uc.shard_use_case(i, 2)), 0) for i in range(2)]
    pool = WorkerPool(InProcessEngine(workers), 2)
    net_a = uc.new_model(5).net
    summaries = pool.collect(parameters_vector(net_a), dist, seed=1)
    # the whole batch, slice by slice (the data-parallel update's row order), before standardisation
    batch = {k: torch.cat([w.data[k] for w in workers]) for k in ("obs", "actions", "logp", "adv", "returns")}
    agent_b = uc.new_model(5)
    net_b, opt_b = agent_b.net, agent_b.optimizer
    opt_a = torch.optim.Adam(net_a.parameters(), lr=uc.config.learning_rate, eps=uc.config.adam_eps)
    cfg = PPOConfig(clip=0.2, epochs=2, minibatch=50, value_coef=1.0, normalize_adv=True)
    ga, gb = torch.Generator(), torch.Generator()
    ga.manual_seed(3)
    gb.manual_seed(3)
    stats_a = data_parallel_update(pool, net_a, opt_a, summaries, cfg, 0.01, generator=ga)
    stats_b = ppo_update(net_b, opt_b, cfg, batch["obs"], batch["actions"], batch["logp"], batch["adv"],
                         batch["returns"], 0.01, generator=gb)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5)
    assert not torch.equal(next(net_a.parameters()), next(uc.new_model(5).net.parameters()))  # it moved
    for k in stats_b:
        assert stats_a[k] == pytest.approx(stats_b[k], rel=1e-3, abs=1e-5), k


def test_local_workers_shared_gradient_files_give_the_in_process_update(tmp_path):
    """Local worker processes pass weights and gradients through SharedVectors files; the update is the
    same, bit for bit, as the pickled in-process path on the same slices, and close() removes the files."""
    import os
    import pickle
    from genet.ppo.workers import LocalEngine
    uc = CcUseCase(CcTrainConfig(**TINY_CC, rollout_workers=2))
    dist = ConfigDistribution.udr(uc.space, "rl1")
    blobs = [pickle.dumps(uc.shard_use_case(i, 2)) for i in range(2)]
    local = WorkerPool(LocalEngine(blobs, 0), 2)
    inproc = WorkerPool(InProcessEngine([ShardWorker(b, 0) for b in blobs]), 2)
    try:
        nets, gens = [uc.new_model(5).net for _ in range(2)], [torch.Generator() for _ in range(2)]
        cfg = PPOConfig(clip=0.2, epochs=2, minibatch=50, value_coef=1.0, normalize_adv=True)
        stats = []
        for pool, net, gen in zip((local, inproc), nets, gens):
            gen.manual_seed(3)
            opt = torch.optim.Adam(net.parameters(), lr=uc.config.learning_rate, eps=uc.config.adam_eps)
            summaries = pool.collect(parameters_vector(net), dist, seed=1)
            stats.append(data_parallel_update(pool, net, opt, summaries, cfg, 0.01, generator=gen))
        shared_dir = local.engine._shared.dir
        assert os.path.isfile(os.path.join(shared_dir, "weights.f32"))
        for pa, pb in zip(*(n.parameters() for n in nets)):
            assert torch.equal(pa, pb)
        assert stats[0] == stats[1]
        assert not torch.equal(next(nets[0].parameters()), next(uc.new_model(5).net.parameters()))  # it moved
    finally:
        local.close()
    assert not os.path.exists(shared_dir)


def _params(agent):
    return [p.detach().clone() for p in agent.net.parameters()]


def test_abr_workers_same_seed_same_run_and_exact_resume(tmp_path):
    from genet.abr.training import AbrTrainConfig, AbrUseCase
    cfg = AbrTrainConfig(torch_threads=1, n_envs=4, rollout_steps=8, rollout_workers=2)
    uc = AbrUseCase(cfg)
    dist = ConfigDistribution.udr(uc.space, "rl3")
    try:
        full = uc.train(uc.new_model(3), dist, 4, seed=7)
        again = uc.train(uc.new_model(3), dist, 2, seed=7)  # a new agent: the workers start afresh
        uc.save_model(again, tmp_path / "ckpt.pt")
        uc.train(again, dist, 2, seed=7)
        resumed = uc.load_model(tmp_path / "ckpt.pt")  # the pool holds `again`'s later state: resent
        uc.train(resumed, dist, 2, seed=999)
        one = AbrUseCase(AbrTrainConfig(torch_threads=1, n_envs=4, rollout_steps=8))
        single = one.train(one.new_model(3), dist, 2, seed=7)
    finally:
        uc.close()
    keys = ("mean_step_reward", "episodes", "policy_loss", "value_loss", "entropy_weight")
    rows = lambda a: [[r[k] for k in keys] for r in a.history]  # noqa: E731
    for other in (again, resumed):
        assert all(torch.equal(x, y) for x, y in zip(_params(full), _params(other)))
        assert rows(other) == rows(full)
    assert resumed.updates == 4 and resumed.env_steps == 4 * 32
    assert full.history[-1]["episodes"] >= 0 and np.isfinite(full.history[-1]["explained_variance"])
    # another worker count is another run (other environment slices), not a copy of the one-process run
    assert rows(single) != rows(full)[:2]


def test_cc_cli_with_two_workers_resumes_exactly(tmp_path):
    from app.cli import main
    tiny = ["--range", "rl1", "--steps-per-update", "200", "--minibatch", "50", "--epochs", "2", "--no-progress",
            "--rollout-workers", "2", "--seed", "2", "--checkpoint-every", "1"]
    full = tmp_path / "full"
    assert main(["train", "cc", *tiny, "--out", str(full), "--steps", "600"]) == 0
    run = json.loads((full / "run.json").read_text())
    assert run["train_config"]["rollout_workers"] == 2 and "--rollout-workers 2" in run["command"]
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "model.pt").unlink()
    shutil.copyfile(cut / "checkpoints" / "step_200.pt", cut / "checkpoints" / "latest.pt")
    assert main(["train", "cc", *tiny, "--out", str(cut), "--steps", "600", "--resume"]) == 0
    a = torch.load(full / "model.pt", weights_only=False)
    b = torch.load(cut / "model.pt", weights_only=False)
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    assert [r["mean_step_reward"] for r in a["history"]] == [r["mean_step_reward"] for r in b["history"]]


def test_batched_random_trials_give_the_same_search():
    from genet.curriculum.search import search_gap
    from traces.config_space import load_space
    space = load_space("abr")

    def gap(c):
        return c["max_bandwidth_mbps"] - 2 * c["min_rtt_ms"] / 100.0, {"rl": 1.0}
    seen = []
    a = search_gap(space, gap, n_trials=12, n_random=10, seed=4)
    b = search_gap(space, gap, n_trials=12, n_random=10, seed=4,
                   gap_many=lambda configs: seen.append(len(configs)) or [gap(c) for c in configs])
    assert a.to_dict() == b.to_dict() and seen == [10, 1, 1]
