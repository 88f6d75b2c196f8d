"""What both backends' results share: the reduce modes, the layout of a reduction and the size
guard of a full result."""

from __future__ import annotations

import numpy as np

REDUCE_MODES = {None: 0, "all": 1, "channel": 2}
INT32_MAX = 2**31 - 1


def check_result_size(value_shape, pairs, count_dtype, sum_dtype, free_bytes, device) -> None:
    """Size guard (SPEC §5): refuse a full result that would not fit in free memory."""
    cells = int(np.prod(value_shape, dtype=np.float64))
    need = cells * pairs * (np.dtype(count_dtype).itemsize + np.dtype(sum_dtype).itemsize)
    if need > free_bytes:
        raise MemoryError(
            f"the full result of shape {tuple(value_shape) + (pairs,)} needs {need / 2**30:.2f} GiB "
            f"but only {free_bytes / 2**30:.2f} GiB is free on {device}; pass reduce='all' or "
            "reduce='channel' (optionally with mask=) to reduce inside the kernel instead"
        )


def reduction_layout(value_shape: tuple, reduce, channel_axis: int):
    """The kernel's reduce mode, the number of cells, and for reduce='channel' the number of
    channels and the cells after the channel axis (1 and 1 otherwise)."""
    if not isinstance(reduce, (str, type(None))) or reduce not in REDUCE_MODES:
        raise ValueError(f"reduce must be None, 'all' or 'channel', got {reduce!r}")
    mode = REDUCE_MODES[reduce]
    cells = int(np.prod(value_shape, dtype=np.int64))
    channels, inner = 1, 1
    if mode == 2:
        if not value_shape:
            raise ValueError("reduce='channel' needs a result with at least one axis")
        axis = channel_axis if channel_axis >= 0 else len(value_shape) + channel_axis
        if not 0 <= axis < len(value_shape):
            raise ValueError(f"channel axis {channel_axis} is out of range for shape {value_shape}")
        channels = value_shape[axis]
        inner = int(np.prod(value_shape[axis + 1:], dtype=np.int64))
    return mode, cells, channels, inner


def sum_dtype_of(dtype) -> np.dtype:
    """Sums of a full result are in the compute dtype."""
    return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)


def count_dtype_of(products_per_cell: int) -> np.dtype:
    """Counts of a full result: int32 unless one cell can hold more products."""
    return np.dtype(np.int64 if products_per_cell > INT32_MAX else np.int32)


def by_dtype(dtype, f32, f64):
    """The float64 kernel for float64 compute, the float32 one otherwise."""
    return f64 if np.dtype(dtype) == np.float64 else f32


def batch_offsets(batch_shape, a_batch_shape, a_batch_strides):
    """Element offset of every broadcast batch entry of one operand, flattened row-major."""
    offsets = np.zeros(a_batch_shape, dtype=np.int64)
    for d, (size, stride) in enumerate(zip(a_batch_shape, a_batch_strides)):
        shape = [1] * len(a_batch_shape)
        shape[d] = size
        offsets = offsets + (np.arange(size, dtype=np.int64) * stride).reshape(shape)
    lead = len(batch_shape) - len(a_batch_shape)
    offsets = offsets.reshape((1,) * lead + tuple(a_batch_shape))
    return np.ascontiguousarray(np.broadcast_to(offsets, batch_shape).reshape(-1))
