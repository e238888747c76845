"""The one definition of a ``genet run`` config: every key, its type, unit, default and allowed values.

:data:`SCHEMA` drives validation (:func:`validate`), the defaults the plan reads, and the reference
page ``docs/run-config.md`` (:func:`render_markdown`; a test checks the page is this rendering).
The keys are declared with, and checked by, the one config validator (:mod:`foundation.config`: :class:`Key`,
:class:`Table`, :func:`~foundation.config.fill`); this module adds the checks between sections (trace-set references,
policy names, paths that must exist). Errors are :class:`ConfigError` (:class:`foundation.config.ConfigError`, a
:class:`foundation.errors.BadInputError`) naming the file, the key (``[abr.emulate] delay_ms``) and what is allowed.

A checked config is a :class:`RunConfig`: frozen dataclasses made from :data:`SCHEMA` by
:func:`foundation.config.freeze` (``cfg.abr.simulate.traces``, a tuple; ``cfg.traces["t"].from_`` for the key
``from``; ``cfg.traces`` and ``cfg.abr.policies`` are read-only mappings NAME -> table; a use case left out is
``None``). :func:`foundation.config.thaw` gives the plain data back (the run folder's ``config.json``), and
:func:`load_saved` reads that file back as a :class:`RunConfig`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from deploy.config import TESTBED_HOSTS_MAX
from foundation.config import (CHUNKS_MAX, DELAY_MAX_MS, NAME_HELP, NAME_RE, RATE_MAX_MBPS, RUN_MAX_S, SEED_MAX,
                               ConfigError, Key, Table, config_class, fill, freeze, markdown, read)
from foundation.errors import BadInputError
from foundation.tomlfile import show
from genet.agents.registry import (AGENTS, DEFAULT_AGENT, DEFAULT_STEPS, DEFAULT_TEACHERS, TEACHERS,
                                  trainer_module, trains, uses_teacher)
from genet.train_cli import METHODS, RANGES, TRAIN_USE_CASES

__all__ = ["FAN_OUT_STAGES", "RUN_JOBS_MAX",
           "SCHEMA", "STAGES", "ConfigError", "Key", "RunConfig", "Table", "load", "load_saved", "policy_agent",
           "render_markdown", "resolve_path", "validate"]

COUNT_MAX = 10_000        # BO trials, environments per trial
QUEUE_MAX_PACKETS = 100_000
CONST_MAX_MBPS = RATE_MAX_MBPS  # const:MBPS baselines (as `genet deploy run`'s campaigns)
RUN_JOBS_MAX = 64         # `genet run --jobs`, `[run] jobs`: items of a stage at once
#: the stages whose items `genet run --jobs N` runs N at once (app/run/engine.py); the others one after another
FAN_OUT_STAGES = ("train", "export", "simulate")


def train_methods(use_case: str) -> tuple[str, ...]:
    """The `--method`s `genet train USE_CASE` accepts (genet/train_cli.py: the methods less the use case's
    `unavailable` ones; today every use case takes all five)."""
    unavailable = dict(TRAIN_USE_CASES[use_case].unavailable)
    return tuple(m for m in METHODS if m not in unavailable)


#: LB: the baselines of genet.lb.registry (genet/lb/usecase.py `baselines`), the episodes `genet eval lb` draws.
LB_BASELINES = ("least_work", "sed", "jsq", "power_of_two", "round_robin", "random")
LB_CONFIGS = ("default",) + RANGES
LB_EPISODES_MAX = 100_000   # genet/lb/evaluate.py MAX_EPISODES
LB_JOBS_MAX = 1_000_000     # traces/workload.py MAX_WORKLOAD_JOBS
LB_RATES_PATTERN = r"[0-9.eE+]+( *, *[0-9.eE+]+)*"
LB_RATES_HELP = "comma-separated positive numbers, e.g. 0.5,1,2"


def _lb_workload_keys(jobs: int, job_size_max_work: float, where: str) -> dict:
    """The workload and workers of an LB stage (`genet emulate lb`, an LB campaign)."""
    return {
        "jobs": Key("int", jobs, f"jobs of each generated workload ({where}; Genet's episodes: 2000)", unit="count",
                    minimum=1, maximum=LB_JOBS_MAX),
        "job_interval_ms": Key("float", 100.0, "mean inter-arrival time of the jobs (Genet: 100)", unit="ms",
                               minimum=0, min_exclusive=True, maximum=1e6),
        "job_size_max_work": Key("float", job_size_max_work, "largest job size: sizes uniform on [10, this] "
                                                             "(Genet: 10000, which overloads Genet's workers)",
                                 unit="work units", minimum=1, maximum=1e7),
        "service_rates": Key("str", "0.5,1,2", "the workers' service rates, comma-separated: one worker each "
                                               "(1-64; Genet: 0.5,1,2)", unit="work units/ms",
                             pattern=LB_RATES_PATTERN, pattern_help=LB_RATES_HELP),
        "time_unit_ms": Key("float", 1.0, "wall-clock ms per workload ms (0.5: twice as fast as real time)",
                            unit="ms", minimum=0, min_exclusive=True, maximum=1000),
    }


def _lb() -> Table:
    """The `[lb]` table: load balancing (genet/lb, balancer/)."""
    return Table(help="The LB (load balancing) use case (omit the table to leave it out). Headline column: "
                      "`mean_completion_time_s`; the LB table: reward (ms x jobs), mean completion time, p95 slowdown, "
                      "mean utilisation (genet/lb/metrics.py).", optional=True, keys={
        "baselines": Key("list[str]", ["least_work", "round_robin"], "rule-based LB baselines run beside the "
                                                                     "policies: " + ", ".join(LB_BASELINES),
                         allowed=LB_BASELINES),
        "policies": _policies("lb", real_traces=False),
        "simulate": Table(help="`genet eval lb`: one item per episode source (the default setting, a config-space "
                               "range, a folder of workload files).", keys={
            "enabled": Key("bool", True, "run this stage for this use case"),
            "configs": Key("list[str]", ["default"], "episode sources, one item each: `default` (the `setting` "
                                                      "itself) or a range of traces/spaces/lb.json (rl1, rl2, rl3: "
                                                      "each episode draws its setting from it)", allowed=LB_CONFIGS),
            "workloads": Key("path", "", "a folder of `*.workload` files (traces/workload.py): one more item, one "
                                         "episode per file"),
            "setting": Key("str", "genet", "the workers and jobs: genet (3 workers at 0.5, 1, 2, 2000 jobs) or park "
                                           "(Park's 10 workers)", allowed=("genet", "park")),
            "n": Key("int", 20, "episodes per item (not with `workloads`)", unit="count", minimum=1,
                     maximum=LB_EPISODES_MAX),
            "seed": Key("int", None, "seed of the episodes (not given: `[run] seed`)", minimum=0, maximum=SEED_MAX),
            "policies": Key("list[str]", [], "policy names and baselines to evaluate (not given: all of them)"),
        }),
        "emulate": Table(help="`genet emulate lb`: a real balancer and real worker servers in network namespaces "
                              "joined by emulated links (root; `backend = \"loopback\"`: on 127.0.0.1, no root), "
                              "beside the simulator (`sim_*`).", keys={
            "enabled": Key("bool", True, "run this stage for this use case"),
            "policies": Key("list[str]", [], "policy names and baselines to run (not given: all of them)"),
            "n": Key("int", 2, "workloads generated (seeds `seed`, `seed`+1, ...); every policy runs on each; each "
                               "run lasts its workload in real time", unit="count", minimum=1, maximum=1000),
            "seed": Key("int", None, "first workload seed, and the policies' (not given: `[run] seed`)", minimum=0,
                        maximum=SEED_MAX),
            **_lb_workload_keys(200, 1000.0, "`-n`"),
            "delay_ms": Key("float", 0.0, "one-way delay of every worker's path and the client's", unit="ms",
                            minimum=0, maximum=DELAY_MAX_MS),
            "backend": Key("str", "netns", "netns (emulated links in network namespaces; root) or loopback",
                           allowed=("netns", "loopback")),
            "repeats": Key("int", 1, "runs per (policy, workload)", unit="count", minimum=1, maximum=1000),
            "extra_args": Key("list[str]", [], "further `genet emulate lb` options, verbatim"),
        }),
        "deploy": Table(help="An LB campaign (the workers and the balancer on each path's server host, the workload "
                             "replayed from its client host) on the local SSH testbed, or on `[deploy] inventory`'s "
                             "hosts (runs only when this table is in the config).", keys={
            "enabled": Key("bool", True, "run this stage for this use case"),
            "schemes": Key("list[str]", [], "policy names and baselines to run (not given: every policy and "
                                            "baseline of this use case)"),
            "repetitions": Key("int", 5, "rounds: every scheme once on every path per round", unit="count",
                               minimum=1, maximum=1000),
            **_lb_workload_keys(200, 1000.0, "per run"),
            "workload_seed": Key("int", 0, "round r replays the workload of seed `workload_seed` + r - 1, with "
                                           "every scheme", minimum=0, maximum=SEED_MAX),
            "paths": Key("list[str]", [], "path names of the inventory to run on (not given: every path)"),
            "seed": Key("int", None, "seed of each round's shuffled order (not given: `[run] seed`)", minimum=0,
                        maximum=SEED_MAX),
            "timeout_s": Key("float", None, "a run ends (failed) after this (not given: the campaign's default, "
                                            "from the workload)", unit="s", minimum=1, maximum=86400),
            "campaign": Key("path", "", "a campaign file to use as is instead of the generated one"),
        }),
    })


def _policies(use_case: str, real_traces: bool = True) -> Table:
    """`[USE_CASE.policies.NAME]`: a model to use, or a `genet train USE_CASE` recipe. What differs between the
    use cases comes from their `genet train` entry (genet/train_cli.py: its methods, its curriculum's baselines);
    ``real_traces``: whether its training mixes in real traces (LB's has none)."""
    entry = TRAIN_USE_CASES[use_case]
    methods = train_methods(use_case)
    observation = " of the LB observation" if use_case == "lb" else ""
    return Table(named=True, help=(
        f"Learned {use_case.upper()} policies, one sub-table each: `[{use_case}.policies.NAME]`. NAME labels the "
        f"policy in every table and names its model `export/{use_case}-NAME/NAME.onnx`. Give either `use` (a "
        f"shipped or earlier ONNX model{observation}: training is skipped) or `method` (train with "
        f"`genet train {use_case}` in the train stage, export with `genet export` in the export stage)."),
        keys={
            "use": Key("path", "", f"ONNX model to use instead of training (e.g. `models/{use_case}/genet.onnx`)"),
            "method": Key("str", "", "training method (needed unless `use` is given)", allowed=methods),
            "range": Key("str", "rl3", "config-space range of the UDR (initial) distribution", allowed=RANGES),
            **_agent_keys(use_case),
            "steps": Key("int", None, _steps_help(use_case), unit="transitions", minimum=1, maximum=10**9),
            "seed": Key("int", None, "training seed (not given: `[run] seed`)", minimum=0, maximum=SEED_MAX),
            "baseline": Key("str", "", "baseline(s) of the curriculum's gap objective, comma-separated "
                                       f"(not given: {entry.baselines[0]})", allowed=entry.baselines, separator=","),
            "rounds": Key("int", None, "curriculum rounds (genet, cl2, cl3) or extra stages (cl1)",
                          unit="count", minimum=0, maximum=1000),
            "trials": Key("int", None, "BO trials per round", unit="count", minimum=1, maximum=COUNT_MAX),
            "random_trials": Key("int", None, "random BO trials before the GP-guided ones", unit="count",
                                 minimum=0, maximum=COUNT_MAX),
            "envs_per_trial": Key("int", None, "environments per BO trial", unit="count", minimum=1,
                                  maximum=COUNT_MAX),
            "real_traces": Key("list[str]", [], "trace sets (names from `[traces]`) mixed into training")
            if real_traces else None,
            "real_prob": Key("float", None, "probability of training on a real trace", unit="0-1", minimum=0,
                             maximum=1) if real_traces else None,
            "n_envs": Key("int", None, "environments per rollout", unit="count", minimum=1, maximum=1024),
            "steps_per_update": Key("int", None, "transitions per PPO update", unit="count", minimum=1,
                                    maximum=10**7),
            "torch_threads": Key("int", 1, "torch intra-op threads (0 = every core)", unit="count", minimum=0,
                                 maximum=1024),
            "extra_args": Key("list[str]", [], "further `genet train` options, passed verbatim (e.g. "
                                               + ('`["--entropy-rate", "0.002"]`)' if use_case == "abr" else
                                                  '`["--lr", "0.0005"]`)')),
        })


def _agents(use_case: str) -> list[str]:
    """The agents that train ``use_case`` policies (genet/agents/registry.py), ppo first."""
    return [e.name for e in AGENTS.entries() if trains(e, use_case)]


def _steps_help(use_case: str) -> str:
    """`steps`' help: its default is the agent's `genet train --steps` default (registry DEFAULT_STEPS)."""
    agents = _agents(use_case)
    dt = "dt: decisions trained on; " if "dt" in agents else ""
    if agents == [DEFAULT_AGENT]:
        return f"total environment steps of the training run (not given: {DEFAULT_STEPS[DEFAULT_AGENT]})"
    return (f"total environment steps of the training run ({dt}not given: the agent's `genet train` default: "
            + ", ".join(f"{a} {DEFAULT_STEPS[a]}" for a in agents) + ")")


def policy_agent(p) -> str:
    """The agent of a checked policy table (``cfg.abr.policies[NAME]``): its `agent`; a use case without the key
    (LB, which only ppo trains): ppo."""
    return getattr(p, "agent", None) or DEFAULT_AGENT


def _agent_keys(use_case: str) -> dict:
    """A trained policy's agent keys (`genet train --agent`, and its `--teacher`, `--pool`, `--target-return`), for
    the use cases some agent besides ppo trains (from the agent registry: today ABR and CC; LB only ppo, no key).
    At their defaults they add nothing to the command nor to the item's input hash (app/run/plan.py)."""
    agents = _agents(use_case)
    if agents == [DEFAULT_AGENT]:
        return {}
    keys = {"agent": Key("str", DEFAULT_AGENT, "the learning method of `genet train --agent` "
                                               "(genet/agents/registry.py): " + ", ".join(agents))}
    teachers = [a for a in agents if uses_teacher(a)]
    if use_case in TEACHERS and teachers:
        keys["teacher"] = Key("str", "", f"{' and '.join(teachers)} only: the policy they learn from "
                                         f"(`--teacher`): {', '.join(TEACHERS[use_case])} (not given: "
                                         f"{DEFAULT_TEACHERS[use_case]})")
    if "dt" in agents:
        keys["pool"] = Key("list[str]", [], "dt only (and needed by it): the experience pool files it learns from "
                                            "(`--pool`; `.npz` files `genet pool " + use_case + "` writes; relative "
                                            "paths as other paths of the config)")
        keys["target_return"] = Key("float", None, "dt only: return-to-go of each session's first decision at run "
                                                   "time (`--target-return`; not given: the 75th percentile of the "
                                                   "pool's episode returns)", unit="QoE", minimum=-1e9, maximum=1e9)
    return keys


def _use_case(use_case: str, baselines: tuple[str, ...], baseline_help: str, metric: str) -> Table:
    sim_extra: dict = {}
    if use_case == "abr":
        sim_extra = {"compat": Key("str", "", "`genet` reproduces Genet's ABR simulator (`--compat genet`)",
                                   allowed=("", "genet"))}
    else:
        sim_extra = {
            "delay_ms": Key("float", None, "one-way delay for every trace (not given: the trace's own, else 25)",
                            unit="ms", minimum=0, maximum=DELAY_MAX_MS),
            "queue_packets": Key("int", None, "bottleneck queue for every trace (not given: the trace's own)",
                                 unit="packets", minimum=1, maximum=QUEUE_MAX_PACKETS),
        }
    emu_default_delay = 40.0 if use_case == "abr" else None
    return Table(help=f"The {use_case.upper()} use case (omit the table to leave it out). Reward column: `{metric}`.",
                 optional=True, keys={
        "baselines": Key("list[str]", list(baselines[:2]), baseline_help, pattern=(
            r"^(bba|mpc|optimal)$" if use_case == "abr" else r"^(bbr|cubic|const:[0-9.]+)$"),
            pattern_help="baselines among " + ", ".join(baselines)),
        "video": Key("path", "", "video chunk-size folder (`video_size_0..5`; not given: the commands' default, "
                                 "`../shared/video/envivio` or `GENET_VIDEO_DIR`)") if use_case == "abr" else None,
        "policies": _policies(use_case),
        "simulate": Table(help=f"`genet eval {use_case}` on each trace set.", keys={
            "enabled": Key("bool", True, "run this stage for this use case"),
            "traces": Key("list[str]", [], "trace sets (names from `[traces]`) to evaluate on"),
            "policies": Key("list[str]", [], "policy names and baselines to evaluate (not given: all of them)"),
            **sim_extra,
        }),
        "emulate": Table(help=f"`genet emulate {use_case}`: real programs over trace-driven emulated links (root).",
                         keys={
            "enabled": Key("bool", True, "run this stage for this use case"),
            "traces": Key("list[str]", [], "trace sets to emulate (each run lasts its trace/video in real time: "
                                           "keep them small, e.g. a `from` set of 2-3 traces)"),
            "policies": Key("list[str]", [], "policy names and baselines to emulate (not given: all of them "
                                             "but `optimal`)"),
            "backend": Key("str", "netns", "emulation backend", allowed=("netns", "mahimahi", "mininet")),
            "delay_ms": Key("float", emu_default_delay, "one-way propagation delay (not given: the trace's own)"
                            if use_case == "cc" else "one-way delay (RTT = 2 x delay; Pensieve/Genet: 40)",
                            unit="ms", minimum=0, maximum=DELAY_MAX_MS),
            "repeats": Key("int", 1, "runs per (policy, trace)", unit="count", minimum=1, maximum=1000),
            "jobs": Key("int", 2, "emulated links at once", unit="count", minimum=1, maximum=64),
            **({"queue_packets": Key("int", None, "bottleneck queue (not given: the trace's own)",
                                     unit="packets", minimum=1, maximum=QUEUE_MAX_PACKETS),
                "clock": Key("str", "ms", "the netns link's clock: `ms` = Mahimahi's whole milliseconds (about "
                                          "1 ms more each way, up to 1 ms of jitter); `precise` = fractional ms, "
                                          "a millisecond's opportunities paced evenly (for sub-ms paths; "
                                          "docs/fidelity.md)", allowed=("ms", "precise")),
                "duration_s": Key("float", None, "cut each run to this long (not given: the trace's duration)",
                                  unit="s", minimum=1, maximum=RUN_MAX_S)} if use_case == "cc" else
               {"video": Key("str", "", "`sized` (the chunk-size table) or a folder made by "
                                        "`genet player make-video` (not given: the command's default)"),
                "chunks": Key("int", None, "with the sized video: play only the first N chunks (4 s each; not "
                                           "given: the whole video)", unit="count", minimum=1, maximum=CHUNKS_MAX)}),
            "extra_args": Key("list[str]", [], f"further `genet emulate {use_case}` options, verbatim"),
        }),
        "deploy": Table(help="A campaign on the local SSH testbed, or on `[deploy] inventory`'s hosts (runs only when "
                              "this table is in the config).", keys={
            "enabled": Key("bool", True, "run this stage for this use case"),
            **({"video": Key("str", "", "video name on the hosts (`genet deploy push --video`; not given: "
                                        "the campaign's default, envivio)"),
                "chunks": Key("int", None, "play only the first N chunks of the video in each session (4 s each; "
                                           "not given: the whole video)", unit="count", minimum=1,
                                 maximum=CHUNKS_MAX)}
               if use_case == "abr" else {}),
            "schemes": Key("list[str]", [], "policy names and baselines to run (not given: every policy and "
                                            "baseline of this use case)"),
            "repetitions": Key("int", 5, "rounds: every scheme once on every path per round", unit="count",
                               minimum=1, maximum=1000),
            "duration_s": Key("float", 20.0, "length of one run (CC; ABR plays the whole video)", unit="s",
                              minimum=1, maximum=RUN_MAX_S),
            "paths": Key("list[str]", [], "path names of the inventory to run on (not given: every path)"),
            "seed": Key("int", None, "seed of each round's shuffled order (not given: `[run] seed`)", minimum=0,
                        maximum=SEED_MAX),
            "timeout_s": Key("float", None, "a run ends (failed) after this (not given: the campaign's default, "
                                            "duration + 30 s)", unit="s", minimum=1, maximum=86400),
            "campaign": Key("path", "", "a campaign file to use as is instead of the generated one"),
        }),
    })


SCHEMA = Table(help="A `genet run` config (TOML).", keys={
    "run": Table(help="The run as a whole.", keys={
        "name": Key("str", "run", "name of the run (the report's title; default output folder `runs/NAME`)",
                    pattern=NAME_RE, pattern_help=NAME_HELP),
        "seed": Key("int", 0, "master seed: trace generation and training unless a section sets its own",
                    minimum=0, maximum=SEED_MAX),
        "out": Key("path", "", "run folder (`genet run --out` overrides; not given: `runs/NAME`)"),
        "jobs": Key("int", 1, "items of the " + ", ".join(FAN_OUT_STAGES) + " stages run at once, each its own "
                              "commands (`genet run --jobs` overrides); the other stages run one item at a time "
                              "(emulated and deployed runs use real time, links and the testbed)", unit="count",
                    minimum=1, maximum=RUN_JOBS_MAX),
    }),
    "traces": Table(named=True, help=(
        "Named trace sets, one sub-table each: `[traces.NAME]`, with exactly one of `dataset` (a public set by "
        "name, from the best source at hand), `gen` (generate), `fetch` (download a public set), `path` (a folder "
        "you have) or `from` (`n` files of another set). "
        "Stage folder: `traces/NAME`."), keys={
        "gen": Key("str", "", "generate synthetic Genet environments of this use case (`genet traces gen`)",
                   allowed=("abr", "cc")),
        "range": Key("str", "rl3", "config-space range of `gen`", allowed=RANGES),
        "n": Key("int", 10, "number of traces (`gen`, `from`; `dataset`: of its synthetic stand-in)", unit="count",
                 minimum=1, maximum=100_000),
        "seed": Key("int", None, "seed of `gen` (not given: `[run] seed`)", minimum=0, maximum=SEED_MAX),
        "format": Key("str", "json", "file format of `gen`", allowed=("pensieve", "mahimahi", "json", "csv")),
        "dataset": Key("str", "", "public set by name (`genet traces fetch --list`), taken from the first source "
                                  "at hand: a full local copy (`GENET_TRACES_DIR`, or `../shared/traces` beside the "
                                  "repository), a download (unless `GENET_OFFLINE=1`), the sample shipped in "
                                  "`traces/samples/`, else `n` synthetic traces of its use case (`range`); the "
                                  "report says which"),
        "fetch": Key("str", "", "public dataset name (`genet traces fetch --list`) or an archive URL"),
        "base_url": Key("str", "", "mirror for `fetch` (`--base-url`)"),
        "path": Key("path", "", "an existing trace folder or file"),
        "pick": Key("str", "spread", "how `from` takes its `n` files: `spread` = in turn from each subfolder "
                                     "(a measurement path of a Pantheon set), each sorted by path, so the set "
                                     "covers many paths; `first` = the first `n` sorted by path (a flat "
                                     "folder: the same)", allowed=("spread", "first")),
        "from": Key("str", "", "another set's name: take `n` of its trace files (`pick`)"),
    }),
    "abr": _use_case("abr", ("bba", "mpc", "optimal"),
                     "rule-based ABR baselines run beside the policies: bba, mpc (RobustMPC), optimal "
                     "(offline optimum; simulation only)", "qoe (per-trace total QoE)"),
    "cc": _use_case("cc", ("bbr", "cubic", "const:MBPS"),
                    "CC baselines run beside the policies: bbr, cubic, const:MBPS", "reward (Genet's form)"),
    "lb": _lb(),
    "cluster": Table(help="A Ray cluster the simulate and emulate stages and the training runs fan out on "
                          "(`--ray-address`; not given: this machine). Where a step runs is not part of what it "
                          "computes: moving a run onto a cluster redoes nothing.", keys={
        "address": Key("str", "", "the cluster's address (`HOST:PORT` or `auto`; needs the `cluster` extra); "
                                  "`genet eval cc`, `genet emulate cc`, `genet emulate abr` and `genet train` get "
                                  "`--ray-address`",
                       pattern=r"^(|auto|[A-Za-z0-9_.:\[\]-]+:[0-9]{1,5})$",
                       pattern_help="HOST:PORT or auto"),
    }),
    "deploy": Table(help="Where the deploy stage runs.", keys={
        "inventory": Key("path", "", "inventory TOML of real hosts and paths (not given: the local SSH "
                                     "testbed, `genet deploy testbed up`)"),
        "testbed_hosts": Key("int", 3, "hosts of the local SSH testbed", unit="count", minimum=2,
                             maximum=TESTBED_HOSTS_MAX),
        "testbed_paths": Key("path", "", "paths file of the local testbed (`--paths`; not given: p1 constant "
                                         "12 Mbit/s 20 ms, p2 an FCC trace at 40 ms, p3 cellular, deep queue)"),
        "wheelhouse": Key("str", "auto", "wheels `genet deploy push --wheelhouse` installs from: `auto` = for the "
                                         "local testbed (whose hosts reach no package index) gather one here "
                                         "with `pip download` into `deploy/wheelhouse` (once; needs the index from "
                                         "this machine), none for an inventory; a folder; or `\"\"` (the hosts' "
                                         "own index)"),
        "push_args": Key("list[str]", [], "further `genet deploy push` options, verbatim (e.g. "
                                          "`[\"--wheelhouse\", \"wheels\"]`)"),
        "run_args": Key("list[str]", [], "further `genet deploy run` options, verbatim (e.g. `[\"--accept-new\"]`)"),
    }),
    "report": Table(help="The report stage.", keys={
        "title": Key("str", "", "title of the report (not given: `[run] name`)"),
    }),
})


def _drop_none(table: Table) -> Table:
    return replace(table, keys={k: (_drop_none(v) if isinstance(v, Table) else v) for k, v in table.keys.items()
                                if v is not None})


SCHEMA = _drop_none(SCHEMA)
STAGES = ("traces", "train", "export", "simulate", "emulate", "deploy", "report")

#: A checked `genet run` config: the frozen dataclass of :data:`SCHEMA` (one field per table; see its docstring).
RunConfig = config_class(SCHEMA, "RunConfig")


# ---------------------------------------------------------------------------------------------------
# Validation

def validate(data: dict, source: str = "config", base_dir: Path | None = None) -> RunConfig:
    """Check a parsed config against :data:`SCHEMA` and the cross-references between sections; return
    it with every default filled in, paths resolved, as a frozen :class:`RunConfig`. ``base_dir``: folder
    relative paths are tried against first."""
    cfg = fill(SCHEMA, data, source)
    sets = cfg["traces"]
    if cfg["abr"] is None and cfg["cc"] is None and cfg["lb"] is None:
        raise ConfigError(f"{source}: no use case: add an [abr], a [cc] or an [lb] table (or several)")
    for name, s in sets.items():
        kinds = [k for k in ("dataset", "gen", "fetch", "path", "from") if s[k]]
        if len(kinds) != 1:
            raise ConfigError(f"{source}: [traces.{name}]: give exactly one of dataset, gen, fetch, path, from "
                              f"(got {', '.join(kinds) or 'none'})")
        if s["from"]:
            if s["from"] not in sets or s["from"] == name:
                raise ConfigError(f"{source}: [traces.{name}] from: {show(s['from'])} is not another trace set; "
                                  f"sets: {', '.join(sets)}")
            if sets[s["from"]]["from"]:
                raise ConfigError(f"{source}: [traces.{name}] from: {show(s['from'])} is itself a `from` set; "
                                  f"take from a gen, fetch or path set")
        if s["path"]:
            s["path"] = str(resolve_path(s["path"], base_dir, f"{source}: [traces.{name}] path"))
        if s["fetch"] and "://" not in s["fetch"]:
            from traces.datasets import load_manifest
            known = list(load_manifest())
            if s["fetch"] not in known:
                raise ConfigError(f"{source}: [traces.{name}] fetch: {show(s['fetch'])} is not a known dataset; "
                                  f"allowed: {', '.join(known)} (or an archive URL)")
        if s["dataset"]:
            from traces.datasets import load_manifest
            known = list(load_manifest())
            if s["dataset"] not in known:
                raise ConfigError(f"{source}: [traces.{name}] dataset: {show(s['dataset'])} is not a known dataset; "
                                  f"allowed: {', '.join(known)}")

    def check_sets(names: list[str], where: str) -> None:
        for n in names:
            if n not in sets:
                raise ConfigError(f"{source}: [{where}]: trace set {show(n)} is not defined; defined sets: "
                                  f"{', '.join(sets) or 'none (add [traces.NAME] tables)'}")

    for uc in ("abr", "cc"):
        u = cfg[uc]
        if u is None:
            continue
        if "deploy" not in data.get(uc, {}):
            u["deploy"]["enabled"] = False  # a use case is deployed only when its config has a deploy table
        if uc == "abr" and u["video"]:
            u["video"] = str(resolve_path(u["video"], base_dir, f"{source}: [abr] video"))
        _check_policies(uc, u, ("bba", "mpc", "optimal", "bbr", "cubic"), source, base_dir)
        for pname, p in u["policies"].items():
            check_sets(p["real_traces"], f"{uc}.policies.{pname}] real_traces")
        check_sets(u["simulate"]["traces"], f"{uc}.simulate] traces")
        check_sets(u["emulate"]["traces"], f"{uc}.emulate] traces")
        consts = [(f"{uc}] baselines", b) for b in u["baselines"]] + \
            [(f"{uc}.policies.{n}] baseline", b) for n, p in u["policies"].items() for b in p["baseline"].split(",")]
        for where, b in consts:
            if b.startswith("const:") and not _const_rate_ok(b):
                raise ConfigError(f"{source}: [{where}: {show(b)}: expected const:MBPS with a rate > 0 and "
                                  f"<= {CONST_MAX_MBPS:g} Mbit/s")
        known = set(u["policies"]) | set(u["baselines"])
        for where, names in (("deploy] schemes", u["deploy"]["schemes"]), ("simulate] policies",
                             u["simulate"]["policies"]), ("emulate] policies", u["emulate"]["policies"])):
            for s in names:
                if s not in known:
                    raise ConfigError(f"{source}: [{uc}.{where}: {show(s)} is neither a policy nor a baseline "
                                      f"of [{uc}]; allowed: {', '.join(sorted(known))}")
        if u["deploy"]["campaign"]:
            u["deploy"]["campaign"] = str(resolve_path(u["deploy"]["campaign"], base_dir,
                                                       f"{source}: [{uc}.deploy] campaign"))
    if cfg["lb"] is not None:
        _validate_lb(cfg["lb"], data.get("lb", {}), source, base_dir)
    for key in ("inventory", "testbed_paths"):
        if cfg["deploy"][key]:
            cfg["deploy"][key] = str(resolve_path(cfg["deploy"][key], base_dir, f"{source}: [deploy] {key}"))
    return freeze(SCHEMA, cfg, "RunConfig", source)


def _validate_lb(u: dict, given: dict, source: str, base_dir: Path | None) -> None:
    """The checks of `[lb]` between its keys (policy names, model and workload paths, the workers' rates)."""
    if "deploy" not in given:
        u["deploy"]["enabled"] = False  # deployed only when its config has a deploy table
    _check_policies("lb", u, LB_BASELINES, source, base_dir)
    if u["simulate"]["workloads"]:
        u["simulate"]["workloads"] = str(resolve_path(u["simulate"]["workloads"], base_dir,
                                                      f"{source}: [lb.simulate] workloads"))
    if len(set(u["simulate"]["configs"])) != len(u["simulate"]["configs"]):
        raise ConfigError(f"{source}: [lb.simulate] configs: each at most once, got {list(u['simulate']['configs'])}")
    for stage in ("emulate", "deploy"):
        rates = u[stage]["service_rates"]
        values = [float(x) for x in rates.split(",")] if _floats_ok(rates) else []
        if not 1 <= len(values) <= 64 or not all(0 < v < float("inf") for v in values):
            raise ConfigError(f"{source}: [lb.{stage}] service_rates: {show(rates)}: expected 1 to 64 finite rates "
                              f"> 0, comma-separated")
    known = set(u["policies"]) | set(u["baselines"])
    for where, names in (("deploy] schemes", u["deploy"]["schemes"]), ("simulate] policies",
                         u["simulate"]["policies"]), ("emulate] policies", u["emulate"]["policies"])):
        for s in names:
            if s not in known:
                raise ConfigError(f"{source}: [lb.{where}: {show(s)} is neither a policy nor a baseline of [lb]; "
                                  f"allowed: {', '.join(sorted(known))}")
    if u["deploy"]["campaign"]:
        u["deploy"]["campaign"] = str(resolve_path(u["deploy"]["campaign"], base_dir, f"{source}: [lb.deploy] campaign"))


def _check_policies(uc: str, u: dict, baselines: tuple[str, ...], source: str, base_dir: Path | None) -> None:
    """`[UC.policies.NAME]` of any use case: not a baseline's name (``baselines``; ABR and CC: nor `const...`), and
    either a model to use (its path resolved) or a training method."""
    for pname, p in u["policies"].items():
        where = f"{uc}.policies.{pname}"
        if pname in baselines or (uc != "lb" and pname.startswith("const")):
            raise ConfigError(f"{source}: [{where}]: {show(pname)} is a baseline's name; name the policy otherwise")
        if bool(p["use"]) == bool(p["method"]):
            raise ConfigError(f"{source}: [{where}]: give either use (an ONNX model) or method "
                              f"(one of {', '.join(train_methods(uc))}), not {'both' if p['use'] else 'neither'}")
        if p["use"]:
            p["use"] = str(resolve_path(p["use"], base_dir, f"{source}: [{where}] use"))
        _check_agent(uc, p, f"{source}: [{where}]", base_dir)


def _check_agent(uc: str, p: dict, where: str, base_dir: Path | None) -> None:
    """A policy's agent keys (:func:`_agent_keys`): the agent trains ``uc`` (the registry's one-line error naming
    the agents that do), `teacher` only with an agent that has one (filled with the use case's default teacher),
    `pool` and `target_return` only with dt (and `pool` needed by it, its files resolved), and `steps` not given:
    the agent's `genet train` default. A `use` policy takes none of them."""
    agent = p.get("agent", DEFAULT_AGENT)
    given = [k for k, empty in (("agent", DEFAULT_AGENT), ("teacher", ""), ("pool", ()), ("target_return", None))
             if k in p and p[k] not in (empty, [], None)]
    if p["steps"] is None:
        p["steps"] = DEFAULT_STEPS.get(agent, DEFAULT_STEPS[DEFAULT_AGENT])
    if p["use"]:
        if given:
            raise ConfigError(f"{where} {given[0]}: a key of a trained policy; `use` takes a model as it is")
        return
    try:
        trainer_module(agent, uc, where=f"{where} agent")
    except BadInputError as exc:
        raise ConfigError(str(exc)) from None
    if uses_teacher(agent):
        p["teacher"] = p["teacher"] or DEFAULT_TEACHERS[uc]
        if p["teacher"] not in TEACHERS[uc]:
            raise ConfigError(f"{where} teacher: {show(p['teacher'])} is not a teacher of {uc} policies; choose "
                              f"one of {', '.join(TEACHERS[uc])}")
    elif p.get("teacher"):
        raise ConfigError(f"{where} teacher: only the agents with a teacher take one "
                          f"({', '.join(a for a in _agents(uc) if uses_teacher(a))}), not agent = {show(agent)}")
    for key in ("pool", "target_return"):
        if agent != "dt" and p.get(key) not in (None, (), []):
            raise ConfigError(f"{where} {key}: a key of agent = \"dt\" only, not agent = {show(agent)}")
    if agent == "dt":
        if not p["pool"]:
            raise ConfigError(f"{where} pool: agent = \"dt\" learns from an experience pool: give its files "
                              f"(`genet pool {uc}` writes them)")
        p["pool"] = [str(resolve_path(f, base_dir, f"{where} pool")) for f in p["pool"]]
        for f in p["pool"]:
            if "," in f:  # `--pool` separates its files with commas
                raise ConfigError(f"{where} pool: {show(f)}: a pool file's path cannot hold a comma")
    if (uses_teacher(agent) or agent == "dt") and p["method"] != "udr":
        raise ConfigError(f"{where} method: agent = {show(agent)} trains with method = \"udr\" (the curriculum "
                          f"methods train ppo), not {show(p['method'])}")


def _floats_ok(text: str) -> bool:
    try:
        [float(x) for x in text.split(",")]
        return True
    except ValueError:
        return False


def _const_rate_ok(text: str) -> bool:
    try:
        rate = float(text[len("const:"):])
    except ValueError:
        return False
    return 0 < rate <= CONST_MAX_MBPS  # nan fails too


def resolve_path(value: str, base_dir: Path | None, what: str) -> Path:
    """A relative path is tried against the config file's folder, then the current directory."""
    try:
        p = Path(value).expanduser()
        if p.is_absolute():
            candidates = [p]
        else:
            candidates = ([base_dir / p] if base_dir else []) + [Path.cwd() / p]
        for c in candidates:
            if c.exists():
                return c.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a name too long, a symlink loop
        raise ConfigError(f"{what}: {show(value)}: {getattr(exc, 'strerror', None) or exc}") from None
    raise ConfigError(f"{what}: {show(value)} does not exist (tried {', '.join(str(c) for c in candidates)})")


def load(path: str | Path) -> tuple[RunConfig, str]:
    """Read and validate a config file; return (config with defaults, the file's text)."""
    path = Path(path)
    data, text = read(path)
    return validate(data, str(path), path.resolve().parent), text


def load_saved(path: str | Path) -> RunConfig | None:
    """The config a run folder's ``config.json`` holds (``genet run`` writes it: ``{"source": ..., "config":
    thaw(cfg)}``), frozen again; ``None`` when the file is missing, unreadable or not a config of this schema."""
    try:
        data = json.loads(Path(path).read_text())
        return freeze(SCHEMA, data["config"], "RunConfig", str(path), defaults=True)  # older runs: new keys default
    except (OSError, ValueError, TypeError, KeyError, ConfigError):
        return None


# ---------------------------------------------------------------------------------------------------
# The reference page

def render_markdown() -> str:
    """``docs/run-config.md``: every table and key of :data:`SCHEMA`."""
    lines = ["# `genet run` config reference", "",
             "<!-- generated from app/run/schema.py by `python -m app.run.schema > docs/run-config.md`; "
             "a test checks it is up to date -->", "",
             "A run config is a TOML file. `genet run CONFIG.toml` validates all of it before anything runs "
             "(an error names the key and the allowed values), then runs the stages "
             + ", ".join(f"`{s}`" for s in STAGES) + ", each in its own folder of the run folder. "
             "Relative paths are tried against the config file's folder, then the current directory. "
             "Examples: `examples/quickstart.toml`, `examples/paper.toml`, `examples/remote.toml`, "
             "`examples/lb.toml`.", "",
             "The run folder (`--out`, else `[run] out`, else `runs/NAME`): `traces/NAME/`, `train/USECASE-POLICY/` "
             "(a `genet train` run folder), `export/USECASE-POLICY/POLICY.onnx`, `simulate/USECASE-SET/` and "
             "`emulate/USECASE-SET/` (`results.csv` etc. of `genet eval` / `genet emulate`; LB: `simulate/lb-CONFIG/`, `emulate/lb-generated/`), `deploy/USECASE/` "
             "(`campaign.toml`, `campaign/` of `genet deploy run`), `report/` (`index.html`, `report.md`, "
             "`figures/`), `logs/STAGE/ITEM.log` (every command's output), `state/` (per item: the input hash, "
             "the output hash, the commands, the wall time), `status.json`, `plan.json`, `config.toml`.", "",
             "Each item's input hash covers its own keys below, its commands and the output hashes of what it "
             "reads; an item whose hash is unchanged is skipped, so a rerun redoes only what changed (adding a "
             "trace set or a policy redoes only the items that use it). A run that was killed resumes: rerun "
             "the same command; the item that was cut off continues in place (`genet train --resume`, the "
             "journals of `genet eval`, `genet emulate`, `genet deploy run`). `--force` redoes the selected "
             "stages; `--only STAGE` / `--from STAGE` select stages (the stages they read must have run).", ""]

    lines.extend(markdown(SCHEMA))
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown())
