"""Offline RL for ABR: the experience pool (genet/abr/pool.py) and the Decision Transformer (genet/agents/dt.py,
genet/abr/dt.py, genet/abr/dt_policy.py): the pool round-trips from the simulator and from a real player's log
(the emulated run's, with root), the DT learns a return-conditioned toy task, its export agrees with torch, the
exported file runs through the ABR policy registry with its context window, and the commands run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from foundation.errors import BadInputError
from genet.abr.evaluate import evaluate
from genet.abr.params import PENSIEVE
from genet.abr.pool import (ExperiencePool, PoolFormatError, pool_from_player_log, pool_from_runs,
                            pool_from_simulation, read_pool, write_pool)
from genet.abr.video import default_video
from genet.abr.dt import TARGET_QUANTILE
from genet.agents.dt import DecisionTransformer, DtAgent, DtConfig, Episodes
from traces.trace import Trace

REPO = Path(__file__).resolve().parents[1]
UDR = REPO / "models" / "abr" / "udr3.onnx"


def _genet(*args, **kw):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, cwd=REPO, **kw)


def _traces(n: int = 6, seed: int = 0) -> list[Trace]:
    """Synthetic piecewise-constant traces (0.3-5 Mbit/s), long enough for a whole video."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(0.0, 400.0, 1.0)
        bw = np.repeat(rng.uniform(0.3, 5.0, 40), 10)
        out.append(Trace(t, bw, name=f"syn{i}"))
    return out


def _same(a: ExperiencePool, b: ExperiencePool) -> None:
    for key in ("observations", "actions", "rewards", "dones", "episode_sources"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert (a.rebuffer_penalty, a.smooth_penalty, a.max_bitrate_kbps) == (
        b.rebuffer_penalty, b.smooth_penalty, b.max_bitrate_kbps)


# ------------------------------------------------------------------ pool
@pytest.fixture(scope="module")
def sim_pool():
    return pool_from_simulation(["mpc", "bba"], _traces(), default_video())


def test_pool_from_simulation_round_trips_and_its_returns_are_the_eval_qoe(sim_pool, tmp_path):
    pool = sim_pool
    traces, video = _traces(), default_video()
    assert len(pool.episode_bounds()) == 2 * len(traces)
    path = write_pool(pool, tmp_path / "p.npz")
    _same(pool, read_pool(path))
    # each episode's return is the eval's per-trace QoE less the first chunk's (no decision chose it)
    for k, policy in enumerate(("mpc", "bba")):
        results, logs = evaluate(policy, traces, video, PENSIEVE, record_chunks=True)
        assert all(b - a == len(logs) - 1 for a, b in pool.episode_bounds())  # C chunks, C - 1 decisions
        first = logs[0]["reward"]
        want = np.array([r.qoe for r in results]) - first
        got = pool.episode_returns()[k * len(traces):(k + 1) * len(traces)]
        assert got == pytest.approx(want, abs=1e-9)
        # the actions are the qualities the policy chose after chunk 0, ...
        q = np.stack([log["quality"] for log in logs])[1:]  # chunks 1..C-1
        a, b = pool.episode_bounds()[k * len(traces)]
        assert np.array_equal(pool.actions[a:b], q[:, 0])


def test_a_wrong_pool_file_is_a_one_line_error_naming_it(tmp_path, sim_pool):
    bad = tmp_path / "notapool.npz"
    bad.write_text("hello")
    with pytest.raises(PoolFormatError) as e:
        read_pool(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(PoolFormatError, match="lacks observations"):
        read_pool(other)
    # a consistent file whose last episode is cut (no done) is refused too
    p = write_pool(sim_pool, tmp_path / "ok.npz")
    with np.load(p) as z:
        data = {k: z[k] for k in z.files}
    data["dones"][-1] = False
    np.savez(tmp_path / "cut.npz", **data)
    with pytest.raises(PoolFormatError, match="cut.npz.*episode's end"):
        read_pool(tmp_path / "cut.npz")
    out = _genet("train", "abr", "--agent", "dt", "--pool", str(bad), "--out", str(tmp_path / "run"))
    assert out.returncode != 0 and str(bad) in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


# ------------------------------------------------------------ the toy task
def _toy_pool(n_episodes: int = 40, length: int = 24, seed: int = 0) -> Episodes:
    """Two behaviours on the same states: 'good' episodes play 3 + t % 3 (reward ~2 a step), 'poor' ones t % 3
    (~0.5). The observation carries only the decisions left (row 5), so the action sequence can be told from
    the observations but which behaviour to follow only from the return-to-go."""
    rng = np.random.default_rng(seed)
    obs, act, rew, done = [], [], [], []
    for e in range(n_episodes):
        good = e % 2 == 0
        for t in range(length):
            o = np.zeros((6, 8), np.float32)
            o[5, -1] = (length - t) / 48.0
            obs.append(o)
            act.append((3 if good else 0) + t % 3)
            rew.append((2.0 if good else 0.5) + rng.normal(0, 0.05))
            done.append(t == length - 1)
    return Episodes.from_arrays(np.stack(obs), np.array(act), np.array(rew), np.array(done))


@pytest.fixture
def one_thread():
    """One torch thread (as genet train abr --agent dt): small batches lose ~10x to a second thread that another
    process holds the core of."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_dt_learns_the_return_conditioned_toy_task(one_thread):
    """Conditioned on a good episode's return-to-go the DT plays the good sequence, on a poor one's the poor
    sequence: >= 95 % of each episode's decisions, and every episode's first decision (no history: the states
    are the same, so only the return-to-go can tell; BC could not)."""
    torch.manual_seed(0)
    data = _toy_pool()
    cfg = DtConfig(context=6, d_model=32, n_layers=2, n_heads=2, dropout=0.0, learning_rate=3e-3, warmup_steps=20,
                   minibatch=64, grad_steps=50, rtg_scale=50.0)
    agent = DtAgent(DecisionTransformer((6, 8), 6, cfg), cfg, seed=0)
    for _ in range(8):
        stats = agent.train_on({"data": data})
    assert stats["dt_loss"] < 0.3
    length = 24
    for e, offset in ((0, 3), (1, 0)):  # episode 0 is good, 1 poor
        rows = np.arange(e * length, (e + 1) * length)
        w = data.windows(rows, cfg.context)
        pred = agent.act(w, np.random.default_rng(0), deterministic=True).actions
        want = offset + np.arange(length) % 3
        assert np.mean(pred == want) >= 0.95, (e, pred, want)
    # every episode's first decision has no history and the same observation: only the return-to-go tells
    first = np.arange(0, len(data.actions), length)
    pred = agent.act(data.windows(first, cfg.context), np.random.default_rng(0), deterministic=True).actions
    assert pred.tolist() == [3 if e % 2 == 0 else 0 for e in range(len(first))]


def test_windows_are_right_aligned_and_stay_inside_their_episode():
    data = _toy_pool(n_episodes=2, length=5)
    w = data.windows(np.array([0, 2, 6]), 4)
    assert w["mask"].tolist() == [[0, 0, 0, 1], [0, 1, 1, 1], [0, 0, 1, 1]]
    assert w["actions"][1].tolist() == [0, 3, 4, 5] and w["actions"][2].tolist() == [0, 0, 0, 1]
    assert w["rtg"][0, -1] == pytest.approx(data.rtg[0]) and w["rtg"][2, 0] == 0.0


# ----------------------------------------------------- export and runtime
@pytest.fixture(scope="module")
def dt_run(tmp_path_factory, sim_pool):
    """`genet train abr --agent dt` with a tiny budget on a simulated pool, exported with `genet export`."""
    d = tmp_path_factory.mktemp("dt")
    pool = write_pool(sim_pool, d / "pool.npz")
    out = d / "run"
    proc = _genet("train", "abr", "--agent", "dt", "--pool", str(pool), "--steps", "20000", "--out", str(out),
                  "--no-progress", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _genet("export", str(out), "-o", str(out / "policy.onnx"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_train_writes_a_run_and_export_agrees_with_torch(dt_run):
    run = json.loads((dt_run / "run.json").read_text())
    assert run["agent"] == "dt" and run["train_config"]["pool"].endswith("pool.npz")
    header = (dt_run / "learning_curve.csv").read_text().splitlines()[0].split(",")
    assert {"dt_loss", "action_accuracy", "transitions_per_s"} <= set(header)
    from genet.abr.dt import build_use_case
    import argparse
    uc = build_use_case(argparse.Namespace(**run["argv"]))
    model = uc.load_model(dt_run / "model.pt")
    import onnxruntime as ort
    sess = ort.InferenceSession(str(dt_run / "policy.onnx"), providers=["CPUExecutionProvider"])
    w = model.check
    feeds = {"rtg": w["rtg"], "observation": w["observation"], "actions": w["actions"].astype(np.int64),
             "mask": w["mask"]}
    model.net.eval()
    with torch.no_grad():
        ref = model.net(*(torch.from_numpy(np.asarray(feeds[k])) for k in ("rtg", "observation", "actions",
                                                                           "mask"))).numpy()
    got = sess.run(None, feeds)[0]
    assert np.max(np.abs(ref - got)) <= 1e-5
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    assert meta["genet.policy_kind"] == "decision-transformer" and json.loads(meta["genet.context_window"]) == 10
    returns = read_pool(run["train_config"]["pool"]).episode_returns()
    assert json.loads(meta["genet.target_return"]) == pytest.approx(np.quantile(returns, TARGET_QUANTILE))


def test_runtime_policy_feeds_the_history_the_torch_model_would_see(dt_run, sim_pool):
    """The registry's DT policy, driven over a simulated episode, hands onnxruntime the windows that
    Episodes.windows builds from the same episode with its return-to-go counted down by the chunk rewards
    (read off the observations: equal to the simulator's rewards up to float32 rounding)."""
    from genet.abr.dt_policy import DecisionTransformerPolicy, chunk_reward
    from genet.abr.registry import make_policy
    pol = make_policy(str(dt_run / "policy.onnx"))
    assert isinstance(pol, DecisionTransformerPolicy)
    a, b = sim_pool.episode_bounds()[0]
    obs = sim_pool.observations[a:b]
    est = chunk_reward(obs[:-1], obs[1:], 4300.0, 4.3, 1.0)
    assert est == pytest.approx(sim_pool.rewards[a:b - 1], abs=1e-4)
    seen = []
    orig = pol.forward
    pol.forward = lambda idx: (seen.append((pol.rtg[idx].copy(), pol.mask[idx].copy(), pol.actions[idx].copy())),
                               orig(idx))[1]
    pol.reset()
    chosen = [int(pol.act(obs[t:t + 1])[0]) for t in range(len(obs))]
    target = pol.target_return
    togo = target - np.concatenate([[0.0], np.cumsum(est)])
    data = Episodes.from_arrays(obs, np.array(chosen), np.zeros(len(obs)), np.r_[np.zeros(len(obs) - 1), 1] > 0)
    data.rtg = togo.astype(np.float32)
    w = data.windows(np.arange(len(obs)), pol.context)
    for t, (rtg, mask, acts) in enumerate(seen):
        assert np.array_equal(mask[0], w["mask"][t]) and rtg[0] == pytest.approx(w["rtg"][t], abs=1e-4)
        assert np.array_equal(acts[0][:-1], w["actions"][t][:-1])
    pol.reset()  # a new session starts from the target again: the same choices
    assert [int(pol.act(obs[t:t + 1])[0]) for t in range(len(obs))] == chosen


def test_eval_runs_the_exported_dt_through_the_registry(dt_run, tmp_path):
    tdir = tmp_path / "traces"
    tdir.mkdir()
    for tr in _traces(3, seed=5):
        (tdir / tr.name).write_text("".join(f"{t} {b}\n" for t, b in zip(tr.timestamps_s, tr.bandwidth_mbps)))
    out = _genet("eval", "abr", "--traces", str(tdir), "--policy", f"mpc,{dt_run / 'policy.onnx'}", "--out",
                 str(tmp_path / "ev"), "--no-progress", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "ev" / "results.json").read_text())["results"]
    assert {r["policy"] for r in rows} == {"mpc", "policy"} and all(np.isfinite(r["qoe"]) for r in rows)


def test_pool_command_writes_a_pool_from_the_simulator(tmp_path):
    tdir = tmp_path / "traces"
    tdir.mkdir()
    for tr in _traces(2, seed=7):
        (tdir / tr.name).write_text("".join(f"{t} {b}\n" for t, b in zip(tr.timestamps_s, tr.bandwidth_mbps)))
    (tdir / "tiny").write_text("0 0.1\n1 0.1\n")  # cannot carry one chunk: skipped, and said so
    out = _genet("pool", "abr", "--traces", str(tdir), "--policy", f"bba,{UDR}", "-o", str(tmp_path / "p.npz"),
                 timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "skipping 1 of 3 traces" in out.stderr and "tiny" in out.stderr
    pool = read_pool(tmp_path / "p.npz")
    assert len(pool.episode_sources) == 4 and pool.episode_sources[2].startswith("sim:udr3:")
    _same(pool, pool_from_simulation(["bba", str(UDR)], sorted(_traces(2, seed=7), key=lambda t: t.name),
                                     default_video(), labels=["bba", "udr3"]))


# ------------------------------------------------- a real player's log
def test_pool_from_a_real_player_log_rebuilds_the_observations_the_decider_saw(tmp_path, dt_run):
    """The headless player (player/client.py, the code genet emulate abr and deploy run) plays a short video
    from the real server over loopback with the exported DT and with the shipped UDR policy; the pool rebuilt
    from its log holds exactly the observations the player's decider computed, and replaying them through a
    fresh copy of each policy gives the logged qualities."""
    from genet.abr.registry import make_policy
    from player.abr import AbrDecider
    from player.client import PlayerConfig, play
    from player.content import write_sized_video
    from player.server import ServerProcess
    content = write_sized_video(tmp_path / "video", None, n_chunks=8)
    with ServerProcess(content.root, port=0, args=["--policy", "bba"]) as srv:
        for policy in (str(UDR), str(dt_run / "policy.onnx")):
            log = tmp_path / f"{Path(policy).stem}.jsonl"
            res = play(PlayerConfig(srv.url, policy=policy), log)
            assert res.status == "complete"
            pool = pool_from_player_log(log, content.video)
            write_pool(pool, tmp_path / "p.npz")
            _same(pool, read_pool(tmp_path / "p.npz"))
            chunks = [json.loads(x) for x in log.read_text().splitlines() if '"chunk"' in x]
            assert len(pool) == 7 and pool.actions.tolist() == [c["quality"] for c in chunks[1:]]
            assert pool.rewards.tolist() == [c["qoe"] for c in chunks[1:]]
            decider = AbrDecider(policy, content.video, warm_up=False)  # the decider's own observations
            for k, c in enumerate(chunks[:-1]):
                m = decider.measurement(c["quality"], c["buffer_after_s"], c["bytes"], c["download_ms"], k,
                                        c["rebuffer_s"])
                assert np.array_equal(decider.observer.observe(m)[0], pool.observations[k])
            fresh = make_policy(policy)
            fresh.reset()
            replay = [int(fresh.act(pool.observations[k:k + 1])[0]) for k in range(len(pool))]
            assert replay == pool.actions.tolist()


@pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root")
def test_pool_from_a_real_emulated_run(tmp_path, dt_run):
    """`genet emulate abr` (a real player over an emulated link) with the exported DT: the run completes through
    the registry, and `genet pool abr --from-runs` rebuilds its sessions' episodes from the run folder."""
    tdir = tmp_path / "traces"
    tdir.mkdir()
    (tdir / "const3").write_text("".join(f"{t} 3.0\n" for t in range(400)))
    out = tmp_path / "emu"
    proc = _genet("emulate", "abr", "--policy", str(dt_run / "policy.onnx"), "--traces", str(tdir), "--chunks", "6",
                  "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((out / "results.json").read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert rows and all(r["status"] == "complete" for r in rows)
    proc = _genet("pool", "abr", "--from-runs", str(out), "-o", str(tmp_path / "emu.npz"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pool = read_pool(tmp_path / "emu.npz")
    _same(pool, pool_from_runs([out]))
    assert len(pool) == 5 and pool.dones.tolist() == [False] * 4 + [True]
    from genet.abr.registry import make_policy
    fresh = make_policy(str(dt_run / "policy.onnx"))
    assert [int(fresh.act(pool.observations[k:k + 1])[0]) for k in range(len(pool))] == pool.actions.tolist()


def test_dt_options_are_checked_before_training(tmp_path):
    out = _genet("train", "abr", "--agent", "dt", "--out", str(tmp_path / "r"))
    assert out.returncode != 0 and "--pool" in out.stderr and "Traceback" not in out.stderr
    out = _genet("train", "abr", "--agent", "bc", "--pool", "x.npz", "--out", str(tmp_path / "r"))
    assert out.returncode != 0 and "--pool is an option of --agent dt" in out.stderr
    with pytest.raises(BadInputError, match="no such pool file"):
        read_pool(tmp_path / "missing.npz")
