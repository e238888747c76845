"""`genet study cc-startup`: why CC Genet's curriculum stalls (issue 17): the corner its BO keeps promoting,
and where the loss there comes from.

The CC BO (gap to BBR, packet-level reward) promotes a 0.1-Mbit/s, 2-ms link in nearly every round, and the gap
stays ~1,100-1,450 after training on it. This runs BBR, Cubic and Aurora policies on that corner (traces
generated the way the BO's trials generate them) and splits each policy's sent and lost packets by time: an
Aurora sender starts at 10 packets per minimum RTT (2,500 packets/s at 4 ms, 300x the link) and the policy's
first decisions come too late to avoid the start-up burst, which the packet-level loss term (2000 x lost/sent)
then dominates. Column r>ACK1: the reward of the packets sent after the sender's first ACK (what
`genet train cc --gap-after-first-ack` has the BO compare). ``--startup aurora,window`` runs each Aurora model
with each named start-up (``genet.cc.aurora``: "window" = an initial window of 10 packets until the first ACK),
one row per (model, start-up), labelled ``name[start-up]``; without it each model runs with the start-up it was
trained with (its metadata; "aurora" for the shipped models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from foundation.errors import BadInputError

#: The configuration CC Genet's BO promoted (models/cc/genet.json rounds 1, 2, 5-7; the study's seeds 1-2 likewise).
CORNER = {"max_bandwidth_mbps": 0.1, "min_bandwidth_mbps": 0.1, "delay_ms": 2.0, "bandwidth_change_interval_s": 0.0,
          "loss_rate": 0.05, "queue_bdp": 0.2}
#: Time bins of the split (s): the start-up, the next seconds, the rest of the 30-s episode.
BINS_S = (0.0, 1.0, 5.0, 30.0 + 1e-9)


def lines(labels: list[str], loss_rate: float, n: int, startups: list[str] | None = None) -> Iterator[str]:
    """The corner, the header, then one row per policy (bbr, cubic, PATH.onnx; an ONNX policy once per start-up
    in ``startups``, None: the model's own): mean reward, throughput, RTT, loss, reward after the first ACK, and
    sent / lost packets per :data:`BINS_S` bin, over ``n`` traces of the corner at ``loss_rate``."""
    if n < 1 or not 0 <= loss_rate <= 1:
        raise BadInputError(f"need -n >= 1 and 0 <= --loss-rate <= 1, got -n {n}, --loss-rate {loss_rate}")
    import numpy as np
    from dataclasses import replace

    from genet.cc.aurora import STARTUPS, AuroraConfig
    bad = [x for x in startups or () if x not in STARTUPS]
    if bad or (startups is not None and not startups):
        raise BadInputError(f"--startup takes {', '.join(STARTUPS)} (comma-separated), got {','.join(startups)!r}")
    from genet.cc.metrics import after_first_ack, summarize
    from genet.cc.policies import run_policy
    from genet.cc.registry import load_aurora_policy, parse_policy
    from genet.cc.training import trial_runs  # one definition: how a BO trial makes its traces
    from traces.config_space import load_space
    space = load_space("cc")
    corner = dict(CORNER, loss_rate=loss_rate)
    aurora = AuroraConfig(reward_form="genet")
    runs = []  # (row label, policy, loaded policy or None)
    for label in labels:
        pol = parse_policy(label)
        if pol.kind != "onnx":
            runs.append((Path(label).name, pol, None))
            continue
        net, cfg = load_aurora_policy(label, aurora)
        for startup in startups or [None]:
            name = Path(label).name if startup is None else f"{Path(label).name}[{startup}]"
            runs.append((name, pol, (net, cfg if startup is None else replace(cfg, startup=startup))))
    width = max([14] + [len(r[0]) for r in runs])
    yield f"corner: {corner}; {n} traces of 30 s, seeds as the BO's trials ([0, i])"
    yield (f"{'policy':{width}s} {'reward':>8s} {'Mbit/s':>7s} {'RTT ms':>7s} {'loss':>6s} {'r>ACK1':>7s}   sent / lost in "
           + ", ".join(f"[{a:g},{b:.0f}) s" for a, b in zip(BINS_S, BINS_S[1:])))
    for name, pol, loaded in runs:
        label = pol.label
        rows, sent, lost = [], np.zeros(len(BINS_S) - 1), np.zeros(len(BINS_S) - 1)
        for trace, link, seed in trial_runs([corner] * n, 0, space):
            log = run_policy(pol, trace, link, seed=seed, aurora=aurora, loaded=loaded)
            m = summarize(log, link, label, trace.name, "genet", seed)
            late = summarize(after_first_ack(log), link, label, trace.name, "genet", seed)
            rows.append((m.reward, m.throughput_mbps, m.mean_rtt_ms, m.loss_rate, late.reward))
            sent += np.histogram(log.time_s[log.kind == 0], BINS_S)[0]
            lost += np.histogram(log.time_s[log.kind == 2], BINS_S)[0]
        r = np.mean(rows, axis=0)
        split = ", ".join(f"{s / n:.0f}/{lo / n:.0f}" for s, lo in zip(sent, lost))
        yield f"{name:{width}s} {r[0]:8.1f} {r[1]:7.3f} {r[2]:7.1f} {r[3]:6.3f} {r[4]:7.1f}   {split}"
