"""Device arrays for the GPU path: torch CUDA tensors and CuPy arrays (any other
``__cuda_array_interface__`` object is viewed through CuPy). Gives pointers, element strides and
the caller's current stream, converts dtypes and allocates results with the input's own library,
all on the device: nothing here copies data through the host.
"""

from __future__ import annotations

import sys

import numpy as np

from ._arrays import Operand

__all__ = ["DeviceArrays", "device_arrays", "device_value", "device_index"]


def _cupy():
    try:
        import cupy
    except ImportError:
        raise TypeError(
            "this CUDA array is neither a torch tensor nor a CuPy array; install CuPy to pass "
            "other __cuda_array_interface__ objects to nearzero"
        ) from None
    return cupy


def device_index(op: Operand) -> int:
    return int(op.device.split(":")[1]) if ":" in op.device else 0


class DeviceArrays:
    """What the GPU path needs from one array library on one device."""

    def __init__(self, device: int):
        self.device = device

    def stream(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError


class TorchArrays(DeviceArrays):
    def __init__(self, device: int):
        super().__init__(device)
        self.torch = sys.modules["torch"]
        self.where = self.torch.device("cuda", device)

    def _dtype(self, dtype):
        return {np.dtype(np.float32): self.torch.float32, np.dtype(np.float64): self.torch.float64,
                np.dtype(np.int32): self.torch.int32, np.dtype(np.int64): self.torch.int64,
                np.dtype(np.uint8): self.torch.uint8}[np.dtype(dtype)]

    def stream(self) -> int:
        return int(self.torch.cuda.current_stream(self.where).cuda_stream)

    def empty(self, shape, dtype):
        return self.torch.empty(tuple(shape), dtype=self._dtype(dtype), device=self.where)

    def zeros(self, shape, dtype):
        return self.torch.zeros(tuple(shape), dtype=self._dtype(dtype), device=self.where)

    def upload(self, host: np.ndarray):
        """A small host array (batch offsets) as a device array; the copy is stream-ordered."""
        return self.torch.from_numpy(np.array(host, copy=True)).to(self.where)

    def astype(self, a, dtype):
        return a.to(self._dtype(dtype))

    def contiguous(self, a):
        return a.contiguous()

    def reshape(self, a, shape):
        return a.reshape(tuple(shape))

    def transpose(self, a, axes):
        return a.permute(*axes)

    def move_first_axis_last(self, a):
        return a.movedim(0, -1)

    def pointer(self, a) -> int:
        return int(a.data_ptr())

    def strides(self, a) -> tuple:
        return tuple(int(s) for s in a.stride())

    def cached_free_bytes(self) -> int:
        """Memory torch's caching allocator holds but does not use (reusable for results)."""
        return int(self.torch.cuda.memory_reserved(self.where)
                   - self.torch.cuda.memory_allocated(self.where))


class CupyArrays(DeviceArrays):
    def __init__(self, device: int):
        super().__init__(device)
        self.cupy = _cupy()

    def _on_device(self):
        return self.cupy.cuda.Device(self.device)

    def stream(self) -> int:
        with self._on_device():
            return int(self.cupy.cuda.get_current_stream().ptr)

    def empty(self, shape, dtype):
        with self._on_device():
            return self.cupy.empty(tuple(shape), dtype=dtype)

    def zeros(self, shape, dtype):
        with self._on_device():
            return self.cupy.zeros(tuple(shape), dtype=dtype)

    def upload(self, host: np.ndarray):
        with self._on_device():
            return self.cupy.asarray(np.ascontiguousarray(host))

    def astype(self, a, dtype):
        with self._on_device():
            return a.astype(dtype, copy=False)

    def contiguous(self, a):
        with self._on_device():
            return self.cupy.ascontiguousarray(a)

    def reshape(self, a, shape):
        with self._on_device():
            return a.reshape(tuple(shape))

    def transpose(self, a, axes):
        return a.transpose(tuple(axes))

    def move_first_axis_last(self, a):
        return self.cupy.moveaxis(a, 0, -1)

    def pointer(self, a) -> int:
        return int(a.data.ptr)

    def strides(self, a) -> tuple:
        return tuple(int(s) // a.itemsize for s in a.strides)

    def cached_free_bytes(self) -> int:
        return int(self.cupy.get_default_memory_pool().free_bytes())


def device_arrays(op: Operand) -> DeviceArrays:
    """The library that computes on (and allocates results for) a CUDA operand."""
    if op.kind == "torch":
        return TorchArrays(device_index(op))
    return CupyArrays(device_index(op))


def device_value(op: Operand):
    """The operand as an array of its library (a CuPy view for other CUDA arrays)."""
    if op.kind == "torch":
        value = op.value.detach()
        return value.resolve_neg() if value.is_neg() else value
    if op.kind == "cupy":
        return op.value
    with _cupy().cuda.Device(device_index(op)):
        return _cupy().asarray(op.value)
