"""The CPU backend: NumPy views of the inputs into the compiled `_core` kernels."""

from __future__ import annotations

import sys

import numpy as np

from .. import _backend
from .._arrays import Operand, distinct_view, to_numpy
from .cpu_results import make_buffers
from .results import batch_offsets, by_dtype

__all__ = ["CPU", "count_nans"]

_NAN_BLOCK = 1 << 20  # elements tested at a time: the test's bool mask stays small


def _blocks(values: np.ndarray):
    """Views of `values` of at most _NAN_BLOCK elements each that together cover it."""
    if values.size <= _NAN_BLOCK or values.ndim == 0:
        yield values
    elif values.ndim == 1:
        for start in range(0, values.shape[0], _NAN_BLOCK):
            yield values[start:start + _NAN_BLOCK]
    else:
        row_size = values.size // values.shape[0]
        if row_size > _NAN_BLOCK:
            for row in values:
                yield from _blocks(row)
        else:
            step = _NAN_BLOCK // row_size
            for start in range(0, values.shape[0], step):
                yield values[start:start + step]


def count_nans(values: np.ndarray) -> int:
    """NaNs in `values`, reading each element of a broadcast view once, in blocks."""
    if values.dtype.kind != "f":
        return 0
    distinct, repeat = distinct_view(values)
    if distinct.flags.c_contiguous or distinct.flags.f_contiguous:
        distinct = distinct.ravel(order="K")  # a view: memory order
    return sum(int(np.count_nonzero(np.isnan(b))) for b in _blocks(distinct)) * repeat


def _element_strides(a: np.ndarray):
    """Strides in elements; an axis of length 1 is never stepped along, so its stride is 0."""
    strides = [s if n > 1 else 0 for n, s in zip(a.shape, a.strides)]
    if any(s % a.itemsize for s in strides):  # to_numpy's views never have these
        raise ValueError(f"internal error: strides {a.strides} are not whole elements")
    return [s // a.itemsize for s in strides]


core = _backend.core
_CONV_KERNELS = {
    "forward": (core.conv_classify_f32, core.conv_classify_f64),
    "filter_grad": (core.conv_backprop_filter_classify_f32,
                    core.conv_backprop_filter_classify_f64),
    "input_grad": (core.conv_backprop_input_classify_f32, core.conv_backprop_input_classify_f64),
}


class CPUBackend:
    """Inputs as NumPy views in the compute dtype; results as NumPy arrays (wrapped as the
    inputs' library by the op)."""

    name = "cpu"

    def values(self, op: Operand, dtype=None) -> np.ndarray:
        return to_numpy(op, dtype)

    def wrap(self, op: Operand, array: np.ndarray):
        """A NumPy result as the operand's array type (a torch tensor sharing its memory)."""
        if op.kind == "torch":
            torch = sys.modules["torch"]
            return torch.from_numpy(np.ascontiguousarray(array) if array.ndim == 0 else array)
        return array

    def nan_count(self, op: Operand, values) -> int:
        return count_nans(values)

    def order_statistics(self, op: Operand, values, fraction: float) -> tuple:
        distinct, repeat = distinct_view(values)
        flat = np.ascontiguousarray(distinct).reshape(-1)
        select = by_dtype(flat.dtype, core.abs_order_statistics_f32,
                          core.abs_order_statistics_f64)
        return select(flat, fraction, repeat)

    def elementwise(self, prepared, shape, pairs, reduce, mask, channel_axis):
        buffers = make_buffers(shape, pairs, prepared.dtype, reduce, mask, channel_axis, 1,
                               device=prepared.device)
        if pairs == 3:
            by_dtype(prepared.dtype, core.tensor_classify_f32, core.tensor_classify_f64)(
                prepared.values[0], list(shape), prepared.thresholds[0], buffers.spec())
        else:
            xv, yv = (np.broadcast_to(v, shape) for v in prepared.values)
            by_dtype(prepared.dtype, core.multiply_classify_f32, core.multiply_classify_f64)(
                xv, yv, list(shape), *prepared.thresholds, buffers.spec())
        return buffers.finish()

    def matrices(self, prepared, free_x=None, ax=None, ay=None, free_y=None):
        xv, yv = prepared.values
        if ax is None:
            x2 = xv.reshape((1,) + xv.shape) if xv.ndim == 1 else xv
            y2 = yv.reshape(yv.shape + (1,)) if yv.ndim == 1 else yv
            return x2, y2
        k = int(np.prod([xv.shape[i] for i in ax], dtype=np.int64))
        n = int(np.prod([xv.shape[i] for i in free_x], dtype=np.int64))
        m = int(np.prod([yv.shape[j] for j in free_y], dtype=np.int64))
        return (np.transpose(xv, free_x + ax).reshape(n, k),
                np.transpose(yv, ay + free_y).reshape(k, m))

    def matmul(self, prepared, x2, y2, value_shape, reduce, mask):
        batch = tuple(np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2]))
        n, k, m = x2.shape[-2], x2.shape[-1], y2.shape[-1]
        buffers = make_buffers(value_shape, 9, prepared.dtype, reduce, mask, -1, k,
                               device=prepared.device)
        xs, ys = _element_strides(x2), _element_strides(y2)
        x_offsets = batch_offsets(batch, x2.shape[:-2], xs[:-2])
        y_offsets = batch_offsets(batch, y2.shape[:-2], ys[:-2])
        batches = int(np.prod(batch, dtype=np.int64))
        by_dtype(prepared.dtype, core.matmul_classify_f32, core.matmul_classify_f64)(
            x2, y2, x_offsets, y_offsets, [batches, n, k, m], [xs[-2], xs[-1], ys[-2], ys[-1]],
            *prepared.thresholds, buffers.spec())
        return buffers.finish()

    def conv(self, family, prepared, geometry, value_shape, channel_axis, products_per_cell,
             reduce, mask):
        buffers = make_buffers(value_shape, 9, prepared.dtype, reduce, mask, channel_axis,
                               products_per_cell, device=prepared.device)
        first, second = (np.ascontiguousarray(v) for v in prepared.values)
        by_dtype(prepared.dtype, *_CONV_KERNELS[family])(
            first, second, geometry.kernel_args(), *prepared.thresholds, buffers.spec())
        return buffers.finish()


CPU = CPUBackend()
