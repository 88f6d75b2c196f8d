"""The devices GPU tests run on: a real GPU through torch or CuPy when there is one, and the CPU
emulation of the CUDA kernels (tests/cuda_emulation) everywhere else, so the same test bodies
check the GPU path here and on a GPU node. Tests keep sizes small for the emulation."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import nearzero


def real_gpu_reason():
    """Why the real-GPU backends are skipped, or None when a GPU and the CUDA module exist."""
    info = nearzero.build_info()
    if not info["cuda_built"]:
        return "nearzero was built without its CUDA module"
    if info["cuda_devices"] == 0:
        return "no CUDA device is visible"
    return None


class Backend:
    """put: a NumPy array onto the device; get: a result back as NumPy; kind: array library."""

    name = ""

    def put(self, array):
        raise NotImplementedError

    def get(self, value):
        raise NotImplementedError

    def assert_native(self, value):
        """The result is of the inputs' array type and on their device."""


class TorchCuda(Backend):
    name = "torch-cuda"

    def __init__(self):
        import torch

        self.torch = torch

    def put(self, array):
        array = np.asarray(array)
        return self.torch.from_numpy(np.array(array, copy=True)).to("cuda")

    def get(self, value):
        return value.detach().cpu().numpy()

    def assert_native(self, value):
        assert isinstance(value, self.torch.Tensor) and value.device.type == "cuda"


class Cupy(Backend):
    name = "cupy"

    def __init__(self):
        import cupy

        self.cupy = cupy

    def put(self, array):
        return self.cupy.asarray(np.asarray(array))

    def get(self, value):
        return self.cupy.asnumpy(value)

    def assert_native(self, value):
        assert isinstance(value, self.cupy.ndarray)


class Emulated(Backend):
    name = "emulated"

    def __init__(self, gpu):
        self.gpu = gpu

    def put(self, array):
        return self.gpu.put(array)

    def get(self, value):
        return value.detach().numpy()

    def assert_native(self, value):
        assert isinstance(value, self.gpu.torch.Tensor)


_EMULATED_MODULE = None


def emulated_module_path():
    """Build the emulated CUDA module once per session (cached on disk by source hash)."""
    global _EMULATED_MODULE
    if _EMULATED_MODULE is None:
        if shutil.which("g++") is None:
            pytest.skip("the CUDA emulation needs g++")
        try:
            import pybind11  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            pytest.skip("the CUDA emulation needs pybind11 and torch")
        from cuda_emulation.build_emulated_module import build

        cache = Path(os.environ.get("NEARZERO_EMULATION_CACHE",
                                    Path(tempfile.gettempdir()) / "nearzero-cuda-emulation"))
        _EMULATED_MODULE = build(cache)
    return _EMULATED_MODULE


BACKENDS = [
    pytest.param("torch-cuda", marks=pytest.mark.gpu),
    pytest.param("cupy", marks=pytest.mark.gpu),
    pytest.param("emulated", marks=pytest.mark.slow),
]


@pytest.fixture(params=BACKENDS)
def device(request, monkeypatch):
    """One backend per parametrization; real-GPU ones skip (with the reason) where absent."""
    if request.param == "emulated":
        from cuda_emulation.harness import emulated_gpu

        with emulated_gpu(emulated_module_path(), monkeypatch) as gpu:
            yield Emulated(gpu)
        return
    reason = real_gpu_reason()
    if reason:
        pytest.skip(reason)
    if request.param == "cupy":
        pytest.importorskip("cupy", reason="CuPy is not installed")
        yield Cupy()
    else:
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch has no CUDA support here")
        yield TorchCuda()
