"""Where a classify op runs: one `Backend` per device kind, picked once per call from the
inputs' device (`backend_for`). Everything device-specific (reading the inputs, counting their
NaNs, selecting order statistics for a threshold, allocating the result and calling the
kernels) lives behind that interface; the ops and the thresholds never branch on the device.
"""

from __future__ import annotations

from .base import Backend
from .cpu import CPU
from .cuda import CUDA

__all__ = ["Backend", "CPU", "CUDA", "backend_for"]


def backend_for(device: str) -> Backend:
    """The backend of one device name ("cpu" or "cuda:<index>", as `Operand.device`)."""
    return CPU if device == "cpu" else CUDA
