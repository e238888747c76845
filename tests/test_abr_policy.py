"""genet/policy.py: spec metadata round trip, ONNX export/load, mismatch errors."""

from __future__ import annotations

import numpy as np
import pytest

from genet.policy import (OnnxPolicy, PolicyMismatchError, PolicySpec, TorchPolicy, choose_actions, export_onnx,
                          read_onnx_metadata)

torch = pytest.importorskip("torch")

SPEC = PolicySpec(use_case="abr", observation_layout="test.4x3", observation_shape=(4, 3),
                  action_semantics="test.three", n_actions=3)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(12, 3)

    def forward(self, x):
        return torch.softmax(self.fc(x.reshape(x.shape[0], -1)), dim=-1)


def test_spec_metadata_round_trip():
    meta = SPEC.to_metadata()
    assert meta["genet.observation_shape"] == "4,3"
    assert PolicySpec.from_metadata(meta) == SPEC


def test_export_and_run_onnx_matches_torch(tmp_path):
    net = Net()
    obs = np.random.default_rng(1).normal(size=(16, 4, 3)).astype(np.float32)
    path = export_onnx(net, SPEC, tmp_path / "p.onnx", extra_metadata={"ladder_kbps": [1, 2, 3]},
                       check_observations=obs)
    meta = read_onnx_metadata(path)
    assert meta["genet.use_case"] == "abr" and meta["genet.ladder_kbps"] == "[1, 2, 3]"
    onnx_policy = OnnxPolicy(path, expected=SPEC)
    torch_policy = TorchPolicy(net, SPEC)
    assert np.array_equal(onnx_policy.act(obs), torch_policy.act(obs))
    assert onnx_policy.extra_metadata("ladder_kbps") == [1, 2, 3]
    with torch.no_grad():
        ref = net(torch.from_numpy(obs)).numpy()
    assert np.array_equal(onnx_policy.act(obs), ref.argmax(axis=1))


def test_wrong_use_case_names_expected_and_actual(tmp_path):
    path = export_onnx(Net(), SPEC, tmp_path / "p.onnx")
    cc = PolicySpec(use_case="cc", observation_layout="test.4x3", observation_shape=(4, 3),
                    action_semantics="test.three", n_actions=3)
    with pytest.raises(PolicyMismatchError) as err:
        OnnxPolicy(path, expected=cc)
    msg = str(err.value)
    assert "use_case" in msg and "expected: use_case=cc" in msg and "actual:   use_case=abr" in msg


def test_metadata_lying_about_shape_is_caught(tmp_path):
    lying = PolicySpec(use_case="abr", observation_layout="test.4x3", observation_shape=(4, 3),
                       action_semantics="test.three", n_actions=3)
    path = export_onnx(Net(), lying, tmp_path / "p.onnx")
    import onnx
    model = onnx.load(str(path))
    for p in model.metadata_props:
        if p.key == "genet.observation_shape":
            p.value = "6,8"
    onnx.save(model, str(path))
    with pytest.raises(PolicyMismatchError, match=r"graph input .* shape"):
        OnnxPolicy(path)


def test_file_without_metadata_is_rejected(tmp_path):
    import onnx
    path = export_onnx(Net(), SPEC, tmp_path / "p.onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    with pytest.raises(PolicyMismatchError, match="lack genet.use_case"):
        OnnxPolicy(path)


def test_wrong_observation_batch_shape(tmp_path):
    policy = TorchPolicy(Net(), SPEC)
    with pytest.raises(PolicyMismatchError, match=r"expects \(n, 4, 3\)"):
        policy.act(np.zeros((2, 6, 6)))


def test_sampling_follows_cumulative_rule():
    probs = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]] * 500)
    rng = np.random.default_rng(0)
    a = choose_actions(probs, SPEC, deterministic=False, rng=rng)
    assert np.all(a[0::2] == 1)
    frac2 = np.mean(a[1::2] == 2)
    assert 0.4 < frac2 < 0.6 and set(np.unique(a[1::2])) == {0, 2}


def test_export_that_fails_its_check_leaves_the_previous_file(tmp_path):
    """export_onnx checks onnxruntime against torch before the file takes its name."""
    import torch

    class Noisy(torch.nn.Module):
        def forward(self, x):  # torch and onnxruntime draw different noise: the check must fail
            return torch.softmax(x.reshape(x.shape[0], -1)[:, :3] + 10 * torch.rand(x.shape[0], 3), dim=-1)

    target = tmp_path / "p.onnx"
    target.write_bytes(b"previous model")
    obs = np.random.default_rng(0).normal(size=(16, 4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="differs from torch"):
        export_onnx(Noisy(), SPEC, target, check_observations=obs, atol=1e-5)
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["p.onnx"]
