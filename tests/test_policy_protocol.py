"""genet/policy.py: the one policy protocol. An ABR and a CC ONNX policy answer the same verb (``act``, and
``act_one`` for one session); the UDP sender and the CC simulator decide through it (any Policy object,
not only an ONNX network); ONNX files are checked once, on load, against the shapes their metadata declare."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from genet.policy import Policy, PolicyBase, PolicyMismatchError, PolicySpec, act_one, check_policy


def _shipped(repo_dir, use_case):
    path = repo_dir / "models" / use_case / "genet.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is not shipped in this checkout")
    return path


def test_abr_and_cc_onnx_policies_are_driven_through_the_same_verb(repo_dir):
    from genet.abr.registry import make_policy
    from genet.abr.video import SessionVideos, default_video
    from genet.cc.aurora import AuroraConfig
    from genet.cc.registry import load_aurora_policy

    abr = make_policy(str(_shipped(repo_dir, "abr")))
    cc, aurora = load_aurora_policy(str(_shipped(repo_dir, "cc")), AuroraConfig())
    n = 5
    rng = np.random.default_rng(0)
    for policy, context in ((abr, SessionVideos.from_video(default_video(), n)), (cc, aurora)):
        assert isinstance(policy, Policy) and check_policy(policy) is policy
        policy.bind(context)
        policy.reset()
        obs = rng.uniform(0.0, 1.0, size=(n, *policy.spec.observation_shape)).astype(np.float32)
        actions = policy.act(obs)
        one = [act_one(policy, o) for o in obs]  # one session at a time: the same decisions
        if policy.spec.action_type == "discrete":
            assert actions.shape == (n,) and actions.dtype == np.int64
            assert np.all((0 <= actions) & (actions < policy.spec.n_actions))
            assert [int(a) for a in one] == actions.tolist()
        else:
            assert actions.shape == (n, policy.spec.n_actions) and np.all(np.isfinite(actions))
            np.testing.assert_array_equal(np.stack(one), actions)
        with pytest.raises(PolicyMismatchError, match=r"observation batch has shape .* but the policy expects"):
            policy.act(obs[:, :-1])
    assert abr.spec.use_case == "abr" and cc.spec.use_case == "cc"


class _ConstantAction(PolicyBase):
    """A CC policy in plain numpy (no network, no ``forward``): always the same rate-change action."""

    name = "constant-action"

    def __init__(self, spec: PolicySpec, action: float) -> None:
        self.spec = spec
        self.action = float(action)
        self.bound = None
        self.calls = 0

    def bind(self, context) -> None:
        self.bound = context

    def act(self, observations, active=None):
        self.calls += 1
        obs = np.asarray(observations)
        assert obs.shape[1:] == self.spec.observation_shape
        return np.full((obs.shape[0], 1), self.action)


def test_the_cc_simulator_decides_through_act_with_any_policy_object():
    from genet.cc.aurora import AuroraConfig
    from genet.cc.link import LinkConfig
    from genet.cc.metrics import summarize
    from genet.cc.registry import CcPolicy, cc_policy_spec
    from genet.cc.policies import run_policy
    from traces import Trace

    trace = Trace.constant(4.0, 4.0, delay_ms=20, queue_packets=50)
    link = LinkConfig.from_trace(trace)
    runs = {}
    for action in (0.0, -1.0):
        pol = _ConstantAction(cc_policy_spec(), action)
        log = run_policy(CcPolicy("x", "onnx"), trace, link, loaded=(pol, AuroraConfig()))
        assert pol.calls > 10 and isinstance(pol.bound, AuroraConfig)
        runs[action] = summarize(log, link, "x", "t")
    # halving the rate every interval sends far less than keeping it
    assert runs[-1.0].packets_sent < 0.5 * runs[0.0].packets_sent


def test_the_udp_sender_decides_through_act(tmp_path):
    """The sender calls Policy.act (via act_one) — a policy with no ``forward`` runs, and every monitor
    interval's logged action is the policy's."""
    from genet.cc.aurora import AuroraConfig
    from genet.cc.registry import RatePolicy, cc_policy_spec
    from sender.receiver import Receiver
    from sender.udp_sender import UdpSender, read_log

    rx = Receiver("127.0.0.1", 0)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rx", rx.serve(once=True, duration_s=30)),
                              daemon=True)
    thread.start()
    config = AuroraConfig(reward_normaliser="measured")
    pol = _ConstantAction(cc_policy_spec(config), 0.25)
    rate = RatePolicy("constant-action", config, network=pol)
    assert pol.bound is config  # RatePolicy binds its policy to the config it runs with
    status, summary = UdpSender(("127.0.0.1", rx.port), rate, 1.5, tmp_path / "send.jsonl",
                                low_latency_idle=False).run()
    thread.join(timeout=10)
    assert status == 0 and summary["packets_acked"] > 0
    actions = [r["action"] for r in read_log(tmp_path / "send.jsonl") if r["type"] == "mi"]
    assert len(actions) >= 3 and set(actions) == {0.25}
    assert pol.calls >= len(actions)


def test_onnx_output_shape_is_checked_on_load(tmp_path):
    torch = pytest.importorskip("torch")
    from genet.policy import OnnxPolicy, export_onnx

    class Three(torch.nn.Module):
        def forward(self, x):
            return torch.softmax(x[:, :3], dim=-1)

    lying = PolicySpec(use_case="abr", observation_layout="test.5", observation_shape=(5,),
                       action_semantics="test.four", n_actions=4)
    path = export_onnx(Three(), lying, tmp_path / "lying.onnx")  # no check batch: the file is written
    with pytest.raises(PolicyMismatchError, match=r"graph output 'output' has shape \('batch', 3\) but its "
                                                  r"metadata declares \(n, 4\) \[test.four, discrete\]"):
        OnnxPolicy(path)
