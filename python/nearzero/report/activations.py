"""S_l, the exact elementwise derivative of the activation that follows a layer, computed by
autograd at Z_l: for an activation module, for a function applied in `forward` (read from the
autograd graph), and the fall-backs when neither can be seen (ReLU or identity, with a note).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

KNOWN_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
    nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Threshold, nn.Softshrink, nn.Hardshrink,
)
# Same shape in and out but not a deterministic elementwise function of its input.
NOT_ACTIVATIONS = (
    nn.modules.dropout._DropoutNd, nn.RReLU, nn.Softmax, nn.LogSoftmax, nn.Softmin,
    nn.Softmax2d, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
    nn.LocalResponseNorm, nn.Identity, nn.Flatten, nn.Unflatten,
)


@dataclass
class Activation:
    """What S_l is and where it came from; `note` is shown in the report when not None."""

    name: str
    source: str  # "module", "function", "assumed_relu" or "identity"
    note: str = None
    path: list = field(default_factory=list)  # modules and ops between Z_l and the activation


def derivative_of_module(module: nn.Module, z: torch.Tensor, *, with_output: bool = False):
    """S_l = d module(Z)/dZ at `z` when `module` is an elementwise activation, else None;
    `with_output`: (S_l, module(Z)).

    Calls ``module.forward`` directly so that no hook fires, on a copy so that in-place
    activations do not touch `z`; parameters (PReLU) get no gradient.
    """
    if isinstance(module, NOT_ACTIVATIONS) or any(True for _ in module.children()):
        return None
    known = isinstance(module, KNOWN_ACTIVATIONS)
    has_state = any(True for _ in module.parameters()) or any(True for _ in module.buffers())
    if not known and has_state:
        return None  # calling it again could have side effects we cannot see
    with torch.enable_grad():
        leaf = z.detach().clone().requires_grad_(True)
        try:
            out = module.forward(leaf.clone())
        except Exception:  # not callable on Z_l alone: not an elementwise activation
            return None
        if not isinstance(out, torch.Tensor) or out.shape != z.shape or not out.requires_grad:
            return None
        (s,) = torch.autograd.grad(out, leaf, torch.ones_like(out), retain_graph=not known)
        if not known and not _is_elementwise(lambda v: torch.autograd.grad(out, leaf, v)[0], s):
            return None
    return (s.detach(), out.detach()) if with_output else s.detach()


def _saved(node, name, default):
    """A scalar argument the autograd node kept (reading it unpacks no saved tensor)."""
    return getattr(node, f"_saved_{name}", default)


# Functional activations recognised from their autograd node: the node's scalar arguments
# rebuild the function, whose derivative is then taken after the backward pass. Reading the
# node's saved tensors instead would unpack them, which gradient checkpointing allows once only.
_FUNCTIONS = {
    "relu": lambda node: torch.relu,
    "leakyrelu": lambda node: partial(F.leaky_relu,
                                      negative_slope=_saved(node, "negative_slope", 0.01)),
    "gelu": lambda node: partial(F.gelu, approximate=_saved(node, "approximate", "none")),
    "silu": lambda node: F.silu,
    "sigmoid": lambda node: torch.sigmoid,
    "tanh": lambda node: torch.tanh,
    "elu": lambda node: partial(torch.ops.aten.elu, alpha=_saved(node, "alpha", 1.0),
                                scale=_saved(node, "scale", 1.0),
                                input_scale=_saved(node, "input_scale", 1.0)),
    "celu": lambda node: partial(F.celu, alpha=_saved(node, "alpha", 1.0)),
    "hardtanh": lambda node: partial(F.hardtanh, min_val=_saved(node, "min_val", -1.0),
                                     max_val=_saved(node, "max_val", 1.0)),
    "softplus": lambda node: partial(F.softplus, beta=_saved(node, "beta", 1.0),
                                     threshold=_saved(node, "threshold", 20.0)),
    "mish": lambda node: F.mish,
    "hardswish": lambda node: F.hardswish,
    "hardsigmoid": lambda node: F.hardsigmoid,
    "logsigmoid": lambda node: F.logsigmoid,
}


def function_of_node(node):
    """The elementwise activation that autograd `node` belongs to, as a callable on tensors,
    or None when the node is not a known elementwise activation."""
    builder = _FUNCTIONS.get(function_name(node)) if node is not None else None
    return builder(node) if builder is not None else None


def derivative_of_function(function, x: torch.Tensor, *, with_output: bool = False):
    """S = d function(X)/dX at `x`, for a known elementwise `function`; `with_output`:
    (S, function(X))."""
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        out = function(leaf)
        (s,) = torch.autograd.grad(out, leaf, torch.ones_like(leaf))
    return (s.detach(), out.detach()) if with_output else s.detach()


def function_name(node) -> str:
    """``ReluBackward0`` -> ``relu``: a readable name for a functional activation."""
    name = type(node).__name__
    for suffix in ("Backward0", "Backward1", "Backward"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.lower()


def assumed_activation(z: torch.Tensor, dJdZ: torch.Tensor):
    """When no activation could be seen after the layer: ReLU if the gradient is exactly zero
    wherever Z_l < 0 (what a ReLU does), else identity. Returns (S_l, A_l, dJ/dA_l, Activation);
    where ReLU blocks the gradient dJ/dA_l is unknown and set to NaN (left out of every class).
    """
    from . import distributed as dist  # every process must make the same choice

    negative = z < 0
    relu_like = (dist.global_count(negative) > 0
                 and dist.global_count(negative & (dJdZ != 0)) == 0)
    if relu_like:
        s = (z > 0).to(z.dtype)
        d_a = torch.where(s > 0, dJdZ, torch.full_like(dJdZ, float("nan")))
        note = ("no activation module or traceable function was seen after this layer; dJ/dZ_l "
                "is zero wherever Z_l < 0, so ReLU is assumed: S_l = (Z_l > 0), and dJ/dA_l is "
                "known only where S_l = 1")
        return s, torch.relu(z), d_a, Activation("relu (assumed)", "assumed_relu", note)
    note = ("no activation was seen after this layer (an output layer, or an activation that "
            "is not elementwise); S_l = 1 is assumed, so A_l = Z_l and dJ/dA_l = dJ/dZ_l")
    return torch.ones_like(z), z, dJdZ, Activation("none", "identity", note)


def _is_elementwise(vector_jacobian, s: torch.Tensor) -> bool:
    """An elementwise function's Jacobian is diagonal: vᵀJ = S_l ⊙ v for any v."""
    generator = torch.Generator(device=s.device)
    generator.manual_seed(1234)  # its own generator: the user's random stream is untouched
    v = torch.randn(s.shape, generator=generator, device=s.device, dtype=s.dtype)
    try:
        got = vector_jacobian(v)
    except Exception:
        return False
    if isinstance(got, (tuple, list)):
        got = got[0]
    expected = s * v
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    return bool(torch.allclose(got, expected, rtol=1e-4, atol=1e-6 * max(scale, 1e-30)))
