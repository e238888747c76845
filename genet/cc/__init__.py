"""genet.cc: the congestion-control use case in simulation.

* :mod:`genet.cc.link` - the bottleneck link model and :class:`LinkConfig`;
* :mod:`genet.cc.events` - the numba event loop (the whole event model);
* :mod:`genet.cc.senders` - rate-based (constant / Aurora), Cubic and BBR;
* :mod:`genet.cc.simulator` - :class:`Simulation`, the resumable front door;
* :mod:`genet.cc.monitor`, :mod:`genet.cc.reward` - Aurora's monitor
  intervals, observation and reward from a per-packet event stream;
* :mod:`genet.cc.env` - the Gymnasium environment ``genet/Aurora-v0``;
* :mod:`genet.cc.metrics`, :mod:`genet.cc.evaluate` - evaluation.

Heavy parts (numba kernels, gymnasium) load on first use of these names;
``genet.cc.env.register_envs()`` registers ``genet/Aurora-v0`` with Gymnasium (importing
registers nothing).

>>> from genet.cc import LinkConfig, Simulation, BbrSender
>>> log = Simulation(LinkConfig.constant(10, delay_ms=50, queue_packets=83), BbrSender()).run()
"""

from __future__ import annotations

import importlib

_LAZY = {
    "LinkConfig": "genet.cc.link",
    "Simulation": "genet.cc.simulator",
    "EventLog": "genet.cc.simulator",
    "RateSender": "genet.cc.senders.kinds",
    "CubicSender": "genet.cc.senders.kinds",
    "BbrSender": "genet.cc.senders.kinds",
    "AuroraEnv": "genet.cc.env",
    "AuroraConfig": "genet.cc.aurora",
    "IntervalMonitor": "genet.cc.monitor",
    "MonitorInterval": "genet.cc.monitor",
    "ObservationHistory": "genet.cc.monitor",
    "aurora_reward": "genet.cc.reward",
    "RunMetrics": "genet.cc.metrics",
    "summarize": "genet.cc.metrics",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genet.cc' has no attribute {name!r}")
