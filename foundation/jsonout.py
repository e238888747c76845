"""JSON as the project writes it: strict JSON (RFC 8259), where an undefined figure is ``null``.

In memory an undefined metric is NaN (:func:`foundation.metrics.percentile` of nothing, a ratio over zero);
``json.dumps`` would write it as the bare token ``NaN`` (or ``Infinity``), which is not JSON: ``jq``,
JavaScript's ``JSON.parse`` and most other readers refuse the whole line. :func:`dumps` writes every
non-finite float (Python or numpy) as ``null`` and refuses anything else that is not JSON
(``allow_nan=False``). Python's own ``json.loads`` reads ``null`` back as None.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf; numpy floats too) inside dicts, lists and tuples
    replaced by None; numpy scalars become Python numbers; everything else as it is."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():  # a numpy scalar (no numpy import here)
        return finite_or_none(value.item())
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``value`` with non-finite floats as ``null`` (see the module notes)."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)


__all__ = ["dumps", "finite_or_none"]
