"""Ray as the engine of the rollout workers (genet/ppo/workers.py RayEngine): a local Ray head on
loopback (`ray start --head --node-ip-address 127.0.0.1`), a short Genet curriculum (training with 2
workers and the BO trials on them) gives the same model, trials and promoted config as the same run on
the local worker processes. ray comes with the test extra (CI runs this test); without it the test skips
(pip install 'genet-testbed[cluster]')."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'genet-testbed[cluster]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    exe = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if exe is None:
        pytest.skip("the `ray` command is not installed")
    port = _free_port()
    tmp = Path("/tmp") / f"genet-ray-{port}"  # Ray's socket paths must stay short
    start = [exe, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(tmp)]
    proc = subprocess.run(start, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"`ray start --head` failed here: {proc.stderr.strip().splitlines()[-1:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([exe, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def _curriculum(tmp, ray_address):
    from genet.abr.training import AbrTrainConfig, AbrUseCase
    from genet.curriculum.distribution import ConfigDistribution
    from genet.curriculum.loop import CurriculumConfig, run_curriculum
    uc = AbrUseCase(AbrTrainConfig(torch_threads=1, n_envs=4, rollout_steps=8, rollout_workers=2),
                    ray_address=ray_address)
    cfg = CurriculumConfig(rounds=1, iterations_per_round=2, n_trials=3, n_random=2, envs_per_trial=2,
                           baselines=("bba",), seed=3)
    try:
        model, dist, state = run_curriculum(uc, cfg, tmp, initial=ConfigDistribution.udr(uc.space, "rl2"),
                                            log=lambda s: None)
    finally:
        uc.close()
    return model, state


def test_ray_workers_give_the_local_workers_result(ray_head, tmp_path):
    local, local_state = _curriculum(tmp_path / "local", None)
    on_ray, ray_state = _curriculum(tmp_path / "ray", ray_head)
    assert all(torch.equal(a, b) for a, b in zip(local.net.parameters(), on_ray.net.parameters()))
    assert [r["mean_step_reward"] for r in local.history] == [r["mean_step_reward"] for r in on_ray.history]
    assert local_state.rounds == ray_state.rounds and len(ray_state.rounds[0]["trials"]) == 3
    assert on_ray.updates == 4
