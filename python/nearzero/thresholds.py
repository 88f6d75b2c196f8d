"""Thresholds: the exact midpoint percentile of |x| (SPEC §2) and the `thresholds=` forms.

`threshold(x, confidence)` reproduces the original's percentile bit for bit: q is rounded to
float32 first, the two order statistics come from a linear-time radix select in the compiled
core (no sort), and their midpoint is taken in x's own dtype.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from . import _backend
from ._arrays import Operand, as_operand
from .backends import Backend, backend_for
from .backends.cpu import count_nans

__all__ = ["threshold", "percentile_fraction", "resolve_thresholds", "count_nans"]

NAN_POLICIES = ("raise", "omit")


def percentile_fraction(confidence) -> float:
    """The fraction (0..1) of the sorted |x| the threshold sits at, computed as the original."""
    if isinstance(confidence, bool) or not isinstance(confidence, Real):
        raise ValueError(f"confidence must be a number in [0, 1], got {confidence!r}")
    c = float(confidence)
    if not (0.0 <= c <= 1.0):  # also rejects NaN
        raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
    q = np.float32(100.0 * (1.0 - c))
    return float(np.float64(q) / 100.0)


def check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")


def nan_error(name: str, nans: int, size: int) -> ValueError:
    """The error of nan_policy='raise' for an input with NaNs (the same on every backend)."""
    return ValueError(
        f"{name} contains {nans} NaN value{'s' if nans != 1 else ''} of {size}; "
        "pass nan_policy='omit' to leave NaNs out of every class"
    )


def raise_on_nans(backend: Backend, op: Operand, values, nan_policy: str) -> None:
    """Applies nan_policy='raise' to one input (`values` from `backend.values`)."""
    if nan_policy == "raise":
        nans = backend.nan_count(op, values)
        if nans:
            raise nan_error(op.name, nans, int(np.prod(op.shape, dtype=np.int64)))


def _round_to_bfloat16(value: np.float32) -> float:
    """Round a float32 to the nearest bfloat16 (ties to even), returned as a float."""
    bits = np.array([value], dtype=np.float32).view(np.uint32)
    if np.isnan(value):
        return float(value)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded = ((bits + rounding) & np.uint32(0xFFFF0000)).view(np.float32)
    return float(rounded[0])


def in_dtype(value: float, dtype: str) -> float:
    """`value` rounded to the input's dtype (float32 for integer and bool inputs). float32
    rounding is done by the compiled core, which keeps subnormals whatever the calling thread's
    flush-to-zero mode (NumPy's would flush them)."""
    with np.errstate(over="ignore"):
        if dtype == "float64":
            return float(value)
        if dtype == "float16":
            return float(np.float16(value))
        single = _backend.core.round_to_f32(float(value))
        if dtype == "bfloat16":
            return _round_to_bfloat16(np.float32(single))
        return single


def _midpoint(low: float, high: float, dtype: str) -> float:
    """0.5 * (low + high) in the input's dtype, as the original computed it. float32 and
    float64 midpoints are taken in the compiled core with subnormals kept, whatever the calling
    thread's flush-to-zero mode (torch.set_flush_denormal)."""
    if dtype == "float64":
        return _backend.core.abs_midpoint_f64(low, high)
    if dtype == "float16":  # float16 values are normal float32 numbers: no mode matters
        with np.errstate(over="ignore"):
            lo, hi = np.float16(low), np.float16(high)
            total = lo + hi
            mid = np.float16(0.5) * total if np.isfinite(total) or not np.isfinite(hi) else (
                np.float16(0.5) * lo + np.float16(0.5) * hi)
        return float(mid)
    mid = _backend.core.abs_midpoint_f32(low, high)  # exactly a float32 already
    return in_dtype(mid, dtype) if dtype == "bfloat16" else mid


def threshold_of(backend: Backend, op: Operand, values, confidence,
                 nan_policy: str) -> float:
    """Threshold of one operand whose values are `values` (from `backend.values`)."""
    fraction = percentile_fraction(confidence)
    size = int(np.prod(op.shape, dtype=np.int64))
    if size == 0:
        raise ValueError(
            f"cannot derive a threshold for {op.name}: it is empty; pass thresholds= explicitly"
        )
    low, high, count, nans = backend.order_statistics(op, values, fraction)
    if nans and nan_policy == "raise":
        raise nan_error(op.name, nans, size)
    if count == 0:
        raise ValueError(
            f"cannot derive a threshold for {op.name}: all of its values are NaN; "
            "pass thresholds= explicitly"
        )
    return _midpoint(low, high, op.dtype)


def threshold(x, confidence: float = 0.95, *, nan_policy: str = "raise") -> float:
    """The near-zero threshold of `x` for `confidence`: the 100*(1-confidence) midpoint
    percentile of |x| over the whole tensor, exact and in linear time.

    `confidence=1.0` gives min|x| (only exact zeros are near zero). NaNs raise by default;
    with ``nan_policy="omit"`` they are left out of the selection.
    """
    check_nan_policy(nan_policy)
    op = as_operand(x, "x")
    backend = backend_for(op.device)
    return threshold_of(backend, op, backend.values(op), confidence, nan_policy)


def _scalar(value):
    """A 0-d array or tensor as its Python number; anything else unchanged."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def check_threshold_value(value, name: str) -> float:
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number or None, got {value!r}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large for a float (an int of {len(str(value))} "
                         "digits); pass float('inf') to make every finite value near zero") from None
    if math.isnan(v) or v < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return v


def resolve_thresholds(thresholds) -> tuple:
    """Normalise `thresholds=` (None, one number, or a pair of numbers/None) to a pair."""
    if thresholds is None:
        return None, None
    if isinstance(thresholds, (str, bytes)):
        raise ValueError(f"thresholds must be None, a number or a pair of numbers, got the "
                         f"string {thresholds!r}")
    thresholds = _scalar(thresholds)
    if isinstance(thresholds, Real) and not isinstance(thresholds, bool):
        v = check_threshold_value(thresholds, "thresholds")
        return v, v
    try:
        items = list(thresholds)
    except TypeError:
        raise ValueError(
            f"thresholds must be None, a number or a pair, got {thresholds!r}"
        ) from None
    if len(items) != 2:
        raise ValueError(f"thresholds must be a pair (one per input), got {len(items)} entries")
    return tuple(None if t is None else check_threshold_value(t, f"thresholds[{i}]")
                 for i, t in enumerate(items))
