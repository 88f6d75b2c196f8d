"""How each supported PyTorch layer turns into classify ops: Linear as a matmul, Conv1d/2d/3d as
a convolution in the channels_first layout. Everything else is an unsupported layer type that
gets gradient statistics only.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn import functional as F

from ..ops import conv_backprop_filter_classify, conv_classify, matmul_classify

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
SUPPORTED_TYPES = (nn.Linear,) + CONV_TYPES


def is_supported(module: nn.Module) -> bool:
    return isinstance(module, SUPPORTED_TYPES)


def owns_parameters(module: nn.Module, trainable: bool = False) -> bool:
    """Does the module hold parameters itself (not only through its children)?"""
    return any(p.requires_grad or not trainable for p in module.parameters(recurse=False))


def is_default_layer(module: nn.Module) -> bool:
    """Layers recorded and explained when none are named: every module that owns trainable
    parameters (Linear and Conv fully explained, the others by their gradients)."""
    return owns_parameters(module, trainable=True)


def main_parameter_name(module: nn.Module):
    """The parameter whose gradients are explained: ``weight`` for supported layers, else the
    largest parameter (the original's heuristic for a layer's weights)."""
    params = dict(module.named_parameters(recurse=False))
    if isinstance(module, SUPPORTED_TYPES) or "weight" in params:
        return "weight" if "weight" in params else None
    if not params:
        return None
    return max(params, key=lambda n: params[n].numel())


@dataclass
class LayerMath:
    """The classify ops of one layer. Activation-shaped tensors are used "flat": Linear inputs
    ``(..., features)`` become ``(rows, features)``; conv tensors stay ``(N, C, *spatial)``.
    Weight-shaped results and masks always use PyTorch's weight layout.
    """

    module: nn.Module

    @property
    def is_conv(self) -> bool:
        return isinstance(self.module, CONV_TYPES)

    @property
    def unit_axis(self) -> int:
        """Axis of the units (features or channels) in a flat activation tensor."""
        return 1 if self.is_conv else -1

    @property
    def forward_equation(self) -> str:
        op = "⊛" if self.is_conv else "·"
        bias = " + b_l" if self.module.bias is not None else ""
        return f"Z_l = A_0 {op} W_l{bias}"

    @property
    def weight_grad_equation(self) -> str:
        return ("dJ/dW_l = A_0ᵀ ⊛ dJ/dZ_l (kernel gradient)" if self.is_conv
                else "dJ/dW_l = A_0ᵀ · dJ/dZ_l")

    def flat(self, tensor):
        if tensor is None or self.is_conv:
            return tensor
        return tensor.reshape(-1, tensor.shape[-1])

    def padded_input(self, a0):
        """A_0 with non-zero padding modes (reflect, replicate, circular) applied, so that the
        convolution itself runs unpadded, as PyTorch does."""
        m = self.module
        if self.is_conv and m.padding_mode != "zeros":
            return F.pad(a0, m._reversed_padding_repeated_twice, mode=m.padding_mode)
        return a0

    def conv_arguments(self) -> dict:
        m = self.module
        dims = len(m.kernel_size)
        if m.padding_mode != "zeros":
            padding = [(0, 0)] * dims
        elif isinstance(m.padding, str):
            padding = ([_same_pair(k, d) for k, d in zip(m.kernel_size, m.dilation)]
                       if m.padding == "same" else [(0, 0)] * dims)
        else:
            padding = [(int(p), int(p)) for p in m.padding]
        return {"strides": list(m.stride), "padding": padding, "data_format": "channels_first",
                "dilations": list(m.dilation), "groups": m.groups}

    def forward_classify(self, a0, weight, thresholds, *, reduce=None, mask=None,
                         nan_policy="omit"):
        """Classification of Z_l - b_l (value shape: flat Z_l), first input A_0, second W_l."""
        if self.is_conv:
            args = self.conv_arguments()
            return conv_classify(self.padded_input(a0), weight, args.pop("strides"),
                                 args.pop("padding"), thresholds=thresholds, reduce=reduce,
                                 mask=mask, nan_policy=nan_policy, **args)
        return matmul_classify(self.flat(a0), weight.t(), thresholds=thresholds, reduce=reduce,
                               mask=mask, nan_policy=nan_policy)

    def weight_grad_classify(self, a0, second, thresholds, *, reduce=None, mask=None,
                             nan_policy="omit"):
        """Classification of the weight gradient A_0ᵀ · `second` (second = dJ/dZ_l, or S_l or
        dJ/dA_l to ask which factor is near zero). Full results come back in weight layout;
        `mask` is weight-shaped."""
        if self.is_conv:
            args = self.conv_arguments()
            return conv_backprop_filter_classify(
                self.padded_input(a0), second, tuple(self.module.weight.shape),
                args.pop("strides"), args.pop("padding"), thresholds=thresholds, reduce=reduce,
                mask=mask, nan_policy=nan_policy, **args)
        mask_t = None if mask is None else mask.t()
        counts, sums = matmul_classify(self.flat(a0).t(), self.flat(second), thresholds=thresholds,
                                       reduce=reduce, mask=mask_t, nan_policy=nan_policy)
        if reduce is None:
            counts, sums = counts.transpose(0, 1), sums.transpose(0, 1)
        return counts, sums

    def describe(self) -> str:
        return _module_summary(self.module)


def _same_pair(kernel, dilation):
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _module_summary(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def units_of(module: nn.Module):
    """Units of a layer (output features or channels), or None when unknown."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, CONV_TYPES):
        return module.out_channels
    return None
