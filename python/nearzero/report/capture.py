"""Capture of one training step: forward hooks that keep, for every target layer, A_0, W_l, b_l,
Z_l and the activation that follows (A_l, S_l), and gradient hooks for dJ/dZ_l and dJ/dA_l.
All tensors of a capture come from one and the same step and stay on their device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .activations import Activation, derivative_of_function, derivative_of_module, function_name

# Autograd nodes of ops that only reshape (element order kept), which may sit between a
# functional activation and the next module: `F.relu(z).flatten(1)`.
_RESHAPE_NODES = ("ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0")
_MAX_RESHAPES = 3


@dataclass
class LayerCapture:
    """The tensors of one layer at one step (None where not captured)."""

    name: str
    module: nn.Module
    step: int
    a0: torch.Tensor = None
    weight: torch.Tensor = None
    bias: torch.Tensor = None
    z: torch.Tensor = None
    a: torch.Tensor = None
    s: torch.Tensor = None
    d_a: torch.Tensor = None  # dJ/dA_l
    d_z: torch.Tensor = None  # dJ/dZ_l
    grads: dict = field(default_factory=dict)  # parameter name -> dJ/dparameter
    activation: Activation = None
    consumer: str = None  # the non-activation module that Z_l fed, if any
    z_node: object = None  # autograd node of Z_l, to recognise a function applied to it
    calls: int = 0  # forward calls in the step (weights shared over several calls)


class StepCapture:
    """Hooks for one recorded step. `install` before the forward pass, `finish` after the
    backward pass (it removes every hook) and returns {layer name: LayerCapture}; `remove`
    when the step fails."""

    def __init__(self, model: nn.Module, layers: dict, step: int):
        self.model = model
        self.layers = layers
        self.records = {name: LayerCapture(name, module, step) for name, module in layers.items()}
        self._pending = {}  # id(Z_l) -> (layer name, Z_l): outputs whose consumer is unknown
        self._grads = {name: {} for name in layers}  # this step's parameter gradients
        self._handles = []

    def install(self) -> None:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            for param_name, param in module.named_parameters():
                if param.requires_grad:
                    self._handles.append(param.register_hook(self._grad_hook(name, param_name)))
        for module in self.model.modules():
            if not any(True for _ in module.children()):
                self._handles.append(module.register_forward_hook(self._consumer_hook))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pending.clear()

    def finish(self) -> dict:
        """Stop capturing; the records with the step's parameter gradients."""
        self.remove()
        for name, record in self.records.items():
            record.grads = {p: g.detach().clone() for p, g in self._grads[name].items()}
            record.z_node = None  # the graph is gone after backward; do not keep it alive
        return self.records

    def _grad_hook(self, layer: str, param: str):
        grads = self._grads[layer]

        def hook(grad):  # this step's gradient, whatever .grad already held
            grads[param] = grad if param not in grads else grads[param] + grad

        return hook

    def _layer_hook(self, name):
        record = self.records[name]

        def hook(module, inputs, output):
            record.calls += 1
            if record.z is not None or not isinstance(output, torch.Tensor):
                return  # only the first call of a step is captured
            if inputs and isinstance(inputs[0], torch.Tensor):
                record.a0 = inputs[0].detach().clone()
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            record.weight = weight.detach().clone() if isinstance(weight, torch.Tensor) else None
            record.bias = bias.detach().clone() if isinstance(bias, torch.Tensor) else None
            # Cloned: an in-place activation overwrites Z_l right after this hook.
            record.z = output.detach().clone()
            record.z_node = output.grad_fn
            if output.requires_grad:
                output.register_hook(_store(record, "d_z"))
            self._pending[id(output)] = (name, output)

        return hook

    def _consumer_hook(self, module, inputs, output):
        if not self._pending or not inputs or not isinstance(inputs[0], torch.Tensor):
            return
        x = inputs[0]
        entry = self._pending.get(id(x))
        if entry is not None and entry[1] is x:
            del self._pending[id(x)]
            self._consumed_by_module(self.records[entry[0]], module, x, output)
            return
        for key, (name, z) in list(self._pending.items()):
            if self._applied_as_function(self.records[name], x):
                del self._pending[key]

    def _consumed_by_module(self, record, module, x, output):
        s = None
        if isinstance(output, torch.Tensor) and output.shape == record.z.shape:
            s = derivative_of_module(module, record.z)
        if s is not None:
            self._keep_activation(record, output, s, Activation(type(module).__name__, "module"))
        elif x.grad_fn is not record.z_node and self._applied_as_function(record, x):
            pass  # Z_l was changed in place by a function (F.relu(z, inplace=True)) first
        else:
            record.consumer = type(module).__name__

    def _applied_as_function(self, record, x) -> bool:
        """Is `x` an elementwise function of this record's Z_l, perhaps reshaped (flattened)
        since? Then that function's output, in Z_l's shape, is A_l."""
        if record.z is None or x.numel() != record.z.numel():
            return False
        node = x.grad_fn
        for _ in range(_MAX_RESHAPES + 1):
            if node is None:
                return False
            s = derivative_of_function(node, record.z_node, record.z)
            if s is not None:
                break
            inputs = [fn for fn, _ in node.next_functions if fn is not None]
            if type(node).__name__ not in _RESHAPE_NODES or len(inputs) != 1:
                return False
            node = inputs[0]
        else:
            return False
        name = function_name(node)
        note = f"the activation is applied as a function ({name}); S_l is its exact derivative"
        self._keep_activation(record, x, s, Activation(name, "function", note))
        return True

    @staticmethod
    def _keep_activation(record, a, s, activation):
        """Keep A_l (`a`, possibly a reshaped view of it) and hook dJ/dA_l, in Z_l's shape."""
        record.s = s
        record.a = a.detach().reshape(record.z.shape).clone()
        record.activation = activation
        if a.requires_grad:
            a.register_hook(_store(record, "d_a", record.z.shape))


def _store(record: LayerCapture, attribute: str, shape=None):
    def hook(grad):
        if getattr(record, attribute) is None:
            grad = grad.detach() if shape is None else grad.detach().reshape(shape)
            setattr(record, attribute, grad.clone())

    return hook
