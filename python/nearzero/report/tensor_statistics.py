"""One pass of the C++ core over a CPU tensor, in place, for the per-step history: the squared
L2 norm, the units (slices along one dimension) holding a non-zero value and, for weight
gradients, the finite values and those near zero. On a CPU this replaces the several torch
reductions per tensor (each a full pass with its own fixed cost) that the device path queues.
"""

from __future__ import annotations

import torch

from .. import _core

# What `write` leaves at out[offset:offset + VALUES].
VALUES = ("squared_norm", "units_alive", "units", "finite", "near_zero")
_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}


def write(tensor: torch.Tensor, unit_dim: int, out, offset: int, tolerance: float = -1.0) -> None:
    """Statistics of `tensor` (any strides) into the float64 NumPy array `out` at `offset`:
    `unit_dim` -1 for none; `tolerance` >= 0 also counts finite and near-zero values (units
    whose values are all finite give the mean magnitude; the units are then `unit_dim`)."""
    tensor, code = _kernel_input(tensor)
    _core.tensor_statistics(tensor.data_ptr(), code, tensor.shape, tensor.stride(), unit_dim,
                            tolerance, out, offset)


def write_batch(entries, out) -> None:
    """`write` for every (tensor, unit_dim, offset, tolerance) of `entries`, in one call of the
    C++ core (its fixed cost, paid once, is most of the time for small tensors)."""
    keep = []  # copies made here live until the core has read them
    _core.tensor_statistics_batch([_arguments(*entry, keep) for entry in entries], out)


def write_tensors(entries: list, out) -> None:
    """`write_batch` for a list of (tensor, unit_dim, offset, tolerance) tuples, the tensors'
    addresses, shapes and strides read by the core itself where it reads every tensor as it
    is (the history's usual case: fewer Python calls on every step)."""
    if not _core.tensor_statistics_tensors(entries, out):
        write_batch(entries, out)


def _arguments(tensor: torch.Tensor, unit_dim: int, offset: int, tolerance: float, keep: list):
    """The core's arguments for `write` of one tensor; a copy made to read it goes to `keep`,
    which must live until the core has read it."""
    tensor, code = _kernel_input(tensor)
    keep.append(tensor)
    return tensor.data_ptr(), code, tensor.shape, tensor.stride(), unit_dim, tolerance, offset


# The core recognises a tensor it reads as it is by these, in dtype code order.
_core.tensor_statistics_types(sorted(_CODES, key=_CODES.get), torch.strided)


def _kernel_input(tensor: torch.Tensor):
    """The tensor the kernel reads in place (at least one dimension) and its dtype code."""
    code = _CODES.get(tensor.dtype)
    if code is None or not tensor.is_cpu or tensor.layout is not torch.strided or (
            tensor.is_neg() or tensor.is_conj()):
        tensor = _readable(tensor)
        code = _CODES[tensor.dtype]
    return (tensor.reshape(1) if tensor.dim() == 0 else tensor), code


def _readable(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU strided copy in a dtype the kernel reads (a device tensor: one transfer)."""
    tensor = tensor.detach()
    if tensor.layout is not torch.strided:
        tensor = tensor.to_dense()
    tensor = tensor.resolve_neg().resolve_conj()
    if tensor.dtype not in _CODES:
        if tensor.is_complex():
            raise TypeError("the history takes real tensors; got a complex one")
        tensor = tensor.double()
    return tensor.cpu()
