"""Number formats shared by the text summaries, as the original prints them."""

from __future__ import annotations

import math


def decimal_scale(value) -> int:
    """Power of ten of |value| (0 for zero or a non-finite value)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return 0
    return int(math.floor(math.log10(abs(value))))


def format_decimal(value, significant_digits: int = 4, scale: int = None) -> str:
    """About `significant_digits` digits at `scale` (the power of ten of the largest number
    shown beside it), so that numbers of one summary line up; no scientific notation.
    """
    if scale is None:
        scale = decimal_scale(value)
    if scale < 0:
        places = significant_digits - scale + 1  # more places as numbers get smaller
    else:
        places = max(0, significant_digits - scale - 1)
    return f"{float(value):.{places}f}"


def format_count(count, as_percentage: bool, with_symbol: bool = True) -> str:
    if as_percentage:
        return f"{float(count) * 100:.1f}" + ("%" if with_symbol else "")
    return f"{count}"


def format_threshold(threshold) -> str:
    return "= 0" if threshold == 0 else f"< {threshold}"
