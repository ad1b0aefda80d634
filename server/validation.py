"""Reject client updates that must not reach aggregation: wrong names, shapes or dtypes, non-finite values, or an
update whose L2 norm (client tensors minus global tensors, over all shared tensors) exceeds a bound."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedray.platform.messages import NamedArrays


def update_problem(arrays: object, num_examples: object, reference: NamedArrays, max_norm: float | None) -> str | None:
    """Why this update is unusable, or None when it may be aggregated."""
    if not isinstance(arrays, Mapping):
        return f"tensors must be a mapping of names to arrays, got {type(arrays).__name__}"
    if not isinstance(num_examples, (int, np.integer)) or isinstance(num_examples, bool) or num_examples <= 0:
        return f"num_examples must be a positive integer, got {num_examples!r}"
    missing, extra = set(reference) - set(arrays), set(arrays) - set(reference)
    if missing or extra:
        return f"tensor names differ: missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}"
    squared = 0.0
    for name, ref in reference.items():
        value = arrays[name]
        if not isinstance(value, np.ndarray):
            return f"{name}: not an array ({type(value).__name__})"
        if value.shape != ref.shape:
            return f"{name}: shape {value.shape}, expected {ref.shape}"
        if value.dtype != ref.dtype:
            return f"{name}: dtype {value.dtype}, expected {ref.dtype}"
        if not np.all(np.isfinite(value)):
            return f"{name}: non-finite values"
        squared += float(np.sum((value.astype(np.float64) - ref.astype(np.float64)) ** 2))
    norm = squared**0.5
    if max_norm is not None and norm > max_norm:
        return f"update norm {norm:.4g} exceeds the bound {max_norm:.4g}"
    return None
