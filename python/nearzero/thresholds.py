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
from ._arrays import Operand, as_operand, distinct_view, to_numpy

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


def count_nans(values: np.ndarray) -> int:
    """NaNs in `values`, reading each element of a broadcast view once."""
    if values.dtype.kind != "f":
        return 0
    distinct, repeat = distinct_view(values)
    return int(np.count_nonzero(np.isnan(distinct))) * repeat


def raise_on_nans(values: np.ndarray, name: str, nan_policy: str) -> None:
    """Applies nan_policy='raise' to one input (a NumPy view in its compute dtype)."""
    if nan_policy == "raise":
        nans = count_nans(values)
        if nans:
            raise ValueError(
                f"{name} contains {nans} NaN value{'s' if nans != 1 else ''} of {values.size}; "
                "pass nan_policy='omit' to leave NaNs out of every class"
            )


def _round_to_bfloat16(value: np.float32) -> float:
    """Round a float32 to the nearest bfloat16 (ties to even), returned as a float."""
    bits = np.array([value], dtype=np.float32).view(np.uint32)
    if np.isnan(value):
        return float(value)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded = ((bits + rounding) & np.uint32(0xFFFF0000)).view(np.float32)
    return float(rounded[0])


def in_dtype(value: float, dtype: str) -> float:
    """`value` rounded to the input's dtype (float32 for integer and bool inputs)."""
    with np.errstate(over="ignore"):
        if dtype == "float64":
            return float(value)
        if dtype == "float16":
            return float(np.float16(value))
        if dtype == "bfloat16":
            return _round_to_bfloat16(np.float32(value))
        return float(np.float32(value))


def _midpoint(low: float, high: float, dtype: str) -> float:
    """0.5 * (low + high) in the input's dtype, as the original computed it."""
    if dtype == "float64":
        total = low + high
        return 0.5 * total if math.isfinite(total) or not math.isfinite(high) else 0.5 * low + 0.5 * high
    with np.errstate(over="ignore"):
        if dtype == "float16":
            lo, hi = np.float16(low), np.float16(high)
            total = lo + hi
            mid = np.float16(0.5) * total if np.isfinite(total) or not np.isfinite(hi) else (
                np.float16(0.5) * lo + np.float16(0.5) * hi)
            return float(mid)
        lo, hi = np.float32(low), np.float32(high)
        total = lo + hi
        mid = np.float32(0.5) * total if np.isfinite(total) or not np.isfinite(hi) else (
            np.float32(0.5) * lo + np.float32(0.5) * hi)
        return in_dtype(float(mid), dtype)


def threshold_of(op: Operand, values, confidence, nan_policy: str) -> float:
    """Threshold of one operand whose compute-dtype values are `values` (NumPy or device)."""
    fraction = percentile_fraction(confidence)
    size = int(np.prod(op.shape, dtype=np.int64))
    if size == 0:
        raise ValueError(
            f"cannot derive a threshold for {op.name}: it is empty; pass thresholds= explicitly"
        )
    if op.on_cuda:
        from .ops import _cuda_dispatch

        low, high, count, nans = _cuda_dispatch.abs_order_statistics(op, values, fraction)
    else:
        distinct, repeat = distinct_view(values)
        flat = np.ascontiguousarray(distinct).reshape(-1)
        select = (_backend.core.abs_order_statistics_f64 if flat.dtype == np.float64
                  else _backend.core.abs_order_statistics_f32)
        low, high, count, nans = select(flat, fraction, repeat)
    if nans and nan_policy == "raise":
        raise ValueError(
            f"{op.name} contains {nans} NaN value{'s' if nans != 1 else ''} of {size}; "
            "pass nan_policy='omit' to leave NaNs out of every class"
        )
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
    values = op.value if op.on_cuda else to_numpy(op)
    return threshold_of(op, values, confidence, nan_policy)


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
