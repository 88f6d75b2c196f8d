"""One-line text summaries of classify results (`summarise`, `describe_groups`) and
`standardize`, which puts filtered results back into the standard term order.
"""

from __future__ import annotations

import numpy as np

from . import _device
from ._format import decimal_scale, format_count, format_decimal
from ._results import (check_reduce, check_shapes, standard_order, term_codes, term_names,
                       to_host, unpack)

__all__ = ["standardize", "summarise", "describe_groups"]


def standardize(counts, sums=None, terms=None, *, mask=None, return_terms_as_list=True):
    """Counts and sums as NumPy arrays in the standard term order, with unselected cells zeroed.

    Accepts ``(counts, sums)`` / ``(counts, sums, terms)`` tuples. `terms` (from
    `filter_classifications`, shape of counts) gives each cell's order; entries named ``'--'``
    are placeholders with zero counts. `mask` (value shape) zeroes the counts and sums of
    unselected cells, keeping the shape. Returns ``(counts, sums, terms)`` where terms is the
    term list (default) or, with ``return_terms_as_list=False``, an array shaped like counts.
    """
    counts, sums, terms = unpack(counts, sums, terms)
    n_terms = check_shapes(counts, sums, terms, mask)
    counts, sums = to_host(counts), to_host(sums)
    if terms is not None:
        counts, sums = standard_order(counts, sums, terms)
    if mask is not None:
        keep = to_host(mask).astype(bool)[..., np.newaxis]
        counts, sums = counts * keep, sums * keep
    names = list(term_names(n_terms))
    if return_terms_as_list:
        return counts, sums, names
    return counts, sums, np.broadcast_to(np.array(names), counts.shape).copy()


def summarise(counts, sums=None, terms=None, *, mask=None, show_percentages=False,
              show_means=False, show_ranges=False, reduce=None) -> str:
    """A one-line summary of a classify result: each class with a non-zero count, largest count
    first, with its count and the sum of its products, e.g.
    ``"PN: 13 = Σ -5.600, PZ: 7 = Σ 0.000, ZN: 1 = Σ 0.000"`` (13 positive x negative products
    summing to -5.6, ...). Sums share one scale: about four significant digits of the largest.

    - ``show_percentages``: counts as a percentage of all counts shown, ``"PN: 61.9% = Σ ..."``.
    - ``show_means``: the mean product of each class instead of its sum, ``"PN: 13 x -0.4308"``.
    - ``show_ranges``: per-cell minimum and maximum of each class's count and sum across the
      selected cells, ``"PN: 1..5 x -2.000..-0.1000"``; not combinable with the two above.

    Accepts NumPy, torch or CuPy results (totals are taken where the arrays live), the op's
    ``(counts, sums)`` tuple, and `terms` from `filter_classifications`. `mask` (value shape)
    selects cells; ranges are over the selected cells only. Results of an op called with
    ``reduce="all"`` or ``"channel"`` (pass the same `reduce=`) summarise as the full result
    would, except ``show_ranges``, which needs per-cell values; with ``"channel"`` a mask of
    shape (channels,) selects channels.
    """
    counts, sums, terms = unpack(counts, sums, terms)
    check_reduce(reduce)
    if show_ranges and (show_percentages or show_means):
        raise ValueError("show_ranges cannot be combined with show_percentages or show_means")
    if reduce is not None and show_ranges:
        raise ValueError(f"show_ranges needs per-cell values; reduce={reduce!r} results only "
                         "hold totals")
    if reduce == "all":
        if mask is not None:
            raise ValueError("reduce='all' results are already summed; pass mask= to the op")
        counts, sums = counts.reshape(1, -1), sums.reshape(1, -1)
        terms = None if terms is None else np.reshape(terms, (1, -1))
    n_terms = check_shapes(counts, sums, terms, mask)
    count_cells, sum_cells = _device.selected_cells(counts, sums, terms, mask, n_terms)
    return _summary_line(count_cells, sum_cells, term_names(n_terms), show_percentages,
                         show_means, show_ranges)


def describe_groups(count_groups, sum_groups, term_groups, show_percentages=False,
                    show_means=False, show_ranges=False) -> dict:
    """Summaries of grouped classifications (from `group_classifications` / `filter_groups`).

    Returns ``{"sizes": array of group sizes, "summaries": [one `summarise` line per group]}``;
    the options are those of `summarise`. Each group's columns are named by its term list;
    columns past the end of the list must have zero counts.
    """
    sizes = np.array([np.shape(c)[0] for c in count_groups], dtype=np.int64)
    summaries = []
    for counts, sums, names in zip(count_groups, sum_groups, term_groups):
        counts, sums = to_host(counts), to_host(sums)
        n_terms = check_shapes(counts, sums)
        padded = list(names) + ["--"] * (n_terms - len(names))
        if len(padded) != n_terms:
            raise ValueError(f"a group names {len(names)} terms but has {n_terms} columns")
        codes = term_codes(np.array(padded), n_terms)
        unnamed = codes < 0
        if np.any(counts[:, unnamed] != 0):
            raise ValueError("a group has non-zero counts in columns its term list does not name")
        std_counts = np.zeros_like(counts)
        std_sums = np.zeros_like(sums)
        std_counts[:, codes[~unnamed]] = counts[:, ~unnamed]
        std_sums[:, codes[~unnamed]] = sums[:, ~unnamed]
        summaries.append(_summary_line(std_counts, std_sums, term_names(n_terms),
                                       show_percentages, show_means, show_ranges))
    return {"sizes": sizes, "summaries": summaries}


def _summary_line(count_cells, sum_cells, names, show_percentages, show_means, show_ranges):
    """The text of `summarise` from (cells, terms) arrays in the standard term order."""
    counts = _device.class_totals(count_cells)
    sums = _device.class_totals(sum_cells).astype(np.float64) + 0.0  # shows -0.0 as 0.000
    if show_ranges:
        low_counts, high_counts = _device.class_ranges(count_cells)
        low_sums, high_sums = (r.astype(np.float64) for r in _device.class_ranges(sum_cells))
    # Largest count first; equal counts keep the original's order (later term first).
    order = np.argsort(counts, kind="stable")[::-1]
    order = order[counts[order] > 0]
    if order.size == 0:
        return "<empty>"
    shown = counts.astype(np.float64)
    if show_means:
        sums = np.divide(sums, counts, out=np.zeros_like(sums), where=counts != 0)
    if show_percentages:
        shown = shown / (counts.sum() or 1)
    symbol = "x" if (show_means or show_ranges) else "= Σ"
    parts = []
    if show_ranges:
        scale = decimal_scale(np.max(np.maximum(abs(low_sums[order]), abs(high_sums[order]))))
        for k in order:
            low, high = low_sums[k], high_sums[k]
            if low < high < 0:  # all negative: show the smaller magnitude first
                low, high = high, low
            parts.append(f"{names[k]}: {low_counts[k]}..{high_counts[k]} {symbol} "
                         f"{format_decimal(low, scale=scale)}..{format_decimal(high, scale=scale)}")
    else:
        scale = decimal_scale(np.max(abs(sums[order])))
        for k in order:
            count = shown[k] if show_percentages else counts[k]
            parts.append(f"{names[k]}: {format_count(count, show_percentages)} {symbol} "
                         f"{format_decimal(sums[k], scale=scale)}")
    return ", ".join(parts)
