"""Runs nearzero's GPU path on the CPU: the emulated `_cuda` module (build_emulated_module.py)
stands in for the real one and chosen CPU torch tensors pass for CUDA tensors, so the Python
dispatch and the kernel sources are exercised end to end on machines without a GPU.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys

import numpy as np


def load_module(path):
    # A name of its own: an already imported real nearzero._cuda would be returned instead.
    spec = importlib.util.spec_from_file_location("nearzero_cuda_emulation._cuda", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EmulatedGPU:
    """Hands out CPU tensors that nearzero treats as tensors on cuda:0, views of them included."""

    def __init__(self):
        import torch

        self.torch = torch
        self._storages = {}  # storage address -> tensor keeping the storage alive

    def put(self, array):
        return self.register(self.torch.from_numpy(np.array(array, copy=True)))

    def register(self, tensor):
        self._storages[tensor.untyped_storage().data_ptr()] = tensor
        return tensor

    def is_fake_cuda(self, x) -> bool:
        return (isinstance(x, self.torch.Tensor) and x.device.type == "cpu"
                and x.untyped_storage().data_ptr() in self._storages)


@contextlib.contextmanager
def emulated_gpu(module_path, monkeypatch):
    """Patch nearzero so that `EmulatedGPU.put` tensors run through the emulated CUDA module."""
    import nearzero
    from nearzero import _arrays, _backend, _cuda_arrays

    module = load_module(module_path)
    gpu = EmulatedGPU()
    monkeypatch.setattr(_backend, "_cuda", module)

    original = _arrays.as_operand

    def as_operand(x, name):
        op = original(x, name)
        if gpu.is_fake_cuda(x):
            op.device = "cuda:0"
        return op

    # Every module that imported as_operand gets the wrapper; import the GPU path first so that
    # none binds the original later.
    importlib.import_module("nearzero.backends.cuda")
    for name, mod in list(sys.modules.items()):
        if (name.startswith("nearzero.") and name != "nearzero._arrays" and mod is not None
                and getattr(mod, "as_operand", None) is original):
            monkeypatch.setattr(mod, "as_operand", as_operand)

    def torch_init(self, device):
        _cuda_arrays.DeviceArrays.__init__(self, device)
        self.torch = gpu.torch
        self.where = gpu.torch.device("cpu")

    monkeypatch.setattr(_cuda_arrays.TorchArrays, "__init__", torch_init)
    monkeypatch.setattr(_cuda_arrays.TorchArrays, "stream", lambda self: 0)
    monkeypatch.setattr(_cuda_arrays.TorchArrays, "cached_free_bytes", lambda self: 0)
    assert nearzero.build_info()["cuda_built"]
    yield gpu
