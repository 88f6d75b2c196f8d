"""GPU path of the classify ops: device pointers and the caller's stream into `nearzero._cuda`.

Reached only for CUDA inputs (torch CUDA tensors, CuPy arrays, __cuda_array_interface__).
"""

from __future__ import annotations

from .. import _backend


def _module():
    return _backend.cuda_module()


def _unsupported(op_name: str):
    _module()
    raise RuntimeError(f"{op_name} on CUDA arrays is not available in this build of nearzero")


def raise_on_nans(op, nan_policy):
    _unsupported("NaN checking")


def abs_order_statistics(op, values, fraction):
    _unsupported("threshold")


def tensor_classify(prepared, buffers, reduce, mask, channel_axis):
    _unsupported("tensor_classify")


def multiply_classify(prepared, shape, buffers, reduce, mask, channel_axis):
    _unsupported("multiply_classify")


def matmul_classify(prepared, value_shape, reduce, mask):
    _unsupported("matmul_classify")


def tensordot_classify(prepared, free_x, ax, ay, free_y, value_shape, reduce, mask):
    _unsupported("tensordot_classify")


# Convolutions: `geometry` is an ops.conv_geometry.ConvGeometry (padding resolved to
# (before, after) per dimension); the value shape is geometry.output_shape,
# geometry.kernel_shape or geometry.input_shape respectively.
def conv_classify(prepared, geometry, reduce, mask):
    _unsupported("conv_classify")


def conv_backprop_filter_classify(prepared, geometry, reduce, mask):
    _unsupported("conv_backprop_filter_classify")


def conv_backprop_input_classify(prepared, geometry, reduce, mask):
    _unsupported("conv_backprop_input_classify")
