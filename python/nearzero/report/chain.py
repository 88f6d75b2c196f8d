"""What lies between a layer's output Z_l and the activation that uses it: normalisation layers
and modules or autograd nodes that pass values through (Dropout, Identity, reshapes, a residual
add). The capture follows this chain so that S_l is the activation's derivative at its real input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

NORM_TYPES = tuple(t for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                               getattr(nn, "RMSNorm", None)) if t is not None)
PASS_THROUGH_TYPES = (nn.modules.dropout._DropoutNd, nn.Identity, nn.Flatten, nn.Unflatten)
# Autograd nodes that keep every element where it is (or add another tensor to it), by the
# readable name the report shows for them.
_PASS_THROUGH_NODES = {
    "AddBackward0": "add", "AddBackward1": "add", "ViewBackward0": "reshape",
    "UnsafeViewBackward0": "reshape", "ReshapeAliasBackward0": "reshape",
    "CloneBackward0": "clone", "NativeDropoutBackward0": "dropout",
}
_MAX_NODES = 6  # nodes searched back from a module's input towards a pending tensor


class Kept:
    """A tensor of the forward pass kept without a copy, with its version: `get()` gives it
    only while nothing has changed it in place since (autograd's saved tensors are never
    changed, so Linear and Conv inputs stay readable). `copy()` makes it safe from then on."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor.detach()
        self.version = tensor._version

    def get(self):
        return self.tensor if self.tensor._version == self.version else None

    def copy(self) -> None:
        if self.get() is not None:
            self.tensor = self.tensor.clone()
            self.version = self.tensor._version


class GradHolder:
    """Receives the gradient of one tensor of the chain when backward reaches it (the first
    one, if the tensor is used twice: the report explains the layer's first call)."""

    def __init__(self, tensor: torch.Tensor, shape=None):
        self.grad = None
        self._shape = shape
        if tensor.requires_grad:
            tensor.register_hook(self._store)

    def _store(self, grad):
        if self.grad is None:
            grad = grad.detach()
            # Kept without a copy: autograd hands each hook a gradient it does not change later.
            self.grad = grad if self._shape is None else grad.reshape(self._shape)


@dataclass
class Pending:
    """The end of a layer's chain so far: a tensor whose consumer is not known yet."""

    record: object  # the LayerCapture
    tensor: torch.Tensor
    value: Kept  # `tensor`'s values when it was made
    node: object  # tensor.grad_fn when it was made (None without autograd)
    version: int
    holder: GradHolder  # dJ/d(tensor), kept for Z_l only (None further along the chain)
    path: list = field(default_factory=list)  # names passed through from Z_l to here


class ChainIndex:
    """The pending tensors of a step, found from a module's input by identity or by walking its
    autograd graph back through pass-through nodes and at most one activation function."""

    def __init__(self):
        self._by_id = {}
        self._by_node = {}

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def add(self, pending: Pending) -> None:
        self._by_id[id(pending.tensor)] = pending
        if pending.node is not None:
            self._by_node[pending.node] = pending

    def discard(self, pending: Pending) -> None:
        self._by_id.pop(id(pending.tensor), None)
        if pending.node is not None and self._by_node.get(pending.node) is pending:
            del self._by_node[pending.node]

    def clear(self) -> None:
        self._by_id.clear()
        self._by_node.clear()

    def find(self, x: torch.Tensor):
        """(pending, nodes) where `x` derives from a pending tensor; `nodes` are the autograd
        nodes between them, nearest the pending tensor first. None when it does not."""
        pending = self._by_id.get(id(x))
        if pending is not None and pending.tensor is x and x._version == pending.version:
            return pending, []
        if not self._by_node or x.grad_fn is None:
            return None
        from .activations import function_of_node

        # Depth-first back from x: pass-through nodes, and one activation function at most.
        stack = [(x.grad_fn, [], False)]
        while stack:
            node, nodes, crossed_function = stack.pop()
            found = self._by_node.get(node)
            if found is not None:
                return found, nodes[::-1]
            if len(nodes) >= _MAX_NODES:
                continue
            is_function = function_of_node(node) is not None
            if type(node).__name__ not in _PASS_THROUGH_NODES and not (
                    is_function and not crossed_function):
                continue
            for parent, _ in node.next_functions:
                if parent is not None:
                    stack.append((parent, nodes + [node], crossed_function or is_function))
        return None


def node_label(node) -> str:
    return _PASS_THROUGH_NODES.get(type(node).__name__, type(node).__name__)


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, NORM_TYPES)


def passes_through(module: nn.Module) -> bool:
    return isinstance(module, PASS_THROUGH_TYPES) or is_norm(module)
