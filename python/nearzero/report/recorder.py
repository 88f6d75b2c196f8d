"""GradientRecorder: hooks on a model's Linear and Conv layers that keep a cheap history of
near-zero gradients on every step and, on the steps asked for, every tensor the report needs.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .capture import StepCapture, run_eagerly
from .history import GradientHistory, StepStatistics, statistics_sizes
from .layers import is_default_layer, main_parameter_name
from .output_statistics import OutputStatistics


class GradientRecorder:
    """Records what `explain_near_zero_gradients` needs while a model trains.

    ``layers`` is None (every module that owns trainable parameters: ``nn.Linear`` and
    ``nn.Conv1d/2d/3d`` are explained fully, the others by their gradients) or a list of
    module names or modules. Wrap each
    step's forward and backward pass in ``with recorder.step(i):``. Every ``record_every``-th
    step (``i % record_every == 0``; None: none) is recorded in full; the latest ``keep``
    recorded steps are kept. Every step adds one entry to the history (see `history`): per
    layer, the norms of its weights, weight gradients, output A_l and output gradient dJ/dA_l,
    the fractions of its weight gradients that are near zero (``|g| <= history_tolerance *
    mean|g|``) or non-finite, of its units that got no gradient at all and of the units of A_l
    and dJ/dA_l with no non-zero value; and the step's loss. ``history_outputs=False`` leaves
    out A_l and dJ/dA_l (NaN in the history), which on small models costs most of the history's
    time. ``detach()`` removes every hook.
    """

    def __init__(self, model: nn.Module, layers=None, record_every: int = 100, *, keep: int = 1,
                 history_tolerance: float = 0.01, history_outputs: bool = True):
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
        self._param_slots = [(self.layers[name], param)
                             for name, param in self._main_params.items()]
        shapes = []
        for name, module in self.layers.items():
            param = getattr(module, self._main_params[name]) if self._main_params[name] else None
            shapes.append(tuple(param.shape) if param is not None else (1,))
        self._statistics = StepStatistics(shapes, self.history_tolerance)
        self._outputs = OutputStatistics(self.model, self.layers) if history_outputs else None
        self.history = GradientHistory(self.layers, [statistics_sizes(s) for s in shapes])
        self._open = None  # the step between begin_step and end_step
        self._loss_in_output = True  # False once the model returned a plain tensor
        self._logged_steps = {}  # id(SummaryWriter) -> last history entry written by log_to
        self._captures = OrderedDict()  # step -> {layer name: LayerCapture}
        self._next_step = 0
        self._detached = False

    # -- training loop -------------------------------------------------------------------------
    def step(self, index: int = None, *, loss=None) -> "_StepContext":
        """Context for one step's forward and backward pass (index: the training step). It
        yields a `TrainingStep`: set its ``loss`` in the block, or pass ``loss=``; a model
        output with a ``loss`` (HuggingFace models given labels) is read by itself."""
        return _StepContext(self, index, loss)

    def begin_step(self, index: int = None, *, loss=None) -> "TrainingStep":
        """Start a step, as `step()` does, for training loops that call back before the
        forward pass and after the backward pass; `end_step()` ends it. A step may hold
        several forward and backward passes (gradient accumulation): the gradients are read
        as it ends, A_l and dJ/dA_l are those of its first forward pass."""
        if self.in_step:
            raise RuntimeError("recorder.step() contexts cannot be nested")
        if self._detached:
            raise RuntimeError("this recorder has been detached")
        index = self._next_step if index is None else int(index)
        self._next_step = index + 1
        capture = None
        if self.should_record(index):  # full capture hooks only for recorded steps
            capture = StepCapture(self.model, self.layers, index)
            capture.install()
        # On a CPU the step's statistics go straight into a host row of the history.
        row = self.history.host_row() if _host_path(self._params()) else None
        if self._outputs is not None:
            self._outputs.start(row)
        loss_hook = self.model.register_forward_hook(self._read_loss) if self._loss_in_output \
            else None
        # The step's hooks (loss, history, capture) are added after any torch.compile: compiled
        # code would ignore or retrace them, so a compiled model runs eagerly inside a step.
        eager = run_eagerly()
        eager.__enter__()
        self._open = (TrainingStep(index, loss), capture, loss_hook, row, eager)
        return self._open[0]

    def end_step(self, *, loss=None) -> None:
        """End the step begun by `begin_step` (``loss``: the step's loss, if known now)."""
        if not self.in_step:
            raise RuntimeError("end_step() without begin_step()")
        step, capture, loss_hook, row, eager = self._open
        if loss_hook is not None:
            loss_hook.remove()
        eager.__exit__(None, None, None)
        if loss is not None:
            step.loss = loss
        self._open = None
        step.loss = step.step_loss()
        self._end_step(step, capture, row)

    def abort_step(self) -> None:
        """Drop the open step (its forward or backward pass failed): every hook goes."""
        if not self.in_step:
            return
        _, capture, loss_hook, _, eager = self._open
        if loss_hook is not None:
            loss_hook.remove()
        eager.__exit__(None, None, None)
        if self._outputs is not None:
            self._outputs.abort()
        if capture is not None:
            capture.remove()
        self._open = None

    @property
    def in_step(self) -> bool:
        return self._open is not None

    @property
    def current_step(self):
        """The open step's `TrainingStep` (None between steps)."""
        return self._open[0] if self._open is not None else None

    def _read_loss(self, module, inputs, output):
        if isinstance(output, torch.Tensor):  # a model that returns a tensor carries no loss
            self._loss_in_output = False
            return
        step = self.current_step
        loss = _output_loss(output)
        if step is not None and loss is not None:
            step.add_output_loss(loss)

    def should_record(self, index: int) -> bool:
        return self.record_every is not None and index % self.record_every == 0

    def _params(self) -> list:
        params = []
        for module, name in self._param_slots:  # the registered parameter, else the attribute
            param = None if name is None else module._parameters.get(name)
            params.append(param if param is not None or name is None else getattr(module, name))
        return params

    def _end_step(self, step, capture, row) -> None:
        index = step.index
        # The history reads .grad as the step ends: what the optimizer is about to apply.
        params = self._params()
        grads = [None if p is None else p.grad for p in params]
        if row is not None:
            gradients = self._statistics.write(row, grads, params)
            outputs = self._outputs.finish() if self._outputs is not None else False
            if gradients or outputs:
                self.history.append_row(index, loss=step.loss)
        else:
            gradients = self._statistics(grads, params)
            outputs = self._outputs.finish() if self._outputs is not None else None
            if gradients is not None or outputs is not None:
                self.history.append(index, *_join(gradients, outputs, len(self.layers)),
                                    loss=step.loss)
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
        """PNG of every layer's near-zero, non-finite and no-gradient shares over the steps."""
        from .dashboard import plot_history

        return plot_history(self.history, path, title=title)

    def plot_overview(self, path, *, title: str = None):
        """PNG of the training overview: loss, warnings, and per tensor kind (weights, weight
        gradients, A_l, dJ/dA_l) the norms over the layers, a layer comparison and rates."""
        from .dashboard import plot_training_overview

        return plot_training_overview(self.history, path, title=title)

    def log_to(self, writer, *, figures: bool = True, reports: bool = True) -> None:
        """Write the history to a TensorBoard ``SummaryWriter`` (scalars per layer and
        statistic, the loss, the worst layer's rates), with the history and overview figures
        and, when a step was recorded in full, the worst layer's report figure and text."""
        from ..integrations.tensorboard import log_recorder

        log_recorder(self, writer, figures=figures, reports=reports)

    # -- lifetime ------------------------------------------------------------------------------
    def detach(self) -> None:
        """Stop recording: no hook stays on the model (hooks only live inside steps);
        the history and recorded steps stay readable."""
        self.abort_step()
        self._detached = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()
        return False

    def __repr__(self) -> str:
        return (f"GradientRecorder({len(self.layers)} layers, record_every={self.record_every}, "
                f"steps={len(self.history)}, recorded={self.recorded_steps})")


class _StepContext:
    """`GradientRecorder.step`: begins the step on entry, ends it on a normal exit and drops
    it (every hook removed) when the block raises."""

    __slots__ = ("recorder", "index", "loss")

    def __init__(self, recorder: GradientRecorder, index, loss):
        self.recorder, self.index, self.loss = recorder, index, loss

    def __enter__(self) -> "TrainingStep":
        return self.recorder.begin_step(self.index, loss=self.loss)

    def __exit__(self, kind, error, traceback) -> bool:
        if kind is None:
            self.recorder.end_step()
        else:
            self.recorder.abort_step()
        return False


class TrainingStep:
    """The step being recorded: its index and loss (a tensor or number; None: not known).

    Without a loss given, the step's loss comes from the ``loss`` of the model's outputs: with
    several forward passes (gradient accumulation) each output loss L counts with the gradient
    that the backward pass gave it, which sums the losses as they were backpropagated
    (L / passes, or L as it is where L is already a share of the step's loss); outputs without
    a gradient (no backward pass) give their mean."""

    def __init__(self, index: int, loss=None):
        self.index = index
        self.loss = loss
        self._output_losses = []  # (loss, [its gradient]) of every forward pass

    def add_output_loss(self, loss: torch.Tensor) -> None:
        gradient = []
        if loss.requires_grad:
            loss.register_hook(gradient.append)
        self._output_losses.append((loss.detach(), gradient))

    def step_loss(self):
        if self.loss is not None or not self._output_losses:
            return self.loss
        if len(self._output_losses) == 1:
            return self._output_losses[0][0]
        with torch.no_grad():
            weighted = [loss * gradient[0] for loss, gradient in self._output_losses if gradient]
            if weighted:
                return torch.stack([w.reshape(()) for w in weighted]).sum()
            return torch.stack([loss.reshape(()) for loss, _ in self._output_losses]).mean()

    def __repr__(self) -> str:
        return f"TrainingStep({self.index}, loss={self.loss!r})"


def _host_path(params) -> bool:
    """Whether a step's history goes through the C++ core on the host (every parameter on the
    CPU) rather than through torch operations queued on the device."""
    return all(p is None or p.is_cpu for p in params)


def _output_loss(output):
    """The ``loss`` a model output carries (HuggingFace's ModelOutput, a dict), else None."""
    loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
    return loss if isinstance(loss, torch.Tensor) and loss.numel() == 1 else None


def _join(gradients, outputs, layers: int):
    """One step's (counts, norms) from the gradient and the output statistics, either of
    which may be missing (no gradient at all; no layer ran)."""
    if gradients is None or outputs is None:
        device = (gradients or outputs)[0].device
        if gradients is None:
            gradients = (torch.full((layers, 3), -1, dtype=torch.int64, device=device),
                         torch.full((layers, 2), float("nan"), device=device))
        else:
            outputs = (torch.full((layers, 4), -1, dtype=torch.int64, device=device),
                       torch.full((layers, 2), float("nan"), device=device))
    device = gradients[0].device
    return (torch.cat([gradients[0], outputs[0].to(device)], 1),
            torch.cat([gradients[1], outputs[1].to(device)], 1))


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
