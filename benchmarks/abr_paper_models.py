"""Mean QoE of the Genet paper's released ABR models next to BBA, RobustMPC and the offline optimum.

Run: .venv/bin/python benchmarks/abr_paper_models.py   (needs ../shared; prints, asserts nothing)

Imports ../shared/models/paper-abr/* with `genet import-tf-checkpoint`'s code (no TensorFlow) and
evaluates every policy on fcc-val and norway-val: in compatibility mode (the issue's reference setting:
49 chunks, mu = 10) and in the default Pensieve mode (48 chunks, mu = 4.3). Network policies act
greedily (argmax); `--sample` uses the A3C sampling rule with seed 0 (as the paper's test scripts sample).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENET_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))

from genet.abr.evaluate import evaluate, summarize  # noqa: E402
from genet.abr.params import GENET_COMPAT, PENSIEVE  # noqa: E402
from genet.abr.tf_import import import_checkpoint  # noqa: E402
from genet.abr.video import load_video  # noqa: E402
from traces import load_traces  # noqa: E402

MODELS = ["genet", "udr_1", "udr_2", "udr_3", "udr_real"]


def main() -> None:
    sample = "--sample" in sys.argv
    video = load_video(SHARED / "video" / "envivio")
    tmp = Path(tempfile.mkdtemp(prefix="genet-paper-models-"))
    onnx = {m: str(import_checkpoint(SHARED / "models" / "paper-abr" / m, tmp / f"{m}.onnx")[0]) for m in MODELS}
    policies = ["bba", "mpc", "optimal"] + MODELS
    print(f"mean per-trace total QoE ({'sampled' if sample else 'argmax'} actions for the models)")
    print(f"{'mode':<9} {'dataset':<11} " + " ".join(f"{p:>9}" for p in policies))
    for conv in (GENET_COMPAT, PENSIEVE):
        for ds in ("fcc-val", "norway-val"):
            traces = load_traces(SHARED / "traces" / "abr" / ds)
            row = []
            for p in policies:
                pol = onnx.get(p, p)
                res = evaluate(pol, traces, video, conv, label=p, deterministic=not sample, seed=0)
                row.append(summarize(res).qoe)
            print(f"{conv.name:<9} {ds:<11} " + " ".join(f"{v:>9.3f}" for v in row))


if __name__ == "__main__":
    main()
