"""`genet run` config: the schema is the one definition (docs page generated from it), validation names the key
and the allowed values, and the shipped examples validate."""

from __future__ import annotations

import tomllib

import pytest

from conftest import REPO
from foundation.errors import BadInputError
from app.run import schema


def check(text: str, tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return schema.load(p)[0]


MINIMAL = """
[traces.t]
gen = "cc"
n = 2
[cc]
[cc.simulate]
traces = ["t"]
"""


def test_docs_page_is_the_schema_rendering():
    page = (REPO / "docs" / "run-config.md").read_text()
    assert page.strip() == schema.render_markdown().strip(), \
        "docs/run-config.md is stale: python -m app.run.schema > docs/run-config.md"
    for key in ("delay_ms", "steps", "use", "repetitions", "inventory", "from"):
        assert f"| `{key}` |" in page


def test_help_points_at_the_schema_page(capsys):
    from app.cli import main
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "docs/run-config.md" in capsys.readouterr().out


def test_defaults_are_filled(tmp_path):
    cfg = check(MINIMAL, tmp_path)
    assert cfg.run.seed == 0 and cfg.abr is None
    assert cfg.cc.baselines == ("bbr", "cubic")
    assert cfg.cc.emulate.backend == "netns" and cfg.cc.deploy.enabled is False
    assert cfg.traces["t"].range == "rl3"


@pytest.mark.parametrize("text, needles", [
    (MINIMAL + "[cc.emulate]\ndelay_ms = 'x'\n", ["[cc.emulate] delay_ms", "a number", "ms"]),
    (MINIMAL + "[cc.emulate]\nbackend = 'ns3'\n", ["[cc.emulate] backend", "'netns'", "'mahimahi'", "'mininet'"]),
    (MINIMAL + "[cc.emulate]\ndelay = 4\n", ["[cc.emulate]", "unknown key 'delay'", "delay_ms"]),
    (MINIMAL + "[cc.policies.p]\nmethod = 'ppo'\n", ["[cc.policies.p] method", "'udr'", "'genet'", "'cl3'"]),
    (MINIMAL + "[cc.policies.p]\nmethod = 'udr'\nsteps = 0\n", ["[cc.policies.p] steps", ">= 1"]),
    (MINIMAL + "[cc.policies.p]\n", ["[cc.policies.p]", "either use", "or method"]),
    (MINIMAL.replace('traces = ["t"]', 'traces = ["nope"]'), ["[cc.simulate] traces", "'nope'", "defined sets: t"]),
    (MINIMAL + "[cc.policies.p]\nuse = 'no/such/model.onnx'\n", ["[cc.policies.p] use", "does not exist"]),
    ("[traces.t]\ngen = 'cc'\npath = 'x'\n[cc]\n", ["[traces.t]", "exactly one of dataset, gen, fetch, path, from"]),
    ("[traces.t]\ngen = 'cc'\n", ["no use case"]),
    (MINIMAL + "[cc.deploy]\nschemes = ['vegas2']\n", ["[cc.deploy] schemes", "'vegas2'", "bbr, cubic"]),
    (MINIMAL.replace("[cc]", "[cc]\nbaselines = ['reno']"), ["[cc] baselines", "'reno'"]),
    (MINIMAL + "[run]\nseed = -1\n", ["[run] seed", ">= 0"]),
    (MINIMAL + "[traces.f]\nfetch = 'fcc-test'\n", ["[traces.f] fetch", "'fcc-test'", "fcc-val", "norway-val"]),
])
def test_errors_name_the_key_and_what_is_allowed(tmp_path, text, needles):
    with pytest.raises(schema.ConfigError) as info:
        check(text, tmp_path)
    assert isinstance(info.value, BadInputError)
    msg = str(info.value)
    assert str(tmp_path / "c.toml") in msg
    for n in needles:
        assert n in msg, (n, msg)


def test_not_toml_names_the_file(tmp_path):
    with pytest.raises(schema.ConfigError, match="not valid TOML"):
        check("[run\nname=", tmp_path)


def test_cli_reports_a_bad_config_in_one_line_before_anything_runs(tmp_path, capsys):
    from app.cli import main
    p = tmp_path / "c.toml"
    p.write_text(MINIMAL + "[cc.emulate]\njobs = 0\n")
    assert main(["run", str(p), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[cc.emulate] jobs" in err
    assert not (tmp_path / "out").exists()


def test_stage_flags_are_checked(tmp_path, capsys):
    from app.cli import main
    p = tmp_path / "c.toml"
    p.write_text(MINIMAL)
    assert main(["run", str(p), "--only", "simulation", "--out", str(tmp_path / "o")]) == 1
    assert "traces, train, export, simulate, emulate, deploy, report" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["quickstart", "paper", "remote"])
def test_examples_validate(name, monkeypatch):
    monkeypatch.chdir(REPO)  # no ../shared needed: the examples name their public sets (`dataset`)
    path = REPO / "examples" / f"{name}.toml"
    tomllib.loads(path.read_text())
    cfg, _ = schema.load(path)
    assert cfg.abr and cfg.cc
    if name == "remote":
        assert cfg.deploy.inventory


LB = """
[lb]
[lb.simulate]
n = 3
"""


def test_lb_table_defaults_and_plan(tmp_path):
    """`[lb]` alone is a config: its defaults, and the plan's `genet eval lb` / `genet emulate lb` commands."""
    from app.run import plan
    cfg = check(LB + "[lb.emulate]\njobs = 10\nservice_rates = '1, 2'\n[lb.deploy]\nrepetitions = 1\n", tmp_path)
    assert cfg.abr is None and cfg.cc is None
    assert cfg.lb.baselines == ("least_work", "round_robin") and cfg.lb.simulate.configs == ("default",)
    assert cfg.lb.emulate.backend == "netns" and cfg.lb.deploy.enabled and cfg.lb.deploy.jobs == 200
    p = plan.build(cfg, tmp_path / "run")
    (sim,) = p["simulate"]
    assert sim.name == "lb-default" and sim.steps[0][:2] == ["eval", "lb"]
    assert sim.steps[0][sim.steps[0].index("-n") + 1] == "3"
    (emu,) = p["emulate"]
    argv = emu.steps[0]
    assert argv[:2] == ["emulate", "lb"] and argv[argv.index("--rates") + 1] == "1,2"
    assert argv[argv.index("--num-jobs") + 1] == "10" and argv[argv.index("--policy") + 1] == "least_work,round_robin"
    (dep,) = p["deploy"]
    assert dep.name == "lb" and any(s[:2] == ["deploy", "run"] for s in dep.steps if isinstance(s, list))
    assert check(LB, tmp_path).lb.deploy.enabled is False  # deployed only with a deploy table


def test_lb_campaign_written_by_the_plan_is_one_deploy_accepts(tmp_path):
    from app.run import plan
    from deploy.config import load_campaign
    cfg = check(LB + "[lb.deploy]\nrepetitions = 2\njobs = 30\njob_interval_ms = 20\nworkload_seed = 5\n", tmp_path)
    (dep,) = plan.build(cfg, tmp_path / "run")["deploy"]
    dep.folder.mkdir(parents=True)
    dep.steps[0](dep)  # write the campaign
    c = load_campaign(dep.folder / "campaign.toml")
    assert c.use_case == "lb" and [s.name for s in c.schemes] == ["least_work", "round_robin"]
    assert (c.repetitions, c.jobs, c.job_interval_ms, c.workload_seed, c.service_rates) == (2, 30, 20.0, 5,
                                                                                          (0.5, 1.0, 2.0))


def test_lb_baselines_are_the_use_cases():
    from foundation.usecase import use_case
    assert schema.LB_BASELINES == use_case("lb").baselines


@pytest.mark.parametrize("text, needles", [
    (LB + "[lb.policies.p]\n", ["[lb.policies.p]", "either use", "or method (one of udr, genet, cl1, cl2, cl3)",
                                 "neither"]),
    (LB + "[lb.policies.p]\nmethod = 'udr'\nuse = 'x.onnx'\n", ["[lb.policies.p]", "not both"]),
    (LB + "[lb.policies.p]\nmethod = 'cl4'\n", ["[lb.policies.p] method", "'cl4'",
                                                 "'udr', 'genet', 'cl1', 'cl2', 'cl3'"]),
    (LB + "[lb.policies.p]\nmethod = 'genet'\nbaseline = 'bbr'\n", ["[lb.policies.p] baseline", "'bbr'",
                                                                     "'least_work'"]),
    (LB + "[lb.policies.p]\nmethod = 'udr'\nreal_traces = ['t']\n", ["[lb.policies.p]", "unknown key 'real_traces'"]),
    (LB + "[lb.policies.least_work]\nuse = 'x.onnx'\n", ["[lb.policies.least_work]", "baseline's name"]),
    (LB.replace("[lb]", "[lb]\nbaselines = ['bba']"), ["[lb] baselines", "'bba'", "'least_work'"]),
    (LB.replace("n = 3", "configs = ['rl9']"), ["[lb.simulate] configs", "'rl9'", "'rl1'"]),
    (LB + "[lb.emulate]\nservice_rates = '0.5,0'\n", ["[lb.emulate] service_rates", "finite rates > 0"]),
    (LB + "[lb.emulate]\nservice_rates = 'fast'\n", ["[lb.emulate] service_rates", "comma-separated"]),
    (LB + "[lb.emulate]\nbackend = 'mahimahi'\n", ["[lb.emulate] backend", "'netns'", "'loopback'"]),
    (LB + "[lb.deploy]\nschemes = ['jsq']\n", ["[lb.deploy] schemes", "'jsq'", "least_work, round_robin"]),
    (LB.replace("n = 3", "configs = ['rl1', 'rl1']"), ["[lb.simulate] configs", "at most once"]),
])
def test_lb_errors_name_the_key_and_what_is_allowed(tmp_path, text, needles):
    with pytest.raises(schema.ConfigError) as info:
        check(text, tmp_path)
    msg = str(info.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_lb_example_validates(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg, _ = schema.load(REPO / "examples" / "lb.toml")
    assert cfg.lb and cfg.abr is None and cfg.cc is None and not cfg.lb.deploy.enabled
    assert {n: (p.method, bool(p.use)) for n, p in cfg.lb.policies.items()} == {"udr": ("udr", False),
                                                                                "shipped": ("", True)}


def test_a_bad_lb_training_method_is_one_line_naming_the_key(tmp_path):
    """`[lb.policies.NAME] method` takes what `genet train lb --method` takes: all five methods (cl2 and cl3
    against LB's stand-in optimum, the no-wait bound); unknown names are refused before anything runs, in one line
    naming the file and the key."""
    from genet.train_cli import TRAIN_USE_CASES
    assert schema.train_methods("lb") == ("udr", "genet", "cl1", "cl2", "cl3")
    assert not TRAIN_USE_CASES["lb"].unavailable
    for ok in ("cl2", "cl3"):
        check(LB + f"[lb.policies.mine]\nmethod = '{ok}'\nsteps = 100\n", tmp_path)
    for bad in ("cl4", "ppo"):
        with pytest.raises(schema.ConfigError) as info:
            check(LB + f"[lb.policies.mine]\nmethod = '{bad}'\nsteps = 100\n", tmp_path)
        msg = str(info.value)
        assert isinstance(info.value, BadInputError) and "\n" not in msg
        assert msg.startswith(f"{tmp_path / 'c.toml'}: [lb.policies.mine] method: '{bad}'"), msg
        assert "allowed: 'udr', 'genet', 'cl1', 'cl2', 'cl3'" in msg, msg


def test_an_lb_policy_with_a_method_is_trained_and_exported_by_the_plan(tmp_path):
    """`[lb.policies.NAME] method = ...` plans `genet train lb` (resumable with --resume) and `genet export`, and the
    LB stages use the exported model, as for ABR and CC."""
    from app.run import plan
    cfg = check(LB + "[lb.policies.mine]\nmethod = 'genet'\nrange = 'rl1'\nsteps = 4096\nrounds = 1\n"
                     "baseline = 'least_work,sed'\nn_envs = 4\n[lb.emulate]\njobs = 10\n[lb.deploy]\n", tmp_path)
    p = plan.build(cfg, tmp_path / "run")
    (tr,) = p["train"]
    argv = tr.steps[0]
    assert tr.id == "train/lb-mine" and argv[:4] == ["train", "lb", "--method", "genet"]
    assert [argv[argv.index(k) + 1] for k in ("--range", "--steps", "--rounds", "--baseline", "--n-envs")] == \
        ["rl1", "4096", "1", "least_work,sed", "4"]
    assert not any(a.startswith("--real") for a in argv)
    (tr.folder / "run.json").parent.mkdir(parents=True)
    (tr.folder / "run.json").write_text("{}")
    assert tr.resume(tr) == [argv + ["--resume"]]  # a killed training continues
    (ex,) = p["export"]
    onnx = str(tmp_path / "run" / "export" / "lb-mine" / "mine.onnx")
    assert ex.deps == [tr.id] and ex.steps == [["export", str(tr.folder), "-o", onnx]]
    for stage in ("simulate", "emulate", "deploy"):
        (item,) = p[stage]
        assert ex.id in item.deps, stage
    pols = p["simulate"][0].steps[0]
    assert pols[pols.index("--policy") + 1] == f"{onnx},least_work,round_robin"
    assert any(onnx in str(s) for s in p["emulate"][0].steps[0])


CLUSTERED = MINIMAL + """
[cc.policies.u]
method = "udr"
steps = 1000
"""


def test_a_cluster_address_sends_the_steps_that_fan_out_there_and_changes_no_input_hash(tmp_path):
    from app.run import plan
    from app.run.engine import Runner
    plain = check(CLUSTERED, tmp_path)
    clustered = check("[cluster]\naddress = \"127.0.0.1:6379\"\n" + CLUSTERED, tmp_path)
    assert plain.cluster.address == "" and clustered.cluster.address == "127.0.0.1:6379"
    p0, p1 = plan.build(plain, tmp_path / "run"), plan.build(clustered, tmp_path / "run")
    (train,), (sim,) = p1["train"], p1["simulate"]
    assert train.steps[0][-2:] == ["--ray-address", "127.0.0.1:6379"] and sim.steps[0][-2:] == ["--ray-address",
                                                                                               "127.0.0.1:6379"]
    assert not any("--ray-address" in s for i in p0["train"] + p0["simulate"] for s in i.steps)
    r0, r1 = Runner(p0, tmp_path / "run"), Runner(p1, tmp_path / "run")
    for stage in ("traces", "train", "export", "simulate"):
        for a, b in zip(p0[stage], p1[stage]):
            assert r0.input_hash(a) == r1.input_hash(b)  # where a step runs is not what it computes
    with pytest.raises(BadInputError, match=r"\[cluster\] address.*HOST:PORT or auto"):
        check("[cluster]\naddress = \"no port\"\n" + CLUSTERED, tmp_path)


def test_a_from_set_spreads_its_picks_over_the_source_s_folders(tmp_path):
    """`from` + `pick = "spread"` (the default): in turn from each subfolder (a Pantheon measurement path), so 4
    traces of pantheon-cellular are 4 paths, not 4 runs of the first one; `first` keeps the first n by path."""
    from app.run.plan import spread_pick
    files = [tmp_path / d / f"run{i}.json" for d in ("a", "b", "c") for i in range(3)]
    assert spread_pick(files, 4) == [files[0], files[3], files[6], files[1]]
    assert spread_pick(files, 20) == [files[k] for k in (0, 3, 6, 1, 4, 7, 2, 5, 8)]
    flat = [tmp_path / f"t{i}" for i in range(5)]
    assert spread_pick(flat, 3) == flat[:3]
    from app.run.schema import load
    (tmp_path / "src").mkdir()
    (tmp_path / "x.toml").write_text('[run]\nname = "x"\n[traces.src]\npath = "src"\n'
                                     '[traces.few]\nfrom = "src"\nn = 2\n[traces.head]\nfrom = "src"\nn = 2\n'
                                     'pick = "first"\n[cc]\n[cc.simulate]\ntraces = ["few"]\n')
    cfg, _ = load(tmp_path / "x.toml")
    assert cfg.traces["few"].pick == "spread" and cfg.traces["head"].pick == "first"


def test_cc_emulate_clock_reaches_genet_emulate_cc(tmp_path):
    """`[cc.emulate] clock = "precise"` runs `genet emulate cc --clock precise`; the default (Mahimahi's) adds
    nothing to the command; anything else is refused naming the allowed values."""
    from app.run import plan
    (tmp_path / "t").mkdir()
    base = '[traces.t]\npath = "t"\n[cc]\nbaselines = ["cubic"]\n[cc.simulate]\nenabled = false\n[cc.emulate]\ntraces = ["t"]\n'
    argv = plan.build(check(base + 'clock = "precise"\n', tmp_path), tmp_path / "run")["emulate"][0].steps[0]
    assert argv[:2] == ["emulate", "cc"] and argv[argv.index("--clock") + 1] == "precise"
    assert "--clock" not in plan.build(check(base, tmp_path), tmp_path / "r2")["emulate"][0].steps[0]
    with pytest.raises(schema.ConfigError, match="clock"):
        check(base + 'clock = "us"\n', tmp_path)


def test_a_cluster_address_reaches_both_emulate_steps_and_no_abr_simulate_step(tmp_path):
    """`genet emulate abr` runs its sessions on the cluster's nodes as `genet emulate cc` does its links; `genet eval
    abr` has no `--ray-address` and gets none."""
    from app.run import plan
    text = ("[cluster]\naddress = \"127.0.0.1:6379\"\n[traces.a]\ngen = \"abr\"\nn = 2\n[traces.c]\ngen = \"cc\"\n"
            "n = 2\n[abr]\n[abr.simulate]\ntraces = [\"a\"]\n[abr.emulate]\ntraces = [\"a\"]\njobs = 2\n"
            "[cc]\n[cc.emulate]\ntraces = [\"c\"]\n")
    p = plan.build(check(text, tmp_path), tmp_path / "run")
    emulate = {i.name: i.steps[0] for i in p["emulate"]}
    assert set(emulate) == {"abr-a", "cc-c"}
    for argv in emulate.values():
        assert argv[-2:] == ["--ray-address", "127.0.0.1:6379"]
    assert emulate["abr-a"][emulate["abr-a"].index("--jobs") + 1] == "2"  # sessions at once on each node
    (sim,) = p["simulate"]
    assert sim.name == "abr-a" and "--ray-address" not in sim.steps[0]


# ---- a trained policy's agent (issue 28: `agent`, `teacher`, `pool`, `target_return`) ------------------------

AGENTED = """
[traces.a]
gen = "abr"
n = 2
[traces.c]
gen = "cc"
n = 2
[abr]
[abr.simulate]
traces = ["a"]
[cc]
[cc.simulate]
traces = ["c"]
"""


@pytest.mark.parametrize("text, needles", [
    ("[abr.policies.p]\nmethod = 'udr'\nagent = 'sarsa'\n",
     ["[abr.policies.p] agent 'sarsa': unknown agent; known: ppo, a3c, dqn, bc, dagger, dt"]),
    ("[cc.policies.p]\nmethod = 'udr'\nagent = 'dqn'\n",
     ["[cc.policies.p] agent 'dqn': this agent does not train cc policies; agents for cc: ppo, a3c, bc, dagger"]),
    ("[cc.policies.p]\nmethod = 'udr'\nagent = 'dt'\n", ["[cc.policies.p] agent 'dt'", "agents for cc"]),
    ("[abr.policies.p]\nmethod = 'udr'\nteacher = 'mpc'\n",
     ["[abr.policies.p] teacher", "only the agents with a teacher", "bc, dagger", "not agent = 'ppo'"]),
    ("[abr.policies.p]\nmethod = 'udr'\nagent = 'dqn'\nteacher = 'mpc'\n", ["[abr.policies.p] teacher", "'dqn'"]),
    ("[abr.policies.p]\nmethod = 'udr'\nagent = 'bc'\nteacher = 'cubic'\n",
     ["[abr.policies.p] teacher: 'cubic' is not a teacher of abr policies; choose one of bba, mpc, optimal"]),
    ("[cc.policies.p]\nmethod = 'udr'\nagent = 'dagger'\nteacher = 'mpc'\n",
     ["[cc.policies.p] teacher: 'mpc'", "bbr, cubic"]),
    ("[abr.policies.p]\nmethod = 'udr'\nagent = 'bc'\npool = ['x.npz']\n",
     ["[abr.policies.p] pool", "agent = \"dt\" only", "'bc'"]),
    ("[abr.policies.p]\nmethod = 'udr'\ntarget_return = 10.0\n", ["[abr.policies.p] target_return", "\"dt\" only"]),
    ("[abr.policies.p]\nmethod = 'udr'\nagent = 'dt'\n", ["[abr.policies.p] pool", "experience pool"]),
    ("[abr.policies.p]\nmethod = 'udr'\nagent = 'dt'\npool = ['no-such.npz']\n",
     ["[abr.policies.p] pool", "'no-such.npz' does not exist"]),
    ("[abr.policies.p]\nmethod = 'genet'\nagent = 'dagger'\n",
     ["[abr.policies.p] method", "agent = 'dagger'", "\"udr\"", "not 'genet'"]),
    ("[abr.policies.p]\nuse = 'm.onnx'\nagent = 'bc'\n", ["[abr.policies.p] agent", "a key of a trained policy"]),
    ("[cc.policies.p]\nmethod = 'udr'\npool = ['x.npz']\n", ["[cc.policies.p]", "unknown key 'pool'"]),
    ("[lb]\n[lb.policies.p]\nmethod = 'udr'\nagent = 'bc'\n", ["[lb.policies.p]", "unknown key 'agent'"]),
])
def test_a_policy_s_agent_keys_are_checked_in_one_line_naming_the_key(tmp_path, text, needles):
    """The agent trains the use case (the agent registry's own error, listing the agents that do), a teacher only
    with bc/dagger and one of the use case's teachers, pool and target_return only with dt (pool needed by it,
    its files existing), bc/dagger/dt only with method udr, and none of the keys with `use`. LB, which only ppo
    trains, has no agent keys."""
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "x.npz").write_bytes(b"x")
    with pytest.raises(schema.ConfigError) as info:
        check(AGENTED + text, tmp_path)
    msg = str(info.value)
    assert isinstance(info.value, BadInputError) and "\n" not in msg
    assert msg.startswith(str(tmp_path / "c.toml") + ": "), msg
    for n in needles:
        assert n in msg, (n, msg)


def test_a_policy_s_agent_reaches_its_genet_train_command_and_steps_default_to_the_agent_s(tmp_path):
    """`agent`, `teacher`, `pool` (paths resolved against the config's folder) and `target_return` become `genet
    train`'s `--agent`, `--teacher`, `--pool`, `--target-return`, shown by the plan (`--dry-run` prints these
    commands); `steps` not given is the agent's `genet train` default; a teacher not given is the use case's default
    teacher; ppo's command has no agent option at all."""
    from app.run import plan
    from app.run.engine import step_text
    from genet.agents.registry import DEFAULT_STEPS, DEFAULT_TEACHERS
    (tmp_path / "pools").mkdir()
    for f in ("a.npz", "b.npz"):
        (tmp_path / "pools" / f).write_bytes(b"pool " + f.encode())
    cfg = check(AGENTED + "[abr.policies.bc]\nmethod = 'udr'\nagent = 'bc'\nteacher = 'bba'\n"
                          "[abr.policies.dt]\nmethod = 'udr'\nagent = 'dt'\npool = ['pools/a.npz', 'pools/b.npz']\n"
                          "target_return = 42.5\nsteps = 1000\n"
                          "[abr.policies.q]\nmethod = 'genet'\nagent = 'dqn'\n"
                          "[abr.policies.ppo]\nmethod = 'udr'\n"
                          "[cc.policies.dag]\nmethod = 'udr'\nagent = 'dagger'\n", tmp_path)
    assert cfg.abr.policies["bc"].steps == DEFAULT_STEPS["bc"] == 300_000
    assert cfg.abr.policies["q"].steps == DEFAULT_STEPS["dqn"] and cfg.abr.policies["ppo"].steps == 720_000
    assert cfg.cc.policies["dag"].teacher == DEFAULT_TEACHERS["cc"] == "cubic"
    assert cfg.abr.policies["ppo"].agent == "ppo" and cfg.abr.policies["ppo"].teacher == ""
    p = plan.build(cfg, tmp_path / "run")
    argv = {i.name: i.steps[0] for i in p["train"]}
    assert argv["abr-bc"][:6] == ["train", "abr", "--agent", "bc", "--teacher", "bba"]
    assert argv["abr-bc"][argv["abr-bc"].index("--steps") + 1] == "300000"
    dt = argv["abr-dt"]
    assert dt[dt.index("--agent") + 1] == "dt" and dt[dt.index("--target-return") + 1] == "42.5"
    assert dt[dt.index("--pool") + 1] == f"{tmp_path / 'pools' / 'a.npz'},{tmp_path / 'pools' / 'b.npz'}"
    assert "--teacher" not in dt and dt[dt.index("--steps") + 1] == "1000"
    assert argv["abr-q"][2:6] == ["--agent", "dqn", "--method", "genet"] and "--teacher" not in argv["abr-q"]
    assert argv["cc-dag"][2:6] == ["--agent", "dagger", "--teacher", "cubic"]
    assert not {"--agent", "--teacher", "--pool", "--target-return"} & set(argv["abr-ppo"])
    assert step_text(argv["abr-bc"]).startswith("genet train abr --agent bc --teacher bba --method udr")
    # the report labels the policy with its agent (ppo's label as before)
    from app.run.report import agent_label
    assert agent_label(cfg.abr.policies["bc"]) == "bc from bba, " and agent_label(cfg.abr.policies["dt"]) == "dt, "
    assert agent_label(cfg.abr.policies["ppo"]) == ""


def test_a_policy_s_agent_is_part_of_its_train_item_s_hash_and_ppo_s_default_changes_nothing(tmp_path):
    """Changing the agent (or its teacher, or a pool file's content) retrains: the train item's input hash changes.
    `agent = "ppo"` written out gives the hash the policy had without the key."""
    from app.run import plan
    from app.run.engine import Runner

    def train_hash(extra: str) -> str:
        cfg = check(AGENTED + "[abr.policies.p]\nmethod = 'udr'\nsteps = 2000\n" + extra, tmp_path)
        p = plan.build(cfg, tmp_path / "run")
        (item,) = p["train"]
        return Runner(p, tmp_path / "run").input_hash(item)

    (tmp_path / "pool.npz").write_bytes(b"one")
    plain = train_hash("")
    assert train_hash("agent = 'ppo'\n") == plain
    bc = train_hash("agent = 'bc'\n")
    assert len({plain, bc, train_hash("agent = 'bc'\nteacher = 'bba'\n"), train_hash("agent = 'dagger'\n")}) == 4
    assert train_hash("agent = 'bc'\nteacher = 'mpc'\n") == bc  # the default teacher, written out
    dt = train_hash("agent = 'dt'\npool = ['pool.npz']\n")
    assert dt != plain and train_hash("agent = 'dt'\npool = ['pool.npz']\ntarget_return = 3.0\n") != dt
    (tmp_path / "pool.npz").write_bytes(b"two")  # the same path, another pool
    assert train_hash("agent = 'dt'\npool = ['pool.npz']\n") != dt


#: Input hashes of examples/quickstart.toml's train and export items (and of the report's config), computed on the
#: plan before the agent keys existed (commit d5254a6): the runs of configs without the keys stay current.
QUICKSTART_HASHES = {
    "train/abr-genet": "6995f67f5636be72e1e779817e055e583fd1e32ac8170bf37752632edee0f481",
    "train/abr-udr": "ab174daa85997d0fa1495e9261b0430ea8c483da59be1299e187d9b393534840",
    "train/cc-genet": "828d9088da90f9d09fa6a9d4593ae00fb76a0544fadd16466b55dc53d167e2a6",
    "train/cc-udr": "da3def63963af3eff5aa9d07d25cef67c705fbd612d80c96850b41d564c93a06",
    "export/abr-genet": "fbd358cfeba27f50c19646fc7f6e90340219f8f22e0d18694102d5df98e07ab7",
    "export/abr-udr": "5aceaec77f2f94d299555a730929a928c1efc971839ed02c0ddca02661f9a6b8",
    "export/cc-genet": "3f5dc00c0f2f5ac21d1e31931d914c54d1bad79f5f3218f5608519665773b0e5",
    "export/cc-udr": "e46fd814bb788043bdc5ec404fe6a2c32eb3184710cd6f5dec56d13b646734fa",
}


def test_the_quickstart_s_training_hashes_are_those_before_the_agent_keys(monkeypatch, tmp_path):
    from app.run import plan
    from app.run.engine import Runner
    monkeypatch.chdir(REPO)
    cfg, _ = schema.load(REPO / "examples" / "quickstart.toml")
    p = plan.build(cfg, tmp_path / "run")
    runner = Runner(p, tmp_path / "run")
    got = {i.id: runner.input_hash(i) for s in ("train", "export") for i in p[s] if i.id in QUICKSTART_HASHES}
    assert got == QUICKSTART_HASHES
    # with `agent = "ppo"` written into every trained policy: the same hashes, the same report config
    text = (REPO / "examples" / "quickstart.toml").read_text()
    for uc, name in (("abr", "genet"), ("abr", "udr"), ("cc", "genet"), ("cc", "udr")):
        text = text.replace(f"[{uc}.policies.{name}]", f"[{uc}.policies.{name}]\nagent = \"ppo\"")
    explicit = schema.validate(tomllib.loads(text), "quickstart+ppo", REPO / "examples")
    p2 = plan.build(explicit, tmp_path / "run")
    runner2 = Runner(p2, tmp_path / "run")
    assert {i.id: runner2.input_hash(i) for s in ("train", "export") for i in p2[s]
            if i.id in QUICKSTART_HASHES} == QUICKSTART_HASHES
    assert plan._what_it_computes(explicit) == plan._what_it_computes(cfg)


def test_a_cluster_address_is_not_given_to_an_agent_that_trains_in_its_own_process(tmp_path):
    """`genet train --agent bc` (and a3c, dqn, dagger, dt: the registry's ``workers = False``) refuses
    `--ray-address`; ppo's training still gets it."""
    from app.run import plan
    cfg = check("[cluster]\naddress = \"127.0.0.1:6379\"\n" + AGENTED
                + "[abr.policies.bc]\nmethod = 'udr'\nagent = 'bc'\n[abr.policies.ppo]\nmethod = 'udr'\n"
                  "[cc.policies.a]\nmethod = 'udr'\nagent = 'a3c'\n", tmp_path)
    argv = {i.name: i.steps[0] for i in plan.build(cfg, tmp_path / "run")["train"]}
    assert "--ray-address" not in argv["abr-bc"] and "--ray-address" not in argv["cc-a"]
    assert argv["abr-ppo"][-2:] == ["--ray-address", "127.0.0.1:6379"]
