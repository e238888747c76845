"""ABR (adaptive-bitrate video) use case: chunk-level simulator, observations, baselines, evaluation.

Layering (trace -> video/link model -> batched simulator -> env + observer):

* :mod:`genet.abr.video`: the bitrate ladder and chunk sizes (``video_size_*`` files, JSON tables; the
  shipped EnvivioDash3 table is the default video) and :class:`~genet.abr.video.SessionVideos`, what
  ``Policy.bind`` receives;
* :mod:`genet.abr.qoe`: the per-chunk QoE and the per-video Table-6 accumulator (the one definition);
* :mod:`genet.abr.registry`: policy names and ``.onnx`` paths -> policies (``POLICIES``, a
  :class:`foundation.registry.Registry`);
* :mod:`genet.abr.params`: simulator conventions (:class:`SimConventions`, the
  Genet-compatibility and Pensieve-default modes) and per-environment
  properties (:class:`EnvParams`, from the ABR config space);
* :mod:`genet.abr.core`: :class:`BatchedAbrSim`, the core stepping many sessions at once (numba-compiled
  kernels; a process's first chunk downloads run them as plain Python: :mod:`genet.abr.jit`);
* :mod:`genet.abr.observations`: Pensieve 6x8 / Genet 6x6 states and the action mappings, built from the
  simulator's steps or from a player's plain ``ChunkMeasurement`` records;
* :mod:`genet.abr.env`: the Gymnasium environment ``genet/Abr-v0`` (a view over the batched core)
  and its natively batched ``vector_entry_point`` :class:`~genet.abr.env.AbrVectorEnv`
  (``genet.abr.env.register_envs()`` registers both with Gymnasium; importing registers nothing);
* :mod:`genet.abr.baselines`, :mod:`genet.abr.mpc`: BBA and RobustMPC;
  :mod:`genet.abr.optimal`: the offline optimum;
* :mod:`genet.abr.pensieve_net`: the Pensieve/Genet actor in torch; :mod:`genet.abr.tf_import`: the
  paper's TF1 checkpoints to ONNX (via :mod:`genet.tf_checkpoint`, no TensorFlow);
* :mod:`genet.abr.evaluate`: batched evaluation over trace sets (``evaluate``: one policy, every trace;
  ``optimal`` planned by :mod:`genet.abr.optimal`, which never imports it); :mod:`genet.abr.cli`: ``genet eval abr``
  and ``genet import-tf-checkpoint``.

Heavy parts are imported on use; ``import genet.abr`` stays cheap. ``qoe``, ``observations``,
``registry``, ``video``, ``baselines``, ``mpc``, ``core`` and ``evaluate`` import no numba (the first five
are what the player's runtime install runs).
"""

ENV_ID = "genet/Abr-v0"
