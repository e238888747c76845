"""LB policies (genet/lb/registry.py): each baseline's choice on hand-made states, the registry, ONNX policies."""

from __future__ import annotations

import numpy as np
import pytest

from foundation.errors import BadInputError
from genet.lb.observations import LbObservationError, LbState, observe, parse_layout, policy_spec
from genet.lb.registry import BASELINES, POLICIES, LbContext, UnknownPolicyError, make_policy
from genet.policy import PolicyMismatchError


def choose(name, state, seed=0, **kw):
    pol = make_policy(name, n_workers=state.n_workers, seed=seed, **kw)
    pol.bind(LbContext(tuple(state.service_rates[0])))
    return pol.act(observe(state, pol.spec.observation_layout)).tolist()


# workers:            0      1      2
# waiting work:       300    100    100
# jobs (incl. serv.): 2      1      3
# in-service left ms: 5      0      7
# rate:               0.5    1      2
STATE = LbState.single([300, 100, 100], [2, 1, 3], [5, 0, 7], [0.5, 1.0, 2.0], 50)


def test_least_work_takes_the_least_waiting_work_lowest_index_on_ties():
    assert choose("least_work", STATE) == [1]  # 100 = 100: Genet's strict < keeps worker 1
    assert choose("least_work", LbState.single([0, 0, 0], [1, 1, 1], [99, 0, 0], [1, 1, 1], 5)) == [0]


def test_sed_takes_the_earliest_expected_finish():
    # (waiting + size) / rate + in service: w0 (350 / 0.5) + 5 = 705, w1 150 + 0 = 150, w2 75 + 7 = 82
    assert choose("sed", STATE) == [2]
    slow_start = LbState.single([0, 0], [1, 1], [100, 0], [10.0, 1.0], 50)  # 5 + 100 vs 50 + 0
    assert choose("sed", slow_start) == [1]


def test_jsq_takes_fewest_jobs_and_breaks_ties_at_random():
    assert choose("jsq", STATE) == [1]
    tie = LbState(np.zeros((400, 3)), np.tile([1, 0, 0], (400, 1)), np.zeros((400, 3)), [1, 1, 1], np.ones(400))
    picks = choose("jsq", tie)
    assert set(picks) == {1, 2} and 150 < picks.count(1) < 250


def test_power_of_two_picks_the_better_of_two_distinct_random_workers():
    n = 600
    jobs = np.tile([5, 0, 9], (n, 1))
    state = LbState(np.zeros((n, 3)), jobs, np.zeros((n, 3)), [1, 1, 1], np.ones(n))
    picks = np.array(choose("power_of_two", state, seed=3))
    # worker 1 wins whenever drawn (2/3 of pairs); otherwise the pair is {0, 2} and worker 0 wins
    assert set(picks.tolist()) == {0, 1} and 0.6 < np.mean(picks == 1) < 0.73


def test_round_robin_cycles_per_session_and_only_active_sessions_move():
    pol = make_policy("round_robin", n_workers=3)
    obs = observe(LbState(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)), [1, 1, 1], np.ones(2)),
                  pol.spec.observation_layout)
    seq = [pol.act(obs).tolist() for _ in range(4)]
    assert seq == [[0, 0], [1, 1], [2, 2], [0, 0]]
    assert pol.act(obs, np.array([True, False])).tolist() == [1, 1]
    assert pol.act(obs).tolist() == [2, 1]
    pol.reset(np.array([False, True]))
    assert pol.act(obs).tolist() == [0, 0]


def test_random_is_seeded_and_uniform():
    state = LbState(np.zeros((3000, 3)), np.zeros((3000, 3)), np.zeros((3000, 3)), [1, 1, 1], np.ones(3000))
    a, b = choose("random", state, seed=1), choose("random", state, seed=1)
    assert a == b and abs(np.bincount(a, minlength=3) / 3000 - 1 / 3).max() < 0.04


def test_registry_lists_the_baselines_and_refuses_unknown_names():
    assert POLICIES.forms() == [*BASELINES, "PATH.onnx"]
    with pytest.raises(UnknownPolicyError, match="unknown LB policy 'least-work'; known: least_work, sed"):
        make_policy("least-work")
    with pytest.raises(FileNotFoundError):
        make_policy("missing.onnx")
    pol = make_policy("least_work", n_workers=3)
    with pytest.raises(PolicyMismatchError, match="made for 3 workers"):
        pol.bind(LbContext((1.0, 2.0)))
    with pytest.raises(PolicyMismatchError, match="expected \\(n, 13\\)"):
        pol.act(np.zeros((1, 4)))


def test_layout_names():
    assert parse_layout("lb.genet-3w") == ("genet", 3) and policy_spec("lb.state-2w").observation_shape == (9,)
    for bad in ("lb.genet-0w", "lb.other-3w", "abr.genet-6x6", "lb.genet-3"):
        with pytest.raises(LbObservationError, match="unknown LB observation layout"):
            parse_layout(bad)
    assert issubclass(LbObservationError, BadInputError)


def test_an_onnx_policy_runs_through_the_registry_and_a_mismatch_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from genet.policy import export_onnx

    class Prefer(torch.nn.Module):  # probabilities that favour the worker with the least Genet-normalised work
        def forward(self, obs):
            return torch.softmax(-100 * obs[:, :-1], dim=-1)

    path = export_onnx(Prefer(), policy_spec("lb.genet-3w"), tmp_path / "p.onnx")
    pol = make_policy(str(path), n_workers=3)
    assert pol.spec.observation_layout == "lb.genet-3w"
    state = LbState.single([9000, 100, 5000], [1, 1, 1], [0, 0, 0], [1, 1, 1], 10)
    assert pol.act(observe(state, pol.spec.observation_layout)).tolist() == [1]
    with pytest.raises(PolicyMismatchError, match="dispatches to 3 workers"):
        make_policy(str(path), n_workers=2)
    other = export_onnx(Prefer(), policy_spec("lb.genet-3w").__class__(
        use_case="cc", observation_layout="cc.aurora-30", observation_shape=(4,), action_semantics="x",
        n_actions=3), tmp_path / "cc.onnx")
    with pytest.raises(PolicyMismatchError, match="is not an LB policy"):
        make_policy(str(other), n_workers=3)
