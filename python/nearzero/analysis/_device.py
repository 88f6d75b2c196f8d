"""Reductions the explanation helpers run where the results live (NumPy, CuPy or torch, CPU or
GPU): only per-class totals and a few scalars travel to the host, never the full result.
"""

from __future__ import annotations

import numpy as np

from .._rule import near_zero, percentile_positions
from ._results import library_of, like, standard_order, to_host


def selected_cells(counts, sums, terms, mask, n_terms):
    """Counts and sums of the selected cells as (cells, n_terms) arrays in the standard term
    order. Without `terms` they stay on their device; with `terms` (filtered results) the
    re-ordering happens on the host.
    """
    if terms is not None:
        counts, sums = standard_order(to_host(counts), to_host(sums), terms)
    if mask is not None:
        mask = like(counts, mask)
        return counts[mask], sums[mask]
    return counts.reshape(-1, n_terms), sums.reshape(-1, n_terms)


def class_totals(cells) -> np.ndarray:
    """Sum over cells of each class: a host (n_terms,) array (int64 for counts)."""
    if cells.shape[0] == 0:
        return np.zeros(cells.shape[-1], dtype=np.int64)
    return to_host(cells.sum(0)).astype(np.int64 if _is_integer(cells) else np.float64)


def _is_integer(array) -> bool:
    if library_of(array) == "torch":
        return not (array.dtype.is_floating_point or array.dtype.is_complex)
    return np.dtype(array.dtype).kind in "iub"


def count_where_sum_near_zero(count_cells, sum_cells, columns, threshold) -> int:
    """Total count, over the cells where the sum of `columns` is below `threshold` in magnitude
    (or exactly zero), of the products in those columns.
    """
    if count_cells.shape[0] == 0:
        return 0
    value = sum_cells[:, list(columns)].sum(-1)
    count = count_cells[:, list(columns)].sum(-1)
    hit = near_zero(value, threshold)
    return int(to_host((count * hit).sum()))


def abs_percentile_linear(values, fraction: float) -> float:
    """The `fraction` percentile of |values| with linear interpolation between order
    statistics (how the original picks the near-zero level of a result).
    """
    flat = abs(values.reshape(-1))
    n = int(flat.shape[0])
    if n == 0:
        raise ValueError("cannot derive a threshold from an empty result; pass threshold=")
    low, high, position = percentile_positions(n, fraction)
    library = library_of(flat)
    if library == "torch":
        low_value = float(flat.kthvalue(low + 1).values)
        high_value = float(flat.kthvalue(high + 1).values)
    else:
        xp = np if library == "numpy" else __import__("cupy")
        part = xp.partition(flat, (low, high))
        low_value, high_value = float(part[low]), float(part[high])
    return low_value + (high_value - low_value) * (position - low)


def class_ranges(cells) -> tuple:
    """Per-class minimum and maximum over cells, as host arrays."""
    if library_of(cells) == "torch":
        return to_host(cells.amin(0)), to_host(cells.amax(0))
    return to_host(cells.min(0)), to_host(cells.max(0))
