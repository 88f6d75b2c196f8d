"""Inputs of the GPU path: each CUDA operand as a device array in a kernel dtype, its NaN and inf
counts, and a flat dense view for the scans. Results are cached on the operand so that one op
call converts and scans each input at most once.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .._arrays import Operand
from .._cuda_arrays import DeviceArrays, device_arrays, device_value

__all__ = ["kernel_view", "natural_dtype", "nonfinite_counts", "flat_dense", "suffix"]


def suffix(dtype) -> str:
    return "f64" if np.dtype(dtype) == np.float64 else "f32"


def natural_dtype(op: Operand) -> np.dtype:
    """The kernel dtype of one input on its own: float64 stays, everything else is float32."""
    return np.dtype(np.float64 if op.dtype == "float64" else np.float32)


def _cache(op: Operand) -> dict:
    cache = op.__dict__.get("_nearzero_cuda")
    if cache is None:
        cache = op.__dict__["_nearzero_cuda"] = {}
    return cache


def arrays_of(op: Operand) -> DeviceArrays:
    cache = _cache(op)
    if "arrays" not in cache:
        cache["arrays"] = device_arrays(op)
    return cache["arrays"]


def kernel_view(op: Operand, dtype) -> object:
    """The operand converted on the device to float32/float64 (no copy when it already is)."""
    dtype = np.dtype(dtype)
    cache = _cache(op)
    key = ("view", dtype.str)
    if key not in cache:
        cache[key] = arrays_of(op).astype(device_value(op), dtype)
    return cache[key]


def _is_dense(shape, strides) -> bool:
    """True when the elements fill one contiguous block in some axis order (no gaps, no
    overlaps, no negative strides): then the flat memory holds exactly the element set."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(strides, shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def flat_dense(op: Operand, dtype):
    """(array kept alive, pointer, element count) of the operand's values as one flat block.
    Order does not matter to the scans, so transposed inputs are read in place; others are
    copied to a contiguous array on the device."""
    dtype = np.dtype(dtype)
    cache = _cache(op)
    key = ("flat", dtype.str)
    if key not in cache:
        arrays = arrays_of(op)
        view = kernel_view(op, dtype)
        shape = tuple(op.shape)
        if not _is_dense(shape, arrays.strides(view)):
            view = arrays.contiguous(view)
        cache[key] = (view, arrays.pointer(view), int(np.prod(shape, dtype=np.int64)))
    return cache[key]


def nonfinite_counts(op: Operand) -> tuple:
    """(NaN count, inf count) of an operand, counted on the device in one pass."""
    cache = _cache(op)
    if "nonfinite" not in cache:
        if op.dtype in ("int", "bool"):
            cache["nonfinite"] = (0, 0)
        else:
            dtype = natural_dtype(op)
            _, pointer, n = flat_dense(op, dtype)
            arrays = arrays_of(op)
            workspace = arrays.empty((2,), np.int64)
            count = getattr(_backend.cuda_module(), f"count_nonfinite_{suffix(dtype)}")
            cache["nonfinite"] = tuple(count(arrays.device, pointer, n, arrays.pointer(workspace),
                                             arrays.stream()))
    return cache["nonfinite"]
