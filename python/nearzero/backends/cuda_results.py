"""Results of the CUDA backend: device buffers for the full result (pair-major, so kernel stores
coalesce; returned as a strided view with the pairs last) or the reduced forms, the device mask,
and the size guard against the device's free memory. The layout rules are those of the CPU's
`cpu_results.make_buffers` (shared in `results`); only the allocation differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _backend
from .._arrays import as_operand
from .._cuda_arrays import DeviceArrays, device_arrays, device_index, device_value
from .results import (INT32_MAX, check_result_size, count_dtype_of, reduction_layout,
                      sum_dtype_of)

__all__ = ["DeviceResult", "make_device_result", "free_device_bytes"]


def free_device_bytes(arrays: DeviceArrays) -> int:
    """What a new result can use: cudaMemGetInfo's free memory plus the library's cached blocks."""
    free, _ = _backend.cuda_module().memory_info(arrays.device)
    return int(free) + arrays.cached_free_bytes()


def device_mask(mask, value_shape, arrays: DeviceArrays):
    """The mask as a contiguous bool device array on the inputs' device, or None."""
    if mask is None:
        return None
    op = as_operand(mask, "mask")
    if not op.on_cuda or device_index(op) != arrays.device:
        raise ValueError(f"mask must be on the same device as the inputs (cuda:{arrays.device}), "
                         f"got a mask on {op.device}")
    if op.dtype != "bool":
        raise ValueError(f"mask must be a bool array, got dtype {op.dtype}")
    if tuple(op.shape) != tuple(value_shape):
        raise ValueError(
            f"mask has shape {tuple(op.shape)} but the result's value shape is {tuple(value_shape)}"
        )
    own = device_arrays(op)
    return own.contiguous(device_value(op)), own


@dataclass
class DeviceResult:
    """Result buffers handed to a CUDA kernel and how to turn them into the returned arrays."""

    arrays: DeviceArrays
    mode: int
    counts: object
    sums: object
    spec: object  # the kernels' result argument, a `_cuda.ResultSpec`
    mask: object  # kept alive until the kernel is queued
    max_count: int
    sum_dtype: np.dtype

    def finish(self):
        a = self.arrays
        if self.mode == 0:
            return a.move_first_axis_last(self.counts), a.move_first_axis_last(self.sums)
        counts = self.counts if self.max_count > INT32_MAX else a.astype(self.counts, np.int32)
        return counts, a.astype(self.sums, self.sum_dtype)


def make_device_result(arrays: DeviceArrays, value_shape, pairs, dtype, reduce, mask,
                       channel_axis, products_per_cell, device_name) -> DeviceResult:
    """Allocate the result for `value_shape` on the device (full, or reduced per `reduce`)."""
    value_shape = tuple(int(s) for s in value_shape)
    mode, cells, channels, inner = reduction_layout(value_shape, reduce, channel_axis)
    masked = device_mask(mask, value_shape, arrays)
    mask_array, mask_pointer = None, 0
    if masked is not None:
        mask_array, mask_pointer = masked[0], masked[1].pointer(masked[0])
    sum_dtype = sum_dtype_of(dtype)
    if mode == 0:
        count_dtype = count_dtype_of(products_per_cell)
        check_result_size(value_shape, pairs, count_dtype, sum_dtype, free_device_bytes(arrays),
                          device_name)
        shape = (pairs,) + value_shape
        if cells == 0:
            counts, sums = arrays.zeros(shape, count_dtype), arrays.zeros(shape, sum_dtype)
        else:
            counts, sums = arrays.empty(shape, count_dtype), arrays.empty(shape, sum_dtype)
        cell_stride, pair_stride = 1, cells
        max_count = products_per_cell
    else:
        slots = (channels,) if mode == 2 else ()
        counts = arrays.zeros(slots + (pairs,), np.int64)
        sums = arrays.zeros(slots + (pairs,), np.float64)
        cell_stride, pair_stride = 0, 1
        count_dtype = np.dtype(np.int64)
        max_count = products_per_cell * cells
    spec = _backend.cuda_module().ResultSpec(
        mode=mode, pairs=pairs, counts=arrays.pointer(counts), sums=arrays.pointer(sums),
        counts_int64=count_dtype == np.int64, cell_stride=cell_stride, pair_stride=pair_stride,
        mask=mask_pointer, channels=max(channels, 1), channel_inner=max(inner, 1))
    return DeviceResult(arrays, mode, counts, sums, spec, mask_array, max_count, sum_dtype)
