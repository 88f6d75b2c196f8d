# Type stub of the private CPU extension `nearzero._core` (csrc/bindings/cpu_*.cpp).
# Python callers go through nearzero.ops and the CPU backend (nearzero/backends/cpu.py); result
# buffers are allocated by backends/cpu_results.py. The kernel bindings name no arguments, so
# their parameters are positional-only (the `/`).
# tests/test_stubs.py checks these signatures against the compiled module.
from typing import Optional, Sequence

import numpy as np

version: str
openmp: bool

def max_threads() -> int: ...
# {'built': [...], 'supported': [...], 'selected': 'v3'}: the CPU levels of this build and machine
def cpu_levels() -> dict[str, list[str] | str]: ...

# Order statistics of |x| for the midpoint percentile, each distinct element counted `repeat`
# times (a broadcast view): (low, high, count of non-NaN, NaN count).
def abs_order_statistics_f32(x: np.ndarray, fraction: float, repeat: int,
                             /) -> tuple[float, float, int, int]: ...
def abs_order_statistics_f64(x: np.ndarray, fraction: float, repeat: int,
                             /) -> tuple[float, float, int, int]: ...
# The midpoint of two order statistics in the input's dtype, subnormals kept whatever the
# caller's floating-point mode; and a Python float rounded to float32 / float64 the same way.
def abs_midpoint_f32(low: float, high: float, /) -> float: ...
def abs_midpoint_f64(low: float, high: float, /) -> float: ...
def round_to_f32(value: float, /) -> float: ...
def round_to_f64(value: float, /) -> float: ...

# Every classify entry point ends in `result`, which says where the counts and sums go
# (csrc/bindings/result_spec.h; built by nearzero/backends/cpu_results.py): `mode` 0 full
# result, 1 reduce="all", 2 reduce="channel"; `pairs` 9, or 3 for tensor_classify; the `counts`
# (int32, or int64 as `counts_int64` says) and `sums` buffers; the element strides of a cell
# and of a class pair in them; an optional bool `mask` of one byte per cell; the channel layout.
class ResultSpec:
    def __init__(self, mode: int, pairs: int, counts: np.ndarray, sums: np.ndarray,
                 counts_int64: bool, cell_stride: int, pair_stride: int,
                 mask: Optional[np.ndarray], channels: int, channel_inner: int) -> None: ...

def tensor_classify_f32(x: np.ndarray, shape: Sequence[int], threshold: float,
                        result: ResultSpec, /) -> None: ...
def tensor_classify_f64(x: np.ndarray, shape: Sequence[int], threshold: float,
                        result: ResultSpec, /) -> None: ...
def multiply_classify_f32(x: np.ndarray, y: np.ndarray, shape: Sequence[int], x_threshold: float,
                          y_threshold: float, result: ResultSpec, /) -> None: ...
def multiply_classify_f64(x: np.ndarray, y: np.ndarray, shape: Sequence[int], x_threshold: float,
                          y_threshold: float, result: ResultSpec, /) -> None: ...

# dims: (batches, n, k, m); strides: (x row, x col, y row, y col) in elements; the offsets are
# int64 arrays of one element offset per batch entry.
def matmul_classify_f32(x: np.ndarray, y: np.ndarray, x_offsets: np.ndarray, y_offsets: np.ndarray,
                        dims: Sequence[int], strides: Sequence[int], x_threshold: float,
                        y_threshold: float, result: ResultSpec, /) -> None: ...
def matmul_classify_f64(x: np.ndarray, y: np.ndarray, x_offsets: np.ndarray, y_offsets: np.ndarray,
                        dims: Sequence[int], strides: Sequence[int], x_threshold: float,
                        y_threshold: float, result: ResultSpec, /) -> None: ...

# Convolutions (csrc/bindings/cpu_conv.cpp): operands C-contiguous in the kernels' layout;
# `geometry` is ConvGeometry.kernel_args() (ops/conv_geometry.py).
def conv_classify_f32(x: np.ndarray, kernel: np.ndarray, geometry: Sequence[int],
                      x_threshold: float, kernel_threshold: float, result: ResultSpec,
                      /) -> None: ...
def conv_classify_f64(x: np.ndarray, kernel: np.ndarray, geometry: Sequence[int],
                      x_threshold: float, kernel_threshold: float, result: ResultSpec,
                      /) -> None: ...
def conv_backprop_filter_classify_f32(x: np.ndarray, d_out: np.ndarray, geometry: Sequence[int],
                                      x_threshold: float, d_out_threshold: float,
                                      result: ResultSpec, /) -> None: ...
def conv_backprop_filter_classify_f64(x: np.ndarray, d_out: np.ndarray, geometry: Sequence[int],
                                      x_threshold: float, d_out_threshold: float,
                                      result: ResultSpec, /) -> None: ...
def conv_backprop_input_classify_f32(d_out: np.ndarray, kernel: np.ndarray,
                                     geometry: Sequence[int], d_out_threshold: float,
                                     kernel_threshold: float, result: ResultSpec, /) -> None: ...
def conv_backprop_input_classify_f64(d_out: np.ndarray, kernel: np.ndarray,
                                     geometry: Sequence[int], d_out_threshold: float,
                                     kernel_threshold: float, result: ResultSpec, /) -> None: ...

# Analysis helpers (csrc/bindings/cpu_analysis.cpp), called by nearzero.analysis: class planes
# of shape (terms, cells). filter_classifications returns the kept (counts, sums, names);
# group_cells returns the selected cells' (counts, sums) planes group after group, each group's
# size and first cell, or None where a term name is unknown or a placeholder holds a count.
def filter_classifications(counts: np.ndarray, sums: np.ndarray, names: np.ndarray,
                           completeness: float, /) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def group_cells(counts: np.ndarray, sums: np.ndarray, names: Optional[np.ndarray],
                digit_table: np.ndarray, mask: Optional[np.ndarray], /
                ) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]: ...

# Per-step history statistics (csrc/bindings/cpu_statistics.cpp), called by
# nearzero/report/tensor_statistics.py with a live CPU tensor's address, dtype code (0 float32,
# 1 float64, 2 float16, 3 bfloat16), shape and element strides: writes squared norm, units
# alive, units, finite and near-zero counts (NaN unless tolerance >= 0) to out[offset:offset+5].
def tensor_statistics(address: int, dtype: int, shape: Sequence[int], strides: Sequence[int],
                      unit_dim: int, tolerance: float, out: np.ndarray, offset: int,
                      /) -> None: ...
# The same for many tensors in one call: entries of (address, dtype, shape, strides, unit_dim,
# tolerance, offset), all checked before any is read.
def tensor_statistics_batch(entries: Sequence[tuple[int, int, Sequence[int], Sequence[int], int,
                                                    float, int]], out: np.ndarray, /) -> None: ...
# The dtype objects of codes 0-3 and the strided layout, by which tensor_statistics_tensors
# recognises a torch tensor it reads as it is (given once, at import of tensor_statistics.py).
def tensor_statistics_types(dtypes: Sequence[object], strided: object, /) -> None: ...
# tensor_statistics_batch for a list of (torch tensor, unit_dim, offset, tolerance) tuples, each
# tensor's address, dtype, shape and strides read from its attributes; False, with nothing
# written, where some tensor is not a strided CPU tensor of those dtypes with a dimension and
# no negative bit.
def tensor_statistics_tensors(entries: list[tuple[object, int, int, float]], out: np.ndarray,
                              /) -> bool: ...
