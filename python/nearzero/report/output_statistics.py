"""Per-step norms and dead units of every recorded layer's output A_l and output gradient
dJ/dA_l, measured in hooks as the step runs (values stay on the device).

A_l is the output of the elementwise activation that takes the layer's output Z_l, directly or
through normalisation and pass-through modules (Dropout, Identity, BatchNorm, LayerNorm, ...), or
Z_l itself where no such activation module follows. Which modules lead there is found on the
first step by hooking every leaf module; later steps hook only those, and only the activation
where the layer and every module on its way ran once in that step and serve no other layer.
"""

from __future__ import annotations

import torch
from torch import nn

from . import tensor_statistics
from .activations import KNOWN_ACTIVATIONS, NOT_ACTIVATIONS
from .capture import recomputing
from .history import HOST_VALUES, host_offset, squared_norm
from .layers import CONV_TYPES
from .step_hooks import StepHooks

_PASS_THROUGH = (nn.modules.dropout._DropoutNd, nn.Identity, nn.modules.batchnorm._NormBase,
                 nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm) + (
                     (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())

# Activations whose output is never negative.
NON_NEGATIVE = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Softplus, nn.Hardsigmoid)


def is_activation(module: nn.Module) -> bool:
    """Elementwise activation modules: torch's, and parameter-free leaf modules named
    ``...Activation`` (as HuggingFace's GELUActivation)."""
    if isinstance(module, nn.Identity) or isinstance(module, NOT_ACTIVATIONS):
        return False
    if isinstance(module, KNOWN_ACTIVATIONS):
        return True
    return (type(module).__name__.endswith("Activation") and not any(module.children())
            and not any(True for _ in module.parameters()))


class OutputStatistics:
    """Hooks for A_l and dJ/dA_l of `layers` ({name: module}); `start` before a step's forward
    pass, `finish` after its backward pass returns (counts (layers, 4) int64: units alive of A_l
    and of dJ/dA_l, then their units; norms (layers, 2) float32), -1 / NaN where not seen.
    Given a host row (the CPU path), the hooks write into it instead and `finish` tells
    whether they saw anything."""

    def __init__(self, model: nn.Module, layers: dict):
        self.model = model
        self.modules = list(layers.values())
        self.unit_dims = [1 if isinstance(m, CONV_TYPES) else -1 for m in self.modules]
        self.followers = None  # modules between a layer and its activation; None: not yet known
        self.has_activation = [False] * len(self.modules)
        self.owned = {}  # layer index -> its activation module, where the chain is its alone
        self._step = None
        self._hooks = StepHooks()
        self._plan = None  # the hooks of every step after the first
        self._missing = {}
        self._units_cache = {}
        self._ends_cache = {}

    def start(self, row=None) -> None:
        self._step = _StepOutputs(len(self.modules), row)
        if self._plan is None:
            self._plan = self._hook_plan()
        self._hooks.add_all(self._plan)

    def _hook_plan(self) -> list:
        """(module, forward hook) pairs of a step: on the first step every layer and leaf
        module; then a layer's activation alone where its chain is its own, else the layer
        and the modules that led to its activation."""
        discover = self.followers is None
        hooks = []
        for index, module in enumerate(self.modules):
            if not discover and index in self.owned:  # its activation alone gives A_l
                hooks.append((self.owned[index], self._owned_activation_hook(index)))
            else:
                hooks.append((module, self._layer_hook(index, discover)))
        if discover:
            followers = [m for m in self.model.modules() if not any(True for _ in m.children())]
        else:
            followers = self.followers
        seen = set()
        for module in followers:
            if id(module) not in seen:
                seen.add(id(module))
                hooks.append((module, self._follower_hook))
        return hooks

    def remove(self) -> None:
        self._hooks.remove()
        if self._step is not None:  # gradient hooks of a dropped step write nothing
            self._step.closed = True

    def abort(self) -> None:
        """Drops the open step: its hooks, and the A_l it held (with their autograd graph)."""
        self.remove()
        if self._step is not None:
            self._step.deferred = {}
        self._step = None

    def finish(self):
        """Device path: the (counts, norms) of the step, None where no layer ran. CPU path:
        whether anything was seen (the hooks wrote it into the row)."""
        self.remove()
        step, self._step = self._step, None
        step.close(self.unit_dims)
        if self.followers is None:  # the first step: keep the modules that led to activations
            self._learn_chains(step)
            self._plan = None
        if step.row is not None:
            return any(step.seen)
        return self._results(step)

    def _learn_chains(self, step) -> None:
        """After the first step: the modules from each layer to its activation, and the layers
        whose chain is theirs alone (each module of it ran once in the step, in no other
        chain), which later steps measure with one hook on the activation only."""
        chains = step.chains
        self.has_activation = [i in chains for i in range(len(self.modules))]
        in_chains = {}
        for chain in chains.values():
            for module in chain:
                in_chains[id(module)] = in_chains.get(id(module), 0) + 1
        self.owned = {index: chain[-1] for index, chain in chains.items()
                      if step.calls.get(id(self.modules[index])) == 1 and all(
                          in_chains[id(m)] == 1 and step.calls.get(id(m)) == 1 for m in chain)}
        self.followers = [m for index, chain in chains.items() if index not in self.owned
                          for m in chain]

    def _results(self, step):
        """All layers at once: a few operations per step, not a few per layer."""
        seen = [(slot, extremes) for slot, extremes in enumerate(step.extremes)
                if extremes is not None]
        if not seen:
            return None
        device = seen[0][1][0].device
        missing_count, missing_norm = self._missing_values(device)
        # Units alive in every seen tensor: some value above or below zero.
        extremes = [_on(e[0].reshape(-1), device) for _, e in seen]
        extremes += [_on(e[1].reshape(-1), device) for _, e in seen]
        alive = torch.cat(extremes).ne(0).reshape(2, -1).any(0).cumsum(0)[self._ends(seen, device)]
        alive = torch.diff(alive, prepend=missing_count.reshape(1) + 1)
        norms = torch.stack([_on(step.norms[slot], device) for slot, _ in seen])
        if len(seen) < len(step.extremes):  # some layer did not run: -1 / NaN there
            slots = torch.tensor([slot for slot, _ in seen], device=device)
            alive = missing_count.expand(len(step.extremes)).clone().index_copy_(0, slots, alive)
            norms = missing_norm.expand(len(step.extremes)).clone().index_copy_(0, slots, norms)
        counts = torch.cat([alive.reshape(-1, 2), self._units(step, device)], 1)
        return counts, norms.reshape(-1, 2)

    def _ends(self, seen, device):
        """Index of each seen tensor's last unit in the concatenated units."""
        sizes = tuple(extremes[0].numel() for _, extremes in seen)
        key = (sizes, device)
        if key not in self._ends_cache:
            ends = [sum(sizes[:i + 1]) - 1 for i in range(len(sizes))]
            self._ends_cache = {key: torch.tensor(ends, device=device)}
        return self._ends_cache[key]

    def _units(self, step, device):
        key = (tuple(map(tuple, step.units)), device)  # the same on almost every step
        if key not in self._units_cache:
            self._units_cache = {key: torch.tensor(step.units, dtype=torch.int64, device=device)}
        return self._units_cache[key]

    def _missing_values(self, device):
        if device not in self._missing:
            self._missing[device] = (torch.full((), -1, dtype=torch.int64, device=device),
                                     torch.full((), float("nan"), device=device))
        return self._missing[device]

    def _output_hook(self, index: int, on_output):
        """A forward hook on layer `index`: for the layer's first output in the step, or the
        first that gets a gradient (see `_repeat`), marks the layer called and calls
        `on_output(step, output, gradient_only)`."""
        def hook(module, inputs, output):
            step = self._step
            if step is None or not isinstance(output, torch.Tensor):
                return
            if step.called[index]:
                if not _repeat(step, index, output):
                    return
                on_output(step, output, True)
                return
            step.called[index] = True
            on_output(step, output, False)

        return hook

    def _layer_hook(self, index: int, discover: bool):
        def on_output(step, output, gradient_only):
            if discover or self.has_activation[index]:
                step.pending[id(output)] = (index, output, [], gradient_only)
            if discover or not self.has_activation[index]:
                self._measure(step, index, output, False, gradient_only=gradient_only)

        return self._output_hook(index, on_output)

    def _owned_activation_hook(self, index: int):
        non_negative = isinstance(self.owned[index], NON_NEGATIVE)
        measure = self._measure
        return self._output_hook(index, lambda step, output, gradient_only: measure(
            step, index, output, True, non_negative, gradient_only))

    def _follower_hook(self, module, inputs, output):
        step = self._step
        if step is None:
            return
        if self.followers is None:  # the first step counts the calls of every module
            step.calls[id(module)] = step.calls.get(id(module), 0) + 1
        if not step.pending or not inputs or not isinstance(output, torch.Tensor):
            return
        entry = step.pending.pop(id(inputs[0]), None)
        if entry is None or entry[1] is not inputs[0]:
            return
        index, _, chain, gradient_only = entry
        if is_activation(module):
            step.chains[index] = chain + [module]
            self._measure(step, index, output, True, isinstance(module, NON_NEGATIVE),
                          gradient_only)
        elif isinstance(module, _PASS_THROUGH) and output.shape == inputs[0].shape:
            step.pending[id(output)] = (index, output, chain + [module], gradient_only)

    def _measure(self, step, index: int, tensor, from_activation: bool,
                 non_negative: bool = False, gradient_only: bool = False) -> None:
        """A_l (unless `gradient_only`) now, and a hook for dJ/dA_l."""
        dim = self.unit_dims[index] % max(tensor.dim(), 1)
        node = tensor.grad_fn
        if not gradient_only:
            step.units[index] = [tensor.shape[dim] if tensor.dim() else 1] * 2
            step.from_activation[index] = from_activation
            if step.row is not None and _kept_for_backward(tensor, node):
                # Measured with dJ/dA_l in one call, just before the node reads it again.
                step.deferred[index] = (tensor, tensor._version)
            else:
                step.measure(2 * index, tensor, dim, non_negative)
        if not tensor.requires_grad:
            return
        step.hooked[index] = True
        if node is None or tensor._is_view():
            tensor.register_hook(_gradient_hook(step, index, dim, from_activation, None))
        else:  # a pre-hook of the node that made the tensor costs less than a tensor hook
            node.register_prehook(_gradient_hook(step, index, dim, from_activation,
                                                 tensor.output_nr))


def _gradient_hook(step, index: int, dim: int, from_activation: bool, output):
    """The hook that measures dJ/dA_l: a tensor hook (`output` None) or a pre-hook of the node
    that made A_l, its output number `output`."""
    slot = 2 * index + 1
    offset = host_offset(index, 3)

    def hook(grad):
        if output is not None:
            grad = grad[output]
        # dJ/dA_l of the activation wins over dJ/dZ_l seen on the first step.
        if grad is None or step.closed or step.from_activation[index] != from_activation or \
                step.seen[slot]:
            return
        step.seen[slot] = True
        row = step.row
        if row is None:
            step.measure(slot, grad, dim)
            return
        # One call of the C++ core for dJ/dA_l and the A_l kept for this moment, if any.
        entries = [(grad, dim, offset, -1.0)]
        deferred = step.deferred.pop(index, None)
        if deferred is not None and deferred[0]._version == deferred[1]:  # else changed in place
            entries.append((deferred[0], dim, offset - HOST_VALUES, -1.0))
            step.seen[slot - 1] = True
        tensor_statistics.write_tensors(entries, row)

    return hook


class _StepOutputs:
    __slots__ = ("row", "calls", "seen", "called", "hooked", "pending", "chains",
                 "from_activation", "extremes", "norms", "units", "deferred", "closed")

    def __init__(self, layers: int, row=None):
        self.row = row  # the CPU path's host row; None: device tensors per slot
        self.calls = {}  # first step: id(module) -> calls
        self.seen = [False] * (2 * layers)
        self.called = [False] * layers  # A_l measured
        self.hooked = [False] * layers  # a hook waits for dJ/dA_l
        self.pending = {}  # id(tensor) -> (layer index, tensor, modules passed so far)
        self.chains = {}  # layer index -> modules from Z_l to its activation (inclusive)
        self.from_activation = [False] * layers
        # Per slot (2 * layer for A_l, 2 * layer + 1 for dJ/dA_l): each unit's largest and
        # smallest value, and the tensor's squared L2 norm (float32).
        self.extremes = [None] * (2 * layers)
        self.norms = [None] * (2 * layers)
        self.units = [[-1, -1] for _ in range(layers)]
        # CPU path: layer index -> (A_l, its version) that autograd keeps for the backward
        # pass anyway, measured with dJ/dA_l (or as the step ends, where none comes).
        self.deferred = {}
        self.closed = False  # the step has ended: hooks that run later write nothing

    def measure(self, slot: int, tensor, dim: int, non_negative: bool = False) -> None:
        self.seen[slot] = True
        if self.row is not None:  # one pass of the C++ core, in place
            # Not kept for one call at the end of the step: holding A_l and dJ/dA_l past their
            # last use makes the allocator map fresh pages for the tensors that follow.
            tensor_statistics.write_tensors(
                [(tensor, dim, host_offset(slot // 2, 2 + slot % 2), -1.0)], self.row)
            return
        tensor = tensor.detach()
        self.norms[slot] = squared_norm(tensor)
        if tensor.dim() <= 1:
            self.extremes[slot] = (tensor, tensor)
            return
        dims = tuple(d for d in range(tensor.dim()) if d != dim)
        largest = tensor.amax(dims)
        # The output of an activation that is never negative is dead where its largest is 0.
        smallest = largest if non_negative else tensor.amin(dims)
        self.extremes[slot] = (largest, smallest)

    def close(self, unit_dims) -> None:
        """The step ends: the deferred A_l that no backward pass reached are measured now."""
        for index, output in self.deferred.items():
            tensor, version = output
            if tensor._version == version:
                self.measure(2 * index, tensor, unit_dims[index] % max(tensor.dim(), 1))
        self.deferred = {}
        self.closed = True


def _kept_for_backward(tensor, node) -> bool:
    """Whether autograd keeps `tensor` itself until its node's backward (the node saves its
    result, as ReLU, Sigmoid and Tanh do, and no saved-tensor hooks such as checkpointing
    or CPU offloading replace what it saves): holding it until then costs no memory."""
    if node is None or tensor.output_nr != 0 or tensor._is_view():
        return False
    kind = type(node)
    saves = _SAVES_RESULT.get(kind)
    if saves is None:
        saves = _SAVES_RESULT[kind] = hasattr(node, "_saved_result")
    return saves and _top_hooks is not None and _top_hooks(False) is None


_SAVES_RESULT = {}  # node type -> whether it saves its result
# The innermost saved-tensor hooks in force (None: none); where torch has no such function,
# nothing is held.
_top_hooks = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)


def _repeat(step, index: int, output) -> bool:
    """Whether a later output of a layer already measured in the step gets the hook for
    dJ/dA_l: the layer ran without gradients, as in a reentrant checkpoint's first pass, and
    its recomputation inside the backward pass is the output that gets one."""
    return not step.hooked[index] and output.requires_grad and recomputing()


def _on(tensor, device):
    return tensor if tensor.device == device else tensor.to(device)
