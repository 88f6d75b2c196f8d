"""GradientRecorder: hooks on a model's Linear and Conv layers that keep a cheap history of
near-zero gradients on every step and, on the steps asked for, every tensor the report needs.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager

import torch
from torch import nn

from .capture import StepCapture, eager_if
from .history import GradientHistory, StepStatistics, statistics_sizes
from .layers import is_default_layer, main_parameter_name


class GradientRecorder:
    """Records what `explain_near_zero_gradients` needs while a model trains.

    ``layers`` is None (every module that owns trainable parameters: ``nn.Linear`` and
    ``nn.Conv1d/2d/3d`` are explained fully, the others by their gradients) or a list of
    module names or modules. Wrap each
    step's forward and backward pass in ``with recorder.step(i):``. Every ``record_every``-th
    step (``i % record_every == 0``; None: none) is recorded in full; the latest ``keep``
    recorded steps are kept. Every step adds one entry to the history (see `history`): the
    fraction of each layer's weight gradients that are near zero (``|g| <= history_tolerance *
    mean|g|``) and of its units that got no gradient at all. ``detach()`` removes every hook.
    """

    def __init__(self, model: nn.Module, layers=None, record_every: int = 100, *, keep: int = 1,
                 history_tolerance: float = 0.01):
        if record_every is not None and int(record_every) < 1:
            raise ValueError(f"record_every must be a positive step count, got {record_every!r}")
        if int(keep) < 1:
            raise ValueError(f"keep must be at least 1, got {keep!r}")
        self.model = _unwrap(model)
        self.layers = resolve_layers(self.model, layers)
        self.record_every = None if record_every is None else int(record_every)
        self.keep = int(keep)
        self.history_tolerance = float(history_tolerance)
        self._main_params = {name: main_parameter_name(m) for name, m in self.layers.items()}
        shapes = []
        for name, module in self.layers.items():
            param = getattr(module, self._main_params[name]) if self._main_params[name] else None
            shapes.append(tuple(param.shape) if param is not None else (1,))
        self._statistics = StepStatistics(shapes, self.history_tolerance)
        self.history = GradientHistory(self.layers, [statistics_sizes(s) for s in shapes])
        self._captures = OrderedDict()  # step -> {layer name: LayerCapture}
        self._in_step = False
        self._next_step = 0
        self._detached = False

    # -- training loop -------------------------------------------------------------------------
    @contextmanager
    def step(self, index: int = None):
        """Context for one step's forward and backward pass (index: the training step)."""
        if self._in_step:
            raise RuntimeError("recorder.step() contexts cannot be nested")
        if self._detached:
            raise RuntimeError("this recorder has been detached")
        index = self._next_step if index is None else int(index)
        self._next_step = index + 1
        capture = None
        if self.should_record(index):  # hooks only for recorded steps: the others run bare
            capture = StepCapture(self.model, self.layers, index)
            capture.install()
        self._in_step = True
        try:
            with eager_if(capture is not None):
                yield self
        except BaseException:
            if capture is not None:
                capture.remove()
            raise
        else:
            self._end_step(index, capture)
        finally:
            self._in_step = False

    def should_record(self, index: int) -> bool:
        return self.record_every is not None and index % self.record_every == 0

    def _end_step(self, index: int, capture) -> None:
        # The history reads .grad as the step ends: what the optimizer is about to apply.
        grads = [None if param is None else getattr(self.layers[name], param).grad
                 for name, param in self._main_params.items()]
        self.history.append(index, self._statistics(grads))
        if capture is not None:
            records = capture.finish()
            if any(r.grads for r in records.values()):
                self._captures[index] = records
                while len(self._captures) > self.keep:
                    self._captures.popitem(last=False)

    # -- reading -------------------------------------------------------------------------------
    @property
    def recorded_steps(self) -> list:
        return list(self._captures)

    def capture(self, layer, step: int = None):
        """The LayerCapture of `layer` (a name or module) at `step` (default: latest recorded)."""
        if not self._captures:
            raise ValueError("no step has been recorded yet: wrap forward and backward in "
                             "`with recorder.step(i):` for a step with i % record_every == 0")
        if step is None:
            step = next(reversed(self._captures))
        if step not in self._captures:
            raise ValueError(f"step {step} was not recorded (or no longer kept: keep={self.keep});"
                             f" recorded steps: {self.recorded_steps}")
        return self._captures[step][self.layer_name(layer)]

    def layer_name(self, layer) -> str:
        if isinstance(layer, str):
            if layer not in self.layers:
                raise ValueError(f"layer {layer!r} is not recorded; recorded layers: "
                                 f"{list(self.layers)}")
            return layer
        for name, module in self.layers.items():
            if module is layer:
                return name
        raise ValueError(f"{type(layer).__name__} module is not one of the recorded layers")

    def plot_history(self, path, *, title: str = None):
        """PNG of every layer's near-zero gradient and dead-unit fractions over the steps."""
        from .plots import plot_history

        return plot_history(self.history, path, title=title)

    # -- lifetime ------------------------------------------------------------------------------
    def detach(self) -> None:
        """Stop recording: no hook stays on the model (they only live during recorded steps);
        the history and recorded steps stay readable."""
        self._detached = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()
        return False

    def __repr__(self) -> str:
        return (f"GradientRecorder({len(self.layers)} layers, record_every={self.record_every}, "
                f"steps={len(self.history)}, recorded={self.recorded_steps})")


def resolve_layers(model: nn.Module, layers) -> "OrderedDict[str, nn.Module]":
    """Names and modules of the layers to record, in the model's module order."""
    named = OrderedDict((n, m) for n, m in model.named_modules() if n)
    if layers is None:
        return OrderedDict((n, m) for n, m in named.items() if is_default_layer(m))
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    chosen = OrderedDict()
    by_id = {id(m): n for n, m in named.items()}
    for layer in layers:
        if isinstance(layer, str):
            if layer not in named:
                raise ValueError(f"the model has no module named {layer!r}")
            chosen[layer] = named[layer]
        elif isinstance(layer, nn.Module) and id(layer) in by_id:
            chosen[by_id[id(layer)]] = layer
        else:
            raise ValueError(f"{layer!r} is not a module of the model")
    return chosen


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel, so names match the model's."""
    wrappers = (nn.DataParallel, torch.nn.parallel.DistributedDataParallel)
    model = model.module if isinstance(model, wrappers) else model
    return getattr(model, "_orig_mod", model)  # torch.compile's wrapper: the original names
