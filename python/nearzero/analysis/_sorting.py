"""Sorting a few columns at once: every row of a (rows, 3 or 9) table sorted by a sorting network
of vectorised compare-exchanges on whole columns, which beats a per-row argsort many times.
"""

from __future__ import annotations

import numpy as np

# Optimal-size networks (25 comparators for 9 inputs, 3 for 3), as layers of (low, high) pairs.
NETWORKS = {
    3: ((0, 2), (0, 1), (1, 2)),
    9: ((0, 3), (1, 7), (2, 5), (4, 8), (0, 7), (2, 4), (3, 8), (5, 6), (0, 2), (1, 3), (4, 5),
        (7, 8), (1, 4), (3, 6), (5, 7), (0, 1), (2, 4), (3, 5), (6, 8), (2, 3), (4, 5), (6, 7),
        (1, 2), (3, 4), (5, 6)),
}


def sort_columns(columns: list) -> list:
    """Sort each row across `columns` (a list of equal-length 1-D arrays), ascending, in place
    of the list; keys must be distinct within a row for the result to be a strict order.
    """
    spare = np.empty_like(columns[0])
    for low, high in NETWORKS[len(columns)]:
        a, b = columns[low], columns[high]
        np.minimum(a, b, out=spare)
        np.maximum(a, b, out=b)
        columns[low], spare = spare, a
    return columns
