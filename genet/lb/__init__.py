"""genet.lb: the load-balancing use case (the Genet paper's third; Park's / Genet's LB environment).

* :mod:`genet.lb.observations` - the one observation definition (:class:`~genet.lb.observations.LbState`,
  layouts ``lb.genet-Ww``, ``lb.park-Ww``, ``lb.state-Ww``); the real balancer uses it too;
* :mod:`genet.lb.registry` - the LB policies (least-work-left, shortest expected delay, join-shortest-queue,
  power-of-two-choices, round robin, random, ``PATH.onnx``);
* :mod:`genet.lb.simulator` - the event simulator (one episode) and its batched core;
* :mod:`genet.lb.env` - the Gymnasium environment ``genet/LoadBalance-v0`` (``register_envs()``);
* :mod:`genet.lb.metrics`, :mod:`genet.lb.evaluate`, :mod:`genet.lb.cli` - ``genet eval lb``;
* :mod:`genet.lb.training` - PPO training and the Genet curriculum's use case object;
* :mod:`genet.lb.usecase` - the use case's declaration.

Workloads (arrival times and sizes of jobs) are ``traces/workload.py``. Importing this package imports nothing.
"""
