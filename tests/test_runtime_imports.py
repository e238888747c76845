"""Runtime modules (what a sender/player host runs) import none of the heavy
training/simulation/plotting packages: checked in a fresh interpreter through
``sys.modules``. Use cases add their runtime modules to RUNTIME_MODULES."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numba", "gymnasium", "torch", "matplotlib")

#: Modules that must load without HEAVY (CC: the Aurora controller, registry, sender; shared: policy, metrics).
RUNTIME_MODULES = [
    "genet.policy",
    "foundation.registry",
    "foundation.metrics",
    "foundation.stats",
    "foundation.packets",
    "foundation.cpuidle",
    "foundation.journal",
    "genet.cc.aurora",
    "genet.cc.monitor",
    "genet.cc.reward",
    "genet.cc.metrics",  # the CC columns: imported by the reports and genet deploy, which load no simulator
    "genet.cc.registry",
    "sender",
    "sender.wire",
    "sender.receiver",
    "sender.udp_sender",
    "sender.kernel",
    "sender.iperf3",
    "sender.cli",
    # ABR: QoE, observations, the policy registry with BBA/RobustMPC, the video table; the player
    "genet.abr.qoe",
    "genet.abr.observations",
    "genet.abr.registry",
    "genet.abr.video",
    "genet.abr.baselines",
    "genet.abr.mpc",
    "player",
    "player.content",
    "player.abr",
    "player.server",
    "player.client",
    "player.cli",
    # LB on real servers: the worker, the balancer (with the LB registry and observations), the client
    "balancer",
    "balancer.wire",
    "balancer.view",
    "balancer.worker",
    "balancer.cpuquota",
    "balancer.server",
    "balancer.decide",
    "balancer.client",
    "balancer.summary",
    "balancer.cli",
    "balancer.cluster",
    "genet.lb.registry",
]


def _loaded_heavy(code: str) -> list[str]:
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_runtime_module_loads_no_heavy_package(module):
    assert _loaded_heavy(f"import {module}") == []


def test_the_sender_commands_load_no_heavy_package():
    code = ("from app.cli import build_parser\n"
            "build_parser().parse_args(['sender', 'send', '--to', '127.0.0.1:9', '--policy', 'const:1', "
            "'--duration-s', '1'])\n"
            "import sender.udp_sender, sender.receiver")
    assert _loaded_heavy(code) == []


def test_loading_an_onnx_aurora_policy_loads_no_simulator(repo_dir):
    model = repo_dir / "models" / "cc" / "genet.onnx"
    code = ("from genet.cc.registry import load_rate_policy\n"
            f"p = load_rate_policy({str(model)!r})\n"
            "import numpy as np\n"
            "from genet.policy import act_one\n"
            "assert np.isfinite(act_one(p.network, np.zeros(30, np.float32))[0])\n"
            "assert 'genet.cc.simulator' not in sys.modules and 'genet.cc.env' not in sys.modules")
    assert _loaded_heavy(code) == []
