"""Single-decision latency of an exported Aurora policy (issue 6, export):
onnxruntime (the shared :class:`genet.policy.OnnxPolicy`, 1 thread) versus
torch eager, one 30-value observation per call.

    .venv/bin/python benchmarks/cc_policy_latency.py [--onnx FILE] [--calls 5000]

Without ``--onnx`` a freshly initialised Aurora actor is exported to a
temporary file (latency does not depend on the weights). Prints median and
p99 in microseconds; the issue's target is p99 <= 100 us for onnxruntime.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def percentiles_us(samples_s: list[float]) -> tuple[float, float]:
    a = np.array(samples_s) * 1e6
    return float(np.median(a)), float(np.percentile(a, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", default=None, help="exported CC policy (default: export a fresh one)")
    ap.add_argument("--calls", type=int, default=5000, help="timed decisions per runtime (count)")
    args = ap.parse_args()
    from genet.cc.policies import cc_policy_spec
    from genet.policy import OnnxPolicy, export_onnx
    from genet.ppo.networks import AuroraActorCritic
    torch.set_num_threads(1)
    net = AuroraActorCritic()
    path = Path(args.onnx) if args.onnx else export_onnx(net.pi, cc_policy_spec(),
                                                         Path(tempfile.mkdtemp()) / "aurora.onnx")
    ort_policy = OnnxPolicy(path)
    obs = np.random.default_rng(0).uniform(-1, 1, size=(args.calls, 1, 30)).astype(np.float32)
    results = {}
    for name, fn in (("onnxruntime (OnnxPolicy.act)", lambda o: ort_policy.act(o)),
                     ("onnxruntime (session.run)", lambda o: ort_policy.forward(o)),
                     ("torch eager (no_grad)", None)):
        samples = []
        for i in range(args.calls + 100):
            o = obs[i % args.calls]
            t0 = time.perf_counter()
            if fn is None:
                with torch.no_grad():
                    net.pi(torch.from_numpy(o)).numpy()
            else:
                fn(o)
            if i >= 100:  # warm-up excluded
                samples.append(time.perf_counter() - t0)
        results[name] = percentiles_us(samples)
    for name, (med, p99) in results.items():
        print(f"{name:<30} median {med:7.1f} us   p99 {p99:7.1f} us")
    print("target: onnxruntime p99 <= 100 us")


if __name__ == "__main__":
    main()
