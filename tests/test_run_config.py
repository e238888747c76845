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
