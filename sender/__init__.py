"""sender/: CC policies on real packets.

* :mod:`sender.wire` — the wire format (1500-byte packets: session id, sequence number, send time; one ACK each);
* :mod:`sender.receiver` — ``genet sender receive``; :mod:`sender.udp_sender` — ``genet sender send``
  (paced UDP under an Aurora ONNX policy or ``const:MBPS``, driving :mod:`genet.cc.aurora`);
* :mod:`sender.kernel` — kernel TCP (BBR, Cubic, any allowed algorithm): which the kernel allows;
* :mod:`sender.iperf3` — the one definition of iperf3 (commands, readiness probe, JSON report), used by
  ``genet emulate cc``, the emulation tests and ``genet deploy run``;
* :mod:`sender.emulate` — ``genet emulate cc`` over :class:`emulation.LinkEmulator`, beside the simulator.

The send/receive path imports only numpy, onnxruntime and the standard library.
"""
