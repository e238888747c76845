"""scripts/genet_study.py on a tiny budget: the matrix runs as `genet` subprocesses, a warm-started
preset starts from the same seed's UDR-RL3 model, results are per seed with mean ± std, a rerun
resumes (finished runs are not retrained), and the Figure-18 curves come from the checkpoints.
The validation sets are one trace of each real set (a copy in tmp_path)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _study_module():
    spec = importlib.util.spec_from_file_location("genet_study", ROOT / "scripts" / "genet_study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["genet_study"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_presets_name_the_variants_of_the_issue():
    mod = _study_module()
    names = set(mod.presets())
    assert set(mod.MATRIX) <= names
    assert {"abr-genet-paperdims", "abr-genet-w0.1", "abr-genet-ensemble", "abr-genet-warm", "cc-genet-warm",
            "abr-cl1", "cc-cl3"} <= names
    assert mod.presets()["abr-genet-warm"].warm_from == "abr-udr3"
    # the paper-dimensions space is committed (the shipped ABR Genet model trained on it) and is abr.json with
    # every other dimension fixed at its default
    committed = json.loads((ROOT / "traces/spaces/abr-paperdims.json").read_text())
    assert committed == mod.paperdims_space()
    from traces.config_space import load_space
    space = load_space(ROOT / "traces/spaces/abr-paperdims.json")
    free = {d.name for d in space.dimensions if d.bounds[0] < d.bounds[1]}
    assert free == set(mod.PAPER_ABR_DIMS)


def test_tiny_study_runs_resumes_and_writes_the_table_and_curves(tmp_path, shared_dir):
    mod = _study_module()
    shared = tmp_path / "shared"
    for s in ("fcc-val", "norway-val"):
        src = sorted((shared_dir / "traces" / "abr" / s).iterdir())[:1]
        (shared / "traces" / "abr" / s).mkdir(parents=True)
        for f in src:
            shutil.copy(f, shared / "traces" / "abr" / s / f.name)
    study = tmp_path / "study"
    base = ["--study-dir", str(study), "--shared", str(shared), "--tiny", "--no-real-traces", "--abr-steps", "128",
            "--cc-steps", "200", "--jobs", "2"]
    assert mod.main([*base, "--presets", "abr-udr3", "--seeds", "0,1", "--no-curves"]) == 0
    table = (study / "results.md").read_text()
    assert "| abr-udr3 | 0,1 |" in table and " ± " in table and "mpc (baseline)" in table
    data = json.loads((study / "results.json").read_text())
    assert set(data["abr"]["abr-udr3"]["fcc-val"]["seeds"]) == {"0", "1"}
    model = study / "runs" / "abr-udr3-s0" / "model.pt"
    stamp = model.stat().st_mtime_ns
    # the warm start runs after (and from) the same seed's UDR-RL3 model, which is not trained again
    assert mod.main([*base, "--presets", "abr-genet-warm", "--seeds", "0"]) == 0
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
    assert mod.main([*base, "--presets", "abr-genet-warm", "--seeds", "0", "--curve-points", "1",
                     "--publish", str(pub)]) == 0
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
    assert mod.main([*again, "--presets", "abr-udr3,abr-genet-warm", "--seeds", "0",
                     "--restore", str(pub), "--curves-tag", "t"]) == 0
    assert not any((fresh / "runs").iterdir())
    assert (fresh / "results.md").read_text() == (study / "results.md").read_text()
    assert (fresh / "curves" / "abr-genet-warm-s0.csv").read_text() == (study / "curves" / "abr-genet-warm-s0.csv").read_text()
    assert (fresh / "curves-abr-t.png").read_bytes()[:4] == b"\x89PNG" and not (fresh / "curves-abr.png").exists()


def test_unknown_presets_fail_clearly(tmp_path):
    mod = _study_module()
    with pytest.raises(SystemExit):
        mod.main(["--study-dir", str(tmp_path), "--curve-points", "0"])
    with pytest.raises(SystemExit, match="unknown preset"):
        mod.main(["--study-dir", str(tmp_path), "--presets", "abr-nope", "--seeds", "0"])


def test_ship_models_from_run_ships_a_finished_run_with_its_own_command(tmp_path, monkeypatch):
    """`scripts/ship_models.py --only cc/genet --from-run DIR` ships DIR as it is: export from its model,
    metadata with DIR's command, seed and the variant; no training. The evaluation (tested with the shipped
    models) is replaced by a recorder here: the repository root is a temporary copy of models/."""
    spec = importlib.util.spec_from_file_location("ship_models_t", ROOT / "scripts" / "ship_models.py")
    ship = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ship_models_t", ship)  # its dataclasses look their module up
    spec.loader.exec_module(ship)
    from genet.cli import main as genet_main
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
    with pytest.raises(SystemExit):
        ship.main(["--from-run", str(run)])  # needs exactly one --only
    assert ship.main(["--only", "cc/genet", "--from-run", str(run), "--variant", "tiny test run"]) == 0
    meta = json.loads((root / "models" / "cc" / "genet.json").read_text())
    assert meta["seed"] == 3 and "--seed 3" in meta["command"] and f"--out {run}" in meta["command"]
    assert meta["variant"] == "tiny test run" and meta["steps"] == 200
    assert (root / "models" / "cc" / "genet.onnx").is_file() and calls == [root / "models" / "cc" / "genet.onnx"]
    assert "| genet | 200 |" in (root / "models" / "RESULTS.md").read_text()
    with pytest.raises(Exception):  # an unfinished or wrong-use-case run fails clearly (reported per model)
        ship.ship(ship.specs(Path("."), 1, 1)[0], type("A", (), {"from_run": str(tmp_path), "variant": "",
                                                                  "force": True, "shared": str(tmp_path)})())


def test_abr_top_rung_script_prints_each_policys_bitrate_on_constant_links(capsys):
    spec = importlib.util.spec_from_file_location("abr_top_rung", ROOT / "scripts" / "abr_top_rung.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--policy", "mpc,bba", "--bandwidth-mbps", "0.5,60"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    # on 60 Mbit/s RobustMPC streams the top rung (4.3 Mbit/s) after its first chunk; on 0.5 Mbit/s it cannot
    assert 4.1 < float(rows["mpc"][-1]) <= 4.3 and float(rows["mpc"][3]) < 1.0
    with pytest.raises(SystemExit):
        mod.main(["--bandwidth-mbps", "0"])


def test_abr_per_trace_script_groups_traces_by_mean_bandwidth(tmp_path, capsys):
    import numpy as np

    from traces import Trace
    from traces.io import write_trace
    spec = importlib.util.spec_from_file_location("abr_per_trace", ROOT / "scripts" / "abr_per_trace.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = tmp_path / "set"
    d.mkdir()
    # two slow constant links and one fast one; a trace alternating 1 s at 1 and 3 s at 5 Mbit/s has mean 4
    for name, bw in (("slow_a", 0.4), ("slow_b", 0.45), ("fast", 6.0)):
        write_trace(Trace(np.arange(0.0, 300.0), np.full(300, bw), name=name), d / name)
    t = np.arange(0.0, 400.0)
    alt = Trace(t, np.where(t % 4 == 0, 1.0, 5.0), name="alt")
    assert abs(alt.mean_bandwidth_mbps - 4.0) < 0.02
    write_trace(alt, d / "alt")
    assert mod.main(["--policy", "mpc,bba", "--traces", str(d), "--bins-mbps", "0,1,5"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in
            (["0-1"], ["1-5"], [">=5"], ["all"])}
    assert rows["0-1"][1] == "2" and rows["1-5"][1] == "1" and rows[">=5"][1] == "1" and rows["all"][1] == "4"
    mpc, bba, diff = (float(rows["all"][k]) for k in (2, 3, 4))
    assert abs((mpc - bba) - diff) < 0.02  # the difference column is the first policy's minus the second's
    w, t_, l_ = (int(x) for x in rows["all"][5].split("/"))
    assert w + t_ + l_ == 4
    with pytest.raises(SystemExit):
        mod.main(["--policy", "mpc"])
    with pytest.raises(SystemExit):
        mod.main(["--bins-mbps", "2,1"])
    with pytest.raises(SystemExit):
        mod.main(["--bins-mbps", "0,fast"])
    with pytest.raises(SystemExit):
        mod.main(["--policy", "mpc,bba", "--traces", str(tmp_path / "missing")])
