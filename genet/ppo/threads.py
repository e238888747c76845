"""Torch intra-op threads for training, one rule for every use case: 0 means every core."""

from __future__ import annotations

from foundation.errors import BadInputError

import os


def torch_thread_count(requested: int) -> int:
    """``requested`` threads, or every core for 0; negative counts are an error."""
    if requested < 0:
        raise BadInputError(f"torch threads must be >= 0 (0 = every core), got {requested}")
    return requested or (os.cpu_count() or 1)


def set_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads (:func:`torch_thread_count`) and return the number set."""
    import torch
    n = torch_thread_count(requested)
    torch.set_num_threads(n)
    return n
