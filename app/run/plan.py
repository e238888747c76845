"""From a validated config (a frozen :class:`app.run.schema.RunConfig`) to the plan: stages of items, each item
the `genet` commands a user would type.

An :class:`Item` is one unit of work with its own folder (``RUN/<stage>/<item>/``), the steps that
make it (``genet`` argument lists run as subprocesses, or small in-process actions: copying a model,
picking a subset of traces, writing the report), the inputs its hash covers (its config section, its
commands) and the items it depends on (whose output hashes join its input hash at run time).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from foundation.config import thaw
from genet.agents.registry import AGENTS, DEFAULT_AGENT
from app.run import costs
from app.run.schema import STAGES, RunConfig, policy_agent

Step = list  # a `genet` argument list, or a callable(item) -> None (in-process action)


@dataclass
class Item:
    stage: str
    name: str
    folder: Path
    steps: list = field(default_factory=list)
    cleanup: list = field(default_factory=list)  # steps run after the others whatever happened
    inputs: dict = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)  # ids ("stage/name") of the items it reads
    est_s: float = 1.0  # seconds on one worker: ``work.serial_s`` where the item has a cost shape
    work: costs.Work | None = None  # what it costs, in which shape (app/run/costs.py, docs/cost-model.md)
    unavailable: str = ""  # why it cannot run in this build ("" = it can)
    reference: Path | None = None  # an external input (a trace folder, a model): hashed, nothing runs
    resume: Callable | None = None  # resume(item) -> steps to run when continuing a killed attempt
    data: Path | None = None  # what downstream items read (a trace folder, an ONNX file)

    def __post_init__(self):
        if self.work is not None:
            self.est_s = self.work.serial_s

    @property
    def id(self) -> str:
        return f"{self.stage}/{self.name}"

    def cost(self) -> costs.Work:
        """Its cost shape: ``work``, else one task of ``est_s`` seconds."""
        return self.work if self.work is not None else costs.single(self.name, self.est_s)


def registered(*path: str) -> bool:
    """Whether ``genet PATH...`` is a command (or command group) of this build, from the commands'
    declarations (app/cli.py :func:`~app.cli.commands`; no parser is built)."""
    from app.cli import commands
    return commands().registered(*path)


def not_available(*path: str) -> str:
    return f"not available in this build (`genet {' '.join(path)}` is not registered)"


def hash_tree(path: Path) -> str:
    """SHA-256 over a file, or over a folder's files (relative path and content, sorted)."""
    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def command_text(step: list[str]) -> str:
    return "genet " + " ".join(shlex.quote(str(a)) for a in step)


def _count_traces(path: Path | None, fallback: int) -> int:
    if path is None or not path.exists():
        return fallback
    try:
        from traces.io import list_trace_files
        return len(list_trace_files(path)) if path.is_dir() else 1
    except Exception:  # noqa: BLE001 - an estimate only; the command reports bad traces itself
        return fallback


def spread_pick(files: list[Path], n: int) -> list[Path]:
    """``n`` of ``files`` (sorted by path) taken in turn from each folder: the first of every folder, then the
    second, ... — so a set of many measurement paths (Pantheon's) yields many paths, not ``n`` runs of the first
    one. A flat folder gives its first ``n``."""
    groups: dict[Path, list[Path]] = {}
    for f in files:
        groups.setdefault(f.parent, []).append(f)
    out: list[Path] = []
    rank = 0
    while len(out) < n and any(rank < len(g) for g in groups.values()):
        out += [g[rank] for g in groups.values() if rank < len(g)][:n - len(out)]
        rank += 1
    return out


def _pick(src_item: Item, n: int, how: str = "spread") -> Callable:
    def action(item: Item) -> None:
        from traces.io import list_trace_files
        src = src_item.data
        files = list_trace_files(src) if src.is_dir() else [src]
        tmp = item.folder.with_name(item.folder.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        chosen = spread_pick(files, n) if how == "spread" else files[:n]
        for f in chosen:
            rel = f.relative_to(src) if src.is_dir() else Path(f.name)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, tmp / rel)
        shutil.rmtree(item.folder, ignore_errors=True)
        os.replace(tmp, item.folder)
        print(f"picked {len(chosen)} of {len(files)} trace files of {src} ({how}) into {item.folder}")
    action.describe = (f"copy {n} trace files of trace set {src_item.name}, in turn from each of its folders"
                       if how == "spread" else f"copy the first {n} trace files (sorted by path) of trace set "
                                               f"{src_item.name}")
    return action


#: In a trace set's folder: where its traces came from (`traces.datasets.DatasetSource`), read by the report.
SOURCE_FILE = "SOURCE.json"


def _obtain_dataset(s: Any, seed: int, folder: Path) -> Callable:
    def action(item: Item) -> None:
        import json
        from foundation.atomic import atomic_write_text
        from traces.datasets import obtain_dataset
        src = obtain_dataset(s.dataset, folder, base_url=s.base_url or None, n_synthetic=s.n,
                             synthetic_range=s.range, seed=s.seed if s.seed is not None else seed)
        atomic_write_text(folder / SOURCE_FILE, json.dumps(src.as_dict(), indent=1) + "\n")
        print(f"trace set {item.name}: {src.detail}")
    action.describe = (f"public set {s.dataset}: download it (unless GENET_OFFLINE=1), else the shipped sample "
                       f"(traces/samples/{s.dataset}), else {s.n} synthetic traces")
    return action


def _copy_model(src: Path, dst: Path) -> Callable:
    def action(item: Item) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst.with_suffix(".onnx.part"))
        os.replace(dst.with_suffix(".onnx.part"), dst)
        meta = src.with_suffix(".json")
        if meta.is_file():
            shutil.copyfile(meta, dst.with_suffix(".json"))
        print(f"using {src} (training skipped) as {dst}")
    action.describe = f"copy {src} (use = ..., training skipped)"
    return action


def _train_work(uc: str, p: Any) -> costs.Work:
    """Start-up plus steps at the shipped models' measured rates (models/*/*.json: ABR ~10 k steps/s with 32
    environments, CC ~8 k steps/s, LB ~15 k steps/s), plus the curriculum's BO trials (app/run/costs.py)."""
    return costs.train_work(uc, p.steps, p.n_envs, p.method, p.rounds, p.trials, getattr(p, "random_trials", None),
                            p.envs_per_trial, _trial_batch(p.extra_args))


def _trial_batch(extra_args: Any) -> int:
    """``--trial-batch K`` of a policy's extra_args (1: not given)."""
    args = [str(a) for a in (extra_args or ())]
    for k, a in enumerate(args):
        if a.startswith("--trial-batch=") and a.split("=", 1)[1].isdigit():
            return max(1, int(a.split("=", 1)[1]))
        if a == "--trial-batch" and k + 1 < len(args) and args[k + 1].isdigit():
            return max(1, int(args[k + 1]))
    return 1


def _agent_has_workers(p: Any) -> bool:
    """Whether the policy's agent runs its rollouts on rollout workers (`--ray-address`; the registry's
    ``workers``): the others refuse the option."""
    return bool(AGENTS.get(policy_agent(p)).attributes.get("workers", True))


def build(cfg: RunConfig, run_dir: Path) -> dict[str, list[Item]]:
    """The plan: for each stage (in order), its items."""
    run_dir = Path(run_dir)
    plan: dict[str, list[Item]] = {s: [] for s in STAGES}
    seed = cfg.run.seed
    sets = _trace_items(cfg.traces, run_dir, seed)
    plan["traces"] = [sets[n] for n in cfg.traces]
    n_traces = _trace_counts(cfg.traces, sets)
    for uc, u in (("abr", cfg.abr), ("cc", cfg.cc), ("lb", cfg.lb)):
        if u is None:
            continue
        train, models = _train_export_items(uc, u, sets, run_dir, seed)
        plan["train"] += train
        plan["export"] += models.values()
        if uc == "lb":  # episode sources and generated workloads, not trace sets
            plan["simulate"] += _lb_simulate_items(u, models, run_dir, seed)
            plan["emulate"] += _lb_emulate_items(u, models, run_dir, seed)
        else:
            plan["simulate"] += _simulate_items(uc, u, sets, models, n_traces, run_dir)
            plan["emulate"] += _emulate_items(uc, u, sets, models, n_traces, run_dir)
        if u.deploy.enabled:
            plan["deploy"].append(_deploy_item(uc, u, cfg.deploy, models, run_dir, seed))
    if cfg.cluster.address:  # where the steps that can fan out run (not hashed: app/run/engine.py)
        where = ["--ray-address", cfg.cluster.address]
        # the trainings of agents that step their sessions in their own process (they refuse --ray-address)
        local_training = {f"{uc}-{n}" for uc in ("abr", "cc", "lb") if getattr(cfg, uc) is not None
                          for n, p in getattr(cfg, uc).policies.items() if not p.use and not _agent_has_workers(p)}
        for item in plan["train"] + plan["simulate"] + plan["emulate"]:
            if item.stage == "train" and item.name in local_training:
                continue
            if item.stage == "train" or item.name.startswith("cc-") or (item.stage == "emulate"
                                                                        and item.name.startswith("abr-")):
                item.steps = [s + where for s in item.steps]
                if item.resume is not None:
                    item.resume = lambda it, _r=item.resume: [s + where for s in _r(it)]
    plan["report"].append(_report_item(cfg, plan, run_dir))
    return plan


# traces ------------------------------------------------------------------------------------------
def _trace_items(traces: Any, run_dir: Path, seed: int) -> dict[str, Item]:
    """The trace sets' items by name (``traces``: ``cfg.traces``): the `from` sets after the sets they take from."""
    sets: dict[str, Item] = {}
    for name, s in traces.items():
        if not s.from_:
            sets[name] = _trace_item(name, s, run_dir / "traces" / name, seed)
    for name, s in traces.items():
        if s.from_:
            src = sets[s.from_]
            folder = run_dir / "traces" / name
            sets[name] = Item("traces", name, folder, steps=[_pick(src, s.n, s.pick)], deps=[src.id], data=folder,
                              est_s=0.5, inputs={"config": s})
    return sets


def _trace_item(name: str, s: Any, folder: Path, seed: int) -> Item:
    """A `path`, `gen`, `dataset` or `fetch` set."""
    if s.path:
        path = Path(s.path)
        return Item("traces", name, path, reference=path, data=path, est_s=0.1, inputs={"path": str(path)})
    if s.gen:
        argv = ["traces", "gen", s.gen, "--range", s.range, "-n", str(s.n), "--seed",
                str(s.seed if s.seed is not None else seed), "-o", str(folder), "--format", s.format]
        return Item("traces", name, folder, steps=[argv], data=folder, est_s=2 + 0.05 * s.n, inputs={"config": s})
    if s.dataset:
        from traces.datasets import find_full_copy
        local = find_full_copy(s.dataset)
        if local is not None:  # a full local copy: used in place, as a `path` set
            return Item("traces", name, local, reference=local, data=local, est_s=0.1, inputs={"path": str(local)})
        return Item("traces", name, folder, steps=[_obtain_dataset(s, seed, folder)], data=folder / s.dataset,
                    est_s=15, inputs={"config": s})
    argv = ["traces", "fetch", s.fetch, "--dest", str(folder)]
    if s.base_url:
        argv += ["--base-url", s.base_url]
    return Item("traces", name, folder, steps=[argv], data=folder / s.fetch, est_s=15, inputs={"config": s})


def _trace_counts(traces: Any, sets: dict[str, Item]) -> dict[str, int]:
    """Traces per set, for the estimates (a set not made yet: its `n`; an unreadable one: 100)."""
    return {n: (traces[n].n if (traces[n].gen or traces[n].from_) else _count_traces(s.data, 100))
            for n, s in sets.items()}


# train, export -----------------------------------------------------------------------------------
def _train_export_items(uc: str, u: Any, sets: dict[str, Item], run_dir: Path,
                        seed: int) -> tuple[list[Item], dict[str, Item]]:
    """(train items, export items by policy name) of a use case's policies (``u``: ``cfg.abr``, ``cfg.cc`` or
    ``cfg.lb``); a `use` policy is only copied."""
    train: list[Item] = []
    models: dict[str, Item] = {}
    for pname, p in u.policies.items():
        onnx = run_dir / "export" / f"{uc}-{pname}" / f"{pname}.onnx"
        if p.use:
            src = Path(p.use)
            models[pname] = Item("export", f"{uc}-{pname}", onnx.parent, steps=[_copy_model(src, onnx)], data=onnx,
                                 inputs={"use": str(src), "sha256": hash_tree(src)}, est_s=0.2)
            continue
        tr = _train_item(uc, pname, p, sets, run_dir / "train" / f"{uc}-{pname}", seed)
        train.append(tr)
        models[pname] = Item("export", f"{uc}-{pname}", onnx.parent,
                             steps=[["export", str(tr.folder), "-o", str(onnx)]], deps=[tr.id], data=onnx, est_s=6)
    return train, models


def _train_item(uc: str, pname: str, p: Any, sets: dict[str, Item], folder: Path, seed: int) -> Item:
    """`genet train` of one policy; a killed attempt continues with `--resume`."""
    argv = ["train", uc, *agent_args(p), "--method", p.method, "--range", p.range, "--steps", str(p.steps),
            "--seed", str(p.seed if p.seed is not None else seed), "--out", str(folder),
            "--no-progress", "--torch-threads", str(p.torch_threads)]
    for key in ("baseline", "rounds", "trials", "random_trials", "envs_per_trial", "real_prob",
                "n_envs", "steps_per_update"):
        if getattr(p, key, None) not in (None, ""):  # (LB's policies have no real_* keys)
            argv += ["--" + key.replace("_", "-"), str(getattr(p, key))]
    deps = []
    if getattr(p, "real_traces", ()):
        argv += ["--real-traces", ",".join(str(sets[t].data) for t in p.real_traces)]
        deps = [sets[t].id for t in p.real_traces]
    argv += p.extra_args

    def resume(item: Item, _argv=argv) -> list:
        return [_argv + ["--resume"]] if (item.folder / "run.json").is_file() else [_argv]

    inputs: dict = {"config": recipe(p)}
    if getattr(p, "pool", ()):  # dt's experience pools: their content, not only their paths
        inputs["pool_sha256"] = [hash_tree(Path(f)) for f in p.pool]
    return Item("train", f"{uc}-{pname}", folder, steps=[argv], deps=deps, resume=resume,
                work=_train_work(uc, p), inputs=inputs)


#: A trained policy's agent keys (app/run/schema.py `_agent_keys`) and their defaults: at its default a key adds
#: nothing to the command nor to the hash, so the runs of configs written before the keys existed stay current.
AGENT_DEFAULTS = {"agent": DEFAULT_AGENT, "teacher": "", "pool": (), "target_return": None}


def agent_args(p: Any) -> list[str]:
    """`genet train`'s agent options of a policy's recipe: none for ppo (its commands as before the keys)."""
    argv: list[str] = []
    if policy_agent(p) != DEFAULT_AGENT:
        argv += ["--agent", policy_agent(p)]
    if getattr(p, "teacher", ""):
        argv += ["--teacher", p.teacher]
    if getattr(p, "pool", ()):
        argv += ["--pool", ",".join(str(f) for f in p.pool)]
    if getattr(p, "target_return", None) is not None:
        argv += ["--target-return", repr(float(p.target_return))]
    return argv


def recipe(p: Any) -> dict:
    """A policy's table as plain data, less its agent keys at their defaults (what its train item's hash covers)."""
    data = thaw(p)
    for key, default in AGENT_DEFAULTS.items():
        if key in data and (data[key] == default or (default == () and not data[key])):
            del data[key]
    return data


# simulate, emulate -------------------------------------------------------------------------------
def _chosen(models: dict[str, Item], baselines: tuple[str, ...], names: tuple[str, ...],
            drop_optimal: bool) -> tuple[list[Item], list[str]]:
    """(model items, --policy values) of a stage: the names given, else every policy and baseline."""
    names = names or (list(models) + [b for b in baselines if not (drop_optimal and b == "optimal")])
    return [models[n] for n in names if n in models], [str(models[n].data) if n in models else n for n in names]


def _simulate_items(uc: str, u: Any, sets: dict[str, Item], models: dict[str, Item], n_traces: dict[str, int],
                    run_dir: Path) -> list[Item]:
    """`genet eval` of the chosen policies on each trace set."""
    sim = u.simulate
    if not sim.enabled:
        return []
    items = []
    for t in sim.traces:
        folder = run_dir / "simulate" / f"{uc}-{t}"
        model_items, pols = _chosen(models, u.baselines, sim.policies, False)
        argv = ["eval", uc, "--traces", str(sets[t].data), "--policy", ",".join(pols), "--out", str(folder),
                "--no-progress"]
        if uc == "abr":
            if u.video:
                argv += ["--video", u.video]
            if sim.compat:
                argv += ["--compat", sim.compat]
        else:
            if sim.delay_ms is not None:
                argv += ["--delay-ms", f"{sim.delay_ms:g}"]
            if sim.queue_packets is not None:
                argv += ["--queue-packets", str(sim.queue_packets)]
        items.append(Item("simulate", f"{uc}-{t}", folder, steps=[argv],
                          deps=[sets[t].id] + [m.id for m in model_items],
                          work=costs.simulate_work(uc, n_traces[t] * len(pols)), inputs={"config": _own(sim)}))
    return items


def _emulate_items(uc: str, u: Any, sets: dict[str, Item], models: dict[str, Item], n_traces: dict[str, int],
                   run_dir: Path) -> list[Item]:
    """`genet emulate` of the chosen policies (all but `optimal` by default) on each trace set."""
    emu = u.emulate
    if not emu.enabled:
        return []
    avail = "" if registered("emulate", uc) else not_available("emulate", uc)
    items = []
    for t in emu.traces:
        folder = run_dir / "emulate" / f"{uc}-{t}"
        model_items, pols = _chosen(models, u.baselines, emu.policies, True)
        argv = ["emulate", uc, "--policy", ",".join(pols), "--traces", str(sets[t].data), "--out", str(folder),
                "--backend", emu.backend, "--repeats", str(emu.repeats), "--jobs", str(emu.jobs)]
        argv += _emulate_options(uc, emu)
        sessions = n_traces[t] * len(pols) * emu.repeats
        run_s = (4.0 * (emu.chunks or 49) + 5) if uc == "abr" else (emu.duration_s or 30.0)
        items.append(Item("emulate", f"{uc}-{t}", folder, steps=[argv], unavailable=avail,
                          deps=[sets[t].id] + [m.id for m in model_items],
                          work=costs.emulate_work(sessions, run_s, emu.jobs), inputs={"config": _own(emu)}))
    return items


def _lb_simulate_items(u: Any, models: dict[str, Item], run_dir: Path, seed: int) -> list[Item]:
    """`genet eval lb` of the chosen policies: one item per episode source (``lb-default``, ``lb-rl1``, ...,
    ``lb-workloads``)."""
    sim = u.simulate
    if not sim.enabled:
        return []
    model_items, pols = _chosen(models, u.baselines, sim.policies, False)
    sources = [(c, ["-n", str(sim.n)] + ([] if c == "default" else ["--config", c]), sim.n) for c in sim.configs]
    if sim.workloads:
        sources.append(("workloads", ["--workloads", sim.workloads], 100))
    items = []
    for name, source, n in sources:
        folder = run_dir / "simulate" / f"lb-{name}"
        argv = ["eval", "lb", "--policy", ",".join(pols), *source, "--setting", sim.setting, "--seed",
                str(sim.seed if sim.seed is not None else seed), "--out", str(folder), "--no-progress"]
        items.append(Item("simulate", f"lb-{name}", folder, steps=[argv], deps=[m.id for m in model_items],
                          work=costs.simulate_work("lb", n * len(pols)), inputs={"config": _own(sim)}))
    return items


def _lb_emulate_items(u: Any, models: dict[str, Item], run_dir: Path, seed: int) -> list[Item]:
    """`genet emulate lb` of the chosen policies on ``n`` generated workloads (item ``lb-generated``)."""
    emu = u.emulate
    if not emu.enabled:
        return []
    avail = "" if registered("emulate", "lb") else not_available("emulate", "lb")
    model_items, pols = _chosen(models, u.baselines, emu.policies, False)
    folder = run_dir / "emulate" / "lb-generated"
    argv = ["emulate", "lb", "--policy", ",".join(pols), "-n", str(emu.n), "--seed",
            str(emu.seed if emu.seed is not None else seed), "--num-jobs", str(emu.jobs), "--job-interval-ms",
            f"{emu.job_interval_ms:g}", "--job-size-max-work", f"{emu.job_size_max_work:g}", "--rates",
            emu.service_rates.replace(" ", ""), "--delay-ms", f"{emu.delay_ms:g}", "--client-delay-ms",
            f"{emu.delay_ms:g}", "--backend", emu.backend, "--repeats", str(emu.repeats), "--time-unit-ms",
            f"{emu.time_unit_ms:g}", "--out", str(folder), *emu.extra_args]
    work = costs.lb_emulate_work(emu.n * len(pols) * emu.repeats, _lb_run_s(emu))
    return [Item("emulate", "lb-generated", folder, steps=[argv], unavailable=avail, deps=[m.id for m in model_items],
                 work=work, inputs={"config": _own(emu)})]


def _lb_run_s(t: Any) -> float:
    """Seconds of one LB run of an emulate or deploy table: the arrivals, then the expected work drained by all
    the workers (in wall-clock time)."""
    rates = [float(x) for x in t.service_rates.split(",")]
    mean_size = (min(10.0, t.job_size_max_work) + t.job_size_max_work) / 2
    return (t.jobs * t.job_interval_ms + t.jobs * mean_size / sum(rates)) * t.time_unit_ms / 1000.0


def _emulate_options(uc: str, emu: Any) -> list[str]:
    """The `genet emulate` options an emulate table sets, then its extra_args."""
    argv: list[str] = []
    if emu.delay_ms is not None:
        argv += ["--delay-ms", f"{emu.delay_ms:g}"]
    if uc == "cc" and emu.queue_packets is not None:
        argv += ["--queue-packets", str(emu.queue_packets)]
    if uc == "cc" and emu.duration_s is not None:
        argv += ["--duration-s", f"{emu.duration_s:g}"]
    if uc == "cc" and emu.clock != "ms":
        argv += ["--clock", emu.clock]
    if uc == "abr" and emu.video:
        argv += ["--video", emu.video]
    if uc == "abr" and emu.chunks is not None:
        argv += ["--chunks", str(emu.chunks)]
    return argv + list(emu.extra_args)


# deploy ------------------------------------------------------------------------------------------
def _deploy_item(uc: str, u: Any, dep_cfg: Any, models: dict[str, Item], run_dir: Path, seed: int) -> Item:
    """A use case's campaign: its file written (unless given), the hosts (the inventory, else a local testbed
    brought up, and down after), `genet deploy push`, `run`, `report`. ``dep_cfg``: ``cfg.deploy``."""
    d = u.deploy
    folder = run_dir / "deploy" / uc
    names = list(d.schemes) or (list(models) + [b for b in u.baselines if b != "optimal"])
    schemes = [str(models[n].data) if n in models else n for n in names]
    need = [("deploy", "push"), ("deploy", "run"), ("deploy", "report")] + ([] if dep_cfg.inventory else [("deploy", "testbed")])
    missing = [p for p in need if not registered(*p)]
    avail = not_available(*missing[0]) if missing else ""
    testbed = run_dir / "deploy" / f"testbed-{uc}"  # beside the item's folder: survives its clearing
    campaign = Path(d.campaign) if d.campaign else folder / "campaign.toml"
    steps: list = [] if d.campaign else [_write_campaign(campaign, uc, schemes, d, seed)]
    inventory, host_steps, cleanup = _deploy_hosts(dep_cfg, testbed)
    steps += host_steps
    steps += _push_steps(dep_cfg, inventory, run_dir / "deploy" / "wheelhouse",
                         [models[n].data.parent for n in names if n in models])
    steps.append(["deploy", "run", str(campaign), "--inventory", inventory, "--out", str(folder / "campaign")]
                 + list(dep_cfg.run_args))
    steps.append(["deploy", "report", str(folder / "campaign")])
    return Item("deploy", uc, folder, steps=steps, cleanup=cleanup, unavailable=avail,
                deps=[m.id for m in models.values()], work=_deploy_work(uc, d, len(schemes)),
                inputs={"config": d, "deploy": dep_cfg, "schemes": names,
                        "campaign_sha256": hash_tree(campaign) if d.campaign else ""})


def _deploy_hosts(dep_cfg: Any, testbed: Path) -> tuple[str, list, list]:
    """(inventory file, steps, cleanup steps): the inventory given, else a local testbed in ``testbed`` (one a
    killed run left taken down first)."""
    if dep_cfg.inventory:
        return dep_cfg.inventory, [], []
    up = ["deploy", "testbed", "up", "--hosts", str(dep_cfg.testbed_hosts), "--out", str(testbed)]
    if dep_cfg.testbed_paths:
        up += ["--paths", dep_cfg.testbed_paths]
    return (str(testbed / "inventory.toml"), [_down_leftover_testbed(testbed), up],
            [["deploy", "testbed", "down", "--out", str(testbed)]])


def _push_steps(dep_cfg: Any, inventory: str, wh: Path, model_dirs: list[Path]) -> list:
    """`genet deploy push` of genet and the models, after gathering a wheelhouse into ``wh`` where one is needed."""
    steps: list = []
    push = ["deploy", "push", inventory]
    wheelhouse = dep_cfg.wheelhouse
    if wheelhouse == "auto" and not dep_cfg.inventory:
        steps.append(_gather_wheelhouse(wh))
        push += ["--wheelhouse", str(wh)]
    elif wheelhouse not in ("", "auto"):
        push += ["--wheelhouse", wheelhouse]
    for m in model_dirs:
        push += ["--models", str(m)]
    return steps + [push + list(dep_cfg.push_args)]


def _deploy_work(uc: str, d: Any, n_schemes: int) -> costs.Work:
    """Set-up, then every scheme on each of (about) 3 paths per repetition, back to back."""
    if uc == "lb":
        session_s = _lb_run_s(d)
    else:
        session_s = (4.0 * d.chunks + 8.0 if d.chunks else 200.0) if uc == "abr" else d.duration_s
    return costs.deploy_work(uc, session_s, n_schemes, d.repetitions, getattr(d, "parallel", "none"))


# report ------------------------------------------------------------------------------------------
def _what_it_computes(cfg: RunConfig) -> dict:
    """The config less ``[run] jobs`` (how many items run at once is not part of what the run computes: changing
    it redoes nothing)."""
    data = thaw(cfg)
    data["run"].pop("jobs", None)
    for uc in ("abr", "cc", "lb"):
        if data.get(uc):
            data[uc]["policies"] = {n: recipe(p) for n, p in getattr(cfg, uc).policies.items()}
    return data


def _report_item(cfg: RunConfig, plan: dict[str, list[Item]], run_dir: Path) -> Item:
    """The report, after every item that can run in this build."""
    from app.run.report import write_report_action
    return Item("report", "report", run_dir / "report", steps=[write_report_action],
                deps=[i.id for s in STAGES[:-1] for i in plan[s] if not i.unavailable],
                est_s=5, inputs={"config": _what_it_computes(cfg),
                                 "report_code": hash_tree(Path(__file__).with_name("report.py")),
                                 "unavailable": [i.id for s in STAGES for i in plan[s] if i.unavailable]})


def _own(section: Any) -> dict:
    """The keys of a stage table that shape one item: not the lists of other items (the trace sets, the
    policies: the item's own set and policies are in its command), so adding a set redoes nothing else."""
    return {k: v for k, v in thaw(section).items() if k not in ("traces", "policies", "enabled")}


def _gather_wheelhouse(wh: Path) -> Callable:
    """The runtime dependencies of genet's wheel, downloaded here (the testbed's hosts reach no package index)."""
    def action(item: Item) -> None:
        import subprocess
        import sys
        import tempfile
        if (wh / ".complete").is_file():
            print(f"reusing the wheelhouse {wh}")
            return
        from deploy.push import build_wheel
        with tempfile.TemporaryDirectory(prefix="genet-run-wheel-") as tmp:
            wheel = build_wheel(Path(tmp))
            part = wh.with_name(wh.name + ".part")
            shutil.rmtree(part, ignore_errors=True)
            done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d",
                                   str(part), str(wheel)], capture_output=True, text=True, timeout=1200)
            if done.returncode != 0:
                raise RuntimeError(f"pip download of genet's runtime dependencies failed: "
                                   f"{(done.stderr or done.stdout).strip()[-400:]}")
        for w in part.glob("genet_testbed-*"):
            w.unlink()  # `genet deploy push` builds and sends genet's own wheel
        (part / ".complete").write_text("")
        shutil.rmtree(wh, ignore_errors=True)
        os.replace(part, wh)
        print(f"gathered {len(list(wh.glob('*.whl')))} wheels into {wh}")
    action.describe = f"gather genet's runtime wheels into {wh} (pip download; once)"
    return action


def _down_leftover_testbed(testbed: Path) -> Callable:
    """A killed run can leave its testbed up (namespaces, sshd): take it down before bringing up a new one."""
    def action(item: Item) -> None:
        import subprocess
        import sys
        if (testbed / "testbed-plan.json").is_file():
            done = subprocess.run([sys.executable, "-m", "app.cli", "deploy", "testbed", "down", "--out", str(testbed)],
                                  capture_output=True, text=True, timeout=300)
            print(f"took down the testbed a killed run left in {testbed} (exit status {done.returncode})")
            print(done.stdout + done.stderr)
    action.describe = f"take down a testbed left in {testbed} by a killed run, if any"
    return action


def _write_campaign(path: Path, uc: str, schemes: list[str], d: Any, seed: int) -> Callable:
    """The campaign file of `genet deploy run` (deploy/config.py), from the use case's deploy table."""
    def action(item: Item) -> None:
        from foundation.atomic import atomic_write_text
        from foundation.tomlfile import toml_string as q
        lines = ["# written by `genet run` from the run config's deploy table", f"use_case = {q(uc)}",
                 "schemes = [" + ", ".join(q(s) for s in schemes) + "]", f"repetitions = {d.repetitions}",
                 f"seed = {d.seed if d.seed is not None else seed}"]
        if uc == "cc":
            lines.append(f"duration_s = {d.duration_s:g}")
        if d.paths:
            lines.append("paths = [" + ", ".join(q(s) for s in d.paths) + "]")
        if uc == "abr" and d.video:
            lines.append(f"video = {q(d.video)}")
        if uc == "abr" and d.chunks is not None:
            lines.append(f"chunks = {d.chunks}")
        if uc == "lb":
            lines += [f"service_rates = {q(d.service_rates)}", f"jobs = {d.jobs}",
                      f"job_interval_ms = {d.job_interval_ms!r}", f"job_size_max_work = {d.job_size_max_work!r}",
                      f"workload_seed = {d.workload_seed}", f"time_unit_ms = {d.time_unit_ms!r}"]
        if d.timeout_s is not None:
            lines.append(f"timeout_s = {d.timeout_s:g}")
        atomic_write_text(path, "\n".join(lines) + "\n")
        print(f"wrote the campaign {path}")
    action.describe = f"write the campaign file {path}"
    return action
