"""`genet train cc` and `genet export`: run directories, exact resume, the
curriculum methods, ONNX export, and bad input rejected before training.
Step counts are tiny (a few PPO updates of 200 transitions)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from app.cli import main

TINY = ["--range", "rl1", "--steps-per-update", "200", "--minibatch", "50", "--epochs", "2", "--no-progress"]


def _train(out, *extra) -> int:
    return main(["train", "cc", *TINY, "--out", str(out), *extra])


def _net_params(path):
    blob = torch.load(path, weights_only=False)
    return blob["net"], blob


def test_udr_run_directory(tmp_path):
    out = tmp_path / "udr"
    assert _train(out, "--method", "udr", "--steps", "600", "--checkpoint-every", "2", "--seed", "5") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["use_case"] == "cc" and run["method"] == "udr" and run["range"] == "rl1" and run["seed"] == 5
    assert run["train_config"]["steps_per_update"] == 200 and run["train_config"]["learning_rate"] == 1e-3
    rows = (out / "learning_curve.csv").read_text().strip().splitlines()
    assert rows[0].startswith("update,env_steps") and len(rows) == 1 + 3
    assert [int(r.split(",")[1]) for r in rows[1:]] == [200, 400, 600]
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"latest.pt", "step_400.pt", "step_600.pt"}
    net, blob = _net_params(out / "model.pt")
    assert blob["env_steps"] == 600 and blob["updates"] == 3


def test_resume_after_a_crash_continues_exactly(tmp_path):
    full = tmp_path / "full"
    assert _train(full, "--steps", "800", "--checkpoint-every", "2", "--seed", "2") == 0
    # a copy "killed" after the checkpoint at 400 steps: later files lost, curve holds an extra row
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "model.pt").unlink()
    (cut / "checkpoints" / "step_800.pt").unlink()
    shutil.copyfile(cut / "checkpoints" / "step_400.pt", cut / "checkpoints" / "latest.pt")
    assert _train(cut, "--steps", "800", "--checkpoint-every", "2", "--seed", "2", "--resume") == 0
    a, blob_a = _net_params(full / "model.pt")
    b, blob_b = _net_params(cut / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert blob_a["optimizer"]["state"][0]["step"] == blob_b["optimizer"]["state"][0]["step"]
    assert (full / "learning_curve.csv").read_text().splitlines()[1:] and \
        [r.split(",")[3] for r in (full / "learning_curve.csv").read_text().splitlines()] == \
        [r.split(",")[3] for r in (cut / "learning_curve.csv").read_text().splitlines()]


def test_genet_curriculum_run_and_export(tmp_path):
    out = tmp_path / "genet"
    assert _train(out, "--method", "genet", "--steps", "400", "--rounds", "1", "--trials", "3",
                  "--random-trials", "2", "--envs-per-trial", "1", "--baseline", "bbr,cubic", "--ensemble") == 0
    state = json.loads((out / "state.json").read_text())
    assert state["use_case"] == "cc" and state["phases_done"] == 2 and len(state["rounds"]) == 1
    trials = state["rounds"][0]["trials"]
    assert len(trials) == 3
    for t in trials:  # ensemble: the gap is the larger of the two baselines' gaps
        d = t["detail"]
        assert t["gap"] == pytest.approx(max(d["bbr"], d["cubic"]) - d["rl"])
    assert len(state["distribution"]["entries"]) == 2
    assert np.isclose(state["distribution"]["entries"][1]["weight"], 0.3)
    assert (out / "rounds.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "rounds.csv").read_text().count("\n") == 2

    onnx_path = tmp_path / "policy.onnx"
    assert main(["export", str(out), "-o", str(onnx_path)]) == 0
    from genet.cc.policies import cc_policy_spec, load_aurora_policy
    from genet.policy import OnnxPolicy
    policy = OnnxPolicy(onnx_path, expected=cc_policy_spec())
    assert policy.extra_metadata("method") == "genet" and policy.extra_metadata("env_steps") == 400
    assert policy.extra_metadata("baselines") == ["bbr", "cubic"]
    assert policy.extra_metadata("command").startswith("genet train cc --method genet --range rl1")
    load_aurora_policy(str(onnx_path))  # the CC evaluation accepts it
    # torch and onnxruntime agree on 1000 random observations
    from genet.cc.training import CcUseCase
    agent = CcUseCase().load_model(out / "model.pt")
    obs = np.random.default_rng(1).uniform(-5, 5, size=(1000, 30)).astype(np.float32)
    with torch.no_grad():
        ref = agent.net(torch.from_numpy(obs)).numpy()
    assert np.max(np.abs(policy.forward(obs) - ref)) <= 1e-5
    assert not np.allclose(ref, ref[0])  # a real function of the observation


def test_cl1_stages_widen_towards_frequent_changes():
    from genet.train_cli import cl1_stages
    from traces.config_space import load_space
    space = load_space("cc")
    stages = cl1_stages(space, "rl3", 3)
    lo, hi = space["bandwidth_change_interval_s"].ranges["rl3"]
    got = [s.entries[0].ranges["bandwidth_change_interval_s"] for s in stages]
    assert got[-1] == (lo, hi) and all(g[1] == hi for g in got)
    assert got[0][0] > got[1][0] > got[2][0]


def test_cl1_and_cl3_methods_run(tmp_path):
    assert _train(tmp_path / "cl1", "--method", "cl1", "--steps", "400", "--rounds", "1") == 0
    assert len((tmp_path / "cl1" / "learning_curve.csv").read_text().strip().splitlines()) == 3
    assert _train(tmp_path / "cl3", "--method", "cl3", "--steps", "400", "--rounds", "1", "--trials", "2",
                  "--random-trials", "2", "--envs-per-trial", "1") == 0
    trial = json.loads((tmp_path / "cl3" / "state.json").read_text())["rounds"][0]["trials"][0]
    assert trial["gap"] == pytest.approx(trial["detail"]["optimal"] - trial["detail"]["rl"])


@pytest.mark.parametrize("extra, message", [
    (["--method", "ddpg"], "--method 'ddpg': unknown method"),
    (["--range", "rl9"], "--range 'rl9': unknown range"),
    (["--baseline", "vegas"], "unknown baseline 'vegas'"),
    (["--ensemble"], "--ensemble needs two or more baselines"),
    (["--real-prob", "1.5", "--real-traces", "."], "--real-prob must be a probability"),
    (["--resume"], "run.json does not exist"),
    (["--steps", "200", "--method", "genet", "--rounds", "3"], "fewer than the 4 phases"),
    (["--gap-after-first-ack"], "--gap-after-first-ack changes the gap to a baseline of --method genet"),
    (["--method", "cl3", "--gap-after-first-ack"], "not --method cl3"),
    (["--promotion-distance", "0.1"], "--promotion-distance changes a curriculum's promotions"),
    (["--method", "genet", "--promotion-distance", "1.5"], "--promotion-distance must be in [0, 1]"),
    (["--min-promotion-gap", "0"], "--min-promotion-gap changes a curriculum's promotions"),
])
def test_bad_options_fail_before_training(tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    args = ["train", "cc", "--out", str(out), "--no-progress", *extra]
    if "--range" not in extra:
        args[2:2] = ["--range", "rl1"]
    assert main(args) == 1
    assert message in capsys.readouterr().err
    assert not (out / "run.json").exists() and not (out / "model.pt").exists()


def test_bad_run_directories(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _train(tmp_path / "r", "--real-traces", str(empty)) == 1
    err = capsys.readouterr().err
    assert str(empty) in err and "no trace" in err
    other = tmp_path / "abr-run"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"use_case": "abr", "method": "udr"}))
    assert _train(other, "--resume") == 1
    assert "is a 'abr' run, not a 'cc' run" in capsys.readouterr().err
    assert _train(other) == 1  # no --resume: refuses to overwrite
    assert "already holds a run" in capsys.readouterr().err
    assert main(["export", str(empty), "-o", str(tmp_path / "x.onnx")]) == 1
    assert "not a genet train run directory" in capsys.readouterr().err


def test_a_use_case_whose_training_module_is_missing_fails_clearly(tmp_path, capsys, monkeypatch):
    """The registry's path for a use case without training (ABR before genet/abr/training.py existed)."""
    from genet import train_cli
    entry = train_cli.TRAIN_USE_CASES["abr"]
    monkeypatch.setitem(train_cli.TRAIN_USE_CASES, "abr", train_cli.TrainEntry(
        "abr", "genet.abr.no_such_training_module", entry.baselines, missing=entry.missing))
    assert main(["train", "abr", "--out", str(tmp_path / "a"), "--no-progress"]) == 1
    assert "ABR training is not available yet" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_help_names_units_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "cc", "--help"])
    text = capsys.readouterr().out
    for opt in ("--method", "--range", "--baseline", "--ensemble", "--steps", "--seed", "--out", "--resume",
                "--rounds", "--real-traces", "--real-prob"):
        assert opt in text
    assert "default: 720000" in text and "environment steps" in text


def test_curriculum_resume_matches_an_uninterrupted_run(tmp_path):
    common = ["--method", "genet", "--trials", "2", "--random-trials", "2", "--envs-per-trial", "1", "--seed", "4"]
    assert _train(tmp_path / "full", *common, "--steps", "600", "--rounds", "2") == 0
    assert _train(tmp_path / "cut", *common, "--steps", "400", "--rounds", "1") == 0  # "killed" after round 0
    assert _train(tmp_path / "cut", *common, "--steps", "600", "--rounds", "2", "--resume") == 0
    a, blob_a = _net_params(tmp_path / "full" / "model.pt")
    b, blob_b = _net_params(tmp_path / "cut" / "model.pt")
    assert blob_a["env_steps"] == blob_b["env_steps"] == 600
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["resumes"][0]["rounds"] == 2
    sa = json.loads((tmp_path / "full" / "state.json").read_text())
    sb = json.loads((tmp_path / "cut" / "state.json").read_text())
    assert [r["best_config"] for r in sa["rounds"]] == [r["best_config"] for r in sb["rounds"]]


def _space_file(tmp_path, use_case="cc", edit=None):
    from traces.config_space import SPACES_DIR
    raw = json.loads((SPACES_DIR / f"{use_case}.json").read_text())
    if edit:
        edit(raw)
    p = tmp_path / f"{use_case}-space.json"
    p.write_text(json.dumps(raw))
    return p


def test_space_file_narrows_the_training_distribution(tmp_path):
    def narrow(raw):
        for d in raw["dimensions"]:
            if d["name"] == "max_bandwidth_mbps":
                d["ranges"]["rl1"] = [7.0, 7.0]
    out = tmp_path / "own-space"
    assert _train(out, "--steps", "200", "--space", str(_space_file(tmp_path, edit=narrow))) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["space"].endswith("cc-space.json")
    from genet.cc.training import CcUseCase
    uc = CcUseCase()
    agent = uc.load_model(out / "model.pt")
    assert agent.updates == 1


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["dimensions"][0]["ranges"].__setitem__("rl1", [5.0, 1.0]), "rl1"),
    (lambda raw: raw["dimensions"].pop(), "missing"),
    (lambda raw: raw.__setitem__("use_case", "abr"), "not 'cc'"),
])
def test_bad_space_files_fail_before_training(tmp_path, capsys, edit, message):
    out = tmp_path / "bad-space"
    assert _train(out, "--space", str(_space_file(tmp_path, edit=edit))) == 1
    err = capsys.readouterr().err
    assert "cc-space.json" in err and message in err
    assert not (out / "run.json").exists()
    assert _train(out, "--space", str(tmp_path / "nope.json")) == 1
    assert "no such file" in capsys.readouterr().err


def test_curve_log_appends_rows_equal_to_a_full_rewrite(tmp_path):
    from genet.train_cli import CurveLog, write_curve
    hist = [{"update": i, "env_steps": 10 * i, "wall_s": 0.5 * i, "mean_step_reward": float(i)} for i in range(1, 6)]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    log = CurveLog(a, tensorboard=False)
    for k in range(1, 6):
        log.append(hist[:k])
    write_curve(hist, b)
    assert (a / "learning_curve.csv").read_text() == (b / "learning_curve.csv").read_text()
    log.append(hist[:2])  # a shorter history (a resumed run): rewritten, not appended
    assert len((a / "learning_curve.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize("extra, message", [
    (["--torch-threads", "-1"], "--torch-threads must be >= 0"),
    (["--entropy-rate", "0"], "--entropy-rate must be > 0"),
    (["--method", "genet", "--baseline", "mpc,nowhere/udr.onnx", "--ensemble"],
     "--baseline nowhere/udr.onnx: no such policy file"),
    (["--baseline", "vegas"], "choose from mpc, bba or a trained policy PATH.onnx"),
])
def test_bad_abr_options(tmp_path, capsys, extra, message):
    assert main(["train", "abr", "--out", str(tmp_path / "a"), "--no-progress", *extra]) == 1
    assert message in capsys.readouterr().err


def test_an_abr_curriculum_takes_a_trained_policy_as_a_baseline(tmp_path):
    """Issue 30: the BO gap = max over RobustMPC and a trained UDR policy (an ONNX file, by its absolute path);
    each trial's detail holds both baselines' rewards and the gap is the larger one."""
    from pathlib import Path
    udr = Path(__file__).resolve().parents[1] / "models" / "abr" / "udr2.onnx"
    out = tmp_path / "g"
    assert main(["train", "abr", "--method", "genet", "--range", "rl1", "--baseline", f"mpc,{udr}", "--ensemble",
                 "--n-envs", "4", "--steps-per-update", "64", "--steps", "128", "--rounds", "1", "--trials", "2",
                 "--random-trials", "2", "--envs-per-trial", "2", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "run.json").read_text())["baselines"] == ["mpc", str(udr)]
    trials = json.loads((out / "state.json").read_text())["rounds"][0]["trials"]
    for t in trials:
        d = t["detail"]
        assert t["gap"] == pytest.approx(max(d["mpc"], d[str(udr)]) - d["rl"])
    assert any(d["detail"]["mpc"] != d["detail"][str(udr)] for d in trials)  # the model ran, not mpc twice


def test_curve_log_writes_tensorboard_scalars_when_tensorboard_is_there(tmp_path, monkeypatch):
    """tensorboard is not a dependency (and not installed here): a stand-in SummaryWriter module shows
    what CurveLog sends it; without the module CurveLog writes the CSV only."""
    import sys
    import types
    from genet.train_cli import CurveLog
    calls = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("dir", log_dir))

        def add_scalar(self, tag, value, global_step):
            calls.append((tag, value, global_step))

        def close(self):
            calls.append(("close",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    log = CurveLog(tmp_path)
    log.append([{"update": 1, "env_steps": 200, "wall_s": 1.0, "mean_step_reward": 3.5, "entropy": float("nan")}])
    log.close()
    assert calls[0] == ("dir", str(tmp_path / "tensorboard"))
    assert ("train/mean_step_reward", 3.5, 200) in calls and calls[-1] == ("close",)
    assert not any(c[0] == "train/entropy" for c in calls)  # NaN values are left out
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: no tensorboard
    assert CurveLog(tmp_path / "x", tensorboard=True).tb is None


def test_a_resume_counts_steps_in_the_runs_own_update_size(tmp_path):
    """The checkpoint trains on with its recorded settings, so --steps of a resume that leaves out
    --steps-per-update (CC default 7,200) still counts in the run's 200 per update: 800 steps = 4 updates."""
    from genet import train_cli
    out = tmp_path / "run"
    assert _train(out, "--steps", "400", "--seed", "2") == 0
    assert main(["train", "cc", "--range", "rl1", "--no-progress", "--out", str(out), "--resume",
                 "--steps", "800"]) == 0
    blob = torch.load(out / "model.pt", weights_only=False)
    assert (blob["updates"], blob["env_steps"]) == (4, 800)
    assert train_cli.recorded_steps_per_update({"n_envs": 4, "rollout_steps": 16}) == 64
    assert train_cli.recorded_steps_per_update({"video": "x"}) is None
