# Type stub of the private CUDA extension `nearzero._cuda` (csrc/bindings/cuda_*.cpp), built
# when the build finds nvcc. Python callers go through nearzero.ops (backends/cuda.py).
# Device memory is passed as integer addresses (`x`, `y`, `counts`, ...; 0 for none) and the
# CUDA stream as its integer handle. tests/test_stubs.py checks these signatures against the
# module built from the same binding sources.
from typing import Sequence

# Where a classify kernel puts its counts and sums: the class `_core.ResultSpec` describes
# (csrc/bindings/result_spec.h), with device addresses for the buffers and the mask (0: none);
# built by nearzero/backends/cuda_results.py.
class ResultSpec:
    def __init__(self, mode: int, pairs: int, counts: int, sums: int, counts_int64: bool,
                 cell_stride: int, pair_stride: int, mask: int, channels: int,
                 channel_inner: int) -> None: ...

runtime_version: str  # the statically linked CUDA runtime, e.g. '13.0.88'
architectures: str  # CMAKE_CUDA_ARCHITECTURES of the build, comma-separated
threshold_workspace_size: int  # int64 entries of the `workspace` the scans need
elementwise_max_dims: int  # dimensions the elementwise kernels take after merging

def device_count() -> int: ...
def memory_info(device: int) -> tuple[int, int]: ...  # (free bytes, total bytes)

# Flat scans over n contiguous values; both wait on the stream before returning.
def count_nonfinite_f32(device: int, x: int, n: int, workspace: int,
                        stream: int) -> tuple[int, int]: ...  # (NaN count, inf count)
def count_nonfinite_f64(device: int, x: int, n: int, workspace: int,
                        stream: int) -> tuple[int, int]: ...
# (low, high, count of non-NaN, NaN count) order statistics of |x| for the midpoint percentile.
def abs_order_statistics_f32(device: int, x: int, n: int, fraction: float, scratch: int,
                             scratch_capacity: int, workspace: int,
                             stream: int) -> tuple[float, float, int, int]: ...
def abs_order_statistics_f64(device: int, x: int, n: int, fraction: float, scratch: int,
                             scratch_capacity: int, workspace: int,
                             stream: int) -> tuple[float, float, int, int]: ...

def tensor_classify_f32(device: int, x: int, shape: Sequence[int], strides: Sequence[int],
                        threshold: float, result: ResultSpec, stream: int) -> None: ...
def tensor_classify_f64(device: int, x: int, shape: Sequence[int], strides: Sequence[int],
                        threshold: float, result: ResultSpec, stream: int) -> None: ...
def multiply_classify_f32(device: int, x: int, y: int, shape: Sequence[int],
                          x_strides: Sequence[int], y_strides: Sequence[int], x_threshold: float,
                          y_threshold: float, result: ResultSpec, stream: int) -> None: ...
def multiply_classify_f64(device: int, x: int, y: int, shape: Sequence[int],
                          x_strides: Sequence[int], y_strides: Sequence[int], x_threshold: float,
                          y_threshold: float, result: ResultSpec, stream: int) -> None: ...

# dims: (batches, n, k, m); strides: (x row, x col, y row, y col) in elements; the offsets are
# device int64 arrays of one element offset per batch entry; scratch holds scratch_doubles
# doubles, as matmul_scratch_doubles_* says (0: pass scratch=0).
def matmul_scratch_doubles_f32(device: int, k: int, has_infinity: bool) -> int: ...
def matmul_scratch_doubles_f64(device: int, k: int, has_infinity: bool) -> int: ...
def matmul_classify_f32(device: int, x: int, y: int, x_offsets: int, y_offsets: int,
                        dims: Sequence[int], strides: Sequence[int], x_threshold: float,
                        y_threshold: float, has_infinity: bool, scratch: int,
                        scratch_doubles: int, result: ResultSpec, stream: int) -> None: ...
def matmul_classify_f64(device: int, x: int, y: int, x_offsets: int, y_offsets: int,
                        dims: Sequence[int], strides: Sequence[int], x_threshold: float,
                        y_threshold: float, has_infinity: bool, scratch: int,
                        scratch_doubles: int, result: ResultSpec, stream: int) -> None: ...

# Convolutions, one binding per op as in `_core`: forward (x, kernel), kernel gradient
# (x, d_out), input gradient (d_out, kernel); `geometry` is ConvGeometry.kernel_args()
# (ops/conv_geometry.py); each op's *_scratch_doubles_* says how many doubles of scratch it needs.
def conv_scratch_doubles_f32(device: int, geometry: Sequence[int], has_infinity: bool) -> int: ...
def conv_scratch_doubles_f64(device: int, geometry: Sequence[int], has_infinity: bool) -> int: ...
def conv_classify_f32(device: int, geometry: Sequence[int], x: int, kernel: int,
                      x_threshold: float, kernel_threshold: float, has_infinity: bool,
                      scratch: int, scratch_doubles: int, result: ResultSpec,
                      stream: int) -> None: ...
def conv_classify_f64(device: int, geometry: Sequence[int], x: int, kernel: int,
                      x_threshold: float, kernel_threshold: float, has_infinity: bool,
                      scratch: int, scratch_doubles: int, result: ResultSpec,
                      stream: int) -> None: ...
def conv_backprop_filter_scratch_doubles_f32(device: int, geometry: Sequence[int],
                                             has_infinity: bool) -> int: ...
def conv_backprop_filter_scratch_doubles_f64(device: int, geometry: Sequence[int],
                                             has_infinity: bool) -> int: ...
def conv_backprop_filter_classify_f32(device: int, geometry: Sequence[int], x: int, d_out: int,
                                      x_threshold: float, d_out_threshold: float,
                                      has_infinity: bool, scratch: int, scratch_doubles: int,
                                      result: ResultSpec, stream: int) -> None: ...
def conv_backprop_filter_classify_f64(device: int, geometry: Sequence[int], x: int, d_out: int,
                                      x_threshold: float, d_out_threshold: float,
                                      has_infinity: bool, scratch: int, scratch_doubles: int,
                                      result: ResultSpec, stream: int) -> None: ...
def conv_backprop_input_scratch_doubles_f32(device: int, geometry: Sequence[int],
                                            has_infinity: bool) -> int: ...
def conv_backprop_input_scratch_doubles_f64(device: int, geometry: Sequence[int],
                                            has_infinity: bool) -> int: ...
def conv_backprop_input_classify_f32(device: int, geometry: Sequence[int], d_out: int,
                                     kernel: int, d_out_threshold: float,
                                     kernel_threshold: float, has_infinity: bool, scratch: int,
                                     scratch_doubles: int, result: ResultSpec,
                                     stream: int) -> None: ...
def conv_backprop_input_classify_f64(device: int, geometry: Sequence[int], d_out: int,
                                     kernel: int, d_out_threshold: float,
                                     kernel_threshold: float, has_infinity: bool, scratch: int,
                                     scratch_doubles: int, result: ResultSpec,
                                     stream: int) -> None: ...
