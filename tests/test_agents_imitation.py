"""Imitation learning of ABR policies (genet/abr/imitation.py, genet/agents/imitation.py): BC's loss falls on a
teacher's data, a short DAgger run's student agrees with RobustMPC, and the commands (train, export, eval, PPO
fine-tuning with --init-from)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.cli import main
from genet.abr.imitation import AbrImitationUseCase, teacher_labels
from genet.abr.training import AbrTrainConfig, AbrUseCase
from genet.agents.base import Trajectory
from genet.agents.imitation import ImitationConfig
from genet.curriculum.distribution import ConfigDistribution

SMALL = dict(torch_threads=1, n_envs=8, rollout_steps=32)


def _labelled_states(uc: AbrImitationUseCase, agent, dist, n_rollouts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """States and teacher labels of ``n_rollouts`` rollouts (driven as the agent's next rollouts would be)."""
    obs, labels = [], []
    for _ in range(n_rollouts):
        uc._before_collect(agent, dist)
        b = uc.collect(agent, dist)
        obs.append(torch.from_numpy(b["obs"].reshape(-1, *uc.layout.shape)))
        labels.append(torch.from_numpy(b["teacher_actions"].reshape(-1)))
    return torch.cat(obs), torch.cat(labels)


def test_bc_imitation_loss_falls_on_the_teachers_data():
    uc = AbrImitationUseCase("bc", "mpc", AbrTrainConfig(**SMALL))
    dist = ConfigDistribution.udr(uc.space, "rl3")
    agent = uc.new_model(0)
    agent.rollout = uc._start_rollout(dist, 123)
    held_obs, held_labels = _labelled_states(uc, agent, dist, 3)  # the teacher's own rollouts (BC)
    agent.rollout = None
    with torch.no_grad():
        before = float(agent.learner.loss(held_obs, held_labels))
    uc.train(agent, dist, 15, seed=0)
    with torch.no_grad():
        after = float(agent.learner.loss(held_obs, held_labels))
    losses = [r["imitation_loss"] for r in agent.history]
    assert before > 1.2 and after < 0.6 * before, (before, after)  # ln 6 = 1.79 for a uniform student
    assert np.mean(losses[-3:]) < 0.7 * losses[0], losses
    assert all(r["teacher_share"] == 1.0 for r in agent.history)  # BC: the teacher drives every rollout
    assert agent.learner.labels.shape[0] == 15 * 8 * 32  # aggregated


#: A 40-update DAgger run from RobustMPC (10240 labelled states) agrees with its teacher on at least this share
#: of the states its own rollouts visit (measured: 0.96; a uniform student agrees on ~1/6).
DAGGER_AGREEMENT = 0.8


def test_a_short_dagger_run_agrees_with_robustmpc():
    uc = AbrImitationUseCase("dagger", "mpc", AbrTrainConfig(**SMALL))
    dist = ConfigDistribution.udr(uc.space, "rl3")
    agent = uc.train(uc.new_model(0), dist, 40, seed=0)
    shares = [r["teacher_share"] for r in agent.history]
    assert shares[:3] == [1.0, 0.5, 0.25] and shares[-1] < 1e-6  # the student drives after the first rollout
    obs, labels = _labelled_states(uc, agent, dist, 4)  # the student's own states, labelled by RobustMPC
    student = torch.from_numpy(agent.learner.probabilities(obs.numpy()).argmax(axis=1))
    agreement = float((student == labels).float().mean())
    assert agreement >= DAGGER_AGREEMENT, agreement


@pytest.mark.parametrize("teacher", ["mpc", "bba"])
def test_a_teacher_driven_video_is_the_teachers_evaluation(shared_dir, teacher):
    """The teacher sees each session as ``genet eval abr`` shows it to a policy (abr.raw after every chunk, reset
    and bound at every new video): a BC rollout over one whole video from the trace start, without delay noise,
    has exactly the QoE of the teacher's evaluation on that trace."""
    from genet.abr.evaluate import evaluate
    from genet.abr.params import PENSIEVE
    from traces import load_traces
    trace = load_traces(shared_dir / "traces" / "abr" / "norway-val")[3]
    uc = AbrImitationUseCase("bc", teacher, AbrTrainConfig(torch_threads=1, n_envs=1, rollout_steps=47,
                                                           delay_noise=False, random_start=False),
                             real_traces=[trace])
    dist = ConfigDistribution.udr(uc.space, "rl1", real_prob=1.0, n_real_traces=1)
    agent = uc.new_model(0)
    agent.rollout = uc._start_rollout(dist, 5)
    b = uc.collect(agent, dist)  # 48 chunks: the first at the first quality, then 47 decisions
    assert np.array_equal(b["actions"], b["teacher_actions"])  # BC executes the labels
    assert b["terminated"][-1, 0] and len(b["episode_returns"]) == 1
    ref = evaluate(teacher, [trace], uc.video, PENSIEVE)[0]
    assert b["episode_returns"][0] == pytest.approx(ref.qoe, rel=1e-12, abs=1e-9)
    assert len(np.unique(b["actions"])) > 1


def test_jump_actions_label_the_teachers_step():
    assert np.array_equal(teacher_labels(np.array([0, 3, 5]), np.array([2, 3, 1]), "abr.jump3"), [0, 1, 2])
    assert np.array_equal(teacher_labels(np.array([0, 3, 5]), np.array([2, 3, 1]), "abr.direct6"), [0, 3, 5])


def test_optimal_teacher_plans_from_the_trace_start_without_noise():
    uc = AbrImitationUseCase("bc", "optimal", AbrTrainConfig(**{**SMALL, "n_envs": 2, "rollout_steps": 8}))
    conv = uc.config.train_conventions()
    assert not conv.delay_noise and not conv.random_start
    agent = uc.train(uc.new_model(0), ConfigDistribution.udr(uc.space, "rl1"), 1, seed=0)
    assert agent.learner.labels.shape[0] == 16


def test_trajectory_without_labels_is_refused():
    uc = AbrImitationUseCase("dagger", "bba", AbrTrainConfig(**SMALL))
    learner = uc.new_model(0).learner
    traj = Trajectory(np.zeros((2, 1, 6, 8), np.float32), np.zeros((2, 1), np.int64), np.zeros((2, 1)),
                      np.zeros((2, 1), bool))
    with pytest.raises(ValueError, match="no teacher labels"):
        learner.make_batch(traj)


def test_save_load_resume_continues_exactly(tmp_path):
    dist = ConfigDistribution.udr(AbrUseCase(AbrTrainConfig(torch_threads=1)).space, "rl3")
    cfg, quick = dict(torch_threads=1, n_envs=4, rollout_steps=16), ImitationConfig(steps=5)
    full_uc = AbrImitationUseCase("dagger", "mpc", AbrTrainConfig(**cfg), quick)
    full = full_uc.train(full_uc.new_model(3), dist, 4, seed=7)
    uc = AbrImitationUseCase("dagger", "mpc", AbrTrainConfig(**cfg), quick)
    uc.save_model(uc.train(uc.new_model(3), dist, 2, seed=7), tmp_path / "ckpt.pt")
    uc2 = AbrImitationUseCase("dagger", "mpc", AbrTrainConfig(**cfg), quick)
    resumed = uc2.train(uc2.load_model(tmp_path / "ckpt.pt"), dist, 2, seed=999)
    for (k, v), (k2, v2) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    keys = ("mean_step_reward", "imitation_loss", "agreement_before", "teacher_share")
    assert [[r[k] for k in keys] for r in full.history] == [[r[k] for k in keys] for r in resumed.history]
    assert torch.equal(full.learner.labels, resumed.learner.labels)
    with pytest.raises(ValueError, match="a dagger checkpoint with teacher mpc, not bc with teacher mpc"):
        AbrImitationUseCase("bc", "mpc", AbrTrainConfig(**cfg)).load_model(tmp_path / "ckpt.pt")


# ------------------------------------------------------------------ commands
def _train(*argv: str) -> int:
    return main(["train", "abr", "--no-progress", "--n-envs", "8", "--steps-per-update", "256", *argv])


def test_dagger_run_exports_evaluates_and_fine_tunes_with_ppo(tmp_path, shared_dir, capsys):
    run = tmp_path / "dagger"
    assert _train("--agent", "dagger", "--teacher", "mpc", "--steps", "1024", "--out", str(run)) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["agent"] == "dagger" and meta["teacher"] == "mpc" and "--agent dagger" in meta["command"]
    import csv
    rows = list(csv.DictReader((run / "learning_curve.csv").open()))
    assert len(rows) == 4 and {"imitation_loss", "agreement", "teacher_share"} <= set(rows[0])
    # the learning rate falls linearly over the run's 4 updates, towards a tenth
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([1e-3, 7.75e-4, 5.5e-4, 3.25e-4])
    onnx = tmp_path / "student.onnx"
    assert main(["export", str(run), "-o", str(onnx)]) == 0
    traces = shared_dir / "traces" / "abr" / "norway-val"
    out = tmp_path / "eval"
    assert main(["eval", "abr", "--traces", str(traces), "--policy", f"{onnx},bba", "--out", str(out),
                 "--no-progress"]) == 0
    assert "student" in (out / "summary.txt").read_text()
    # PPO fine-tunes from the student: its first network is the student's
    uc = AbrUseCase(AbrTrainConfig(torch_threads=1))
    student = torch.load(run / "model.pt", weights_only=False)["net"]
    start = uc.model_from(run / "model.pt", 0)
    for k, v in start.net.state_dict().items():
        assert torch.equal(v, student[k]), k
    ft = tmp_path / "ppo"
    assert _train("--agent", "ppo", "--init-from", str(run / "model.pt"), "--steps", "256", "--out", str(ft)) == 0
    assert json.loads((ft / "run.json").read_text())["agent"] == "ppo"


def test_a3c_run_trains_and_exports(tmp_path):
    run = tmp_path / "a3c"
    assert _train("--agent", "a3c", "--steps", "512", "--out", str(run), "--checkpoint-every", "1") == 0
    assert json.loads((run / "run.json").read_text())["agent"] == "a3c"
    assert main(["export", str(run), "-o", str(tmp_path / "a3c.onnx")]) == 0
    from genet.policy import load_policy
    assert load_policy(tmp_path / "a3c.onnx").extra_metadata("agent") == "a3c"


def test_a3c_run_starts_a_genet_curriculum_from_its_run_directory(tmp_path, capsys):
    """--agent a3c --method genet --init-from RUN_DIR: the curriculum continues the A3C run's network (a run
    directory stands for its model.pt), promotes an environment and saves every round."""
    udr = tmp_path / "a3c-udr"
    assert _train("--agent", "a3c", "--method", "udr", "--range", "rl1", "--steps", "512", "--out", str(udr)) == 0
    cur = tmp_path / "a3c-genet"
    assert _train("--agent", "a3c", "--method", "genet", "--range", "rl1", "--baseline", "mpc", "--steps", "1024",
                  "--trials", "2", "--random-trials", "2", "--envs-per-trial", "2", "--rounds", "1",
                  "--init-from", str(udr), "--out", str(cur)) == 0
    meta = json.loads((cur / "run.json").read_text())
    assert meta["agent"] == "a3c" and meta["method"] == "genet"
    assert (cur / "rounds.csv").read_text().count("\n") >= 2  # a header and round 0's promotion
    assert (cur / "model-round0").exists()
    capsys.readouterr()
    assert _train("--agent", "a3c", "--method", "genet", "--init-from", str(tmp_path / "nothing"), "--steps", "512",
                  "--out", str(tmp_path / "x")) != 0
    assert "no such model file" in capsys.readouterr().err


def test_help_lists_every_agent(capsys):
    with pytest.raises(SystemExit):
        main(["train", "abr", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help at any space
    from genet.agents.registry import AGENTS
    for name in AGENTS.names():
        assert f"{name}: " in text, name
    assert "--teacher" in text and "optimal" in text


@pytest.mark.parametrize("extra, message", [
    (["--agent", "sarsa"], "--agent 'sarsa': unknown agent; known: ppo, a3c, dqn, bc, dagger"),
    (["--agent", "a3c", "--rollout-workers", "2"], "--agent a3c steps its sessions in this process"),
    (["--agent", "ppo", "--teacher", "mpc"], "--teacher is an option of the imitation agents"),
    (["--agent", "dagger", "--teacher", "bola"], "--teacher 'bola': unknown abr teacher; choose one of bba, mpc"),
    (["--agent", "bc", "--method", "genet"], "--agent bc trains with --method udr"),
    (["--agent", "dagger", "--rollout-workers", "2"], "--agent dagger steps its sessions in this process"),
    (["--agent", "dagger", "--beta-decay", "2"], "--beta-decay must be in [0, 1]"),
])
def test_bad_agent_options_fail_before_training(tmp_path, capsys, extra, message):
    assert _train("--out", str(tmp_path / "r"), *extra) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cc_knows_its_own_agents(tmp_path, capsys):
    assert main(["train", "cc", "--agent", "dqn", "--out", str(tmp_path / "c"), "--no-progress"]) != 0
    assert "agents for cc: ppo, a3c, bc, dagger" in capsys.readouterr().err
