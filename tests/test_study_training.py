"""`genet study run` on a tiny budget: the matrix runs as `genet` subprocesses, a warm-started
preset starts from the same seed's UDR-RL3 model, results are per seed with mean ± std, a rerun
resumes (finished runs are not retrained), and the Figure-18 curves come from the checkpoints.
The validation sets are one trace of each real set (a copy in tmp_path). Also `genet models ship`
(its models' specs, --from-run) and the analyses `genet study per-trace | top-rung`."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.cli import build_parser
from app.cli import main as genet_main
from foundation.errors import BadInputError
from app.study import presets as study_presets
from app.study import ship
from app.study.table import AGENTS_TITLE
from genet.cc.training import GENET_RULES

ROOT = Path(__file__).resolve().parent.parent


def run_study(*argv: str) -> int:
    return genet_main(["study", "run", *argv])


def test_presets_name_the_variants_of_the_issue():
    mod = study_presets
    names = set(mod.presets())
    assert set(mod.MATRIX) <= names
    assert {"abr-genet-paperdims", "abr-genet-w0.1", "abr-genet-ensemble", "abr-genet-warm", "cc-genet-warm",
            "abr-cl1", "cc-cl3"} <= names
    assert mod.presets()["abr-genet-warm"].warm_from == "abr-udr3"
    # the paper-dimensions space is committed (the shipped ABR Genet model trained on it) and is abr.json with
    # every other dimension fixed at its default
    committed = json.loads((ROOT / "traces/spaces/abr-paperdims.json").read_text())
    assert committed == mod.paperdims_space()
    # the capped-loss CC space likewise: cc.json with the loss rate stopping at 1 % (every range), nothing else
    loss1 = json.loads((ROOT / "traces/spaces/cc-rl3-loss1.json").read_text())
    assert loss1 == mod.loss1_space()
    cc = json.loads((ROOT / "traces/spaces/cc.json").read_text())
    changed = [(a["name"], a["ranges"], b["ranges"]) for a, b in zip(cc["dimensions"], loss1["dimensions"]) if a != b]
    assert [(n, b) for n, a, b in changed] == [("loss_rate", {"rl1": [0, 0.005], "rl2": [0, 0.01], "rl3": [0, 0.01]})]
    from traces.config_space import load_space as load
    assert load(ROOT / "traces/spaces/cc-rl3-loss1.json")["loss_rate"].bounds == (0, 0.01)  # what the BO searches
    ps = mod.presets()
    for name in ("cc-genet-faithful", "cc-udr3-faithful"):  # the capped twins: the same run on the capped space
        twin = ps[f"{name}-loss1"]
        assert (twin.options, twin.space) == (ps[name].options + ["--space", "{space}"], "loss1")
    from traces.config_space import load_space
    space = load_space(ROOT / "traces/spaces/abr-paperdims.json")
    free = {d.name for d in space.dimensions if d.bounds[0] < d.bounds[1]}
    assert free == set(mod.PAPER_ABR_DIMS)


def test_tiny_study_runs_resumes_and_writes_the_table_and_curves(tmp_path, shared_dir):
    shared = tmp_path / "shared"
    for s in ("fcc-val", "norway-val"):
        src = sorted((shared_dir / "traces" / "abr" / s).iterdir())[:1]
        (shared / "traces" / "abr" / s).mkdir(parents=True)
        for f in src:
            shutil.copy(f, shared / "traces" / "abr" / s / f.name)
    study = tmp_path / "study"
    base = ["--study-dir", str(study), "--shared", str(shared), "--tiny", "--no-real-traces", "--abr-steps", "128",
            "--cc-steps", "200", "--jobs", "2"]
    assert run_study(*base, "--presets", "abr-udr3", "--seeds", "0,1", "--no-curves") == 0
    table = (study / "results.md").read_text()
    assert "| abr-udr3 | 0,1 |" in table and " ± " in table and "mpc (baseline)" in table
    data = json.loads((study / "results.json").read_text())
    assert set(data["abr"]["abr-udr3"]["fcc-val"]["seeds"]) == {"0", "1"}
    # every record keeps its per-trace figures (issue 30's paired tests): the model's and the baselines'
    udr0 = json.loads((study / "results" / "abr-udr3-s0.json").read_text())
    per = udr0["per_trace"]["fcc-val"]
    assert set(per) == {"model", "mpc", "bba"} and len(per["model"]) == 1
    assert np.mean(list(per["model"].values())) == pytest.approx(udr0["evaluation"]["fcc-val"]["model"])
    assert "### abr-udr3" not in table  # no comparison of this table's pairs has both sides
    model = study / "runs" / "abr-udr3-s0" / "model.pt"
    stamp = model.stat().st_mtime_ns
    # the warm start runs after (and from) the same seed's UDR-RL3 model, which is not trained again
    assert run_study(*base, "--presets", "abr-genet-warm", "--seeds", "0") == 0
    assert model.stat().st_mtime_ns == stamp
    rec = json.loads((study / "results" / "abr-genet-warm-s0.json").read_text())
    assert "--init-from" in rec["command"] and "abr-udr3-s0" in rec["command"]
    udr = json.loads((study / "results" / "abr-udr3-s0.json").read_text())
    assert rec["env_steps"] > udr["env_steps"] == 128  # the warm start continues the UDR model's counters
    assert set(rec["evaluation"]) == {"fcc-val", "norway-val"} and "mpc" in rec["evaluation"]["fcc-val"]
    curve = (study / "curves" / "abr-genet-warm-s0.csv").read_text().splitlines()
    assert curve[0] == "checkpoint,env_steps,set,reward" and len(curve) == 1 + 2  # model-round0, model-round1
    assert (study / "curves-abr.png").read_bytes()[:4] == b"\x89PNG"
    # a curve keeps at most --curve-points checkpoints, always the last (the 2-point curve written above is cut
    # to it, so every seed's curve has the same points); --publish copies the outputs
    pub = tmp_path / "published"
    assert run_study(*base, "--presets", "abr-genet-warm", "--seeds", "0", "--curve-points", "1",
                     "--publish", str(pub)) == 0
    curve = (study / "curves" / "abr-genet-warm-s0.csv").read_text().splitlines()
    assert len(curve) == 2 and curve[1].startswith("model-round1,")
    assert (pub / "results.md").read_text() == (study / "results.md").read_text()
    assert {f.name for f in pub.iterdir()} == {"results.md", "results.json", "curves-abr.png", "results", "curves"}
    assert {f.name for f in (pub / "results").iterdir()} == {"abr-udr3-s0.json", "abr-udr3-s1.json",
                                                             "abr-genet-warm-s0.json"}
    # --restore in a new study directory: the published records and curves come back, nothing is trained
    # again (no runs/ there), the table is the same; a curve without its run is kept as it is
    fresh = tmp_path / "fresh"
    again = ["--study-dir", str(fresh), *base[2:]]
    assert run_study(*again, "--presets", "abr-udr3,abr-genet-warm", "--seeds", "0",
                     "--restore", str(pub), "--curves-tag", "t") == 0
    assert not any((fresh / "runs").iterdir())
    assert (fresh / "results.md").read_text() == (study / "results.md").read_text()
    assert ((fresh / "curves" / "abr-genet-warm-s0.csv").read_text()
            == (study / "curves" / "abr-genet-warm-s0.csv").read_text())
    assert (fresh / "curves-abr-t.png").read_bytes()[:4] == b"\x89PNG" and not (fresh / "curves-abr.png").exists()


def test_tiny_lb_study_picks_each_run_checkpoint_on_the_validation_episodes(tmp_path):
    """An LB preset (issue 27): the record is the checkpoint with the best reward on the validation episodes
    (the learning curve's set; the final model a candidate too), evaluated there and on the test episodes
    (return / 1e9 and mean completion time) beside least-work-left; the table has an LB section."""
    study = tmp_path / "study"
    assert run_study("--study-dir", str(study), "--tiny", "--lb-steps", "2048", "--presets", "lb-udr3",
                     "--seeds", "0", "--curve-points", "2") == 0
    rec = json.loads((study / "results" / "lb-udr3-s0.json").read_text())
    assert set(rec["evaluation"]) == {"val", "val completion (s)", "test", "test completion (s)"}
    assert set(rec["evaluation"]["test"]) == {"model", "least_work"} and rec["env_steps"] == 2048
    assert "--method udr --range rl3" in rec["command"] and "--checkpoint-every 2" in rec["command"]
    with open(study / "curves" / "lb-udr3-s0.csv") as fh:
        curve = {r["checkpoint"]: float(r["reward"]) for r in csv.DictReader(fh)}
    assert len(curve) == 2 and curve[f"step_{2048}.pt"] is not None
    # the chosen one is the best on val of the curve's checkpoints and the final model
    candidates = {**{f"checkpoints/{k}": v for k, v in curve.items()}, "model.pt": None}
    assert rec["checkpoint"] in candidates
    if rec["checkpoint"] != "model.pt":
        assert rec["evaluation"]["val"]["model"] == max(curve.values())
    assert rec["evaluation"]["val"]["model"] >= max(curve.values())
    assert rec["checkpoint_env_steps"] <= 2048
    table = (study / "results.md").read_text()
    assert "## LB" in table and "| lb-udr3 | 0 |" in table and "least_work (baseline)" in table
    assert "chosen checkpoints: lb-udr3 s0" in table


def _opt(p, flag):
    return p.options[p.options.index(flag) + 1] if flag in p.options else None


def test_agent_presets_train_each_learner_at_one_budget_from_training_data_only(tmp_path):
    """The agents study (issue 28): every learner, each teacher, BC+PPO whose two stages share plain PPO's
    budget, the Decision Transformer fed by a pool of RobustMPC and UDR episodes on the training sets."""
    mod = study_presets
    ps = mod.presets()
    assert set(mod.AGENTS_MATRIX) <= set(ps) and len(set(mod.AGENTS_MATRIX)) == len(mod.AGENTS_MATRIX)
    agents = {n: _opt(ps[n], "--agent") for n in mod.AGENTS_MATRIX}
    assert agents["abr-agent-a3c"] == "a3c" and agents["abr-agent-dqn"] == "dqn" and agents["abr-agent-dt"] == "dt"
    for uc, teachers in (("abr", ("bba", "mpc", "optimal")), ("cc", ("bbr", "cubic"))):
        for agent in ("bc", "dagger"):
            for t in teachers:
                p = ps[f"{uc}-agent-{agent}-{t}"]
                assert (p.use_case, agents[p.name], _opt(p, "--teacher"), p.steps_share) == (uc, agent, t, 1.0)
    for uc, stage in (("abr", "abr-agent-bc-mpc-25"), ("cc", "cc-agent-dagger-cubic-25")):
        tune = ps[f"{stage[:-3]}-ppo"]
        assert tune.warm_from == stage and tune.budget_includes_warm and _opt(tune, "--init-from") == "{warm}"
        assert agents[tune.name] == "ppo" and ps[stage].steps_share == mod.IMITATION_SHARE < 1
    # the fine-tune that keeps the student: the same first stage and budget, its own options and nothing else
    warm, plain = ps["abr-agent-bc-mpc-ppo-warm"], ps["abr-agent-bc-mpc-ppo"]
    assert (warm.warm_from, warm.budget_includes_warm) == (plain.warm_from, True)
    assert warm.options == plain.options + mod.FINE_TUNE_OPTIONS and _opt(warm, "--critic-warmup") == "20"
    anchor = ps["abr-agent-bc-mpc-ppo-anchor"]
    assert (anchor.warm_from, anchor.options) == (warm.warm_from, warm.options + mod.ANCHOR_OPTIONS)
    dt = ps["abr-agent-dt"]
    assert _opt(dt, "--pool") == "{pool}" and dt.steps == mod.DT_STEPS and "mpc" in dt.pool
    assert any("udr" in x for x in dt.pool)
    from app.study.runner import POOL_SETS, Study, StudyOptions
    assert set(POOL_SETS) == {"fcc-train", "norway-train"}  # never a validation set
    # the commands: each stage's --steps, the warm start from the same seed's first stage, the pool files
    study = Study(StudyOptions(study_dir=tmp_path / "s", shared=tmp_path / "shared", abr_steps=mod.AGENTS_ABR_STEPS,
                               cc_steps=mod.AGENTS_CC_STEPS))

    def steps_of(cmd):
        return int(cmd[len(cmd) - 1 - cmd[::-1].index("--steps") + 1])

    assert steps_of(study.train_command(ps["abr-agent-ppo"], 0)) == mod.AGENTS_ABR_STEPS
    first = steps_of(study.train_command(ps["abr-agent-bc-mpc-25"], 1))
    assert first == round(mod.AGENTS_ABR_STEPS * mod.IMITATION_SHARE)
    from foundation.errors import GenetRuntimeError
    with pytest.raises(GenetRuntimeError, match="abr-agent-bc-mpc-25-s1.json is missing"):
        study.train_command(ps["abr-agent-bc-mpc-ppo"], 1)
    (study.dir / "results" / "abr-agent-bc-mpc-25-s1.json").write_text(json.dumps({"env_steps": first + 64}))
    cmd = study.train_command(ps["abr-agent-bc-mpc-ppo"], 1)
    assert steps_of(cmd) == mod.AGENTS_ABR_STEPS - first - 64  # the steps the first stage really took
    assert cmd[cmd.index("--init-from") + 1] == str(study.run_dir("abr-agent-bc-mpc-25", 1) / "model.pt")
    assert study.train_command(ps["abr-agent-bc-mpc-ppo-warm"], 1) == [
        x.replace("abr-agent-bc-mpc-ppo", "abr-agent-bc-mpc-ppo-warm") for x in cmd[:cmd.index("--seed")]] + \
        mod.FINE_TUNE_OPTIONS + [x.replace("abr-agent-bc-mpc-ppo", "abr-agent-bc-mpc-ppo-warm")
                                 for x in cmd[cmd.index("--seed"):]]
    (study.dir / "results" / "abr-agent-bc-mpc-25-s1.json").write_text(json.dumps({"env_steps": 10 ** 9}))
    with pytest.raises(BadInputError, match="took the whole budget"):
        study.train_command(ps["abr-agent-bc-mpc-ppo"], 1)
    cmd = study.train_command(dt, 2)
    assert steps_of(cmd) == mod.DT_STEPS
    assert cmd[cmd.index("--pool") + 1].split(",") == [str(study.dir / "pools" / f"abr-agent-dt-s2-{s}.npz")
                                                     for s in POOL_SETS]


def test_tiny_agents_study_builds_the_pool_counts_both_stages_and_reports_speed(tmp_path, shared_dir):
    """A tiny run of the pool-fed and the two-stage agent presets through the runner: the pool is built from the
    training sets only, the fine-tune's record counts its imitation stage's steps and wall time, and the table
    has every row's training wall time and transitions/s."""
    shared = tmp_path / "shared"
    for s in ("fcc-val", "norway-val", "fcc-train", "norway-train"):
        (shared / "traces" / "abr" / s).mkdir(parents=True)
        for f in sorted((shared_dir / "traces" / "abr" / s).iterdir())[:1]:
            shutil.copy(f, shared / "traces" / "abr" / s / f.name)
    study = tmp_path / "study"
    assert run_study("--study-dir", str(study), "--shared", str(shared), "--tiny", "--no-real-traces",
                     "--abr-steps", "256", "--presets", "abr-agent-bc-mpc-ppo,abr-agent-dt", "--seeds", "0",
                     "--no-curves") == 0
    pools = sorted(f.name for f in (study / "pools").iterdir())
    assert pools == ["abr-agent-dt-s0-fcc-train.npz", "abr-agent-dt-s0-norway-train.npz"]
    from genet.abr.pool import read_pool
    assert len(read_pool(study / "pools" / pools[0]).episode_bounds()) == len(study_presets.DT_POOL)  # 1 trace each
    log = (study / "logs" / "abr-agent-dt-s0.log").read_text()
    assert "-val" not in " ".join(line for line in log.splitlines() if line.startswith("$") and " pool " in line)
    stage = json.loads((study / "results" / "abr-agent-bc-mpc-25-s0.json").read_text())
    tune = json.loads((study / "results" / "abr-agent-bc-mpc-ppo-s0.json").read_text())
    assert "--agent bc" in stage["command"] and stage["env_steps"] == 64
    assert "--init-from" in tune["command"] and "abr-agent-bc-mpc-25-s0" in tune["command"]
    assert tune["warm_env_steps"] == 64 and tune["own_env_steps"] == 192 and tune["env_steps"] == 256
    assert tune["train_wall_s"] == pytest.approx(tune["own_train_wall_s"] + stage["train_wall_s"])
    dt = json.loads((study / "results" / "abr-agent-dt-s0.json").read_text())
    assert "--agent dt" in dt["command"] and set(dt["evaluation"]) == {"fcc-val", "norway-val"}
    table = (study / "results.md").read_text()
    assert table.startswith(AGENTS_TITLE) and "| train s | transitions/s |" in table
    # the targets' comparisons: the fine-tune against its teacher (plain PPO has no record here)
    assert "### abr-agent-bc-mpc-ppo vs mpc" in table and "### abr-agent-bc-mpc-ppo vs abr-agent-ppo" not in table
    data = json.loads((study / "results.json").read_text())["abr"]
    for name, rec in (("abr-agent-bc-mpc-ppo", tune), ("abr-agent-dt", dt), ("abr-agent-bc-mpc-25", stage)):
        assert data[name]["train_wall_s"] == pytest.approx(rec["train_wall_s"])
        assert data[name]["transitions_per_s"] == pytest.approx(rec["env_steps"] / rec["train_wall_s"])
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert row.endswith(f"| {rec['train_wall_s']:,.0f} | {rec['env_steps'] / rec['train_wall_s']:,.0f} |")


def test_unknown_presets_and_bad_options_fail_with_one_line(tmp_path, capsys):
    assert run_study("--study-dir", str(tmp_path), "--curve-points", "0") == 1
    assert "--curve-points must be at least 1" in capsys.readouterr().err
    assert run_study("--study-dir", str(tmp_path), "--presets", "abr-nope", "--seeds", "0") == 1
    err = capsys.readouterr().err
    assert err.startswith("genet: error: --presets: unknown preset(s) abr-nope") and len(err.splitlines()) == 1
    assert run_study("--study-dir", str(tmp_path), "--presets", "abr-udr1", "--seeds", "0,x") == 1
    assert "--seeds takes comma-separated integers" in capsys.readouterr().err
    assert run_study("--study-dir", str(tmp_path / "s"), "--table-only", "--restore", str(tmp_path / "missing")) == 1
    assert "--restore" in capsys.readouterr().err and not (tmp_path / "s" / "results.md").exists()


def test_study_and_models_commands_have_help(capsys):
    """`genet study`, `genet models` and their subcommands are commands of the product, each with --help."""
    for argv in (["study"], ["study", "run"], ["study", "compare"], ["study", "per-trace"], ["study", "top-rung"], ["study", "cc-startup"],
                 ["models"], ["models", "ship"]):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([*argv, "--help"])
        assert exit_.value.code == 0, argv
        out = capsys.readouterr().out
        assert out.startswith(f"usage: genet {' '.join(argv)}"), argv
        if argv == ["study", "run"]:  # every option of the study (it was a script before)
            for option in ("--study-dir", "--shared", "--presets", "--seeds", "--jobs", "--abr-steps", "--cc-steps",
                           "--no-real-traces", "--no-curves", "--curve-points", "--tiny", "--table-only", "--list",
                           "--restore", "--curves-tag", "--publish"):
                assert option in out, option
        if argv == ["models", "ship"]:
            for option in ("--shared", "--only", "--jobs", "--abr-steps", "--cc-steps", "--force", "--reevaluate",
                           "--table-only", "--from-run", "--variant", "--dry-run"):
                assert option in out, option
    assert genet_main(["study"]) == 2 and "per-trace" in capsys.readouterr().out  # the group prints its help


def test_study_list_prints_every_preset(capsys):
    assert run_study("--list") == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == list(study_presets.presets())


def _planned() -> dict[str, list[str]]:
    """`genet models ship --dry-run`: {use_case/name: [training command, export, evaluations]}."""
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert genet_main(["models", "ship", "--dry-run"]) == 0
    plan: dict[str, list[str]] = {}
    key = ""
    for line in buf.getvalue().splitlines():
        if line.startswith("  "):
            plan[key].append(line.strip())
        else:
            key, cmd = line.split(": ", 1)
            plan[key] = [cmd]
    return plan


def test_cc_presets_of_the_earlier_study_name_genets_rules():
    """The real sender's rules are `genet train cc`'s default: every CC preset trained before keeps training on
    Genet's (GENET_SENDER is GENET_RULES spelled as options), the faithful ones on the real sender's."""
    parser = build_parser()
    flags = vars(parser.parse_args(["train", "cc", *study_presets.GENET_SENDER]))
    assert {k: flags[k] for k in GENET_RULES} == GENET_RULES
    every = study_presets.presets()
    agents = [n for n in study_presets.AGENTS_MATRIX if n.startswith("cc-")]
    assert len(agents) == 8
    for name in ("cc-udr3", "cc-genet", "cc-genet-ack", "cc-genet-ensemble", "cc-genet-w0.1", "cc-cl1", "cc-cl3",
                 *agents):
        opts = vars(parser.parse_args(["train", "cc", *every[name].options]))
        assert (opts["startup"], opts["interval_serialisation"]) == ("aurora", "link"), name
    for name in ("cc-udr3-faithful", "cc-genet-faithful", "cc-genet-faithful-positive",
                 "cc-genet-faithful-positive-w0.1"):
        opts = vars(parser.parse_args(["train", "cc", *every[name].options]))
        assert (opts["startup"], opts["interval_serialisation"]) == ("window", "measured"), name
    positive, positive_w01 = (vars(parser.parse_args(["train", "cc", *every[n].options]))
                              for n in ("cc-genet-faithful-positive", "cc-genet-faithful-positive-w0.1"))
    assert positive_w01["promote_weight"] == 0.1 != positive["promote_weight"]
    assert {k: v for k, v in positive_w01.items() if k != "promote_weight"} == \
        {k: v for k, v in positive.items() if k != "promote_weight"}


def test_models_ship_dry_run_trains_each_shipped_model_as_its_metadata_records(tmp_path):
    """`genet models ship --dry-run` lists every shipped model (nothing runs or is written), and each
    model's training command is the one its .json records (parsed by `genet`'s own parser), except where the
    recorded run lived (--out; abr/genet and cc/genet were shipped from study runs with --from-run), the
    path of the paper-dimensions space (the same file: test_presets_name_the_variants_of_the_issue),
    checkpoint spacing and the progress bar."""
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "models").rglob("*") if p.is_file()}
    plan = _planned()
    assert set(plan) == {f"{p.parent.name}/{p.stem}" for p in (ROOT / "models").glob("*/*.onnx")}
    assert list(plan) == list(ship.ORDER)  # Genet vs UDR-RL3 first: a cut-short shipping run answers them
    parser = build_parser()
    allowed = {"out", "space", "checkpoint_every", "no_progress"}
    for key, (train, export, *evals) in plan.items():
        meta = json.loads((ROOT / "models" / f"{key}.json").read_text())
        planned = vars(parser.parse_args(shlex.split(train)[1:]))
        recorded = vars(parser.parse_args(shlex.split(meta["command"])[1:]))
        if key.startswith("cc/"):  # a model trained before the real sender's rules became the default: Genet's
            for k, v in GENET_RULES.items():
                recorded[k] = v if recorded.get(k) is None else recorded[k]
        differ = {k for k in planned.keys() | recorded.keys() if planned.get(k) != recorded.get(k)}
        assert differ <= allowed, (key, {k: (planned.get(k), recorded.get(k)) for k in differ - allowed})
        if planned["space"] is not None:
            assert planned["space"] == "traces/spaces/abr-paperdims.json"
        assert export == f"genet export runs/ship/{key.replace('/', '-')} -o models/{key}.onnx"
        assert evals == meta["evaluation_commands"]  # the same sets, policies and options as recorded
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "models").rglob("*") if p.is_file()} == before
    # --only picks models; a name that is not a shipped model is one clear error naming the models
    assert genet_main(["models", "ship", "--dry-run", "--only", "cc/udr3"]) == 0
    with pytest.raises(BadInputError, match="no shipped model abr/nope"):
        from app.study.cli import cmd_models_ship
        cmd_models_ship(build_parser().parse_args(["models", "ship", "--dry-run", "--only", "abr/nope"]))


def test_ship_models_from_run_ships_a_finished_run_with_its_own_command(tmp_path, monkeypatch, capsys):
    """`genet models ship --only cc/genet --from-run DIR` ships DIR as it is: export from its model,
    metadata with DIR's command, seed and the variant; no training. The evaluation (tested with the shipped
    models) is replaced by a recorder here: the repository root is a temporary copy of models/."""
    run = tmp_path / "run"
    assert genet_main(["train", "cc", "--method", "udr", "--steps", "200", "--steps-per-update", "100",
                       "--minibatch", "50", "--epochs", "1", "--seed", "3", "--out", str(run), "--no-progress"]) == 0
    root = tmp_path / "repo"
    (root / "models" / "cc").mkdir(parents=True)
    monkeypatch.setattr(ship, "ROOT", root)
    calls = []

    def fake_evaluate(s, onnx, genet, log):
        calls.append(onnx)
        return {"pantheon-ethernet": {"model": 1.0, "bbr": 2.0}}, ["genet eval cc --traces x --policy y"]
    monkeypatch.setattr(ship, "evaluate", fake_evaluate)
    assert genet_main(["models", "ship", "--from-run", str(run)]) == 1  # needs exactly one --only
    assert "--from-run ships one model" in capsys.readouterr().err
    assert genet_main(["models", "ship", "--only", "cc/genet", "--from-run", str(run),
                       "--variant", "tiny test run"]) == 0
    meta = json.loads((root / "models" / "cc" / "genet.json").read_text())
    assert meta["seed"] == 3 and "--seed 3" in meta["command"] and f"--out {run}" in meta["command"]
    assert meta["variant"] == "tiny test run" and meta["steps"] == 200
    assert (root / "models" / "cc" / "genet.onnx").is_file() and calls == [root / "models" / "cc" / "genet.onnx"]
    assert "| genet | tiny test run, s3 | 200 |" in (root / "models" / "RESULTS.md").read_text()
    # an unfinished or wrong-use-case run fails clearly (reported per model; the command exits 1)
    with pytest.raises(BadInputError, match="no model.pt"):
        ship.ship(ship.specs(Path("."), 1, 1)[0], ship.ShipOptions(shared=tmp_path, from_run=tmp_path))
    with pytest.raises(BadInputError, match="a cc run, not abr"):
        ship.ship(ship.specs(Path("."), 1, 1)[0], ship.ShipOptions(shared=tmp_path, from_run=run))
    assert genet_main(["models", "ship", "--only", "abr/genet", "--from-run", str(run)]) == 1
    assert "abr/genet: FAILED" in capsys.readouterr().err


def test_each_shipped_abr_and_cc_model_is_its_variants_median_seed_and_says_so():
    """Issue 30: a shipped ABR or CC model is the median seed of its study variant (by the study's own records,
    app.study.compare.median_seed), not its best; its metadata names the variant and why, its evaluation is
    the variant's record of that seed (the same training command: the same figures) or, where a retrained run
    did not repeat it, says so with the record's figures; the committed table says it."""
    from app.study.compare import load_records, median_seed
    records = load_records(ROOT / "models" / "study")
    table = (ROOT / "models" / "RESULTS.md").read_text()
    planned = {s.key: s for s in ship.specs(Path("."), 1, 1)}
    for path in sorted((ROOT / "models").glob("[ac][bc]*/*.json")):
        key = f"{path.parent.name}/{path.stem}"
        meta = json.loads(path.read_text())
        variant = meta.get("variant")
        assert variant == planned[key].variant, (key, variant)
        assert meta["seed"] == planned[key].seed == median_seed(records, variant), key
        assert "median seed" in meta["selection"] and meta["selection"] in table, key
        record = next(r for r in records if r["preset"] == variant and r["seed"] == meta["seed"])
        same = [figures["model"] == pytest.approx(record["evaluation"][set_name]["model"], abs=0.02)
                for set_name, figures in meta["evaluation"].items()]
        assert meta["reproduces_study_record"] is planned[key].reproduces_study_record, key
        if meta["reproduces_study_record"]:
            assert all(same), key
        else:  # retrained and different: it says so, with the record's figures
            assert not all(same) and "differ from the study's record" in meta["selection"], key
            assert all(f"{record['evaluation'][s]['model']:.2f}" in meta["selection"] for s in meta["evaluation"])
        assert f"| {path.stem} | {variant}, s{meta['seed']} |" in table


def test_models_ship_table_only_rebuilds_the_committed_results_table(tmp_path, monkeypatch, capsys):
    """`genet models ship --table-only` writes models/RESULTS.md from the .json files: the committed table is
    what it writes (on a copy of models/)."""
    shutil.copytree(ROOT / "models", tmp_path / "models")
    monkeypatch.setattr(ship, "ROOT", tmp_path)
    (tmp_path / "models" / "RESULTS.md").unlink()
    assert genet_main(["models", "ship", "--table-only"]) == 0
    assert (tmp_path / "models" / "RESULTS.md").read_text() == (ROOT / "models" / "RESULTS.md").read_text()


def test_abr_top_rung_prints_each_policys_bitrate_on_constant_links(capsys):
    assert genet_main(["study", "top-rung", "--policy", "mpc,bba", "--bandwidth-mbps", "0.5,60"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    # on 60 Mbit/s RobustMPC streams the top rung (4.3 Mbit/s) after its first chunk; on 0.5 Mbit/s it cannot
    assert 4.1 < float(rows["mpc"][-1]) <= 4.3 and float(rows["mpc"][3]) < 1.0
    assert genet_main(["study", "top-rung", "--bandwidth-mbps", "0"]) == 1
    assert "--bandwidth-mbps needs positive values" in capsys.readouterr().err


def test_abr_per_trace_groups_traces_by_mean_bandwidth(tmp_path, capsys):
    import numpy as np

    from traces import Trace
    from traces.io import write_trace
    d = tmp_path / "set"
    d.mkdir()
    # two slow constant links and one fast one; a trace alternating 1 s at 1 and 3 s at 5 Mbit/s has mean 4
    for name, bw in (("slow_a", 0.4), ("slow_b", 0.45), ("fast", 6.0)):
        write_trace(Trace(np.arange(0.0, 300.0), np.full(300, bw), name=name), d / name)
    t = np.arange(0.0, 400.0)
    alt = Trace(t, np.where(t % 4 == 0, 1.0, 5.0), name="alt")
    assert abs(alt.mean_bandwidth_mbps - 4.0) < 0.02
    write_trace(alt, d / "alt")

    def per_trace(*argv: str) -> int:
        return genet_main(["study", "per-trace", *argv])
    assert per_trace("--policy", "mpc,bba", "--traces", str(d), "--bins-mbps", "0,1,5") == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in
            (["0-1"], ["1-5"], [">=5"], ["all"])}
    assert rows["0-1"][1] == "2" and rows["1-5"][1] == "1" and rows[">=5"][1] == "1" and rows["all"][1] == "4"
    mpc, bba, diff = (float(rows["all"][k]) for k in (2, 3, 4))
    assert abs((mpc - bba) - diff) < 0.02  # the difference column is the first policy's minus the second's
    w, t_, l_ = (int(x) for x in rows["all"][5].split("/"))
    assert w + t_ + l_ == 4
    for argv, message in ((["--policy", "mpc"], "--policy needs at least two policies"),
                          (["--bins-mbps", "2,1"], "--bins-mbps must be increasing"),
                          (["--bins-mbps", "0,fast"], "--bins-mbps takes comma-separated numbers"),
                          (["--policy", "mpc,bba", "--traces", str(tmp_path / "missing")], str(tmp_path / "missing"))):
        assert per_trace(*argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("genet: error: ") and message in err and len(err.splitlines()) == 1, err


def test_the_study_and_ship_commands_start_without_heavy_packages():
    """`genet --help` builds every parser, these included: listing presets and planning the shipping load none of
    torch, numba, gymnasium, matplotlib (they load when a study or a shipping runs)."""
    from test_runtime_imports import _loaded_heavy
    code = ("import contextlib, io\n"
            "from app.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['study', 'run', '--list']) == 0\n"
            "    assert main(['models', 'ship', '--dry-run']) == 0\n"
            "import app.study.runner, app.study.ship, app.study.table, app.study.curves\n"
            "import app.study.per_trace, app.study.top_rung, app.study.cc_startup")
    assert _loaded_heavy(code) == []
