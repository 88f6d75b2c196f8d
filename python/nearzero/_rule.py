"""The P/Z/N rule and the percentile positions in Python, for values that stay where they live
(NumPy, CuPy or torch, CPU or GPU): the report and the analysis helpers use these; the kernels
have their own compiled form of the same rule (csrc/common/classify_rule.h)."""

from __future__ import annotations

import math

__all__ = ["near_zero", "percentile_positions"]


def near_zero(values, threshold: float):
    """The rule's Z class as a bool array of `values`' library: exactly zero or
    |x| < threshold. NaN is never near zero."""
    if threshold > 0:
        return abs(values) < threshold  # zero is below any positive threshold
    return values == 0


def percentile_positions(n: int, fraction: float) -> tuple:
    """(low, high, position): the order statistics (0-based, clamped to the n values) around
    `position` = (n - 1) * fraction, where a percentile at `fraction` of n sorted values sits."""
    position = (n - 1) * fraction
    low = min(max(math.floor(position), 0), n - 1)
    high = min(max(math.ceil(position), 0), n - 1)
    return low, high, position
