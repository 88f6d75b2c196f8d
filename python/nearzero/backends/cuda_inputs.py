"""Inputs of the CUDA backend: each operand as a device array in a kernel dtype, its NaN and inf
counts, and a flat dense view for the scans. A `DeviceInput` lives for one op call, so each
input is converted and scanned at most once per call.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .._arrays import Operand
from .._cuda_arrays import DeviceArrays, device_arrays, device_value
from .results import by_dtype

__all__ = ["DeviceInput", "natural_dtype"]


def natural_dtype(op: Operand) -> np.dtype:
    """The kernel dtype of one input on its own: float64 stays, everything else is float32."""
    return np.dtype(np.float64 if op.dtype == "float64" else np.float32)


def _is_dense(shape, strides) -> bool:
    """True when the elements fill one contiguous block in some axis order (no gaps, no
    overlaps, no negative strides): then the flat memory holds exactly the element set."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(strides, shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


class DeviceInput:
    """One CUDA operand of one op call, with its conversions and scans kept once made."""

    def __init__(self, op: Operand):
        self.op = op
        self.arrays: DeviceArrays = device_arrays(op)
        self._views = {}
        self._flat = {}
        self._nonfinite = None

    @property
    def shape(self) -> tuple:
        return tuple(self.op.shape)

    def view(self, dtype) -> object:
        """The operand converted on the device to float32/float64 (no copy when it already is)."""
        key = np.dtype(dtype).str
        if key not in self._views:
            self._views[key] = self.arrays.astype(device_value(self.op), np.dtype(dtype))
        return self._views[key]

    def flat(self, dtype):
        """(array kept alive, pointer, element count) of the values as one flat block. Order
        does not matter to the scans, so transposed inputs are read in place; others are copied
        to a contiguous array on the device."""
        key = np.dtype(dtype).str
        if key not in self._flat:
            view = self.view(dtype)
            if not _is_dense(self.shape, self.arrays.strides(view)):
                view = self.arrays.contiguous(view)
            self._flat[key] = (view, self.arrays.pointer(view),
                               int(np.prod(self.shape, dtype=np.int64)))
        return self._flat[key]

    def nonfinite_counts(self) -> tuple:
        """(NaN count, inf count), counted on the device in one pass."""
        if self._nonfinite is None:
            if self.op.dtype in ("int", "bool"):
                self._nonfinite = (0, 0)
            else:
                dtype = natural_dtype(self.op)
                _, pointer, n = self.flat(dtype)
                workspace = self.arrays.empty((2,), np.int64)
                module = _backend.cuda_module()
                count = by_dtype(dtype, module.count_nonfinite_f32, module.count_nonfinite_f64)
                self._nonfinite = tuple(count(self.arrays.device, pointer, n,
                                              self.arrays.pointer(workspace),
                                              self.arrays.stream()))
        return self._nonfinite
