"""What every classify op shares: operand preparation, thresholds, result buffers for the
full and reduced (`reduce=`, `mask=`) forms, the size guard and result wrapping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from .._arrays import Operand, as_operand, common_device, compute_dtype, to_numpy
from ..thresholds import (check_nan_policy, check_threshold_value, in_dtype, raise_on_nans,
                          resolve_thresholds, threshold_of)

REDUCE_MODES = {None: 0, "all": 1, "channel": 2}
INT32_MAX = 2**31 - 1


@dataclass
class Prepared:
    """Operands of one op call, on one device, with their thresholds in compute dtype."""

    operands: list
    values: list  # NumPy arrays (CPU) in the compute dtype, or the original device arrays
    thresholds: list  # Python floats, already rounded to each input's dtype
    dtype: np.dtype
    device: str


def prepare(inputs, names, confidence, thresholds_pair, nan_policy) -> Prepared:
    """Validate inputs and derive thresholds (SPEC §2, §7)."""
    check_nan_policy(nan_policy)
    operands = [as_operand(x, n) for x, n in zip(inputs, names)]
    device = common_device(*operands)
    dtype = compute_dtype(*operands)
    if device == "cpu":
        values = [to_numpy(op, dtype) for op in operands]
        for op, v in zip(operands, values):
            raise_on_nans(v, op.name, nan_policy)
    else:
        from . import _cuda_dispatch

        values = [op.value for op in operands]
        for op in operands:
            _cuda_dispatch.raise_on_nans(op, nan_policy)
    resolved = []
    for op, v, t in zip(operands, values, thresholds_pair):
        if t is None:
            resolved.append(threshold_of(op, v, confidence, nan_policy))
        else:
            resolved.append(in_dtype(t, op.dtype))
    return Prepared(operands, values, resolved, dtype, device)


def prepare_pair(x, y, names, confidence, thresholds, nan_policy) -> Prepared:
    return prepare((x, y), names, confidence, resolve_thresholds(thresholds), nan_policy)


def prepare_single(x, name, confidence, threshold, nan_policy) -> Prepared:
    t = None if threshold is None else check_threshold_value(threshold, "threshold")
    return prepare((x,), (name,), confidence, (t,), nan_policy)


def available_memory_bytes() -> int:
    """Free memory the host can give a result (MemAvailable), or a large number if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


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


@dataclass
class ResultBuffers:
    """Result arrays handed to a kernel plus how to turn them into the returned values. Full
    planar results are `pairs` planes `pair_stride` elements apart; the returned arrays are views
    of their first `cells` elements."""

    mode: int
    counts: np.ndarray
    sums: np.ndarray
    cell_stride: int
    pair_stride: int
    mask: np.ndarray | None
    channels: int
    channel_inner: int
    planar: bool
    max_count: int
    sum_dtype: np.dtype
    value_shape: tuple

    def kernel_args(self):
        return (self.mode, self.counts, self.sums, self.cell_stride, self.pair_stride, self.mask,
                self.channels, self.channel_inner)

    def finish(self):
        counts, sums = self.counts, self.sums
        if self.mode == 0:
            if self.planar:
                cells = int(np.prod(self.value_shape, dtype=np.int64))
                counts, sums = (
                    np.moveaxis(a[:, :cells].reshape(a.shape[:1] + self.value_shape), 0, -1)
                    for a in (counts, sums))
            return counts, sums
        if self.max_count <= INT32_MAX:
            counts = counts.astype(np.int32)
        return counts, sums.astype(self.sum_dtype)


def _aligned_empty(shape, dtype, alignment=64):
    """An uninitialised C-contiguous array starting on a cache line, so that a kernel's runs of
    cells are whole lines it can write without reading them first."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.empty(count * dtype.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + count * dtype.itemsize].view(dtype).reshape(shape)


def _plane_stride(cells: int) -> int:
    """Elements between the planes of a full planar result. With a stride that is a multiple of
    4 KiB the count and sum stores of every cell fall into one L1 set and evict each other
    (measured 3x slower writes); planes 272 elements past a 1024-element boundary apart land in
    distinct sets for 4- and 8-byte items."""
    return -(-cells // 1024) * 1024 + 272


def normalise_mask(mask, value_shape):
    if mask is None:
        return None
    op = as_operand(mask, "mask")
    if op.on_cuda:
        raise ValueError("mask must be on the same device as the inputs (got a CUDA mask)")
    m = np.asarray(op.value.detach().numpy() if op.kind == "torch" else op.value)
    if m.dtype != np.bool_:
        raise ValueError(f"mask must be a bool array, got dtype {m.dtype}")
    if tuple(m.shape) != tuple(value_shape):
        raise ValueError(
            f"mask has shape {tuple(m.shape)} but the result's value shape is {tuple(value_shape)}"
        )
    return np.ascontiguousarray(m)


def check_channel_axis(channel_axis, reduce) -> int:
    """`channel_axis=` of the elementwise ops: an int, only with a reduction (-1 if None)."""
    if channel_axis is None:
        return -1
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, Integral):
        raise TypeError(f"channel_axis must be an int, got {channel_axis!r}")
    if reduce is None:
        raise ValueError("channel_axis applies to reduce='channel' only; pass "
                         "reduce='channel' or leave channel_axis out")
    return int(channel_axis)


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


def make_buffers(value_shape, pairs, dtype, reduce, mask, channel_axis, products_per_cell,
                 *, planar, device="cpu") -> ResultBuffers:
    """Allocate the result for `value_shape` (full, or reduced per `reduce`)."""
    value_shape = tuple(int(s) for s in value_shape)
    mode, cells, channels, inner = reduction_layout(value_shape, reduce, channel_axis)
    mask_arr = normalise_mask(mask, value_shape)
    sum_dtype = np.dtype(np.float64 if dtype == np.float64 else np.float32)
    if mode == 0:
        count_dtype = np.int64 if products_per_cell > INT32_MAX else np.int32
        check_result_size(value_shape, pairs, count_dtype, sum_dtype, available_memory_bytes(),
                          device)
        if planar:
            cell_stride, pair_stride = 1, _plane_stride(cells)
            counts = _aligned_empty((pairs, pair_stride), count_dtype)
            sums = _aligned_empty((pairs, pair_stride), sum_dtype)
        else:
            cell_stride, pair_stride = pairs, 1
            counts = np.empty(value_shape + (pairs,), dtype=count_dtype)
            sums = np.empty(value_shape + (pairs,), dtype=sum_dtype)
            if cells == 0:
                counts[...] = 0
                sums[...] = 0
        max_count = products_per_cell
    else:
        slots = (channels,) if mode == 2 else ()
        counts = np.zeros(slots + (pairs,), dtype=np.int64)
        sums = np.zeros(slots + (pairs,), dtype=np.float64)
        cell_stride, pair_stride = 0, 1
        max_count = products_per_cell * cells
    return ResultBuffers(mode, counts, sums, cell_stride, pair_stride, mask_arr, channels, inner,
                         planar, max_count, sum_dtype, value_shape)


def kernel_for(name: str, dtype: np.dtype):
    from .. import _backend

    return getattr(_backend.core, f"{name}_{'f64' if dtype == np.float64 else 'f32'}")


def package(prepared: Prepared, counts, sums, return_thresholds, *, single=False):
    """Wrap results as the first input's array type and append thresholds if asked."""
    first: Operand = prepared.operands[0]
    counts, sums = first.wrap(counts), first.wrap(sums)
    if not return_thresholds:
        return counts, sums
    if single:
        return counts, sums, prepared.thresholds[0]
    return counts, sums, list(prepared.thresholds)
