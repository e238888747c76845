"""What the study and the shipped models train: budgets, shared options, the study's presets, evaluation sets.

Nothing here is tuned on anything but the training and validation sets: the presets are fixed. Standard
library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from foundation.runmeta import PROJECT_ROOT

#: Environment steps per run, the same for every model of a use case (the science compares at equal steps):
#: the shipped models' and the study's budgets.
ABR_STEPS = 6_000_000
CC_STEPS = 2_160_000
#: LB: decisions (environment steps) per run (the LB study of issue 27; a run takes a few minutes here).
LB_STEPS = 1_000_000
#: ABR settings of every shipped ABR model and study run (see the closing note of issue 6 for why).
ABR_COMMON = ["--n-envs", "32", "--steps-per-update", "1536", "--entropy-rate", "2e-3", "--real-prob", "0.3"]
CC_COMMON: list[str] = []
#: LB settings of every LB study run and shipped LB model: a step checkpoint every 20 PPO updates (81,920
#: decisions), so the study can pick each run's checkpoint by its validation episodes (:func:`eval_sets`).
LB_COMMON = ["--checkpoint-every", "20"]
#: Options that make every study run tiny (``genet study run --tiny``, its test): small batches, few BO trials.
TINY = {"abr": ["--n-envs", "4", "--steps-per-update", "64", "--trials", "2", "--random-trials", "2",
                "--envs-per-trial", "2", "--rounds", "1", "--checkpoint-every", "2"],
        "cc": ["--steps-per-update", "100", "--minibatch", "50", "--epochs", "1", "--trials", "2",
               "--random-trials", "2", "--envs-per-trial", "2", "--rounds", "1", "--checkpoint-every", "2"],
        "lb": ["--n-envs", "4", "--steps-per-update", "256", "--minibatch", "64", "--epochs", "1", "--trials", "2",
               "--random-trials", "2", "--envs-per-trial", "2", "--rounds", "1", "--checkpoint-every", "2"]}
#: Dimensions Genet's ABR BO searched (reference §6.2); the others are fixed by abr-genet-paperdims.
PAPER_ABR_DIMS = ("min_bandwidth_mbps", "max_bandwidth_mbps", "bandwidth_change_interval_s", "min_rtt_ms",
                  "max_buffer_s")
#: The committed paper-dimensions ABR space (:func:`paperdims_space`; the shipped ABR Genet trained on it).
PAPERDIMS_SPACE_FILE = PROJECT_ROOT / "traces" / "spaces" / "abr-paperdims.json"


def paperdims_space() -> dict:
    """traces/spaces/abr.json with every dimension but Genet's own five (:data:`PAPER_ABR_DIMS`) fixed at its
    default: what traces/spaces/abr-paperdims.json holds (a test checks they agree)."""
    space = json.loads((PROJECT_ROOT / "traces/spaces/abr.json").read_text())
    for d in space["dimensions"]:
        if d["name"] not in PAPER_ABR_DIMS:
            for key in ("ranges", "range"):
                if isinstance(d.get(key), dict):
                    d[key] = {k: [d["default"], d["default"]] for k in d[key]}
    return space


#: The CC space whose RL3 loss rate stops at 1 % (:func:`loss1_space`; ``cc-genet-faithful-loss1``).
LOSS1_SPACE_FILE = PROJECT_ROOT / "traces" / "spaces" / "cc-rl3-loss1.json"
#: The loss rate's upper end in :data:`LOSS1_SPACE_FILE` (RL3's own: 5 %; RL2's 2 %; the BO searches the widest).
LOSS1_MAX = 0.01


def loss1_space() -> dict:
    """traces/spaces/cc.json with the random loss rate capped at :data:`LOSS1_MAX` (the BO of the faithful CC
    Genet promoted 5 % loss most often in its two worst seeds: FINDINGS.md); what traces/spaces/cc-rl3-loss1.json
    holds (a test checks they agree)."""
    space = json.loads((PROJECT_ROOT / "traces/spaces/cc.json").read_text())
    for d in space["dimensions"]:
        if d["name"] == "loss_rate":  # every range: the BO searches the widest (RL2's is 2 %)
            d["ranges"] = {k: [lo, min(hi, LOSS1_MAX)] for k, (lo, hi) in d["ranges"].items()}
    space["description"] += (f" This copy caps every range of loss_rate at {LOSS1_MAX} (app/study/presets.py "
                              "loss1_space: the cc-genet-faithful-loss1 study preset).")
    return space


@dataclass
class Preset:
    """One row of the study: use case, name, `genet train` options; ``warm_from``: the preset whose
    same-seed model this one starts from (it runs after it); ``space``: the narrowed space file ``{space}``
    stands for (``paperdims``: :data:`PAPERDIMS_SPACE_FILE`).

    Placeholders in ``options``: ``{space}``, ``{warm}`` (the ``warm_from`` run's final model), ``{warm_first}``
    (its first checkpoint), ``{per_round}`` (updates per curriculum round for the run's budget), ``{pool}``
    (the experience pool files of ``pool``'s policies, built by the runner)."""

    use_case: str
    name: str
    options: list[str]
    warm_from: str | None = None
    space: str | None = None
    note: str = ""
    #: this run's ``--steps``: the fraction of the use case's budget (the first stage of a two-stage preset)
    steps_share: float = 1.0
    #: a fixed ``--steps`` instead of the budget (dt: decisions trained on from its pool, no environment step)
    steps: int | None = None
    #: the ``warm_from`` run's environment steps count in this run's budget (imitation + PPO fine-tune = the
    #: plain PPO budget): its ``--steps`` is the budget minus them, its record's steps and wall time the sum
    budget_includes_warm: bool = False
    #: policies (``genet pool abr --policy``) whose episodes over the training sets (fcc-train, norway-train)
    #: are the experience pool ``{pool}`` stands for (one file per set, comma-separated)
    pool: tuple[str, ...] = ()


#: The paper's hand-made curricula (§5.2, Figure 18), as `genet train --method clK` runs them.
CL_NOTES = {1: "CL1, hand-picked difficulty: stages whose bandwidth-change interval widens from the calmest "
               "links to the whole range",
            2: "CL2, where the baseline does badly: BO on the optimum's reward minus the baseline's",
            3: "CL3, where the policy is far from the optimum: BO on the optimum's reward minus the policy's"}

#: The presets ``genet study run`` trains when ``--presets`` is not given.
#: CC presets trained on the real UDP sender's rules (issues 30/31): the window start-up (IW10) and the next monitor
#: interval from the measured delivery rate instead of the link's true bandwidth (genet/cc/aurora.py).
REAL_SENDER = ["--startup", "window", "--interval-serialisation", "measured"]
#: Genet's simulator rules (Aurora's start-up, the link's true bandwidth in the next-interval rule:
#: genet.cc.training.GENET_RULES): every CC preset trained before the real sender's rules became `genet train cc`'s
#: default names them, so that its command trains what its published records hold.
GENET_SENDER = ["--startup", "aurora", "--interval-serialisation", "link"]
#: The UDR ABR models shipped until 2026-12-07 (each preset's seed 0), kept in models/study/policies/ with their
#: metadata: the study presets below name them, and their published records were made with them (the shipped
#: models are now each variant's median seed: app/study/ship.py).
STUDY_POLICIES = PROJECT_ROOT / "models" / "study" / "policies"
#: The best UDR ABR policy (abr-udr2's seed 0: the best UDR model on fcc-val and norway-val, chosen on validation
#: data only), the second baseline of abr-genet-combined's BO.
BEST_UDR_ABR = STUDY_POLICIES / "abr-udr2-s0.onnx"

MATRIX = ("abr-udr1", "abr-udr2", "abr-udr3", "abr-genet", "cc-udr3", "cc-genet")
#: The agents study (issue 28): every learner of ``genet train --agent`` at one budget per use case
#: (:data:`AGENTS_ABR_STEPS`, :data:`AGENTS_CC_STEPS`), ``genet study run --presets <these> --abr-steps ...``.
AGENTS_MATRIX = ("abr-agent-ppo", "abr-agent-a3c", "abr-agent-dqn",
                 "abr-agent-bc-bba", "abr-agent-bc-mpc", "abr-agent-bc-optimal",
                 "abr-agent-dagger-bba", "abr-agent-dagger-mpc", "abr-agent-dagger-optimal",
                 "abr-agent-bc-mpc-25", "abr-agent-bc-mpc-ppo", "abr-agent-bc-mpc-ppo-warm",
                 "abr-agent-bc-mpc-ppo-anchor", "abr-agent-dt",
                 "cc-agent-ppo", "cc-agent-a3c", "cc-agent-bc-bbr", "cc-agent-bc-cubic",
                 "cc-agent-dagger-bbr", "cc-agent-dagger-cubic", "cc-agent-dagger-cubic-25",
                 "cc-agent-dagger-cubic-ppo")
#: The agents study's budgets (environment steps per run, smaller than the shipped models': agent against agent at
#: equal steps; the whole matrix, 3 seeds, fits in about 90 minutes with --jobs 2 on the 2-core machine): 200 ABR
#: updates of 1,536 transitions and 40 CC batches of 7,200.
AGENTS_ABR_STEPS = 307_200
AGENTS_CC_STEPS = 288_000
#: A PPO fine-tune's options for an imitated student: entropy weight and critic warm-up (``abr-agent-bc-mpc-ppo-warm``).
FINE_TUNE_OPTIONS = ["--entropy-init", "0.01", "--critic-warmup", "20"]
#: ... and kept near its student by a KL term (``abr-agent-bc-mpc-ppo-anchor``; 20 of 5 and 20 tried on seeds 0-2).
ANCHOR_OPTIONS = ["--anchor-coef", "20"]
#: The share of the budget the imitation stage of a BC/DAgger + PPO preset takes (the rest is PPO's).
IMITATION_SHARE = 0.25
#: The policies whose episodes on the training sets make the Decision Transformer's pool: RobustMPC and the
#: UDR models shipped until 2026-12-07 (:data:`STUDY_POLICIES`; trained on synthetic links and the training sets only).
DT_POOL = ("mpc", "models/study/policies/abr-udr1-s0.onnx", "models/study/policies/abr-udr2-s0.onnx",
           "models/study/policies/abr-udr3-s0.onnx")
#: The Decision Transformer's decisions trained on (genet train's default for --agent dt).
DT_STEPS = 2_560_000
#: The LB study (issue 27): ``genet study run --presets lb-udr1,lb-udr2,lb-udr3,lb-genet``.
LB_MATRIX = ("lb-udr1", "lb-udr2", "lb-udr3", "lb-genet")


def presets() -> dict[str, Preset]:
    """Every preset by name, in the order of the table."""
    abr_genet = ["--method", "genet", "--range", "rl1", "--baseline", "mpc"]
    cc_genet_any = ["--method", "genet", "--range", "rl3", "--baseline", "bbr"]
    cc_genet = cc_genet_any + GENET_SENDER
    out = [Preset("abr", f"abr-udr{i}", ["--method", "udr", "--range", f"rl{i}"], note=f"UDR over RL{i}")
           for i in (1, 2, 3)]
    out += [
        Preset("abr", "abr-genet", abr_genet,
               note="Genet, gap to RobustMPC, BO over the whole ABR space (shipped before this study)"),
        Preset("abr", "abr-genet-paperdims", abr_genet + ["--space", "{space}"], space="paperdims",
               note="BO over the paper's five ABR dimensions only, chunk and video length fixed (shipped: seed 2)"),
        Preset("abr", "abr-genet-paperdims-rl2", ["--method", "genet", "--range", "rl2", "--baseline", "mpc",
                                                  "--space", "{space}"], space="paperdims",
               note="as abr-genet-paperdims, warm-up and initial distribution over RL2 (an RL1 warm-up, links of "
                    "1-5 Mbit/s, leaves a policy that never picks the 4.3-Mbit/s rung)"),
        Preset("abr", "abr-genet-paperdims-w0.1", abr_genet + ["--space", "{space}", "--promote-weight", "0.1"],
               space="paperdims", note="as abr-genet-paperdims, promotion weight 0.1 (each promotion takes a "
                                       "tenth of the mixture: 39 % of RL1 is left after nine rounds, 4 % at 0.3)"),
        Preset("abr", "abr-genet-paperdims-ensemble", ["--method", "genet", "--range", "rl1", "--baseline", "mpc,bba",
                                                       "--ensemble", "--space", "{space}"], space="paperdims",
               note="as abr-genet-paperdims, max gap over RobustMPC and BBA (the ensemble baseline)"),
        Preset("abr", "abr-genet-w0.1", abr_genet + ["--promote-weight", "0.1"], note="promotion weight 0.1"),
        Preset("abr", "abr-genet-ensemble", ["--method", "genet", "--range", "rl1", "--baseline", "mpc,bba",
                                             "--ensemble"], note="max gap over RobustMPC and BBA"),
        Preset("abr", "abr-genet-warm", abr_genet + ["--init-from", "{warm}", "--updates-per-round", "{per_round}"],
               warm_from="abr-udr3", note="warm start from UDR-RL3, fixed updates per round (paper §6.2-6.3)"),
        Preset("abr", "abr-genet-paper", ["--method", "genet", "--range", "rl3", "--baseline", "mpc", "--space",
                                          "{space}", "--init-from", "{warm_first}", "--updates-per-round",
                                          "{per_round}"], space="paperdims", warm_from="abr-udr3",
               note="the paper's schedule (§6.2): the paper's five dimensions, RL3 as the initial distribution, "
                    "warm start from the same seed's first UDR-RL3 checkpoint (307,200 steps; the paper's "
                    "ep-1000 of 75,000), fixed updates per round (the checkpoint's steps count in the run's total)"),
        Preset("abr", "abr-genet-combined", ["--method", "genet", "--range", "rl1", "--baseline",
                                             f"mpc,{BEST_UDR_ABR}", "--ensemble", "--space", "{space}",
                                             "--promote-weight", "0.1", "--init-from", "{warm_first}",
                                             "--updates-per-round", "{per_round}"],
               space="paperdims", warm_from="abr-udr1",
               note="issue 30's ABR schedule, what helped combined: the paper's schedule (warm start from the same "
                    "seed's first UDR-RL1 checkpoint, fixed updates per round) over the paper's five dimensions "
                    "from RL1, promotion weight 0.1, BO gap = max over RobustMPC and the best shipped UDR model "
                    "(abr-udr2's seed 0, models/study/policies/abr-udr2-s0.onnx)"),
        Preset("cc", "cc-udr3", ["--method", "udr", "--range", "rl3"] + GENET_SENDER, note="UDR over RL3"),
        Preset("cc", "cc-genet", cc_genet, note="Genet, gap to BBR (as shipped)"),
        Preset("cc", "cc-genet-w0.1", cc_genet + ["--promote-weight", "0.1"], note="promotion weight 0.1"),
        Preset("cc", "cc-genet-distinct", cc_genet + ["--promotion-distance", "0.05"],
               note="each round promotes its best trial farther than 0.05 from every earlier promotion"),
        Preset("cc", "cc-genet-ack", cc_genet + ["--gap-after-first-ack"],
               note="BO trials scored on the packets sent after each sender's first ACK"),
        Preset("cc", "cc-genet-ack-w0.1", cc_genet + ["--gap-after-first-ack", "--promote-weight", "0.1"],
               note="cc-genet-ack with promotion weight 0.1 (the two variants helped on different sets)"),
        Preset("cc", "cc-genet-ensemble", ["--method", "genet", "--range", "rl3", "--baseline", "bbr,cubic",
                                           "--ensemble"] + GENET_SENDER, note="max gap over BBR and Cubic"),
        Preset("cc", "cc-genet-warm", cc_genet + ["--init-from", "{warm}", "--updates-per-round", "{per_round}"],
               warm_from="cc-udr3", note="warm start from UDR-RL3, fixed updates per round"),
        # issue 30/31: the sender the simulator trains is the real UDP sender's (window start-up, IW10, and the
        # next monitor interval from the measured delivery rate instead of the link's true bandwidth)
        Preset("cc", "cc-udr3-faithful", ["--method", "udr", "--range", "rl3"] + REAL_SENDER,
               note="UDR over RL3, the real sender's rules: window start-up (IW10) and the measured interval rule"),
        Preset("cc", "cc-genet-faithful", cc_genet_any + REAL_SENDER,
               note="Genet (gap to BBR), the real sender's rules: window start-up (IW10) and the measured interval "
                    "rule"),
        Preset("cc", "cc-udr3-faithful-loss1", ["--method", "udr", "--range", "rl3"] + REAL_SENDER
               + ["--space", "{space}"], space="loss1",
               note="as cc-udr3-faithful, on RL3 with the random loss rate capped at 1 % (the control of "
                    "cc-genet-faithful-loss1)"),
        Preset("cc", "cc-genet-faithful-loss1", cc_genet_any + REAL_SENDER + ["--space", "{space}"], space="loss1",
               note="as cc-genet-faithful, on RL3 with the random loss rate capped at 1 % (traces/spaces/"
                    "cc-rl3-loss1.json), BO and UDR alike: do the 5 %-loss promotions explain the worst seeds?"),
        Preset("cc", "cc-genet-faithful-positive", cc_genet_any + REAL_SENDER
               + ["--min-promotion-gap", "0", "--promotion-distance", "0.05"],
               note="as cc-genet-faithful, promoting only a trial where BBR beats the policy (gap > 0) and farther "
                    "than 0.05 from every earlier promotion (the collapsed seeds promoted a negative gap and the "
                    "100-Mbit/s corner round after round)"),
        Preset("cc", "cc-genet-faithful-positive-w0.1", cc_genet_any + REAL_SENDER
               + ["--min-promotion-gap", "0", "--promotion-distance", "0.05", "--promote-weight", "0.1"],
               note="as cc-genet-faithful-positive, promotion weight 0.1 (each promotion takes a tenth of the "
                    "mixture, so 39 % of RL3 is left after nine rounds; cc-genet-w0.1 was the best CC Genet on "
                    "Genet's sender rules)"),
    ]
    out += [Preset("lb", f"lb-udr{i}", ["--method", "udr", "--range", f"rl{i}"], note=f"UDR over RL{i}")
            for i in (1, 2, 3)]
    out.append(Preset("lb", "lb-genet", ["--method", "genet", "--range", "rl1", "--baseline", "least_work",
                                         "--rounds", "4", "--trials", "8", "--random-trials", "5",
                                         "--envs-per-trial", "4"],
                      note="Genet, gap to least-work-left, warm-up and initial distribution over RL1, BO over the "
                           "whole LB space; 4 rounds of 8 BO trials on 4 episodes each (the paper: 9 of 15 on 10; "
                           "a paper-size round takes minutes here)"))
    out.append(Preset("lb", "lb-udr3-lr3e-4", ["--method", "udr", "--range", "rl3", "--lr", "3e-4"],
                      note="as lb-udr3, Adam learning rate 3e-4 instead of LbTrainConfig's 1e-3 (tried because the "
                           "1e-3 runs degrade after an early best checkpoint; it does not help: FINDINGS.md)"))
    out += agent_presets()
    for uc, rng in (("abr", "rl1"), ("cc", "rl3")):
        out += [Preset(uc, f"{uc}-cl{k}", ["--method", f"cl{k}", "--range", rng] +
                       (["--baseline", "mpc" if uc == "abr" else "bbr"] if k == 2 else []) +
                       (GENET_SENDER if uc == "cc" else []), note=CL_NOTES[k])
                for k in (1, 2, 3)]
    return {p.name: p for p in out}


def agent_presets() -> list[Preset]:
    """The agents study (issue 28, :data:`AGENTS_MATRIX`): each learner with ``--method udr --range rl3`` (ABR:
    the training sets mixed in, as every ABR study run)."""
    udr = ["--method", "udr", "--range", "rl3"]
    cc_udr = udr + GENET_SENDER  # the CC agents ran on Genet's simulator rules (the default then)
    out = [Preset("abr", "abr-agent-ppo", udr + ["--agent", "ppo"], note="PPO (Pensieve-PPO), from scratch"),
           Preset("abr", "abr-agent-a3c", udr + ["--agent", "a3c"], note="synchronous A3C, Pensieve's settings"),
           Preset("abr", "abr-agent-dqn", udr + ["--agent", "dqn"], note="Double DQN (greedy exported policy)")]
    for agent, what in (("bc", "behaviour cloning"), ("dagger", "DAgger")):
        out += [Preset("abr", f"abr-agent-{agent}-{t}", udr + ["--agent", agent, "--teacher", t],
                       note=f"{what} from {name}") for t, name in (("bba", "BBA"), ("mpc", "RobustMPC"),
                                                                  ("optimal", "the offline optimum (sees the future)"))]
    out += _imitation_then_ppo("abr", udr, "bc", "mpc", "behaviour cloning from RobustMPC")
    # fine-tunes that try to keep the student: Pensieve-PPO's entropy weight starts at ln 6, which pulls a sharp
    # student back towards uniform, and a fresh critic's advantages are noise until it has seen the returns
    # (-warm: better on seeds 0-2, collapsed on 3 and 4); -anchor also holds it near the student by a KL term
    # (robust on all five: README "Choosing an agent")
    out.append(Preset("abr", "abr-agent-bc-mpc-ppo-warm", udr + ["--agent", "ppo", "--init-from", "{warm}"]
                      + FINE_TUNE_OPTIONS, warm_from="abr-agent-bc-mpc-25", budget_includes_warm=True,
                      note="as abr-agent-bc-mpc-ppo, the fine-tune with the entropy weight starting at 0.01 (not ln 6) "
                           "and 20 updates that train the critic alone first (" + " ".join(FINE_TUNE_OPTIONS) + ")"))
    out.append(Preset("abr", "abr-agent-bc-mpc-ppo-anchor", udr + ["--agent", "ppo", "--init-from", "{warm}"]
                      + FINE_TUNE_OPTIONS + ANCHOR_OPTIONS, warm_from="abr-agent-bc-mpc-25", budget_includes_warm=True,
                      note="as abr-agent-bc-mpc-ppo-warm, the loss with KL(student ‖ policy) weighted 20 ("
                           + " ".join(ANCHOR_OPTIONS) + "): the fine-tune kept near its student"))
    out += [Preset("abr", "abr-agent-dt", udr + ["--agent", "dt", "--pool", "{pool}"], steps=DT_STEPS, pool=DT_POOL,
                   note="Decision Transformer, offline: a pool of RobustMPC's and the shipped UDR-RL1/2/3 models' "
                        "episodes on fcc-train and norway-train (the validation sets never); env steps = decisions "
                        "trained on (genet's default), none stepped; the pool's policies' training is not counted")]
    out += [Preset("cc", "cc-agent-ppo", cc_udr + ["--agent", "ppo"], note="PPO (Aurora's), from scratch"),
            Preset("cc", "cc-agent-a3c", cc_udr + ["--agent", "a3c"], note="synchronous A3C on Aurora's network")]
    for agent, what in (("bc", "behaviour cloning"), ("dagger", "DAgger")):
        out += [Preset("cc", f"cc-agent-{agent}-{t}", cc_udr + ["--agent", agent, "--teacher", t],
                       note=f"{what} from the simulator's {t.upper() if t == 'bbr' else t.capitalize()}")
                for t in ("bbr", "cubic")]
    out += _imitation_then_ppo("cc", cc_udr, "dagger", "cubic", "DAgger from Cubic")
    return out


def _imitation_then_ppo(use_case: str, base: list[str], agent: str, teacher: str, what: str) -> list[Preset]:
    """The two stages of an imitation + PPO fine-tune at plain PPO's budget: ``{uc}-agent-{agent}-{teacher}-25``
    (imitation on :data:`IMITATION_SHARE` of the budget) and ``{uc}-agent-{agent}-{teacher}-ppo`` (PPO from the
    same seed's student on the rest; its record counts both stages' steps and wall time)."""
    share = f"{IMITATION_SHARE:.0%}"
    first, second = f"{use_case}-agent-{agent}-{teacher}-25", f"{use_case}-agent-{agent}-{teacher}-ppo"
    label = {"bc": "BC", "dagger": "DAgger"}[agent]
    return [Preset(use_case, first, base + ["--agent", agent, "--teacher", teacher], steps_share=IMITATION_SHARE,
                   note=f"{what} on {share} of the budget: {second}'s first stage"),
            Preset(use_case, second, base + ["--agent", "ppo", "--init-from", "{warm}"], warm_from=first,
                   budget_includes_warm=True,
                   note=f"PPO fine-tune of the same seed's {first} student: {share} {label} + the rest PPO = plain "
                        "PPO's budget (steps and wall time are both stages')")]


#: LB evaluation episodes of Genet's default setting (``genet eval lb -n N --seed S``): the validation episodes
#: (seed 1: ``SeedSequence([1, k])``) pick each run's checkpoint and the shipped seed; the test episodes (seed 0,
#: 50 as Genet's LB README) are only reported. Their jobs and shuffles are distinct.
LB_VALIDATION = ("val", ["-n", "20", "--seed", "1"])
LB_TEST = ("test", ["-n", "50", "--seed", "0"])


def eval_sets(use_case: str, shared: Path) -> list[tuple[str, list[str]]]:
    """(set name, `genet eval` options) of the validation sets: ABR fcc-val and norway-val (default Pensieve
    mode); CC pantheon-ethernet, pantheon-cellular and 100 RL3-range synthetic traces; LB the validation
    episodes, then the test episodes (:data:`LB_VALIDATION`, :data:`LB_TEST`)."""
    if use_case == "lb":
        return [LB_VALIDATION, LB_TEST]
    if use_case == "abr":
        return [(s, ["--traces", str(shared / "traces/abr" / s)]) for s in ("fcc-val", "norway-val")]
    out = [(s, ["--traces", str(shared / "traces/cc" / s)]) for s in ("pantheon-ethernet", "pantheon-cellular")]
    return out + [("rl3-synthetic", ["--config", "rl3", "-n", "100", "--seed", "1"])]
