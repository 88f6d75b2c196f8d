"""Result buffers of the CPU backend: the full result (planar: one plane of cells per pair) or
the reduced forms, the mask, and the size guard against the host's free memory."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import _backend
from .._arrays import as_operand
from .result_memory import release_free, reusable_empty
from .results import (INT32_MAX, check_result_size, count_dtype_of, reduction_layout,
                      sum_dtype_of)

__all__ = ["ResultBuffers", "make_buffers", "available_memory_bytes"]


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


@dataclass
class ResultBuffers:
    """Result arrays handed to a kernel plus how to turn them into the returned values. Full
    results are `pairs` planes `pair_stride` elements apart; the returned arrays are views of
    their first `cells` elements."""

    mode: int
    pairs: int
    counts: np.ndarray
    sums: np.ndarray
    cell_stride: int
    pair_stride: int
    mask: np.ndarray | None
    channels: int
    channel_inner: int
    max_count: int
    sum_dtype: np.dtype
    value_shape: tuple

    def spec(self):
        """The kernels' result argument (`_core.ResultSpec`, csrc/bindings/result_spec.h)."""
        return _backend.core.ResultSpec(
            mode=self.mode, pairs=self.pairs, counts=self.counts, sums=self.sums,
            counts_int64=self.counts.dtype == np.int64,
            cell_stride=self.cell_stride, pair_stride=self.pair_stride, mask=self.mask,
            channels=self.channels, channel_inner=self.channel_inner)

    def finish(self):
        counts, sums = self.counts, self.sums
        if self.mode == 0:
            cells = int(np.prod(self.value_shape, dtype=np.int64))
            return tuple(np.moveaxis(a[:, :cells].reshape(a.shape[:1] + self.value_shape), 0, -1)
                         for a in (counts, sums))
        if self.max_count <= INT32_MAX:
            counts = counts.astype(np.int32)
        return counts, sums.astype(self.sum_dtype)


def _aligned_empty(shape, dtype):
    """An uninitialised C-contiguous array starting on a cache line, so that a kernel's runs of
    cells are whole lines it can write without reading them first. Large ones reuse the memory
    of results the caller has dropped (result_memory: no page faults, huge pages)."""
    return reusable_empty(shape, dtype)


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


def make_buffers(value_shape, pairs, dtype, reduce, mask, channel_axis, products_per_cell,
                 *, device="cpu") -> ResultBuffers:
    """Allocate the result for `value_shape` (full, or reduced per `reduce`)."""
    value_shape = tuple(int(s) for s in value_shape)
    mode, cells, channels, inner = reduction_layout(value_shape, reduce, channel_axis)
    mask_arr = normalise_mask(mask, value_shape)
    sum_dtype = sum_dtype_of(dtype)
    if mode == 0:
        count_dtype = count_dtype_of(products_per_cell)
        try:
            check_result_size(value_shape, pairs, count_dtype, sum_dtype,
                              available_memory_bytes(), device)
        except MemoryError:
            if not release_free():  # the memory of dropped results, if any, first
                raise
            check_result_size(value_shape, pairs, count_dtype, sum_dtype,
                              available_memory_bytes(), device)
        cell_stride, pair_stride = 1, _plane_stride(cells)
        counts = _aligned_empty((pairs, pair_stride), count_dtype)
        sums = _aligned_empty((pairs, pair_stride), sum_dtype)
        max_count = products_per_cell
    else:
        slots = (channels,) if mode == 2 else ()
        counts = np.zeros(slots + (pairs,), dtype=np.int64)
        sums = np.zeros(slots + (pairs,), dtype=np.float64)
        cell_stride, pair_stride = 0, 1
        max_count = products_per_cell * cells
    return ResultBuffers(mode, pairs, counts, sums, cell_stride, pair_stride, mask_arr, channels,
                         inner, max_count, sum_dtype, value_shape)
