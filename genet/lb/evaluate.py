"""``genet eval lb``: LB policies side by side over the same episodes, in the simulator.

Episodes (:func:`episodes`):

* default: ``n`` episodes of a named setting (:data:`genet.lb.simulator.GENET`, or ``park``); episode ``k``'s
  workload and shuffle stream come from ``SeedSequence([seed, k])``, so every policy meets the same jobs and the
  same shuffles (Genet's test seeds episodes ``100000000 + k`` from the global ``np.random``);
* ``config="rl1"|"rl2"|"rl3"``: each episode also draws its point of ``traces/spaces/lb.json`` from that range
  (:func:`genet.lb.simulator.setting_from_config`);
* ``workloads=DIR``: one episode per ``DIR/*.workload`` file (``traces/workload.py``), on the setting's workers;
* ``genet_test_jobs``: the jobs of Genet's own test episodes (``np.random.seed(100000000 + k)``, drawn as its
  ``job_generator.py`` does), with our seeded shuffles.

Outputs in ``out`` (held under its run-folder lock, :func:`foundation.journal.run_folder_lock`):

* ``results.jsonl``: one row per (policy, episode) appended as each batch of episodes finishes (the one experiment
  runner, :mod:`foundation.experiment`): a killed run loses at most the batch under way, and a rerun with the same
  arguments reuses every journaled row;
* ``results.csv``: the rows: ``policy``, ``workload``, ``seed``, ``source``, the use case's columns
  (:data:`genet.lb.metrics.COLUMNS`) and ``worker_utilisation``;
* ``summary.csv`` / ``summary.txt``: per policy, the mean and 95 % Student-t interval of each column (the reward
  also / 1e9, as Genet's LB README reports it).

ONNX policies sample their worker from their probabilities (seeded; ``deterministic=True``: the most likely one), as
Genet's LB test does (``load_balance_actor_agent.py`` draws with Gumbel noise): a learned LB policy whose inputs
saturate (queued work is capped at 20 x 5000 units) needs its randomness to split the load.

Episodes run in batches (:data:`BATCH_EPISODES` episodes of one policy at once, ``policy.act`` batched over them).
A batch is journaled in one write. Each batch has its own policy instance seeded from ``(seed, first episode)``, so
a resumed run gives the rows an uninterrupted one gives (for randomised policies, as long as ``-n`` is unchanged).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from foundation.atomic import atomic_write_text
from foundation.errors import BadInputError
from foundation.experiment import Cell, Experiment, Outcome, Tier
from genet.lb.metrics import COLUMN_NAMES, PER_WORKER_FIELD, summarize
from genet.lb.simulator import LbSetting, named_setting, setting_from_config, simulate
from traces.workload import Workload, list_workload_files, read_workload

#: Episodes of one policy simulated together (one ``policy.act`` call per decision for all of them).
BATCH_EPISODES = 64
#: Genet's LB test seeds its episode ``k`` with ``np.random.seed(GENET_TEST_SEED + k)`` (``rl_test.py``).
GENET_TEST_SEED = 100_000_000
#: Most episodes ``-n`` may ask for.
MAX_EPISODES = 100_000
ROW_KEYS = ("policy", "workload", "seed", "source")
RESULT_FIELDS = (*ROW_KEYS, *COLUMN_NAMES, PER_WORKER_FIELD)


@dataclass(frozen=True, eq=False)
class Episode:
    """One test episode: its name, setting (workers, shuffle), workload and shuffle-stream seed."""

    name: str
    setting: LbSetting
    workload: Workload
    rng_seed: Any  # a SeedSequence or an int: the shuffle stream and horizon
    source: str
    index: int = 0


def episodes(setting: str | LbSetting = "genet", n: int = 50, seed: int = 0, config: str | None = None,
             workloads: str | os.PathLike | None = None, genet_test_jobs: bool = False) -> list[Episode]:
    """The test episodes (see the module docstring). ``genet_test_jobs``: episode ``k`` gets the jobs Genet's
    ``rl_test.py`` draws for its episode ``k`` (``np.random.seed(100000000 + k)``, :data:`GENET_TEST_SEED`), the
    shuffles still come from ``seed``; not with ``config`` or ``workloads``."""
    base = named_setting(setting) if isinstance(setting, str) else setting
    if genet_test_jobs and (config is not None or workloads is not None):
        raise BadInputError("--genet-test-jobs draws Genet's own test episodes: not with --config or --workloads")
    if workloads is not None:
        out = []
        for path in list_workload_files(workloads):
            w = read_workload(path)
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
            ss = np.random.SeedSequence([int(seed), int(digest, 16) % (1 << 63)])
            out.append(Episode(w.name, base, w, ss, f"{base.name}:file:{digest}", len(out)))
        return out
    if isinstance(n, bool) or not 1 <= int(n) <= MAX_EPISODES:
        raise BadInputError(f"-n must be in 1..{MAX_EPISODES}, got {n}")
    space = None
    if config is not None:
        from traces.config_space import check_range_name, load_space
        check_range_name(config)
        space = load_space("lb")
    out = []
    width = max(4, len(str(int(n) - 1)))
    for k in range(int(n)):
        wl_ss, run_ss, cfg_ss = np.random.SeedSequence([int(seed), k]).spawn(3)
        s = base
        if space is not None:
            point = space.sample(np.random.default_rng(cfg_ss), config)
            s = setting_from_config(point, name=f"{config}-{k:0{width}d}", base=base)
        name = f"{config or base.name}-{k:0{width}d}"
        if genet_test_jobs:
            from traces.workload import generate_workload
            w = generate_workload(s.workload, GENET_TEST_SEED + k, name=name, legacy_seed=True)
        else:
            w = s.workload_for(np.random.default_rng(wl_ss), name=name)
        source = f"{base.name}:genet-test-jobs" if genet_test_jobs else f"{base.name}:{config or 'default'}"
        out.append(Episode(name, s, w, run_ss, source, k))
    return out


class SimulatedLb(Tier):
    """The simulator tier of ``genet eval lb``: a cell is a policy on one episode (``cell.data``: the
    :class:`Episode`); cells run in batches of :data:`BATCH_EPISODES` episodes of one policy (same setting
    workers), each batch yielded as one list. A journaled row stands for a cell with the same policy, episode
    name, seed and source."""

    name = "simulator"
    environment_field = "workload"

    def __init__(self, seed: int, policies: dict[str, str], deterministic: bool = False,
                 batch: int = BATCH_EPISODES) -> None:
        self.seed, self.deterministic, self.batch = int(seed), deterministic, max(1, int(batch))
        self.policies = policies  # label -> what --policy named (a registry name or an .onnx path)

    def key(self, cell: Cell):
        return (cell.policy, cell.environment, self.seed, cell.data.source)

    def record_key(self, record: dict):
        try:
            return (record["policy"], record["workload"], int(record["seed"]), record["source"])
        except (KeyError, TypeError, ValueError):
            return None

    def run(self, cells: list[Cell]):
        # chunks: consecutive cells of one policy and one worker count, cut at fixed episode indices
        chunks: list[list[Cell]] = []
        for cell in cells:
            last = chunks[-1] if chunks else None
            if (last and last[0].policy == cell.policy and len(last) < self.batch
                    and last[0].data.setting.n_workers == cell.data.setting.n_workers
                    and cell.data.index // self.batch == last[0].data.index // self.batch):
                last.append(cell)
            else:
                chunks.append([cell])
        for chunk in chunks:
            yield self.run_chunk(chunk)

    def run_chunk(self, chunk: list[Cell]) -> list[tuple[Cell, dict]]:
        from genet.lb.registry import make_policy
        first = chunk[0]
        eps = [c.data for c in chunk]
        chunk_start = first.data.index // self.batch * self.batch
        policy_seed = int(np.random.SeedSequence([self.seed, chunk_start, 7]).generate_state(1)[0])
        policy = make_policy(self.policies[first.policy], n_workers=first.data.setting.n_workers, seed=policy_seed,
                             deterministic=self.deterministic)
        # settings of a chunk may differ in rates and shuffle (config ranges): simulate per distinct setting
        out = []
        groups: dict = {}
        for cell, ep in zip(chunk, eps):
            groups.setdefault((ep.setting.service_rates, ep.setting.queue_shuffle_prob, ep.setting.event_order),
                              []).append((cell, ep))
        for members in groups.values():
            setting = members[0][1].setting
            results = simulate(policy, [ep.workload for _, ep in members], setting,
                               seeds=[np.random.default_rng(ep.rng_seed) for _, ep in members])
            for (cell, ep), res in zip(members, results):
                row = {"policy": cell.policy, "workload": ep.name, "seed": self.seed,
                       "source": ep.source, **summarize(res)}
                out.append((cell, row))
        order = {id(c): i for i, c in enumerate(chunk)}
        out.sort(key=lambda cr: order[id(cr[0])])
        return out


def evaluate_lb(policies: Sequence[str], eps: Sequence[Episode], out_dir: str | os.PathLike | None = None,
                seed: int = 0, *, deterministic: bool = False, progress: bool = False,
                batch: int = BATCH_EPISODES, on_row: Callable | None = None) -> Outcome:
    """Run every policy on every episode (rows in (policy, episode) order); with ``out_dir``, journal and
    write the outputs (the caller holds its run-folder lock). Returns the :class:`Outcome` (rows, reused, ran)."""
    from foundation.journal import Journal
    from genet.lb.registry import make_policy, policy_label
    labels = [policy_label(p) for p in policies]
    if len(set(labels)) != len(labels):
        raise BadInputError(f"--policy: two policies have the same label ({', '.join(labels)})")
    for p in policies:  # a bad name or file fails before anything runs
        make_policy(p, n_workers=eps[0].setting.n_workers if eps else 3, where="--policy")
    names = [e.name for e in eps]
    if len(set(names)) != len(names):
        raise BadInputError("two episodes have the same name (workload files with the same stem?)")
    cells = [Cell(label, e.name, 0, e) for label in labels for e in eps]
    journal = None
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        journal = Journal(out / "results.jsonl")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(cells), desc="genet eval lb", unit="episode")

    def _on_row(cell, row, reused):
        if bar is not None:
            bar.update()
        if on_row is not None:
            on_row(cell, row, reused)

    tier = SimulatedLb(seed, dict(zip(labels, map(str, policies))), deterministic, batch)
    outcome = Experiment(tier, journal, on_row=_on_row).run(cells)
    if bar is not None:
        bar.close()
    if out is not None:
        write_results(outcome.rows, out)
    return outcome


def summary_rows(rows: Sequence[dict]) -> list[dict]:
    from foundation.stats import mean_ci95
    out = []
    for policy in dict.fromkeys(r["policy"] for r in rows):
        mine = [r for r in rows if r["policy"] == policy]
        s: dict[str, Any] = {"policy": policy, "episodes": len(mine)}
        for col in COLUMN_NAMES:
            m, hw, _ = mean_ci95(r[col] for r in mine)
            s[col] = m
            s[f"{col}_ci95"] = hw
        rewards = np.array([r["reward"] for r in mine], float)
        s["reward_1e9"] = float(rewards.mean() / 1e9)
        s["reward_std_1e9"] = float(rewards.std() / 1e9)
        out.append(s)
    return out


def format_summary(summary: Sequence[dict]) -> str:
    head = (f"{'policy':<24} {'episodes':>8} {'reward/1e9 (mean ± std)':>24} {'mean completion (s)':>20} "
            f"{'p95 slowdown':>13} {'utilisation':>11}")
    lines = [head, "-" * len(head)]
    for s in summary:
        reward = f"{s['reward_1e9']:.3f} ± {s['reward_std_1e9']:.3f}"
        lines.append(f"{s['policy']:<24} {s['episodes']:>8d} {reward:>24} {s['mean_completion_time_s']:>20.2f} "
                     f"{s['p95_slowdown']:>13.2f} {s['mean_utilisation']:>11.3f}")
    return "\n".join(lines)


def write_results(rows: Sequence[dict], out: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(RESULT_FIELDS), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(out / "results.csv", buf.getvalue())
    summary = summary_rows(rows)
    if summary:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(summary[0]), lineterminator="\n")
        w.writeheader()
        for s in summary:
            w.writerow(s)
        atomic_write_text(out / "summary.csv", buf.getvalue())
    atomic_write_text(out / "summary.txt", format_summary(summary) + "\n")
    atomic_write_text(out / "results.json", json.dumps(list(rows), indent=1))


__all__ = ["Episode", "episodes", "SimulatedLb", "evaluate_lb", "summary_rows", "format_summary", "write_results",
           "BATCH_EPISODES", "MAX_EPISODES", "RESULT_FIELDS"]
