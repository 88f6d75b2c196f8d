"""GPU path of the classify ops: device pointers and the caller's stream into `nearzero._cuda`.

Reached only for CUDA inputs (torch CUDA tensors, CuPy arrays, other __cuda_array_interface__
objects through CuPy). Everything stays on the inputs' device: conversions, NaN checks,
threshold selection and results; results come back in the first input's library.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from ._cuda_inputs import arrays_of, flat_dense, kernel_view, natural_dtype, nonfinite_counts, suffix
from ._cuda_results import make_device_result

__all__ = ["raise_on_nans", "abs_order_statistics", "tensor_classify", "multiply_classify",
           "matmul_classify", "tensordot_classify", "conv_classify",
           "conv_backprop_filter_classify", "conv_backprop_input_classify"]


def _kernel(name: str, dtype):
    return getattr(_backend.cuda_module(), f"{name}_{suffix(dtype)}")


def raise_on_nans(op, nan_policy):
    """nan_policy='raise' for one CUDA operand, counted on the device (same message as CPU)."""
    if nan_policy != "raise":
        return
    nans, _ = nonfinite_counts(op)
    if nans:
        size = int(np.prod(op.shape, dtype=np.int64))
        raise ValueError(
            f"{op.name} contains {nans} NaN value{'s' if nans != 1 else ''} of {size}; "
            "pass nan_policy='omit' to leave NaNs out of every class"
        )


def abs_order_statistics(op, values, fraction):
    """(low, high, count, nans) of |x| by the CUDA radix select (bit-identical to the CPU's)."""
    dtype = natural_dtype(op)
    _, pointer, n = flat_dense(op, dtype)
    arrays = arrays_of(op)
    module = _backend.cuda_module()
    workspace = arrays.empty((int(module.threshold_workspace_size),), np.int64)
    # Once the wanted bucket fits here the later levels read only the bucket (see threshold_cuda.cu).
    capacity = n if n <= (1 << 20) else n // 8
    try:
        scratch = arrays.empty((max(capacity, 1),), dtype)
    except Exception:  # out of memory: select with full passes instead  # noqa: BLE001
        scratch, capacity = arrays.empty((1,), dtype), 0
    return _kernel("abs_order_statistics", dtype)(
        arrays.device, pointer, n, fraction, arrays.pointer(scratch), capacity,
        arrays.pointer(workspace), arrays.stream())


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


def _elementwise(prepared, shape, reduce, mask, channel_axis, pairs):
    ops = prepared.operands
    arrays = arrays_of(ops[0])
    result = make_device_result(arrays, shape, pairs, prepared.dtype, reduce, mask, channel_axis,
                                1, prepared.device)
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return result.finish()
    views = [kernel_view(op, prepared.dtype) for op in ops]
    strides = [_broadcast_strides(op.shape, arrays_of(op).strides(v), shape)
               for op, v in zip(ops, views)]
    merged_shape, merged_strides = _merge_dims(shape, *strides)
    if len(merged_shape) > int(_backend.cuda_module().elementwise_max_dims):
        views = [arrays_of(op).contiguous(v) for op, v in zip(ops, views)]
        strides = [_broadcast_strides(op.shape, arrays_of(op).strides(v), shape)
                   for op, v in zip(ops, views)]
        merged_shape, merged_strides = _merge_dims(shape, *strides)
    pointers = [arrays_of(op).pointer(v) for op, v in zip(ops, views)]
    if pairs == 3:
        _kernel("tensor_classify", prepared.dtype)(
            arrays.device, pointers[0], merged_shape, merged_strides[0], prepared.thresholds[0],
            result.output, arrays.stream())
    else:
        _kernel("multiply_classify", prepared.dtype)(
            arrays.device, pointers[0], pointers[1], merged_shape, merged_strides[0],
            merged_strides[1], prepared.thresholds[0], prepared.thresholds[1], result.output,
            arrays.stream())
    return result.finish()


def tensor_classify(prepared, reduce, mask, channel_axis):
    return _elementwise(prepared, tuple(prepared.operands[0].shape), reduce, mask, channel_axis, 3)


def multiply_classify(prepared, shape, reduce, mask, channel_axis):
    return _elementwise(prepared, tuple(shape), reduce, mask, channel_axis, 9)


def _has_infinity(prepared) -> bool:
    return any(nonfinite_counts(op)[1] > 0 for op in prepared.operands)


def run_matmul(prepared, x2, y2, value_shape, reduce, mask):
    """(batch..., n, k) @ (batch..., k, m) on device arrays of the operands' libraries, into a
    result of `value_shape` (np.matmul semantics, as the CPU's `_run_matmul`)."""
    from .matmul import _batch_offsets

    ox, oy = prepared.operands
    arrays, y_arrays = arrays_of(ox), arrays_of(oy)
    xs, ys = arrays.strides(x2), y_arrays.strides(y2)
    batch = tuple(np.broadcast_shapes(tuple(x2.shape[:-2]), tuple(y2.shape[:-2])))
    n, k, m = int(x2.shape[-2]), int(x2.shape[-1]), int(y2.shape[-1])
    result = make_device_result(arrays, value_shape, 9, prepared.dtype, reduce, mask, -1, k,
                                prepared.device)
    batches = int(np.prod(batch, dtype=np.int64))
    if batches * n * m == 0:
        return result.finish()
    x_offsets = arrays.upload(_batch_offsets(batch, tuple(x2.shape[:-2]), xs[:-2]))
    y_offsets = arrays.upload(_batch_offsets(batch, tuple(y2.shape[:-2]), ys[:-2]))
    has_infinity = _has_infinity(prepared)
    module = _backend.cuda_module()
    scratch_doubles = int(getattr(module, f"matmul_scratch_doubles_{suffix(prepared.dtype)}")(
        arrays.device, k, has_infinity))
    scratch = arrays.empty((max(scratch_doubles, 1),), np.float64)
    _kernel("matmul_classify", prepared.dtype)(
        arrays.device, arrays.pointer(x2), y_arrays.pointer(y2),
        arrays.pointer(x_offsets), arrays.pointer(y_offsets), [batches, n, k, m],
        [xs[-2], xs[-1], ys[-2], ys[-1]], prepared.thresholds[0], prepared.thresholds[1],
        has_infinity, arrays.pointer(scratch), scratch_doubles, result.output, arrays.stream())
    return result.finish()


def matmul_classify(prepared, value_shape, reduce, mask):
    ox, oy = prepared.operands
    x = kernel_view(ox, prepared.dtype)
    y = kernel_view(oy, prepared.dtype)
    if len(ox.shape) == 1:
        x = arrays_of(ox).reshape(x, (1,) + tuple(ox.shape))
    if len(oy.shape) == 1:
        y = arrays_of(oy).reshape(y, tuple(oy.shape) + (1,))
    return run_matmul(prepared, x, y, value_shape, reduce, mask)


def tensordot_classify(prepared, free_x, ax, ay, free_y, value_shape, reduce, mask):
    ox, oy = prepared.operands
    k = int(np.prod([ox.shape[i] for i in ax], dtype=np.int64))
    n = int(np.prod([ox.shape[i] for i in free_x], dtype=np.int64))
    m = int(np.prod([oy.shape[j] for j in free_y], dtype=np.int64))
    xa, ya = arrays_of(ox), arrays_of(oy)
    x = xa.reshape(xa.transpose(kernel_view(ox, prepared.dtype), free_x + ax), (n, k))
    y = ya.reshape(ya.transpose(kernel_view(oy, prepared.dtype), ay + free_y), (k, m))
    return run_matmul(prepared, x, y, value_shape, reduce, mask)


_CONV_OPS = {"conv_classify": 0, "conv_backprop_filter_classify": 1,
             "conv_backprop_input_classify": 2}


def _conv(name, prepared, geometry, value_shape, channel_axis, products_per_cell, reduce, mask):
    """One convolution classify on the device: operands made C-contiguous in their layout
    (a device copy only when they are not), the geometry as the CPU kernels take it."""
    ops = prepared.operands
    arrays = arrays_of(ops[0])
    result = make_device_result(arrays, value_shape, 9, prepared.dtype, reduce, mask,
                                channel_axis, products_per_cell, prepared.device)
    if int(np.prod(value_shape, dtype=np.int64)) == 0:
        return result.finish()
    views = [arrays_of(op).contiguous(kernel_view(op, prepared.dtype)) for op in ops]
    has_infinity = _has_infinity(prepared)
    module = _backend.cuda_module()
    op, args = _CONV_OPS[name], geometry.kernel_args()
    scratch_doubles = int(getattr(module, f"conv_scratch_doubles_{suffix(prepared.dtype)}")(
        arrays.device, op, args, has_infinity))
    scratch = arrays.empty((max(scratch_doubles, 1),), np.float64)
    _kernel("conv_classify", prepared.dtype)(
        arrays.device, op, args, arrays_of(ops[0]).pointer(views[0]),
        arrays_of(ops[1]).pointer(views[1]), prepared.thresholds[0], prepared.thresholds[1],
        has_infinity, arrays.pointer(scratch), scratch_doubles, result.output, arrays.stream())
    return result.finish()


# Convolutions: `geometry` is an ops.conv_geometry.ConvGeometry (padding resolved to
# (before, after) per dimension); the value shape is geometry.output_shape,
# geometry.kernel_shape or geometry.input_shape respectively.
def conv_classify(prepared, geometry, reduce, mask):
    return _conv("conv_classify", prepared, geometry, geometry.output_shape,
                 geometry.activation_channel_axis, geometry.taps * geometry.in_per_group,
                 reduce, mask)


def conv_backprop_filter_classify(prepared, geometry, reduce, mask):
    positions = int(np.prod(geometry.output_spatial, dtype=np.int64))
    return _conv("conv_backprop_filter_classify", prepared, geometry, geometry.kernel_shape,
                 geometry.kernel_out_axis, geometry.batch * positions, reduce, mask)


def conv_backprop_input_classify(prepared, geometry, reduce, mask):
    return _conv("conv_backprop_input_classify", prepared, geometry, geometry.input_shape,
                 geometry.activation_channel_axis, geometry.taps * geometry.out_per_group,
                 reduce, mask)
