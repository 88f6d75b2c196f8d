"""Array-type dispatch: NumPy, torch and CuPy (or any __cuda_array_interface__) in, same out.

Every op turns its inputs into `Operand`s, computes on NumPy views (CPU) or device pointers
(CUDA), and wraps results back with `Operand.wrap`. Inputs are never modified.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Operand", "as_operand", "common_device", "compute_dtype", "distinct_view", "to_numpy"]

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


def _check_torch_tensor(x, name: str) -> None:
    """Refuses torch tensors that have no plain strided storage to read."""
    torch = _torch()
    if x.is_nested:
        raise TypeError(f"{name} is a nested tensor, which is not supported; pass its "
                        "components one at a time, or x.to_padded_tensor(0.0)")
    if x.layout != torch.strided:
        raise TypeError(f"{name} has layout {x.layout}, which is not supported; pass "
                        f"{name}.to_dense()")
    functorch = getattr(torch._C, "_functorch", None)
    if functorch is not None and (functorch.is_batchedtensor(x) or
                                  functorch.is_functorch_wrapped_tensor(x)):
        raise TypeError(f"{name} is a tensor inside torch.func (vmap, grad); nearzero ops run "
                        "on plain tensors only: call them outside the transformed function")


def _check_masked(x, name: str) -> None:
    if isinstance(x, np.ma.MaskedArray) and np.ma.getmask(x) is not np.ma.nomask and \
            np.ma.getmask(x).any():
        raise TypeError(
            f"{name} is a masked array with masked values, which nearzero does not read; pass "
            f"{name}.filled(np.nan) with nan_policy='omit' to leave them out of every class, or "
            f"{name}.filled(0) to count them as zeros")


def as_operand(x, name: str) -> Operand:
    """Classify `x` by array library and device; raises TypeError for unsupported inputs."""
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        _check_torch_tensor(x, name)
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
        _check_masked(x, name)
        arr = np.asarray(x)
        if isinstance(arr, np.ma.MaskedArray):
            arr = arr.data
        if arr.dtype == object:
            raise TypeError(f"{name} could not be converted to a numeric array")
        native = arr.dtype.newbyteorder("=") if arr.dtype.byteorder not in "=|" else arr.dtype
        return Operand(arr, "numpy", "cpu", _dtype_name(str(native), arr.dtype.kind),
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


def distinct_view(values: np.ndarray):
    """The elements of `values` each read once: broadcast (stride-0) axes cut to length 1,
    and how many times every element repeats in `values` (the product of those axes)."""
    repeat, index = 1, []
    for size, stride in zip(values.shape, values.strides):
        if stride == 0 and size > 1:
            repeat *= size
            index.append(slice(0, 1))
        else:
            index.append(slice(None))
    return values[tuple(index)], repeat


def to_numpy(op: Operand, dtype: np.dtype | None = None) -> np.ndarray:
    """NumPy view of a CPU operand in `dtype` (float32 for non-float64 by default), native byte
    order, aligned, with strides in whole elements: the input itself where it already is, else
    one contiguous copy of its distinct elements (broadcast axes stay stride 0)."""
    if op.on_cuda:
        raise ValueError(f"{op.name} is on {op.device}; to_numpy needs a CPU array")
    target = np.dtype(dtype) if dtype is not None else (
        np.dtype(np.float64) if op.dtype == "float64" else np.dtype(np.float32))
    value = op.value
    if op.kind == "torch":
        value = value.detach()
        if value.is_conj():
            value = value.resolve_conj()
        if value.is_neg():
            value = value.resolve_neg()
        if op.dtype == "bfloat16":
            value = value.float()
        value = value.numpy()
    value = np.asarray(value)
    usable = (value.dtype == target and value.flags.aligned and
              all(s % value.itemsize == 0 for n, s in zip(value.shape, value.strides) if n > 1))
    if usable:
        return value
    distinct, repeat = distinct_view(value)
    converted = np.array(distinct, dtype=target, order="C", copy=True)  # fresh strides
    return np.broadcast_to(converted, value.shape) if repeat > 1 else converted
