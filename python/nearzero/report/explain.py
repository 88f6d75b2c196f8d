"""Entry points: `explain_near_zero_gradients` for one layer and `explain_model` for all of
them, each from a GradientRecorder's recorded step or from one batch run on the spot."""

from __future__ import annotations

import torch
from torch import nn

from .build import build_report
from .overview import ModelOverview
from .recorder import GradientRecorder
from .report import Report


def explain_near_zero_gradients(source, layer, step: int = None, *, confidence: float = 0.99,
                                threshold: float = None, verbose: bool = False, inputs=None,
                                targets=None, loss_fn=None) -> Report:
    """Explain why `layer`'s weight gradients are near zero.

    ``source`` is a `GradientRecorder` (explains its recorded `step`, default the latest), or
    the model itself together with ``inputs``, ``targets`` and ``loss_fn``: then one forward
    and backward pass runs on that batch (``loss_fn(model(inputs), targets)``; a tuple of
    inputs is unpacked, a dict passed as keywords), with no optimizer step, and every
    parameter's ``.grad`` and every buffer (BatchNorm statistics) is left as it was found.

    ``confidence`` sets every near-zero threshold (SPEC §2); ``threshold`` fixes the one of the
    weight gradients instead. ``verbose`` adds class breakdowns to the text.
    """
    _check_confidence(confidence)
    if isinstance(source, GradientRecorder):
        _no_batch(inputs, targets, loss_fn)
        capture = source.capture(layer, step)
    elif isinstance(source, nn.Module):
        if step is not None:
            raise ValueError("step= selects a recorded step; with a model, pass inputs=, "
                             "targets= and loss_fn= instead")
        captures = capture_one_batch(source, [layer], inputs, targets, loss_fn)
        capture = next(iter(captures.values()))
    else:
        raise TypeError(f"expected a GradientRecorder or an nn.Module, got {type(source).__name__}")
    return build_report(capture, confidence=confidence, threshold=threshold, verbose=verbose)


def explain_model(source, step: int = None, *, layers=None, confidence: float = 0.99,
                  threshold: float = None, verbose: bool = False, inputs=None, targets=None,
                  loss_fn=None) -> ModelOverview:
    """Explain every recorded (or, for a model, every supported) layer and rank them, most
    affected first. Same two forms and arguments as `explain_near_zero_gradients`; ``layers``
    narrows the layers explained."""
    _check_confidence(confidence)
    if isinstance(source, GradientRecorder):
        _no_batch(inputs, targets, loss_fn)
        names = list(source.layers) if layers is None else [source.layer_name(l) for l in layers]
        captures = {name: source.capture(name, step) for name in names}
    elif isinstance(source, nn.Module):
        if step is not None:
            raise ValueError("step= selects a recorded step; with a model, pass inputs=, "
                             "targets= and loss_fn= instead")
        captures = capture_one_batch(source, layers, inputs, targets, loss_fn)
    else:
        raise TypeError(f"expected a GradientRecorder or an nn.Module, got {type(source).__name__}")
    reports = [build_report(c, confidence=confidence, threshold=threshold, verbose=verbose)
               for c in captures.values()]
    steps = {c.step for c in captures.values()}
    return ModelOverview(reports, step=steps.pop() if len(steps) == 1 else None,
                         confidence=confidence)


def capture_one_batch(model: nn.Module, layers, inputs, targets, loss_fn) -> dict:
    """Captures of `layers` from one forward and backward pass, leaving the model as found."""
    if loss_fn is None or inputs is None:
        raise ValueError("explaining a model directly needs inputs= and loss_fn= (and usually "
                         "targets=); or pass a GradientRecorder")
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    saved_buffers = [(b, b.detach().clone()) for b in model.buffers()]
    recorder = GradientRecorder(model, layers, record_every=1)
    try:
        for p in params:
            p.grad = None
        with recorder.step(0):
            outputs = _call(model, inputs)
            loss = loss_fn(outputs) if targets is None else loss_fn(outputs, targets)
            loss.backward()
        captures = {name: recorder.capture(name, 0) for name in recorder.layers}
    finally:
        recorder.detach()
        for p, grad in zip(params, saved_grads):
            p.grad = grad
        with torch.no_grad():
            for buffer, value in saved_buffers:
                buffer.copy_(value)
    for capture in captures.values():
        capture.step = None  # not a training step
    return captures


def _call(model, inputs):
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _no_batch(inputs, targets, loss_fn) -> None:
    if inputs is not None or targets is not None or loss_fn is not None:
        raise ValueError("inputs=, targets= and loss_fn= are for explaining a model directly; "
                         "a GradientRecorder already holds its recorded steps")


def _check_confidence(confidence) -> None:
    from ..thresholds import percentile_fraction

    percentile_fraction(confidence)  # raises ValueError outside [0, 1]
