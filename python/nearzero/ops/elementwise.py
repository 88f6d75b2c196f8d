"""`tensor_classify` and `multiply_classify`: elementwise P/Z/N counts and sums."""

from __future__ import annotations

import numpy as np

from ._common import check_channel_axis, package, prepare_pair, prepare_single

__all__ = ["tensor_classify", "multiply_classify"]


def tensor_classify(x, confidence: float = 0.95, threshold: float = None,
                    return_threshold: bool = False, *, reduce=None, mask=None,
                    channel_axis: int = None, nan_policy: str = "raise"):
    """Counts and sums of positive (P), near-zero (Z) and negative (N) values of `x`.

    Returns ``(counts, sums)`` of shape ``x.shape + (3,)`` (counts 0/1, sums = x in its class
    slot), or with ``return_threshold=True`` also the threshold used (a float).
    ``reduce="all"`` gives shape ``(3,)``; ``reduce="channel"`` gives ``(x.shape[channel_axis], 3)``
    (``channel_axis`` defaults to -1).
    """
    channel_axis = check_channel_axis(channel_axis, reduce)
    prepared = prepare_single(x, "x", confidence, threshold, nan_policy)
    counts, sums = prepared.backend.elementwise(prepared, tuple(prepared.operands[0].shape), 3,
                                                reduce, mask, channel_axis)
    return package(prepared, counts, sums, return_threshold, single=True)


def multiply_classify(x, y, confidence: float = 0.95, thresholds=None,
                      return_thresholds: bool = False, *, reduce=None, mask=None,
                      channel_axis: int = None, nan_policy: str = "raise"):
    """Nine-way classification of the elementwise product ``x * y`` (NumPy broadcasting).

    Returns ``(counts, sums)`` of shape ``broadcast_shape + (9,)`` in the pair order
    PP, PZ, PN, ZP, ZZ, ZN, NP, NZ, NN; with ``return_thresholds=True`` also the two thresholds.
    ``reduce``, ``mask`` and ``channel_axis`` as `tensor_classify`.
    """
    channel_axis = check_channel_axis(channel_axis, reduce)
    prepared = prepare_pair(x, y, ("x", "y"), confidence, thresholds, nan_policy)
    ox, oy = prepared.operands
    try:
        shape = np.broadcast_shapes(ox.shape, oy.shape)
    except ValueError:
        raise ValueError(
            f"x of shape {ox.shape} and y of shape {oy.shape} cannot be broadcast together"
        ) from None
    counts, sums = prepared.backend.elementwise(prepared, tuple(shape), 9, reduce, mask,
                                                channel_axis)
    return package(prepared, counts, sums, return_thresholds)
