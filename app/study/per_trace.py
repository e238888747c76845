"""`genet study per-trace`: where one ABR policy wins and loses against another, trace by trace (issue 17's
per-trace evidence).

Runs every policy on every trace of each set (the evaluation `genet eval abr` does: default Pensieve mode,
the shipped video) and groups the traces by their mean bandwidth (Mbit/s, time-weighted over the trace). For
each group it prints the traces' count, each policy's mean QoE, and the first policy's mean difference to the
second and its wins / ties / losses (a QoE difference under 0.5 counts as a tie). The mean
bandwidth is traces.Trace.mean_bandwidth_mbps, as `genet traces stats` reports it. The validation
sets' slow traces are most of them; a policy that streams the top rung only on fast links scores little there.
"""

from __future__ import annotations

from pathlib import Path

from foundation.errors import BadInputError

#: a QoE difference smaller than this is a tie (QoE of one 48-chunk video)
TIE_QOE = 0.5
#: The default mean-bandwidth groups' lower edges (Mbit/s; the last group is open).
DEFAULT_BINS_MBPS = "0,0.5,1,2,4,8"


def parse_bins_mbps(text: str) -> list[float]:
    """``"0,0.5,1"`` -> [0.0, 0.5, 1.0]; not numbers or not increasing: :class:`BadInputError`."""
    try:
        bins = [float(b) for b in text.split(",")]
    except ValueError:
        raise BadInputError(f"--bins-mbps takes comma-separated numbers (Mbit/s), got {text!r}") from None
    if sorted(bins) != bins or len(set(bins)) != len(bins):
        raise BadInputError(f"--bins-mbps must be increasing, got {text!r}")
    return bins


def check_policies(labels: list[str]) -> list[str]:
    """``labels`` when there are at least two (the first two are compared), else :class:`BadInputError`."""
    if len(labels) < 2:
        raise BadInputError(f"--policy needs at least two policies (the first two are compared), got {labels}")
    return labels


def compare(labels: list[str], sets: dict[str, list], bins_mbps: list[float]) -> str:
    """The per-group table (see the module docstring) for each set; ``labels``: policies (PATH.onnx, mpc, bba;
    the first two are compared), ``sets``: name -> traces."""
    check_policies(labels)
    import numpy as np

    from genet.abr.evaluate import evaluate
    from genet.abr.training import default_video
    from genet.policy import load_policy
    video = default_video()
    policies = [load_policy(p) if p.endswith(".onnx") else p for p in labels]
    names = [Path(p).stem[:10] for p in labels]
    edges = [*bins_mbps, np.inf]
    lines = []
    for set_name, traces in sets.items():
        qoe = np.array([[r.qoe for r in evaluate(pol, traces, video)] for pol in policies])  # (policies, traces)
        mbw = np.array([tr.mean_bandwidth_mbps for tr in traces])  # traces.Trace's time-weighted mean
        lines.append(f"{set_name}: {len(traces)} traces; {names[0]} - {names[1]} per group "
                     f"(wins / ties / losses: difference beyond ±{TIE_QOE})")
        lines.append(f"{'mean Mbit/s':>12s} {'traces':>6s} " + " ".join(f"{n:>10s}" for n in names) +
                     f" {'diff':>8s} {'w/t/l':>9s}")
        groups = [(lo, hi, (mbw >= lo) & (mbw < hi)) for lo, hi in zip(edges[:-1], edges[1:])]
        groups.append((edges[0], np.inf, np.ones(len(traces), bool)))
        for k, (lo, hi, m) in enumerate(groups):
            if not m.any():
                continue
            d = qoe[0, m] - qoe[1, m]
            label = "all" if k == len(groups) - 1 else (f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}")
            wtl = f"{(d > TIE_QOE).sum()}/{(abs(d) <= TIE_QOE).sum()}/{(d < -TIE_QOE).sum()}"
            lines.append(f"{label:>12s} {m.sum():>6d} " + " ".join(f"{v:>10.2f}" for v in qoe[:, m].mean(axis=1)) +
                         f" {d.mean():>+8.2f} {wtl:>9s}")
        lines.append("")
    return "\n".join(lines)
