"""Group the cells of a classify result by their pattern of classes: cells whose non-zero counts
fall on the same classes in the same order (after `filter_classifications`) form one group.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _backend
from ._results import (COMPILED_COUNT_DTYPES, SLOT_NAMES, as_planes, check_shapes,
                       pair_term_slots, term_codes, term_names, to_host, unpack)

__all__ = ["group_classifications"]

_DIGIT_BITS = 4  # one hex digit per term position: 0 = empty, 1 + term index otherwise
_COMPILED_NAME_DTYPES = (np.dtype("U1"), np.dtype("U2"))


def group_classifications(counts, sums, terms=None, mask=None):
    """Split the (selected) cells into groups of equal class pattern, largest group first.

    A cell's pattern is, position by position along the last axis, which term it holds there
    or nothing when that count is zero; `terms` (from `filter_classifications`) says which term
    sits at each position, otherwise the standard order is assumed. `mask` (value shape)
    selects cells. Groups of equal size are ordered by pattern (earlier positions first, terms
    in the standard order), and cells keep their order within a group.

    Returns ``(count_groups, sum_groups, term_groups)``: for each group a (cells, terms) array
    of its counts and of its sums (NumPy, strided views), and the list of terms its positions
    hold, up to the last non-zero count (after `filter_classifications`: exactly the kept
    terms, largest count first). The original encoded patterns in base 9 with digits up to 9,
    so some different patterns could merge; here every pattern has its own key.
    """
    counts, sums, terms = unpack(counts, sums, terms)
    n_terms = check_shapes(counts, sums, terms, mask)
    count_planes, sum_planes = as_planes(to_host(counts)), as_planes(to_host(sums))
    term_planes = None if terms is None else as_planes(np.asarray(terms))
    selected = None if mask is None else to_host(mask).astype(bool).reshape(-1)
    if _native_takes(count_planes, sum_planes, term_planes):
        grouped = _backend.core.group_cells(count_planes, sum_planes, term_planes,
                                            _name_digits(n_terms), selected)
        if grouped is not None:  # otherwise a term name is wrong: the code below says which
            return _split_groups(*grouped, term_planes, n_terms)

    digit_planes, digit_names = _term_digits(term_planes, n_terms)
    if selected is not None:
        count_planes, sum_planes = count_planes[:, selected], sum_planes[:, selected]
        if digit_planes is not None:
            digit_planes = digit_planes[:, selected]
    if digit_planes is not None and "--" in digit_names:
        placeholder = digit_planes == digit_names.index("--")
        if placeholder.any() and np.any(placeholder & (count_planes != 0)):
            raise ValueError("a '--' placeholder term has a non-zero count")
    cells = count_planes.shape[1]
    if cells == 0:
        return [], [], []

    keys = np.zeros(cells, dtype=np.int64)
    for position in range(n_terms):
        digit = position + 1 if digit_planes is None else digit_planes[position]
        keys <<= _DIGIT_BITS
        if digit_planes is not None:
            digit = digit.view(np.int64) if digit.dtype == np.uint64 else digit
        keys += (count_planes[position] != 0) * digit

    order, starts, first_cells = _group_order(keys, cells)
    count_groups = np.split(np.take(count_planes, order, axis=1), starts[1:], axis=1)
    sum_groups = np.split(np.take(sum_planes, order, axis=1), starts[1:], axis=1)
    first_digits = None if digit_planes is None else digit_planes[:, first_cells]
    term_groups = _term_lists(count_planes[:, first_cells], first_digits, digit_names, n_terms)
    return [g.T for g in count_groups], [g.T for g in sum_groups], term_groups


def _native_takes(count_planes, sum_planes, term_planes) -> bool:
    """Whether the compiled grouping takes these dtypes (any layout)."""
    return (count_planes.dtype in COMPILED_COUNT_DTYPES and sum_planes.dtype.kind in "iuf"
            and sum_planes.dtype.itemsize in (4, 8)
            and (term_planes is None or term_planes.dtype in _COMPILED_NAME_DTYPES))


@functools.lru_cache(maxsize=None)
def _name_digits(n_terms: int) -> np.ndarray:
    """The compiled grouping's name table: for each name `term_codes` accepts, at
    ``128 * first character + second character``, 1 + its index in the standard order (0 for a
    placeholder); -1 everywhere else.
    """
    names = np.array(list(term_names(n_terms)) + ["-", "--"], dtype="<U2")
    characters = names.view(np.uint32).reshape(-1, 2).astype(np.intp)
    table = np.full(128 * 128, -1, dtype=np.int8)
    table[characters[:, 0] * 128 + characters[:, 1]] = term_codes(names, n_terms) + 1
    return table


def _split_groups(count_planes, sum_planes, sizes, first_cells, term_planes, n_terms):
    """The compiled grouping's group-ordered planes as the lists `group_classifications`
    returns; the term lists are read from each group's first cell.
    """
    if len(sizes) == 0:
        return [], [], []
    ends = np.cumsum(sizes).tolist()
    starts = [0] + ends[:-1]
    count_groups = [count_planes[:, a:b].T for a, b in zip(starts, ends)]
    sum_groups = [sum_planes[:, a:b].T for a, b in zip(starts, ends)]
    first_digits, digit_names = (None, None)
    if term_planes is not None:
        first_digits, digit_names = _term_digits(term_planes[:, first_cells], n_terms)
    term_groups = _term_lists(count_planes[:, starts], first_digits, digit_names, n_terms)
    return count_groups, sum_groups, term_groups


def _term_digits(planes, n_terms):
    """Per-position digits (terms, cells) of (terms, cells) term names, increasing in the
    standard term order, and the name of each digit value; None for the standard order (no
    names). Digit values of placeholders ('--') are never used in a key (their counts are zero).
    """
    if planes is None:
        return None, None
    if n_terms == 9:
        slots = pair_term_slots(planes)
        if slots is not None:
            digit_names = ["?"] * 16
            for slot, name in SLOT_NAMES.items():
                digit_names[slot] = name
            return slots, digit_names
    codes = term_codes(planes, n_terms).astype(np.int64) + 1
    return codes, ["--"] + list(term_names(n_terms))


def _group_order(keys, cells):
    """Cell order grouped by key (largest group first, then by key), group starts and sizes,
    and the first cell of each group.
    """
    cell_bits = max(int(cells - 1).bit_length(), 1)
    key_bits = _DIGIT_BITS * 9
    if cell_bits + key_bits <= 63:
        packed = np.sort((keys << cell_bits) | np.arange(cells, dtype=np.int64))
        by_key = packed & ((1 << cell_bits) - 1)
        sorted_keys = packed >> cell_bits
    else:  # more cells than a packed key can index: a stable argsort does the same
        by_key = np.argsort(keys, kind="stable")
        sorted_keys = keys[by_key]
    boundaries = np.flatnonzero(np.diff(sorted_keys)) + 1
    key_starts = np.concatenate(([0], boundaries))
    key_sizes = np.diff(np.concatenate((key_starts, [cells])))
    ranking = np.argsort(-key_sizes, kind="stable")  # equal sizes stay in key order
    sizes = key_sizes[ranking]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    # Concatenate the key-sorted segments in ranking order without a loop over cells.
    source_start = np.repeat(key_starts[ranking], sizes)
    offset = np.arange(cells) - np.repeat(starts, sizes)
    order = by_key[source_start + offset]
    return order, starts, by_key[key_starts[ranking]]


def _term_lists(first_counts, first_digits, digit_names, n_terms):
    """Each group's terms up to its last non-zero count, from the counts and digits (terms,
    groups) of its first cell.
    """
    nonzero = first_counts != 0
    lengths = np.where(nonzero.any(0), n_terms - np.argmax(nonzero[::-1], axis=0), 0).tolist()
    if first_digits is None:
        names = term_names(n_terms)
        return [list(names[:length]) for length in lengths]
    digits = first_digits.T.tolist()
    return [[digit_names[d] for d in row[:length]] for row, length in zip(digits, lengths)]
