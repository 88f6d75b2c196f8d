"""Keep the classes that explain most of each cell (`filter_classifications`) and the groups
that cover most cells (`filter_groups`).

Per cell, `filter_classifications` runs the original's three steps: (1) order the terms by
|sum| ascending and drop the smallest while the running positive or negative total stays below
``(1 - completeness)`` of its full extent; (2) order by count ascending (ties: larger |sum|
first) and drop the smallest while the running count stays below ``(1 - completeness)`` of
the cell's count; (3) keep what either step kept, zero the rest and order by kept count,
descending. Ties are broken exactly as the original's sequence of stable sorts does.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from ._results import (COMPILED_COUNT_DTYPES, as_planes, check_shapes, term_names, to_host,
                       unpack)
from ._sorting import sort_columns

__all__ = ["filter_classifications", "filter_groups"]

# Packed keys hold a float32 |sum| (31 bits), term index (4), sign (1) and, as payload, the
# count; the step-3 key adds 6 more bits, so counts must fit in 21 bits for the packed path.
_PAYLOAD_BITS = 36
_MAX_PACKED_COUNT_BITS = 63 - _PAYLOAD_BITS - 6
_CHUNK_CELLS = 8192  # cells per pass: the planes of a chunk stay in cache
_COMPILED_SUM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def filter_classifications(counts, sums, completeness=0.75):
    """Per cell, keep the classes that together explain at least `completeness` (0..1) of it,
    measured both by count and by the positive/negative extent of the sums; zero the others.

    Returns NumPy ``(counts, sums, terms)`` of the input's shape, each cell's terms ordered by
    kept count, largest first; `terms` names each entry (e.g. ``'PN'``), so later calls
    (`summarise`, `group_classifications`, `standardize`) can undo the order. Accepts NumPy,
    torch or CuPy results (copied to the host) and the reduced forms (their cells are rows).
    """
    counts, sums, _ = unpack(counts, sums)
    n_terms = check_shapes(counts, sums, negative_counts=True)
    completeness = _check_completeness(completeness)
    counts, sums = to_host(counts), to_host(sums)
    value_shape = counts.shape[:-1]
    names = np.array(term_names(n_terms))
    # Term-major planes: the ops already return this layout, so reading it is free, and the
    # results keep it (a strided view of the documented shape).
    if _native_takes(counts, sums):
        planes = _backend.core.filter_classifications(as_planes(counts), as_planes(sums), names,
                                                      completeness)
    elif _fits_packed_keys(counts, sums):
        planes = _filter_packed(as_planes(counts), as_planes(sums), completeness,
                                names.view(f"u{names.dtype.itemsize}"))
    else:
        kept_counts, kept_sums, order = _filter_sorted(
            counts.reshape(-1, n_terms), sums.reshape(-1, n_terms), completeness)
        shape = counts.shape
        return kept_counts.reshape(shape), kept_sums.reshape(shape), names[order].reshape(shape)
    return tuple(np.moveaxis(p.reshape((n_terms,) + value_shape), 0, -1) for p in planes)


def filter_groups(count_groups, sum_groups, term_groups, completeness=0.75, max_groups=None,
                  return_coverage=False):
    """Keep the largest groups (as ordered by `group_classifications`) until they cover at
    least `completeness` of all cells: a group is dropped only when it and every smaller group
    together hold less than ``1 - completeness`` of the cells. `completeness` None or 1.0 keeps
    every group; `max_groups` caps how many are kept. With ``return_coverage=True`` also
    returns the fraction of cells the kept groups hold (1.0 when there are no cells).
    """
    completeness = 1.0 if completeness is None else _check_completeness(completeness)
    lengths = (len(count_groups), len(sum_groups), len(term_groups))
    if len(set(lengths)) != 1:
        raise ValueError(f"count_groups, sum_groups and term_groups must hold one entry per "
                         f"group, got {lengths[0]}, {lengths[1]} and {lengths[2]} entries")
    if max_groups is not None and (isinstance(max_groups, bool) or not isinstance(
            max_groups, (int, np.integer)) or max_groups < 0):
        raise ValueError(f"max_groups must be None or a non-negative int, got {max_groups!r}")
    sizes = np.array([np.shape(c)[0] for c in count_groups], dtype=np.int64)
    total = int(sizes.sum())
    remaining = np.cumsum(sizes[::-1])[::-1]  # cells in this group and every later one
    kept = np.nonzero(remaining >= total * (1 - completeness))[0]
    if max_groups:
        kept = kept[:max_groups]
    coverage = float(sizes[kept].sum() / total) if total else 1.0
    result = ([count_groups[i] for i in kept], [sum_groups[i] for i in kept],
              [term_groups[i] for i in kept])
    return result + (coverage,) if return_coverage else result


def _check_completeness(completeness) -> float:
    value = float(completeness)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"completeness must be in [0, 1], got {completeness!r}")
    return value


def _native_takes(counts, sums) -> bool:
    """Whether the compiled kernel takes these dtypes (any layout; any count values)."""
    return counts.dtype in COMPILED_COUNT_DTYPES and sums.dtype in _COMPILED_SUM_DTYPES


def _fits_packed_keys(counts, sums) -> bool:
    if sums.dtype != np.float32 or counts.dtype.kind not in "iu" or counts.size == 0:
        return False
    return int(counts.min()) >= 0 and int(counts.max()).bit_length() <= _MAX_PACKED_COUNT_BITS


def _filter_packed(counts, sums, completeness, name_codes):
    """The three steps on (terms, cells) planes, a chunk of cells at a time, each order found by
    a sorting network on packed int64 keys that carry what the next step needs.
    """
    n_terms, cells = counts.shape
    count_bits = max(int(counts.max()).bit_length(), 1)
    out = (np.empty(counts.shape, counts.dtype), np.empty(sums.shape, sums.dtype),
           np.empty(counts.shape, name_codes.dtype))
    for start in range(0, cells, _CHUNK_CELLS):
        part = slice(start, min(cells, start + _CHUNK_CELLS))
        _filter_chunk(counts[:, part], sums[:, part], completeness, count_bits, name_codes,
                      [o[:, part] for o in out])
    return out[0], out[1], out[2].view(f"<U{name_codes.dtype.itemsize // 4}")


def _filter_chunk(counts, sums, completeness, count_bits, name_codes, out):
    """One chunk of (terms, cells) planes; results go to the planes `out`."""
    n_terms = counts.shape[0]
    position = np.arange(n_terms, dtype=np.int64)[:, None]
    count_mask = (1 << count_bits) - 1
    payload_mask = (1 << _PAYLOAD_BITS) - 1

    # Step 1 key: |sum| bits | term index | sign | count. A float32's magnitude bits order like
    # its value; the index below them breaks ties as a stable sort would.
    raw = np.ascontiguousarray(sums).view(np.uint32)
    keys = (raw & 0x7FFFFFFF).astype(np.int64)
    keys <<= 5
    keys |= (raw >> 31).astype(np.int64)
    keys |= position << 1
    keys <<= count_bits
    keys |= counts
    keys = np.stack(sort_columns(list(keys)))

    # Running positive and negative extents from the smallest |sum|; the margin only grows,
    # so the terms kept by sum are those from the first position reaching the limit.
    positive = (keys >> (5 + count_bits)).astype(np.int32).view(np.float32)
    negative = ((keys >> count_bits) & 1).astype(np.float32)
    negative *= positive
    positive -= negative
    for i in range(1, n_terms):
        positive[i] += positive[i - 1]
        negative[i] += negative[i - 1]
    np.maximum(positive, negative, out=positive)
    limit = positive[-1] * np.float32(1 - completeness)
    first_kept_by_sum = (positive < limit).sum(0, dtype=np.int8)

    # Step 2 key: count | reversed step-1 rank | (|sum| bits, index, sign). Ascending count,
    # equal counts in reversed step-1 order, as a stable sort of the flipped order gives.
    keys2 = (keys & count_mask) << (_PAYLOAD_BITS + 4)
    keys >>= count_bits
    keys2 |= keys
    keys2 |= (n_terms - 1 - position) << _PAYLOAD_BITS
    keys2 = np.stack(sort_columns(list(keys2)))
    running = keys2 >> (_PAYLOAD_BITS + 4)
    for i in range(1, n_terms):
        running[i] += running[i - 1]
    first_kept_by_count = (running < running[-1] * (1 - completeness)).sum(0, dtype=np.int8)

    # Step 3: shown (kept and non-empty) terms first, each part by count descending: the
    # original's final stable sort. Where the shown terms are the top of the step-2 order (in
    # practice every cell) that is step 2 reversed; other cells are sorted by one more network.
    reversed_sum_rank = (keys2 >> _PAYLOAD_BITS) & 15
    kept = reversed_sum_rank <= (n_terms - 1) - first_kept_by_sum
    kept |= position >= first_kept_by_count
    shown = kept & (keys2 >= (1 << (_PAYLOAD_BITS + 4)))
    final, final_kept = keys2[::-1], kept[::-1]
    unsorted = np.flatnonzero((shown[:-1] & ~shown[1:]).any(0))
    if unsorted.size:
        final, final_kept = final.copy(), final_kept.copy()
        final[:, unsorted], final_kept[:, unsorted] = _shown_first(
            keys2[:, unsorted], kept[:, unsorted], shown[:, unsorted])

    kept_counts = final >> (_PAYLOAD_BITS + 4)
    kept_counts *= final_kept
    payload = final & payload_mask
    signed_bits = (payload >> 5) | ((payload & 1) << 31)
    out[0][...] = kept_counts
    out[1][...] = signed_bits.astype(np.uint32).view(np.float32) * final_kept
    out[2][...] = np.take(name_codes, (payload >> 1) & 15)


def _shown_first(keys2, kept, shown):
    """Order step-2 keys with shown terms first, each part in descending step-2 order, by a
    network on small keys (shown, rank, column); returns the keys and kept flags so ordered.
    """
    n_terms = keys2.shape[0]
    rank = np.arange(n_terms)[:, None]
    small = ((~shown).astype(np.int16) << 8) | ((n_terms - 1 - rank) << 4).astype(np.int16)
    small |= rank.astype(np.int16)
    small = np.stack(sort_columns(list(small)))
    source = small & 15
    return (np.take_along_axis(keys2, source, axis=0),
            np.take_along_axis(kept, source, axis=0))


def _filter_sorted(counts, sums, completeness):
    """The three steps with per-row stable argsorts: any dtype, any count size."""
    rows, n_terms = counts.shape
    positions = np.broadcast_to(np.arange(n_terms), counts.shape)

    def inverse(order):
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, positions, axis=-1)
        return rank

    by_sum = np.argsort(np.abs(sums), axis=-1, kind="stable")
    ordered = np.take_along_axis(sums, by_sum, axis=-1)
    positive = np.cumsum(np.where(ordered > 0, ordered, 0), axis=-1)
    negative = np.cumsum(np.where(ordered < 0, -ordered, 0), axis=-1)
    limit = np.maximum(positive[:, -1], negative[:, -1]) * (1 - completeness)
    kept_sorted = np.maximum(positive, negative) >= limit[:, None]
    kept = np.empty_like(kept_sorted)
    np.put_along_axis(kept, by_sum, kept_sorted, axis=-1)

    sum_rank = inverse(by_sum)
    by_count = np.argsort(counts.astype(np.int64) * n_terms + (n_terms - 1 - sum_rank), axis=-1,
                          kind="stable")
    cumulative = np.cumsum(np.take_along_axis(counts, by_count, axis=-1), axis=-1, dtype=np.int64)
    kept_sorted = cumulative >= (cumulative[:, -1] * (1 - completeness))[:, None]
    kept_by_count = np.empty_like(kept_sorted)
    np.put_along_axis(kept_by_count, by_count, kept_sorted, axis=-1)
    kept |= kept_by_count

    kept_counts = counts * kept  # as the original: a dropped negative sum becomes -0.0
    count_rank = inverse(by_count)
    final = np.argsort(-(kept_counts.astype(np.int64) * n_terms + count_rank), axis=-1,
                       kind="stable")
    return (np.take_along_axis(kept_counts, final, axis=-1),
            np.take_along_axis(sums * kept, final, axis=-1),
            final)
