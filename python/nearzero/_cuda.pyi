# Type stub of the private CUDA extension `nearzero._cuda` (csrc/bindings/cuda_*.cpp), built
# when the build finds nvcc. Python callers go through nearzero.ops (backends/cuda.py).
# Device memory is passed as integer addresses (`x`, `y`, `counts`, ...; 0 for none) and the
# CUDA stream as its integer handle. tests/test_stubs.py checks these signatures against the
# module built from the same binding sources.
from typing import Sequence

# The result description: (mode, pairs, counts address, sums address, counts_int64, cell_stride,
# pair_stride, mask address, channels, channel_inner); mode 0 full result, 1 reduce="all",
# 2 reduce="channel"; pairs 9, or 3 for tensor_classify.
OutputSpec = tuple[int, int, int, int, bool, int, int, int, int, int]

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
                        threshold: float, output: OutputSpec, stream: int) -> None: ...
def tensor_classify_f64(device: int, x: int, shape: Sequence[int], strides: Sequence[int],
                        threshold: float, output: OutputSpec, stream: int) -> None: ...
def multiply_classify_f32(device: int, x: int, y: int, shape: Sequence[int],
                          x_strides: Sequence[int], y_strides: Sequence[int], x_threshold: float,
                          y_threshold: float, output: OutputSpec, stream: int) -> None: ...
def multiply_classify_f64(device: int, x: int, y: int, shape: Sequence[int],
                          x_strides: Sequence[int], y_strides: Sequence[int], x_threshold: float,
                          y_threshold: float, output: OutputSpec, stream: int) -> None: ...

# dims: (batches, n, k, m); strides: (x row, x col, y row, y col) in elements; the offsets are
# device int64 arrays of one element offset per batch entry; scratch holds scratch_doubles
# doubles, as matmul_scratch_doubles_* says (0: pass scratch=0).
def matmul_scratch_doubles_f32(device: int, k: int, has_infinity: bool) -> int: ...
def matmul_scratch_doubles_f64(device: int, k: int, has_infinity: bool) -> int: ...
def matmul_classify_f32(device: int, x: int, y: int, x_offsets: int, y_offsets: int,
                        dims: Sequence[int], strides: Sequence[int], x_threshold: float,
                        y_threshold: float, has_infinity: bool, scratch: int,
                        scratch_doubles: int, output: OutputSpec, stream: int) -> None: ...
def matmul_classify_f64(device: int, x: int, y: int, x_offsets: int, y_offsets: int,
                        dims: Sequence[int], strides: Sequence[int], x_threshold: float,
                        y_threshold: float, has_infinity: bool, scratch: int,
                        scratch_doubles: int, output: OutputSpec, stream: int) -> None: ...

# op: 0 forward (inputs, kernel), 1 kernel gradient (x, d_out), 2 input gradient (d_out, kernel);
# `geometry` is ConvGeometry.kernel_args() (ops/conv_geometry.py).
def conv_scratch_doubles_f32(device: int, op: int, geometry: Sequence[int],
                             has_infinity: bool) -> int: ...
def conv_scratch_doubles_f64(device: int, op: int, geometry: Sequence[int],
                             has_infinity: bool) -> int: ...
def conv_classify_f32(device: int, op: int, geometry: Sequence[int], first: int, second: int,
                      first_threshold: float, second_threshold: float, has_infinity: bool,
                      scratch: int, scratch_doubles: int, output: OutputSpec,
                      stream: int) -> None: ...
def conv_classify_f64(device: int, op: int, geometry: Sequence[int], first: int, second: int,
                      first_threshold: float, second_threshold: float, has_infinity: bool,
                      scratch: int, scratch_doubles: int, output: OutputSpec,
                      stream: int) -> None: ...
