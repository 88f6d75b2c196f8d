"""The CUDA backend: device pointers and the caller's stream into `nearzero._cuda`.

Used for CUDA inputs (torch CUDA tensors, CuPy arrays, other __cuda_array_interface__ objects
through CuPy). Everything stays on the inputs' device: conversions, NaN checks, threshold
selection and results; results come back in the first input's library.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .._arrays import Operand
from .cuda_inputs import DeviceInput, natural_dtype
from .cuda_results import make_device_result
from .results import batch_offsets, by_dtype

__all__ = ["CUDA"]


def _merge_dims(shape, *strides):
    """Drops size-1 dimensions and merges neighbours every operand walks contiguously, so that
    the kernel's per-cell index arithmetic stays short."""
    dims = [(size, [s[d] for s in strides]) for d, size in enumerate(shape) if size != 1]
    merged = []
    for size, st in dims:
        if merged and all(prev == s * size for prev, s in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * size, st)
        else:
            merged.append((size, st))
    return [m[0] for m in merged], [[m[1][i] for m in merged] for i in range(len(strides))]


def _broadcast_strides(op_shape, op_strides, shape):
    """Element strides of an operand broadcast to `shape` (0 along broadcast axes)."""
    lead = len(shape) - len(op_shape)
    return [0 if d < lead or op_shape[d - lead] == 1 else op_strides[d - lead]
            for d in range(len(shape))]


def _has_infinity(prepared) -> bool:
    return any(v.nonfinite_counts()[1] > 0 for v in prepared.values)


def _result(prepared, value_shape, pairs, reduce, mask, channel_axis, products_per_cell):
    return make_device_result(prepared.values[0].arrays, value_shape, pairs, prepared.dtype,
                              reduce, mask, channel_axis, products_per_cell, prepared.device)


def _conv_kernels(module, family):
    """((classify, scratch size) in float32, the same in float64) of a convolution family."""
    if family == "forward":
        return ((module.conv_classify_f32, module.conv_scratch_doubles_f32),
                (module.conv_classify_f64, module.conv_scratch_doubles_f64))
    if family == "filter_grad":
        return ((module.conv_backprop_filter_classify_f32,
                 module.conv_backprop_filter_scratch_doubles_f32),
                (module.conv_backprop_filter_classify_f64,
                 module.conv_backprop_filter_scratch_doubles_f64))
    return ((module.conv_backprop_input_classify_f32,
             module.conv_backprop_input_scratch_doubles_f32),
            (module.conv_backprop_input_classify_f64,
             module.conv_backprop_input_scratch_doubles_f64))


class CUDABackend:
    """Inputs as `DeviceInput`s; results as arrays of the first input's library."""

    name = "cuda"

    def values(self, op: Operand, dtype=None) -> DeviceInput:
        return DeviceInput(op)

    def wrap(self, op: Operand, array):
        """Results are made in the first input's library already."""
        return array

    def nan_count(self, op: Operand, values: DeviceInput) -> int:
        return values.nonfinite_counts()[0]

    def order_statistics(self, op: Operand, values: DeviceInput, fraction: float) -> tuple:
        """By the CUDA radix select, bit-identical to the CPU's."""
        dtype = natural_dtype(op)
        _, pointer, n = values.flat(dtype)
        arrays = values.arrays
        module = _backend.cuda_module()
        workspace = arrays.empty((int(module.threshold_workspace_size),), np.int64)
        # Once the wanted bucket fits here the later levels read only the bucket (see
        # threshold_cuda.cu).
        capacity = n if n <= (1 << 20) else n // 8
        try:
            scratch = arrays.empty((max(capacity, 1),), dtype)
        except Exception:  # out of memory: select with full passes instead  # noqa: BLE001
            scratch, capacity = arrays.empty((1,), dtype), 0
        select = by_dtype(dtype, module.abs_order_statistics_f32, module.abs_order_statistics_f64)
        return select(arrays.device, pointer, n, fraction, arrays.pointer(scratch), capacity,
                      arrays.pointer(workspace), arrays.stream())

    def elementwise(self, prepared, shape, pairs, reduce, mask, channel_axis):
        inputs = prepared.values
        arrays = inputs[0].arrays
        shape = tuple(shape)
        result = _result(prepared, shape, pairs, reduce, mask, channel_axis, 1)
        if int(np.prod(shape, dtype=np.int64)) == 0:
            return result.finish()
        views = [v.view(prepared.dtype) for v in inputs]
        strides = [_broadcast_strides(v.shape, v.arrays.strides(view), shape)
                   for v, view in zip(inputs, views)]
        merged_shape, merged_strides = _merge_dims(shape, *strides)
        module = _backend.cuda_module()
        if len(merged_shape) > int(module.elementwise_max_dims):
            views = [v.arrays.contiguous(view) for v, view in zip(inputs, views)]
            strides = [_broadcast_strides(v.shape, v.arrays.strides(view), shape)
                       for v, view in zip(inputs, views)]
            merged_shape, merged_strides = _merge_dims(shape, *strides)
        pointers = [v.arrays.pointer(view) for v, view in zip(inputs, views)]
        if pairs == 3:
            by_dtype(prepared.dtype, module.tensor_classify_f32, module.tensor_classify_f64)(
                arrays.device, pointers[0], merged_shape, merged_strides[0],
                prepared.thresholds[0], result.spec, arrays.stream())
        else:
            by_dtype(prepared.dtype, module.multiply_classify_f32, module.multiply_classify_f64)(
                arrays.device, pointers[0], pointers[1], merged_shape, merged_strides[0],
                merged_strides[1], prepared.thresholds[0], prepared.thresholds[1], result.spec,
                arrays.stream())
        return result.finish()

    def matrices(self, prepared, free_x=None, ax=None, ay=None, free_y=None):
        vx, vy = prepared.values
        xa, ya = vx.arrays, vy.arrays
        x, y = vx.view(prepared.dtype), vy.view(prepared.dtype)
        if ax is None:
            if len(vx.shape) == 1:
                x = xa.reshape(x, (1,) + vx.shape)
            if len(vy.shape) == 1:
                y = ya.reshape(y, vy.shape + (1,))
            return x, y
        k = int(np.prod([vx.shape[i] for i in ax], dtype=np.int64))
        n = int(np.prod([vx.shape[i] for i in free_x], dtype=np.int64))
        m = int(np.prod([vy.shape[j] for j in free_y], dtype=np.int64))
        return (xa.reshape(xa.transpose(x, free_x + ax), (n, k)),
                ya.reshape(ya.transpose(y, ay + free_y), (k, m)))

    def matmul(self, prepared, x2, y2, value_shape, reduce, mask):
        arrays, y_arrays = prepared.values[0].arrays, prepared.values[1].arrays
        xs, ys = arrays.strides(x2), y_arrays.strides(y2)
        batch = tuple(np.broadcast_shapes(tuple(x2.shape[:-2]), tuple(y2.shape[:-2])))
        n, k, m = int(x2.shape[-2]), int(x2.shape[-1]), int(y2.shape[-1])
        result = _result(prepared, value_shape, 9, reduce, mask, -1, k)
        batches = int(np.prod(batch, dtype=np.int64))
        if batches * n * m == 0:
            return result.finish()
        x_offsets = arrays.upload(batch_offsets(batch, tuple(x2.shape[:-2]), xs[:-2]))
        y_offsets = arrays.upload(batch_offsets(batch, tuple(y2.shape[:-2]), ys[:-2]))
        has_infinity = _has_infinity(prepared)
        module = _backend.cuda_module()
        scratch_size = by_dtype(prepared.dtype, module.matmul_scratch_doubles_f32,
                                module.matmul_scratch_doubles_f64)
        scratch_doubles = int(scratch_size(arrays.device, k, has_infinity))
        scratch = arrays.empty((max(scratch_doubles, 1),), np.float64)
        by_dtype(prepared.dtype, module.matmul_classify_f32, module.matmul_classify_f64)(
            arrays.device, arrays.pointer(x2), y_arrays.pointer(y2),
            arrays.pointer(x_offsets), arrays.pointer(y_offsets), [batches, n, k, m],
            [xs[-2], xs[-1], ys[-2], ys[-1]], prepared.thresholds[0], prepared.thresholds[1],
            has_infinity, arrays.pointer(scratch), scratch_doubles, result.spec,
            arrays.stream())
        return result.finish()

    def conv(self, family, prepared, geometry, value_shape, channel_axis, products_per_cell,
             reduce, mask):
        """Operands made C-contiguous in their layout (a device copy only when they are
        not), the geometry as the CPU kernels take it."""
        inputs = prepared.values
        arrays = inputs[0].arrays
        result = _result(prepared, value_shape, 9, reduce, mask, channel_axis,
                         products_per_cell)
        if int(np.prod(value_shape, dtype=np.int64)) == 0:
            return result.finish()
        views = [v.arrays.contiguous(v.view(prepared.dtype)) for v in inputs]
        has_infinity = _has_infinity(prepared)
        module = _backend.cuda_module()
        args = geometry.kernel_args()
        classify, scratch_size = by_dtype(prepared.dtype, *_conv_kernels(module, family))
        scratch_doubles = int(scratch_size(arrays.device, args, has_infinity))
        scratch = arrays.empty((max(scratch_doubles, 1),), np.float64)
        classify(arrays.device, args, inputs[0].arrays.pointer(views[0]),
                 inputs[1].arrays.pointer(views[1]), prepared.thresholds[0],
                 prepared.thresholds[1], has_infinity, arrays.pointer(scratch), scratch_doubles,
                 result.spec, arrays.stream())
        return result.finish()


CUDA = CUDABackend()
