"""Import the Genet paper's TF1 ABR actor checkpoints into genet-testbed ONNX policies (no TensorFlow).

The checkpoint is read with :class:`genet.tf_checkpoint.TensorBundle`. The
tflearn actor's variables, in creation order under ``actor/``
(``G:fig_reproduce/sim/a3c.py``): ``FullyConnected`` (row 0),
``FullyConnected_1`` (row 1), ``Conv1D`` (row 2), ``Conv1D_1`` (row 3),
``Conv1D_2`` (row 4), ``FullyConnected_2`` (row 5), ``FullyConnected_3``
(768->128), ``FullyConnected_4`` (output). tflearn ``W`` is [in, out]
(torch's transpose); a ``Conv1D/W`` is [4, 1, L, 128] of which only one
kernel tap ever touches data — tap 1 under TF's "same" padding of a length-1
input (pad before = (4-1)//2). When the checkpoint holds the RMSProp slots,
the tap is confirmed from them (only the used tap has a non-zero gradient
accumulator); a disagreement is an error.

The ONNX file's metadata: use case "abr", layout ``abr.genet-6x6`` (6x6)
or ``abr.pensieve-6x8`` (6x8, direct actions) depending on the tensor shapes,
action semantics ``abr.jump3`` / ``abr.direct6``, plus provenance (source
checkpoint, tensor names) and the bitrate ladder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genet.tf_checkpoint import CheckpointFormatError, TensorBundle

BRANCHES = [("fc_bitrate", "FullyConnected"), ("fc_buffer", "FullyConnected_1"), ("fc_throughput", "Conv1D"),
            ("fc_delay", "Conv1D_1"), ("fc_sizes", "Conv1D_2"), ("fc_remaining", "FullyConnected_2"),
            ("fc_hidden", "FullyConnected_3"), ("fc_out", "FullyConnected_4")]


def _conv_tap(bundle: TensorBundle, name: str, w: np.ndarray) -> int:
    k = w.shape[0]
    tap = (k - 1) // 2
    slot = f"{name}/RMSProp"
    if slot in bundle.entries:
        acc = np.abs(bundle.read(slot)).reshape(k, -1).mean(axis=1)
        used = int(np.argmax(acc))
        if used != tap or np.sum(acc > acc[used] * 1e-6) != 1:
            raise CheckpointFormatError(f"{bundle.prefix}: {name} optimizer slots say kernel tap(s) "
                                        f"{np.flatnonzero(acc > acc[used] * 1e-6).tolist()} were trained, "
                                        f"expected only tap {tap}")
    return tap


def actor_state_dict(bundle: TensorBundle, scope: str = "actor") -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """torch state_dict arrays for :class:`PensieveActor` and its (s_len, n_actions, n_levels)."""
    state: dict[str, np.ndarray] = {}
    dims: dict[str, int] = {}
    for attr, tf_name in BRANCHES:
        wname, bname = f"{scope}/{tf_name}/W", f"{scope}/{tf_name}/b"
        for n in (wname, bname):
            if n not in bundle.entries:
                raise CheckpointFormatError(
                    f"{bundle.prefix}: no tensor {n!r}; not a Pensieve/Genet A3C actor checkpoint "
                    f"(actor tensors: {', '.join(k for k in bundle.names() if k.startswith(scope + '/') and 'RMSProp' not in k) or 'none'})")
        w = bundle.read(wname).astype(np.float32)
        b = bundle.read(bname).astype(np.float32)
        if tf_name.startswith("Conv1D"):
            if w.ndim != 4 or w.shape[1] != 1:
                raise CheckpointFormatError(f"{bundle.prefix}: {wname} has shape {w.shape}, expected [k, 1, L, 128]")
            w = w[_conv_tap(bundle, wname, w), 0]
        if w.ndim != 2:
            raise CheckpointFormatError(f"{bundle.prefix}: {wname} has shape {w.shape}, expected a matrix")
        state[f"{attr}.weight"] = np.ascontiguousarray(w.T)
        state[f"{attr}.bias"] = b
        if attr == "fc_throughput":
            dims["s_len"] = w.shape[0]
        if attr == "fc_sizes":
            dims["n_levels"] = w.shape[0]
        if attr == "fc_out":
            dims["n_actions"] = w.shape[1]
    return state, dims


def import_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike, name: str | None = None,
                      check: bool = True):
    """Convert a checkpoint to an ONNX policy; returns (path, short description)."""
    import torch

    from genet.abr.observations import GENET_6X6, PENSIEVE_6X8
    from genet.abr.pensieve_net import PensieveActor
    from genet.abr.video import ENVIVIO_BITRATES_KBPS
    from genet.policy import export_onnx

    bundle = TensorBundle(checkpoint)
    state, dims = actor_state_dict(bundle)
    if (dims["s_len"], dims["n_actions"]) == (6, 3):
        layout = GENET_6X6
    elif (dims["s_len"], dims["n_actions"]) == (8, 6):
        layout = PENSIEVE_6X8
    else:
        raise CheckpointFormatError(f"{bundle.prefix}: actor has history {dims['s_len']} and {dims['n_actions']} "
                                    f"actions; supported layouts: 6x6 with 3 jump actions (Genet paper), "
                                    f"6x8 with 6 direct actions (Pensieve)")
    net = PensieveActor(dims["s_len"], dims["n_actions"], dims["n_levels"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    label = name or Path(bundle.prefix).parent.name or Path(bundle.prefix).name
    rng = np.random.default_rng(0)
    obs = rng.uniform(0, 2, size=(32, *layout.shape)).astype(np.float32) if check else None
    path = export_onnx(net, layout.policy_spec(), output, check_observations=obs,
                       extra_metadata={"name": label, "source_checkpoint": f"{Path(bundle.prefix).parent.name}/{Path(bundle.prefix).name}",
                                       "source_format": "tensorflow-1 tensor bundle (tflearn A3C actor)",
                                       "bitrates_kbps": list(ENVIVIO_BITRATES_KBPS),
                                       "sampling": "Pensieve A3C: first action with cumsum(p) > randint(1,1000)/1000"})
    return path, f"{label}: {layout.name}, {layout.action_semantics}, {len(state) // 2} layers"
