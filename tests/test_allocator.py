"""genet.ppo.allocator: a training process keeps freed memory instead of faulting it in again."""

import subprocess
import sys

import pytest

from genet.ppo import allocator

CYCLES = 40
PROBE = f"""
import resource, sys
import numpy as np
from genet.ppo.allocator import keep_freed_memory
tuned = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({CYCLES}):
    # a step's temporaries: 8 x 4 MiB, all freed at its end (as a PPO step's activations and gradients)
    blocks = [np.ones(4 * 2**20 // 8) for _ in range(8)]
    del blocks
print(int(tuned), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(tuning: str) -> tuple[bool, int]:
    env = {"GENET_MALLOC_TUNING": tuning, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1])).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_freed_blocks_are_reused_not_faulted_in_again():
    tuned, faults_tuned = _faults("1")
    untuned, faults_default = _faults("0")
    assert tuned and not untuned
    pages = CYCLES * 8 * 4 * 2**20 // 4096
    # default malloc: the 32 MiB freed at the heap's top exceed its (dynamic) trim threshold and go back to
    # the kernel, so every cycle faults thousands of its 8,192 pages in again (about half here)
    assert faults_default > 0.25 * pages, faults_default
    # tuned: the blocks stay in the heap after the first cycle
    assert faults_tuned < 0.05 * pages, (faults_tuned, faults_default)


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("GENET_MALLOC_TUNING", "0")
    monkeypatch.setattr(allocator, "_done", False)
    assert allocator.keep_freed_memory() is False
