"""The shipped models (models/{abr,cc,lb}/*.onnx): each loads through the shared policy
interface with the layout its use case needs, carries a complete metadata file,
and re-evaluating it reproduces the figures its metadata records."""

from __future__ import annotations

import json
from shlex import join as shlex_join
from shlex import split as shlex_split
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*/*.onnx"))
EXPECTED = {"abr/udr1", "abr/udr2", "abr/udr3", "abr/genet", "cc/udr3", "cc/genet", "lb/udr1", "lb/udr2", "lb/udr3",
            "lb/genet"}
META_KEYS = {"name", "use_case", "file", "command", "seed", "steps", "updates", "train_wall_s", "commit",
             "evaluation", "evaluation_commands", "export_command"}


def _meta(onnx: Path) -> dict:
    return json.loads(onnx.with_suffix(".json").read_text())


def test_every_shipped_model_is_there():
    assert {f"{p.parent.name}/{p.stem}" for p in MODELS} >= EXPECTED


@pytest.mark.parametrize("onnx", MODELS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_metadata_is_complete_and_names_the_training_command(onnx):
    meta = _meta(onnx)
    assert META_KEYS <= set(meta)
    assert meta["use_case"] == onnx.parent.name and meta["file"] == f"models/{onnx.parent.name}/{onnx.name}"
    assert meta["command"].startswith(f"genet train {meta['use_case']} ")
    assert f"--seed {meta['seed']}" in meta["command"] and meta["steps"] > 0 and meta["updates"] > 0
    assert len(meta["commit"]) == 40 and all(c in "0123456789abcdef" for c in meta["commit"])
    for cmd in meta["evaluation_commands"]:  # commands a user can paste in the repository root
        assert cmd.startswith(f"genet eval {meta['use_case']} ") and "--out" not in cmd and " /" not in cmd
    for values in meta["evaluation"].values():
        assert "model" in values and all(np.isfinite(v) for v in values.values())


@pytest.mark.parametrize("onnx", MODELS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_model_loads_with_its_use_case_layout(onnx):
    from genet.policy import load_policy
    pol = load_policy(onnx)
    assert pol.spec.use_case == onnx.parent.name
    obs = np.zeros((4, *pol.spec.observation_shape), np.float32)
    act = pol.act(obs)
    assert np.asarray(act).shape[0] == 4 and np.all(np.isfinite(np.asarray(act, float)))


@pytest.mark.parametrize("onnx", [p for p in MODELS if p.parent.name == "abr"], ids=lambda p: p.stem)
def test_abr_evaluation_is_reproduced(onnx, shared_dir):
    """`genet eval abr` on norway-val gives the mean QoE the metadata records (deterministic policy)."""
    from genet.abr.evaluate import evaluate
    from genet.abr.params import conventions
    from genet.abr.training import default_video
    from genet.policy import load_policy
    from traces import load_traces
    recorded = _meta(onnx)["evaluation"]["norway-val"]["model"]
    traces = load_traces(shared_dir / "traces" / "abr" / "norway-val")
    results = evaluate(load_policy(onnx), traces, default_video(), conventions("pensieve"))
    assert np.mean([r.qoe for r in results]) == pytest.approx(recorded, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("onnx", [p for p in MODELS if p.parent.name == "lb"], ids=lambda p: p.stem)
def test_lb_model_loads_through_the_lb_registry_and_matches_its_metadata(onnx):
    """Each LB model is an LB policy for Genet's three workers (genet.lb.registry), and its metadata names the
    study preset's training command and the validation and test episodes of app/study/presets.py."""
    from app.study.presets import LB_TEST, LB_VALIDATION, presets
    from genet.lb.registry import load_onnx_lb, make_policy
    pol = make_policy(str(onnx), n_workers=3, seed=0)
    assert pol.spec.use_case == "lb" and pol.spec.observation_layout == "lb.genet-3w"
    load_onnx_lb(onnx, n_workers=3)
    meta = _meta(onnx)
    from app.cli import build_parser
    parser = build_parser()
    recorded = shlex_split(meta["command"])[1:]
    # the preset's options, given again after the recorded ones, change nothing: the command has them all
    assert vars(parser.parse_args(recorded + presets()[f"lb-{onnx.stem}"].options)) == vars(parser.parse_args(recorded))
    assert set(meta["evaluation"]) == {"val", "val completion (s)", "test", "test completion (s)"}
    shown = [c.split(" --policy ")[0] for c in meta["evaluation_commands"]]
    assert shown == [f"genet eval lb {shlex_join(o)}" for _, o in (LB_VALIDATION, LB_TEST)]
    assert set(meta["evaluation"]["test"]) == {"model", "least_work"}


@pytest.mark.parametrize("onnx", [p for p in MODELS if p.parent.name == "lb"], ids=lambda p: p.stem)
def test_lb_evaluation_is_reproduced(onnx):
    """`genet eval lb -n 50 --seed 0` (the test episodes; the model samples its worker, seeded) gives the
    return / 1e9 and mean completion time the metadata records, for the model and least-work-left."""
    from genet.lb.evaluate import episodes, evaluate_lb, summary_rows
    meta = _meta(onnx)["evaluation"]
    rows = summary_rows(evaluate_lb([str(onnx), "least_work"], episodes("genet", 50, 0), None, seed=0).rows)
    assert [r["reward_1e9"] for r in rows] == pytest.approx([meta["test"]["model"], meta["test"]["least_work"]],
                                                           rel=1e-9)
    assert [r["mean_completion_time_s"] for r in rows] == pytest.approx(
        [meta["test completion (s)"]["model"], meta["test completion (s)"]["least_work"]], rel=1e-9)
