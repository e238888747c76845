"""The shipped models (models/{abr,cc}/*.onnx): each loads through the shared policy
interface with the layout its use case needs, carries a complete metadata file,
and re-evaluating it reproduces the figures its metadata records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*/*.onnx"))
EXPECTED = {"abr/udr1", "abr/udr2", "abr/udr3", "abr/genet", "cc/udr3", "cc/genet"}
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
