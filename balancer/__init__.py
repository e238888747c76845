"""Load balancing on real servers (issue 27): worker servers with a real FIFO queue and a set service rate
(:mod:`balancer.worker`), the balancer that dispatches each job to one of them with any LB policy of
:data:`genet.lb.registry.POLICIES` (:mod:`balancer.server`), the client that replays a workload file open-loop
(:mod:`balancer.client`), the summary of a run (:mod:`balancer.summary`) and ``genet emulate lb``
(:mod:`balancer.emulate`: all of them in network namespaces joined by emulated links, beside the simulator).

Same layer as ``sender/`` and ``player/``; what a worker, balancer or client host runs imports only numpy,
onnxruntime and the standard library.
"""
