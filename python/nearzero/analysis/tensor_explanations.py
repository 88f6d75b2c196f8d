"""Near-zero descriptions of a single tensor (a `tensor_classify` result): how much of it is near
zero (or negative), and how many of its units are near zero everywhere.
"""

from __future__ import annotations

from . import _device
from ..thresholds import check_threshold_value
from ._format import format_threshold
from ._results import check_reduce, check_shapes, like, unpack

__all__ = [
    "tensor_near_zero_explanation",
    "tensor_units_near_zero_explanation",
    "describe_tensor_near_zero_explanation",
    "describe_tensor_units_near_zero_explanation",
]


def tensor_near_zero_explanation(counts, sums=None, *, mask=None, threshold=None,
                                 negatives_are_bad=False, verbose=True, reduce=None) -> list:
    """How much of a tensor is near zero, as a list of dicts, largest fraction first.

    Each dict has ``kind`` (``"near_zero"``: fraction of the selected values in class Z;
    ``"negative"``, only with ``negatives_are_bad=True`` and when non-zero: fraction of the
    selected values below zero, near-zero negatives included), ``description`` (the original's
    text, e.g. ``"12.5% near-zero"``, or ``"12.5% near-zero (< 0.01)"`` when `verbose` and a
    `threshold` is given for display) and ``fraction``.

    `counts`, `sums` come from `tensor_classify` (last axis P, Z, N), NumPy, torch or CuPy;
    `mask` (value shape) selects values. Results of an op called with ``reduce="all"`` or
    ``"channel"`` give the near-zero fraction; ``negatives_are_bad`` needs the full result.
    """
    counts, sums, _ = unpack(counts, sums)
    check_reduce(reduce)
    if reduce is not None and negatives_are_bad:
        raise ValueError("negatives_are_bad needs the sign of every value: pass the full "
                         "tensor_classify result, not a reduced one")
    counts, sums, mask = _reduced_as_cells(counts, sums, mask, reduce)
    check_shapes(counts, sums, None, mask, term_count=3)
    if threshold is not None:
        threshold = check_threshold_value(threshold, "threshold")
    count_cells, sum_cells = _device.selected_cells(counts, sums, None, mask, 3)
    totals = _device.class_totals(count_cells)
    total = int(totals.sum())
    zero_fraction = float(totals[1]) / total if total else 0.0
    if verbose and threshold is not None:
        text = f"{zero_fraction * 100:.1f}% near-zero ({format_threshold(threshold)})"
    else:
        text = f"{zero_fraction * 100:.1f}% near-zero"
    found = [{"kind": "near_zero", "description": text, "fraction": zero_fraction}]
    if negatives_are_bad:
        cells = int(sum_cells.shape[0])
        negative = int(_device.to_host((sum_cells.sum(-1) < 0).sum())) if cells else 0
        negative_fraction = negative / cells if cells else 0.0
        if negative_fraction > 0:
            found.append({"kind": "negative", "description": f"{negative_fraction * 100:.1f}% "
                          "negative", "fraction": negative_fraction})
    found.sort(key=lambda item: -item["fraction"])  # stable: near-zero first on a tie
    return found


def tensor_units_near_zero_explanation(counts, sums=None, *, mask=None, threshold=None,
                                       negatives_are_bad=False, verbose=True,
                                       reduce=None) -> list:
    """Fraction of units (last value axis) whose every value is near zero (or, with
    ``negatives_are_bad``, near zero or negative), over all batch and spatial positions.

    Returns ``[{"kind": "dead_units", "description": ..., "fraction": ...}]`` with the original's
    text, e.g. ``"25.0% of units always near-zero across all batch dims"``. A `mask` (value
    shape) keeps only the selected values: a unit counts as dead when all its values are
    selected and near zero, as in the original. ``reduce="channel"`` results (one row per unit)
    are accepted; ``reduce="all"`` has no units left and is a ValueError. `threshold` and
    `verbose` are accepted for symmetry with `tensor_near_zero_explanation` and not shown.
    """
    counts, sums, _ = unpack(counts, sums)
    check_reduce(reduce)
    if reduce == "all":
        raise ValueError("reduce='all' results have no units left; classify with "
                         "reduce='channel' or pass the full result")
    check_shapes(counts, sums, None, mask, term_count=3)
    if threshold is not None:
        threshold = check_threshold_value(threshold, "threshold")
    condition = "near-zero or negative" if negatives_are_bad else "near-zero"
    if reduce == "channel":
        dead = _dead_channels(counts, mask, negatives_are_bad)
        dims = "batch and spatial"
    else:
        flagged = counts[..., 1] > 0
        if negatives_are_bad:
            flagged = flagged | (counts[..., 2] > 0)
        if mask is not None:
            flagged = flagged & like(flagged, mask)
        if counts.ndim > 2:
            # A unit with no values at all (empty batch) is not called dead.
            flagged = flagged.reshape(-1, counts.shape[-2])
            dead = flagged.all(0) & (flagged.shape[0] > 0)
        else:
            dead = flagged
        dims = "batch" if counts.ndim <= 3 else "batch and spatial"
    units = int(dead.shape[0]) if dead.ndim else 1
    dead_fraction = int(_device.to_host(dead.sum())) / units if units else 0.0
    return [{"kind": "dead_units", "fraction": dead_fraction,
             "description": f"{dead_fraction * 100:.1f}% of units always {condition} across "
                            f"all {dims} dims"}]


def _dead_channels(counts, mask, negatives_are_bad):
    """Per-channel totals: a unit is dead when none of its values is positive (nor negative)."""
    alive = counts[..., 0] > 0
    if not negatives_are_bad:
        alive = alive | (counts[..., 2] > 0)
    dead = ~alive & (counts.sum(-1) > 0)
    if mask is not None:
        dead = dead & like(dead, mask)
    return dead


def _reduced_as_cells(counts, sums, mask, reduce):
    if reduce == "all":
        if mask is not None:
            raise ValueError("reduce='all' results are already summed; pass mask= to the op")
        return counts.reshape(1, -1), sums.reshape(1, -1), None
    return counts, sums, mask


def describe_tensor_near_zero_explanation(counts, sums=None, *, mask=None, threshold=None,
                                          negatives_are_bad=False, verbose=True, reduce=None):
    """The original's ``(descriptions, fractions)`` form of `tensor_near_zero_explanation`."""
    found = tensor_near_zero_explanation(counts, sums, mask=mask, threshold=threshold,
                                         negatives_are_bad=negatives_are_bad, verbose=verbose,
                                         reduce=reduce)
    return [f["description"] for f in found], [f["fraction"] for f in found]


def describe_tensor_units_near_zero_explanation(counts, sums=None, *, mask=None, threshold=None,
                                                negatives_are_bad=False, verbose=True,
                                                reduce=None):
    """The original's ``(descriptions, fractions)`` form of
    `tensor_units_near_zero_explanation`.
    """
    found = tensor_units_near_zero_explanation(counts, sums, mask=mask, threshold=threshold,
                                               negatives_are_bad=negatives_are_bad,
                                               verbose=verbose, reduce=reduce)
    return [f["description"] for f in found], [f["fraction"] for f in found]
