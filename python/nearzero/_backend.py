"""Loads the compiled modules and reports how the package was built.

`_core` (CPU kernels) is always built; `_cuda` only when the build found nvcc. A missing CUDA
module becomes an actionable error when a GPU array reaches an op, never at import time.
"""

from __future__ import annotations

from . import _core

try:  # the CUDA module is optional
    from . import _cuda
except ImportError:  # pragma: no cover - depends on the build machine
    _cuda = None

__all__ = ["build_info", "cuda_module", "core"]

core = _core


def cuda_module():
    """Return the CUDA extension module, or raise a RuntimeError saying how to get one."""
    if _cuda is None:
        raise RuntimeError(
            "this nearzero build has no CUDA module, so it cannot classify GPU arrays; "
            "reinstall on a machine with nvcc (NEARZERO_CUDA=ON pip install nearzero) "
            "or move the inputs to the CPU"
        )
    return _cuda


def build_info() -> dict:
    """How this installation was built: version, OpenMP, CPU levels, CUDA module and GPUs.

    `cpu` holds the CPU levels whose kernels the build holds (`built`, lowest first), those
    this CPU can run (`supported`) and the one in use (`selected`: the best supported one, or
    the level that the environment variable NEARZERO_CPU_ISA names). `cuda_runtime` is the
    version of the CUDA runtime linked (statically) into the CUDA module, None without one.
    """
    architectures = []
    devices = 0
    runtime = None
    if _cuda is not None:
        architectures = [a for a in str(_cuda.architectures).split(",") if a]
        devices = int(_cuda.device_count())
        runtime = str(_cuda.runtime_version)
    return {
        "version": str(_core.version),
        "openmp": bool(_core.openmp),
        "cpu_threads": int(_core.max_threads()),
        "cpu": dict(_core.cpu_levels()),
        "cuda_built": _cuda is not None,
        "cuda_architectures": architectures,
        "cuda_devices": devices,
        "cuda_runtime": runtime,
    }
