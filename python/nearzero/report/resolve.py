"""A step's capture after the backward pass: the tensors kept from the forward pass (copied or
recomputed where they were overwritten), the gradients the hooks received, and S_l and A_l at
the activation's input, made with autograd now that no forward hook is running."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .activations import Activation, derivative_of_function, derivative_of_module
from .chain import Kept


def resolve_kept(record) -> None:
    """After backward: the kept forward tensors and the gradients the hooks received."""
    if isinstance(record.a0, Kept):
        record.a0 = record.a0.get()
    if isinstance(record.z, Kept):
        kept_x = record.x is record.z
        z = record.z.get()
        record.z = z if z is not None else _recomputed_z(record)
        if kept_x:
            record.x = record.z
    if record.z_holder is not None:
        record.d_z = record.z_holder.grad
        record.z_holder = None
    if isinstance(record.x, Kept):
        record.x = record.x.get()
    if record.pending_activation is None or record.x is None or record.z is None:
        record.x, record.pending_activation = None, None


def resolve_activation(record) -> None:
    """S_l and A_l at the activation's input, and the gradients of both ends."""
    if record.pending_activation is None:
        return
    source, input_holder, output_holder = record.pending_activation
    record.pending_activation = None
    x = record.x.reshape(record.z.shape)
    if isinstance(source, nn.Module):
        found = derivative_of_module(source, x, with_output=True)
        if found is None:  # not elementwise after all
            record.consumer, record.x = type(source).__name__, None
            return
        s, a = found
        activation = Activation(type(source).__name__, "module", path=list(record.path))
    else:
        name, function = source
        s, a = derivative_of_function(function, x, with_output=True)
        note = f"the activation is applied as a function ({name}); S_l is its exact derivative"
        activation = Activation(name, "function", note, path=list(record.path))
    record.x, record.s, record.a = x, s, a
    record.activation = activation
    record.d_a = output_holder.grad
    grad = None if input_holder is None else input_holder.grad
    record.d_x = None if grad is None else grad.reshape(record.z.shape)


def _recomputed_z(record):
    """Z_l from A_0 and the captured weights, when an in-place function overwrote it."""
    if record.a0 is None or record.weight is None:
        return None
    with torch.no_grad():
        module = record.module
        if isinstance(module, nn.Linear):
            return F.linear(record.a0, record.weight, record.bias)
        return module._conv_forward(record.a0, record.weight, record.bias)
