"""Seeded synthetic trace generators for the Genet environment spaces.

``generate_trace(use_case, config, rng)`` turns one config (a dict over the
use case's :mod:`~traces.config_space` dimensions) into a :class:`Trace`
whose ``meta["config"]`` records the full config; ``generate_set`` draws n
configs from a range and generates a reproducible set (trace i depends only on
(seed, i), not on n).

Bandwidth model (both use cases): a new value is drawn uniformly from
[min_bandwidth_mbps, max_bandwidth_mbps] at t = 0 and then every
``bandwidth_change_interval_s`` seconds, rounded up to the sample grid, and
holds until the next change; interval 0 means constant bandwidth (Genet CC's
convention). Unlike Genet's ABR generator (genet-simulators.md §3.2, QUIRK:
a new value at every sample), the interval really holds. Each value is held
for at least the interval; changes land on the sample grid (0.1 s for CC as in
Genet, 1 s for ABR like the FCC traces).

CC (§4.7): min RTT is 2 x ``delay_ms``; the queue is
``max(2, int(BDP_packets x queue_bdp))`` with BDP from the max bandwidth and
the delay, unless the config gives ``queue_packets``.
ABR: ``delay_ms`` = min_rtt_ms / 2; the whole config (buffer, chunk length,
video length, RTT) travels in ``meta["config"]`` for the simulator.
"""

from __future__ import annotations

import math

import numpy as np

from traces.config_space import ConfigSpace, ConfigSpaceError, load_space
from traces.trace import MAHIMAHI_PACKET_BYTES as PACKET_BYTES, Trace


def bandwidth_series(rng: np.random.Generator, duration_s: float, sample_interval_s: float,
                     min_bandwidth_mbps: float, max_bandwidth_mbps: float,
                     change_interval_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant bandwidth on a regular grid; see the module docstring."""
    n = int(round(duration_s / sample_interval_s))
    t = np.round(np.arange(n + 1) * sample_interval_s, 9)
    lo, hi = min(min_bandwidth_mbps, max_bandwidth_mbps), max_bandwidth_mbps
    if change_interval_s <= 0:
        return t, np.full(n + 1, rng.uniform(lo, hi))
    hold = max(1, math.ceil(change_interval_s / sample_interval_s - 1e-9))
    n_values = n // hold + 1
    values = rng.uniform(lo, hi, size=n_values)
    bw = np.repeat(values, hold)[: n + 1]
    bw[-1] = bw[-2] if n >= 1 else bw[-1]  # the end marker repeats the last value
    return t, bw


def generate_abr_trace(config: dict, rng: np.random.Generator, space: ConfigSpace, name: str = "") -> Trace:
    cfg = space.validate(config)
    t, bw = bandwidth_series(rng, float(space.fixed.get("trace_duration_s", 330)),
                             float(space.fixed.get("sample_interval_s", 1.0)),
                             cfg["min_bandwidth_mbps"], cfg["max_bandwidth_mbps"], cfg["bandwidth_change_interval_s"])
    return Trace(t, bw, name=name, delay_ms=cfg["min_rtt_ms"] / 2.0,
                 meta={"source_format": "generated", "use_case": "abr", "config": cfg})


def cc_queue_packets(max_bandwidth_mbps: float, delay_ms: float, queue_bdp: float) -> int:
    """Genet's queue size: max(2, int(BDP x multiplier)), BDP in 1500-byte packets over 2 x delay."""
    bdp = max_bandwidth_mbps * 1e6 / 8 / PACKET_BYTES * (2 * delay_ms / 1000.0)
    return max(2, int(bdp * queue_bdp))


def generate_cc_trace(config: dict, rng: np.random.Generator, space: ConfigSpace, name: str = "") -> Trace:
    cfg = space.validate(config)
    t, bw = bandwidth_series(rng, float(space.fixed.get("trace_duration_s", 30)),
                             float(space.fixed.get("sample_interval_s", 0.1)),
                             cfg["min_bandwidth_mbps"], cfg["max_bandwidth_mbps"], cfg["bandwidth_change_interval_s"])
    if cfg.get("queue_packets") is not None:
        queue = int(cfg["queue_packets"])
        if queue < 1:
            raise ConfigSpaceError(f"cc config 'queue_packets' = {queue} must be >= 1")
    else:
        queue = cc_queue_packets(float(bw.max()), cfg["delay_ms"], cfg["queue_bdp"])
    meta = {"source_format": "generated", "use_case": "cc", "config": cfg,
            "T_s": cfg["bandwidth_change_interval_s"], "delay_noise": space.fixed.get("delay_noise_ms", 0)}
    return Trace(t, bw, name=name, delay_ms=cfg["delay_ms"], loss_rate=cfg["loss_rate"],
                 queue_packets=queue, meta=meta)


GENERATORS = {"abr": generate_abr_trace, "cc": generate_cc_trace}


def generate_trace(use_case: str, config: dict, rng: np.random.Generator | int | None = None,
                   name: str = "", space: ConfigSpace | None = None) -> Trace:
    """One trace from one config (missing dimensions take their defaults)."""
    if use_case not in GENERATORS:
        raise ConfigSpaceError(f"no trace generator for use case {use_case!r}; choose {', '.join(GENERATORS)}")
    space = space or load_space(use_case)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return GENERATORS[use_case](config, rng, space, name)


def generate_set(use_case: str, range_name: str = "rl3", n: int = 100, seed: int = 0,
                 space: ConfigSpace | None = None) -> list[Trace]:
    """n traces with configs drawn uniformly from ``range_name``; trace i is a
    function of (seed, i) only."""
    if n < 1:
        raise ConfigSpaceError(f"n must be >= 1, got {n}")
    space = space or load_space(use_case)
    out = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        cfg = space.sample(rng, range_name)
        trace = generate_trace(use_case, cfg, rng, name=f"{use_case}-{range_name}-s{seed}-{i:04d}", space=space)
        trace.meta.update(seed=seed, index=i, range=range_name)
        out.append(trace)
    return out
