"""TF1 checkpoint import without TensorFlow: tensor-bundle parsing, the actor rebuild, the ONNX policy's behaviour."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import shared_path
from genet.abr.evaluate import evaluate
from genet.abr.params import GENET_COMPAT
from genet.abr.video import load_video
from genet.policy import OnnxPolicy, PolicyMismatchError, PolicySpec, read_onnx_metadata
from genet.tf_checkpoint import CheckpointFormatError, TensorBundle
from traces.trace import Trace

MODELS = ["genet", "udr_1", "udr_2", "udr_3", "udr_real"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from genet.abr.tf_import import import_checkpoint
    out = tmp_path_factory.mktemp("onnx")
    return {m: import_checkpoint(shared_path("models", "paper-abr", m), out / f"{m}.onnx")[0] for m in MODELS}


def test_bundle_names_and_shapes():
    b = TensorBundle(shared_path("models", "paper-abr", "genet"))
    shapes = b.shapes()
    assert shapes["actor/Conv1D/W"] == (4, 1, 6, 128)
    assert shapes["actor/FullyConnected_3/W"] == (768, 128)
    assert shapes["actor/FullyConnected_4/W"] == (128, 3) and shapes["critic/FullyConnected_4/W"] == (128, 1)
    assert sum(1 for k in shapes if k.startswith("actor/") and "RMSProp" not in k) == 16
    # every tensor's bytes are where the index says: the data file is exactly covered
    total = sum(e.size for e in b.entries.values())
    data = shared_path("models", "paper-abr", "genet", "nn_model_ep_9900.ckpt.data-00000-of-00001")
    assert total == data.stat().st_size
    w = b.read("actor/FullyConnected_4/W")
    assert w.dtype == np.float32 and np.all(np.isfinite(w)) and w.std() > 0


def test_tensorflow_agrees_if_installed(imported):
    tf = pytest.importorskip("tensorflow")
    reader = tf.train.load_checkpoint(str(TensorBundle(shared_path("models", "paper-abr", "genet")).prefix))
    b = TensorBundle(shared_path("models", "paper-abr", "genet"))
    for name in b.names():
        np.testing.assert_array_equal(reader.get_tensor(name), b.read(name))


def test_imported_policy_metadata_and_layout_check(imported):
    meta = read_onnx_metadata(imported["genet"])
    assert meta["genet.use_case"] == "abr" and meta["genet.observation_layout"] == "abr.genet-6x6"
    assert meta["genet.action_semantics"] == "abr.jump3"
    pensieve = PolicySpec("abr", "abr.pensieve-6x8", (6, 8), "abr.direct6", 6)
    with pytest.raises(PolicyMismatchError, match=r"expected: .*abr.pensieve-6x8.*\n.*actual: .*abr.genet-6x6"):
        OnnxPolicy(imported["genet"], expected=pensieve)
    cc = PolicySpec("cc", "abr.genet-6x6", (6, 6), "abr.jump3", 3)
    with pytest.raises(PolicyMismatchError, match="use_case"):
        OnnxPolicy(imported["genet"], expected=cc)


@pytest.mark.parametrize("model", MODELS)
def test_imported_policy_climbs_to_top_bitrate_on_steady_20mbps(imported, model):
    video = load_video(shared_path("video", "envivio"))
    steady = Trace(np.arange(0, 400.0), np.full(400, 20.0), name="steady20")
    _, logs = evaluate(str(imported[model]), [steady], video, GENET_COMPAT, record_chunks=True)
    q = np.array([log["quality"][0] for log in logs])
    buf = np.array([log["buffer_s"][0] for log in logs])
    assert q[0] == 0 and q[-10:].min() == 5, q  # climbs one level at a time, then holds the top
    assert np.all(np.diff(q) >= 0) and buf[-1] > 20


def test_bad_checkpoints(tmp_path):
    (tmp_path / "x.ckpt.index").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointFormatError, match="bad table magic"):
        TensorBundle(tmp_path / "x.ckpt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        TensorBundle(tmp_path / "nothing")
    good = shared_path("models", "paper-abr", "genet")
    data = (good / "nn_model_ep_9900.ckpt.index").read_bytes()
    (tmp_path / "y.ckpt.index").write_bytes(data)
    (tmp_path / "y.ckpt.data-00000-of-00001").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointFormatError, match=r"actor/Conv1D/W.*bytes"):
        TensorBundle(tmp_path / "y.ckpt").read("actor/Conv1D/W")


def test_eval_rejects_an_onnx_model_of_another_use_case(tmp_path, capsys):
    import torch

    from app.cli import main
    from genet.policy import export_onnx

    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)[:, :1]

    cc = PolicySpec("cc", "cc.aurora-30", (30,), "cc.rate-change", 1, action_type="continuous", output="mean")
    path = export_onnx(Tiny(), cc, tmp_path / "aurora.onnx")
    rc = main(["eval", "abr", "--traces", str(shared_path("traces", "abr", "norway-val")), "--policy", str(path),
               "--video", str(shared_path("video", "envivio")), "--no-progress", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "expected: use_case=abr" in err and "actual:   use_case=cc, observation=cc.aurora-30 [30]" in err
