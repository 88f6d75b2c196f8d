"""Array-type dispatch: NumPy, torch and CuPy (or any __cuda_array_interface__) in, same out.

Every op turns its inputs into `Operand`s, computes on NumPy views (CPU) or device pointers
(CUDA), and wraps results back with `Operand.wrap`. Inputs are never modified.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Operand", "as_operand", "common_device", "compute_dtype", "to_numpy"]

_FLOAT_KINDS = {"float16", "bfloat16", "float32", "float64"}


def _torch():
    return sys.modules.get("torch")


@dataclass
class Operand:
    """One op input: the original object, its kind, device and dtype name."""

    value: Any
    kind: str  # "numpy", "torch", "cupy", "cuda_array"
    device: str  # "cpu" or "cuda:<index>"
    dtype: str  # "float16", "bfloat16", "float32", "float64", "int", "bool"
    shape: tuple
    name: str

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def wrap(self, array):
        """Wrap a NumPy result as this operand's array type (CUDA results already are)."""
        if self.on_cuda:
            return array
        if self.kind == "torch":
            return _torch().from_numpy(np.ascontiguousarray(array) if array.ndim == 0 else array)
        return array


def _dtype_name(dtype_str: str, kind_char: str) -> str:
    if kind_char == "c" or "complex" in dtype_str:
        raise TypeError(f"complex inputs are not supported (got dtype {dtype_str})")
    if kind_char == "b" or dtype_str == "bool":
        return "bool"
    if kind_char in "iu" or dtype_str.startswith(("int", "uint")):
        return "int"
    if dtype_str in _FLOAT_KINDS:
        return dtype_str
    raise TypeError(f"unsupported dtype {dtype_str}; use a float, integer or bool array")


def as_operand(x, name: str) -> Operand:
    """Classify `x` by array library and device; raises TypeError for unsupported inputs."""
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        dtype = str(x.dtype).replace("torch.", "")
        kind_char = "c" if x.is_complex() else ("b" if x.dtype == torch.bool else "f")
        if not x.is_floating_point() and kind_char == "f":
            kind_char = "i"
        device = "cpu" if x.device.type == "cpu" else f"{x.device.type}:{x.device.index or 0}"
        if x.device.type not in ("cpu", "cuda"):
            raise ValueError(f"{name} is on device {x.device}; only cpu and cuda are supported")
        return Operand(x, "torch", device, _dtype_name(dtype, kind_char), tuple(x.shape), name)
    if hasattr(x, "__cuda_array_interface__"):
        module = type(x).__module__.split(".")[0]
        dtype = np.dtype(x.__cuda_array_interface__["typestr"])
        device_id = getattr(getattr(x, "device", None), "id", 0)
        kind = "cupy" if module == "cupy" else "cuda_array"
        return Operand(x, kind, f"cuda:{device_id}", _dtype_name(str(dtype), dtype.kind),
                       tuple(x.__cuda_array_interface__["shape"]), name)
    if isinstance(x, (list, tuple, int, float, bool, np.generic, np.ndarray)) or hasattr(
        x, "__array__"
    ):
        arr = np.asarray(x)
        if arr.dtype == object:
            raise TypeError(f"{name} could not be converted to a numeric array")
        return Operand(arr, "numpy", "cpu", _dtype_name(str(arr.dtype), arr.dtype.kind),
                       tuple(arr.shape), name)
    raise TypeError(f"{name} must be a NumPy array, torch tensor or CUDA array, got {type(x)!r}")


def compute_dtype(*operands: Operand) -> np.dtype:
    """float64 when any input is float64, otherwise float32 (SPEC §4)."""
    return np.dtype(np.float64 if any(o.dtype == "float64" for o in operands) else np.float32)


def common_device(*operands: Operand) -> str:
    devices = {o.device for o in operands}
    if len(devices) > 1:
        names = ", ".join(f"{o.name} on {o.device}" for o in operands)
        raise ValueError(f"inputs are on different devices ({names}); move them to one device")
    return operands[0].device


def to_numpy(op: Operand, dtype: np.dtype | None = None) -> np.ndarray:
    """NumPy view of a CPU operand, converted to `dtype` (float32 for non-float64 by default)."""
    if op.on_cuda:
        raise ValueError(f"{op.name} is on {op.device}; to_numpy needs a CPU array")
    target = np.dtype(dtype) if dtype is not None else (
        np.dtype(np.float64) if op.dtype == "float64" else np.dtype(np.float32))
    value = op.value
    if op.kind == "torch":
        value = value.detach()
        if value.is_conj():
            value = value.resolve_conj()
        if op.dtype == "bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value).astype(target, copy=False)
