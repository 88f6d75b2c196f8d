"""The interface both backends implement (see `backends/__init__.py`)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .._arrays import Operand


class Backend(Protocol):
    """One device kind. `values` is what the other methods take for an operand: a NumPy view
    on the CPU, a per-call record of device arrays on CUDA. Results come back as a
    (counts, sums) pair of arrays of the inputs' library on their device."""

    def values(self, op: Operand, dtype: np.dtype | None = None) -> object:
        """The operand ready for the kernels, in `dtype` (its own kernel dtype by default)."""

    def wrap(self, op: Operand, array) -> object:
        """A result array as the operand's array type."""

    def nan_count(self, op: Operand, values) -> int:
        """NaNs in the operand."""

    def order_statistics(self, op: Operand, values, fraction: float) -> tuple:
        """(low, high, count, nans) of |x| around `fraction` of the sorted finite |x|."""

    def elementwise(self, prepared, shape, pairs: int, reduce, mask, channel_axis: int):
        """`tensor_classify` (pairs=3) or `multiply_classify` (pairs=9) broadcast to `shape`."""

    def matmul(self, prepared, x2, y2, value_shape, reduce, mask):
        """(batch..., n, k) @ (batch..., k, m), np.matmul semantics, x2/y2 from `matrices`."""

    def matrices(self, prepared, free_x=None, ax=None, ay=None, free_y=None) -> tuple:
        """The operands as the (x2, y2) `matmul` takes: matmul's own operands when the axes
        are None, else tensordot's (free_x + ax) x (ay + free_y) matrices."""

    def conv(self, family: str, prepared, geometry, value_shape, channel_axis: int,
             products_per_cell: int, reduce, mask):
        """One convolution family ("forward", "filter_grad", "input_grad")."""
