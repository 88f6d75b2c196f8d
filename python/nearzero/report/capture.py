"""Capture of one training step: forward hooks that keep, for every target layer, A_0, W_l, b_l,
Z_l and the activation that follows (its input, A_l), and gradient hooks for dJ/dZ_l, dJ/dA_l
and dJ/d(activation input). All tensors of a capture come from one and the same step.

Forward hooks only copy tensors and register gradient hooks: no autograd call runs inside them,
so gradient checkpointing sees the same forward pass twice. A forward pass that autograd runs
during backward (checkpointing's recomputation) is recognised and not recorded again; S_l, which
needs autograd, is computed in `finish`, after the backward pass.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from .activations import (KNOWN_ACTIVATIONS, NOT_ACTIVATIONS, Activation, function_name,
                          function_of_node)
from .chain import ChainIndex, GradHolder, Kept, Pending, is_norm, node_label, passes_through
from .layers import is_supported
from .resolve import resolve_activation, resolve_kept


@dataclass
class LayerCapture:
    """The tensors of one layer at one step (None where not captured). Activation-side tensors
    (x, s, a, d_x, d_a) are in Z_l's shape."""

    name: str
    module: nn.Module
    step: int
    a0: torch.Tensor = None
    weight: torch.Tensor = None
    bias: torch.Tensor = None
    z: torch.Tensor = None
    x: torch.Tensor = None  # the activation's input: Z_l itself, or Z_l after the chain
    a: torch.Tensor = None
    s: torch.Tensor = None
    d_x: torch.Tensor = None  # dJ/d(activation input)
    d_a: torch.Tensor = None  # dJ/dA_l
    d_z: torch.Tensor = None  # dJ/dZ_l
    grads: dict = field(default_factory=dict)  # parameter name -> dJ/dparameter
    activation: Activation = None
    consumer: str = None  # the module that Z_l (or its chain) fed, when not an activation
    path: list = field(default_factory=list)  # modules and ops between Z_l and the activation
    norm: dict = None  # the first normalisation on the path: type, weight, bias, channel axis
    calls: int = 0  # forward calls in the step (weights shared over several calls)
    hooked: bool = False  # dJ/dZ_l is hooked (False when the forward pass ran without autograd)
    recomputed: bool = False  # the forward pass ran again during backward (checkpointing)
    pending_activation: tuple = None  # (module or function, holders) until `finish`
    z_holder: GradHolder = None  # receives dJ/dZ_l
    z_shape: tuple = None


def run_eagerly():
    """Compiled code runs eagerly in this context: hooks added after torch.compile would be
    ignored by the compiled code or make it recompile."""
    # Without Dynamo loaded nothing is compiled: importing it would cost time and memory.
    if "torch._dynamo" not in sys.modules or not hasattr(torch.compiler, "set_stance"):
        return nullcontext()
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    if hasattr(eval_frame, "_set_stance") and hasattr(eval_frame, "DynamoStance"):
        force = _ForceEager.instances.get(id(eval_frame))
        if force is None:
            force = _ForceEager.instances[id(eval_frame)] = _ForceEager(eval_frame)
        return force
    return torch.compiler.set_stance("force_eager")


class _ForceEager:
    """torch.compiler.set_stance("force_eager") through the switch it calls: the public
    context builds and sets its stance object twice on every step, a visible part of a small
    model's step. Where that switch does no more than check that no compiled region runs and
    swap the module's stance (read from the names its code uses), the swap is made here. One
    instance per Dynamo module, entered any number of times (the prior stances on a stack)."""

    instances = {}  # id(eval_frame module) -> its _ForceEager

    def __init__(self, eval_frame):
        self._module = eval_frame
        self._set = eval_frame._set_stance
        self._stance = eval_frame.DynamoStance("force_eager")
        self._swap = _swaps_only(eval_frame)
        self._priors = []

    def __enter__(self):
        if self._swap:
            callback = _eval_frame_callback()
            if callback is not False and callback is not None:
                raise RuntimeError("attempted to set_stance in a torch.compile region")
            self._priors.append(self._module._stance)
            self._module._stance = self._stance
        else:
            self._priors.append(self._set(self._stance))
        return self

    def __exit__(self, *exc):
        prior = self._priors.pop()
        if self._swap:
            self._module._stance = prior
        else:
            self._set(prior)
        return False


# Every name that torch's _set_stance uses where it only checks for a compiled region and swaps
# the module's _stance (torch 2.6 to 2.13).
_SWAP_NAMES = {"torch._C._dynamo.eval_frame", "get_eval_frame_callback", "RuntimeError", "_stance"}


def _swaps_only(eval_frame) -> bool:
    code = getattr(eval_frame._set_stance, "__code__", None)
    return code is not None and hasattr(eval_frame, "_stance") and \
        set(code.co_names) <= _SWAP_NAMES and _eval_frame_callback is not None


def _find_eval_frame_callback():
    try:
        from torch._C._dynamo.eval_frame import get_eval_frame_callback
    except ImportError:
        return None
    return get_eval_frame_callback


_eval_frame_callback = _find_eval_frame_callback()


def recomputing() -> bool:
    """A forward pass inside backward: checkpointing recomputes the activations it dropped."""
    return torch._C._current_graph_task_id() != -1


class StepCapture:
    """Hooks for one recorded step. `install` before the forward pass, `finish` after the
    backward pass (it removes every hook) and returns {layer name: LayerCapture}; `remove`
    when the step fails."""

    def __init__(self, model: nn.Module, layers: dict, step: int, *,
                 copy_parameters: bool = True):
        """`copy_parameters`: keep copies of W_l, b_l and the parameter gradients (training
        changes them after the step); without, the tensors themselves, as they are now."""
        self.model = model
        self.copy_parameters = copy_parameters
        self.layers = layers
        self.records = {name: LayerCapture(name, module, step) for name, module in layers.items()}
        self._chain = ChainIndex()
        self._entering = {}  # id(module) -> (pending, path) between its pre-hook and hook
        self._grads = {name: {} for name in layers}  # this step's parameter gradients
        self._handles = []

    def install(self) -> None:
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            for param_name, param in module.named_parameters(recurse=False):
                if param.requires_grad:
                    self._handles.append(param.register_hook(self._grad_hook(name, param_name)))
        for module in self.model.modules():
            if not any(True for _ in module.children()):
                self._handles.append(module.register_forward_pre_hook(self._enter_hook))
                self._handles.append(module.register_forward_hook(self._leave_hook))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._chain.clear()
        self._entering.clear()

    def finish(self, *, resolve: bool = True) -> dict:
        """Stop capturing; the records with the step's parameter gradients and S_l. Without
        `resolve`, S_l and A_l are left for `resolve_activation` (each report makes its own
        and lets it go: one layer's at a time in memory)."""
        self.remove()
        for name, record in self.records.items():
            # Copies only when training goes on: a later step accumulates into .grad in place,
            # and .grad may be the very tensor the hook received.
            record.grads = {p: g.detach().clone() if self.copy_parameters else g.detach()
                            for p, g in self._grads[name].items()}
            for attribute in ("weight", "bias"):
                kept = getattr(record, attribute)
                if isinstance(kept, Kept):
                    value = kept.get()
                    setattr(record, attribute, value.clone() if self.copy_parameters and
                            value is not None else value)
            resolve_kept(record)
            if resolve:
                resolve_activation(record)
        return self.records

    def _grad_hook(self, layer: str, param: str):
        grads = self._grads[layer]

        def hook(grad):  # this step's gradient, whatever .grad already held
            grads[param] = grad if param not in grads else grads[param] + grad

        return hook

    # -- the layers themselves -----------------------------------------------------------------
    def _layer_hook(self, name):
        record = self.records[name]
        full = is_supported(record.module)

        def hook(module, inputs, output):
            again = recomputing()
            if again and (record.hooked or record.z is None):
                record.recomputed = record.recomputed or record.z is not None
                return  # recorded in the first forward pass already
            if not again:
                record.calls += 1
                if record.calls > 1:
                    return  # only the first call of a step is captured
            else:  # reentrant checkpointing: the first pass ran without autograd
                record.recomputed = True
            if inputs and isinstance(inputs[0], torch.Tensor) and (
                    full or isinstance(module, nn.Embedding)):  # Embedding: the indices
                record.a0 = Kept(inputs[0])
            if not full or not isinstance(output, torch.Tensor):
                return  # other types: the input (Embedding indices) and gradients only
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            record.weight = Kept(weight) if isinstance(weight, torch.Tensor) else None
            record.bias = Kept(bias) if isinstance(bias, torch.Tensor) else None
            record.z = Kept(output)  # copied before an in-place activation overwrites it
            record.hooked = output.requires_grad
            holder = GradHolder(output)
            record.pending_activation = None
            record.consumer, record.path, record.norm = None, [], None
            record.z_holder = holder
            self._chain.add(Pending(record, output, record.z, output.grad_fn, output._version,
                                    holder))
            record.z_shape = output.shape

        return hook

    # -- every leaf module: is it the next step of a pending chain? ----------------------------
    def _enter_hook(self, module, inputs):
        if not self._chain or not inputs or not isinstance(inputs[0], torch.Tensor):
            return
        x = inputs[0]
        found = self._chain.find(x)
        if found is None:
            return
        pending, nodes = found
        self._chain.discard(pending)
        record = pending.record
        functions = [n for n in nodes if function_of_node(n) is not None]
        if functions:  # an activation function applied between the chain and this module
            self._activation_function(pending, nodes, functions[0], x)
            return
        path = pending.path + [node_label(n) for n in nodes]
        if x.numel() != record.z.tensor.numel():
            record.consumer, record.path = type(module).__name__, path
            return
        if passes_through(module) or _may_be_activation(module):
            value = pending.value if not nodes else Kept(x)
            if getattr(module, "inplace", False):  # it is about to overwrite its input
                value.copy()
            # dJ/dX_l is dJ/dA_l ⊙ S_l: only Z_l's own gradient is kept (the report's dJ/dZ_l).
            holder = pending.holder if not nodes else None
            self._entering[id(module)] = (pending, path, value, holder)
        else:
            record.consumer, record.path = type(module).__name__, path

    def _leave_hook(self, module, inputs, output):
        entry = self._entering.pop(id(module), None)
        if entry is None:
            return
        pending, path, value, holder = entry
        record = pending.record
        if not isinstance(output, torch.Tensor) or output.numel() != record.z.tensor.numel():
            record.consumer, record.path = type(module).__name__, path
            return
        if passes_through(module):
            if is_norm(module) and record.norm is None:
                record.norm = _norm_parameters(module)
            self._chain.add(Pending(record, output, Kept(output), output.grad_fn,
                                    output._version, None,
                                    path + [type(module).__name__]))
            return
        record.path = path
        record.x = value
        record.pending_activation = (module, holder, GradHolder(output, record.z_shape))

    def _activation_function(self, pending, nodes, function_node, x):
        """A_l = f(chain) for an elementwise function f, `x` being A_l (perhaps reshaped)."""
        record = pending.record
        before = nodes[:nodes.index(function_node)]
        if before or x.numel() != record.z.tensor.numel() or (
                pending.value.get() is None and pending.value is not record.z):
            record.consumer = function_name(function_node)  # f's input was not kept
            record.path = pending.path + [node_label(n) for n in before]
            return
        record.path = pending.path
        record.x = pending.value
        record.pending_activation = ((function_name(function_node), function_of_node(function_node)),
                                     pending.holder, GradHolder(x, record.z_shape))


def _may_be_activation(module: nn.Module) -> bool:
    """Known activations, and parameter-free leaf modules that `finish` checks are elementwise."""
    if isinstance(module, KNOWN_ACTIVATIONS):
        return True
    return not isinstance(module, NOT_ACTIVATIONS) and not any(
        True for _ in module.parameters(recurse=False))


def _norm_parameters(module: nn.Module) -> dict:
    """The norm's scale and shift, to say which holds the activation's input where it is dead;
    `trailing`: they apply to the last dimensions (LayerNorm, RMSNorm), else to channels."""
    def copy(p):
        return p.detach().clone() if isinstance(p, torch.Tensor) else None

    return {"type": type(module).__name__, "weight": copy(getattr(module, "weight", None)),
            "bias": copy(getattr(module, "bias", None)),
            "trailing": isinstance(module, nn.LayerNorm) or type(module).__name__ == "RMSNorm"}
