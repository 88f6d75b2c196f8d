"""`matmul_classify` (2-D and batched, like `np.matmul`) and `tensordot_classify`."""

from __future__ import annotations

import numpy as np

from ._common import package, prepare_pair

__all__ = ["matmul_classify", "tensordot_classify"]


def _matmul_shapes(xs, ys):
    """Kernel operand shapes and the value shape for np.matmul semantics."""
    if len(xs) == 0 or len(ys) == 0:
        raise ValueError(f"matmul_classify needs inputs of rank >= 1, got shapes {xs} and {ys}")
    x2 = (1,) + xs if len(xs) == 1 else xs
    y2 = ys + (1,) if len(ys) == 1 else ys
    if x2[-1] != y2[-2]:
        raise ValueError(
            f"matmul_classify: inner dimensions differ: x has shape {xs} and y has shape {ys} "
            f"({x2[-1]} != {y2[-2]})"
        )
    try:
        batch = np.broadcast_shapes(x2[:-2], y2[:-2])
    except ValueError:
        raise ValueError(
            f"matmul_classify: batch dimensions of x {xs} and y {ys} cannot be broadcast"
        ) from None
    value = tuple(batch) + ((x2[-2],) if len(xs) > 1 else ()) + ((y2[-1],) if len(ys) > 1 else ())
    return x2, y2, tuple(batch), value


def matmul_classify(x, y, confidence: float = 0.95, thresholds=None,
                    return_thresholds: bool = False, *, reduce=None, mask=None,
                    nan_policy: str = "raise"):
    """Nine-way classification of every output cell of ``x @ y`` (``np.matmul`` semantics).

    For each cell, counts and sums of the products in each class pair PP, PZ, PN, ZP, ZZ, ZN,
    NP, NZ, NN (first letter from x). Returns ``(counts, sums)`` of shape
    ``matmul_shape + (9,)``; ``sums.sum(-1)`` equals ``x @ y``. ``thresholds`` is None, one
    number for both inputs, or a pair (an entry None = derived from ``confidence``).
    ``reduce="all"`` returns ``(9,)`` totals, ``reduce="channel"`` ``(m, 9)``, computed inside
    the kernel without the full result; ``mask`` (bool, matmul shape) selects cells.
    """
    prepared = prepare_pair(x, y, ("x", "y"), confidence, thresholds, nan_policy)
    ox, oy = prepared.operands
    _, _, _, value_shape = _matmul_shapes(ox.shape, oy.shape)
    backend = prepared.backend
    x2, y2 = backend.matrices(prepared)
    counts, sums = backend.matmul(prepared, x2, y2, value_shape, reduce, mask)
    return package(prepared, counts, sums, return_thresholds)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _tensordot_axes(axes, x_ndim, y_ndim):
    if isinstance(axes, (bool, np.bool_)):
        raise ValueError(f"tensordot_classify: axes must be an int or a pair, got {axes!r}")
    if _is_int(axes):
        if axes < 0 or axes > min(x_ndim, y_ndim):
            raise ValueError(f"tensordot_classify: axes={axes} is out of range for ranks "
                             f"{x_ndim} and {y_ndim}")
        return list(range(x_ndim - axes, x_ndim)), list(range(axes))
    try:
        ax, ay = axes
    except (TypeError, ValueError):
        raise ValueError(f"tensordot_classify: axes must be an int or a pair, got {axes!r}") from None
    try:
        ax = [ax] if _is_int(ax) else list(ax)
        ay = [ay] if _is_int(ay) else list(ay)
    except TypeError:
        raise ValueError(f"tensordot_classify: axes must be an int or a pair, got {axes!r}") from None
    if not all(_is_int(i) for i in ax + ay):
        raise ValueError(f"tensordot_classify: axes must hold ints, got {axes!r}")
    if len(ax) != len(ay):
        raise ValueError(f"tensordot_classify: axes {ax} and {ay} have different lengths")
    for a, nd in ((ax, x_ndim), (ay, y_ndim)):
        for i in a:
            if not -nd <= i < nd:
                raise ValueError(f"tensordot_classify: axis {i} is out of range for rank {nd}")
    ax = [i % x_ndim for i in ax]
    ay = [i % y_ndim for i in ay]
    if len(set(ax)) != len(ax) or len(set(ay)) != len(ay):
        raise ValueError(f"tensordot_classify: repeated axis in {axes!r}")
    return ax, ay


def tensordot_classify(x, y, axes=2, confidence: float = 0.95, thresholds=None,
                       return_thresholds: bool = False, *, reduce=None, mask=None,
                       nan_policy: str = "raise"):
    """Nine-way classification of ``np.tensordot(x, y, axes)``; value shape as np.tensordot."""
    prepared = prepare_pair(x, y, ("x", "y"), confidence, thresholds, nan_policy)
    ox, oy = prepared.operands
    ax, ay = _tensordot_axes(axes, len(ox.shape), len(oy.shape))
    for i, j in zip(ax, ay):
        if ox.shape[i] != oy.shape[j]:
            raise ValueError(
                f"tensordot_classify: x axis {i} (size {ox.shape[i]}) does not match y axis {j} "
                f"(size {oy.shape[j]}); shapes {ox.shape} and {oy.shape}"
            )
    free_x = [i for i in range(len(ox.shape)) if i not in ax]
    free_y = [j for j in range(len(oy.shape)) if j not in ay]
    value_shape = tuple(ox.shape[i] for i in free_x) + tuple(oy.shape[j] for j in free_y)
    backend = prepared.backend
    x2, y2 = backend.matrices(prepared, free_x, ax, ay, free_y)
    counts, sums = backend.matmul(prepared, x2, y2, value_shape, reduce, mask)
    return package(prepared, counts, sums, return_thresholds)
