"""`classification_mask`: the P, Z and N masks of one tensor, as the original toolkit returns
them, for code written against its API."""

from __future__ import annotations

import numpy as np

from .._arrays import as_operand
from .elementwise import tensor_classify

__all__ = ["classification_mask"]


def classification_mask(x, confidence: float = 0.95, threshold: float = None, *,
                        nan_policy: str = "raise"):
    """Boolean masks of the positive (P), near-zero (Z) and negative (N) values of `x`.

    Returns ``(p, z, n, threshold)``: three NumPy bool arrays of `x`'s shape and the threshold
    used (derived from `confidence` as `nearzero.threshold` when None). The classes follow the
    rule every op uses: Z when ``x == 0`` or ``|x| < threshold``, otherwise P or N by sign; a
    NaN (with ``nan_policy="omit"``) is in no mask.
    """
    counts, _, used = tensor_classify(x, confidence, threshold, return_threshold=True,
                                      nan_policy=nan_policy)
    if as_operand(counts, "counts").kind != "numpy":
        from ..analysis._results import to_host

        counts = to_host(counts)
    counts = np.asarray(counts)
    return counts[..., 0] == 1, counts[..., 1] == 1, counts[..., 2] == 1, used
