"""Entry points: `explain_near_zero_gradients` for one layer and `explain_model` for all of
them, each from a GradientRecorder's recorded step or from one batch run on the spot."""

from __future__ import annotations

import torch
from torch import nn

from .build import build_report
from .capture import StepCapture, run_eagerly
from .layers import is_supported, owns_parameters
from .overview import ModelOverview
from .recorder import GradientRecorder, _unwrap, resolve_layers


def explain_near_zero_gradients(source, layer, step: int = None, *, confidence: float = 0.99,
                                threshold: float = None, verbose: bool = False, inputs=None,
                                targets=None, loss_fn=None):
    """Explain why `layer`'s weight gradients are near zero.

    ``source`` is a `GradientRecorder` (explains its recorded `step`, default the latest), or
    the model itself together with ``inputs``, ``targets`` and ``loss_fn``: then one forward
    and backward pass runs on that batch (``loss_fn(model(inputs), targets)``; a tuple of
    inputs is unpacked, a dict passed as keywords), with no optimizer step, and every
    parameter's ``.grad`` and every buffer (BatchNorm statistics) is left as it was found.

    ``confidence`` sets every near-zero threshold (SPEC §2); ``threshold`` fixes the one of the
    weight gradients instead. ``verbose`` adds class breakdowns to the text.

    Returns a `Report`; for a container module (one that holds no parameters itself, such as
    a transformer block) a `ModelOverview` of the layers inside it.
    """
    _check_confidence(confidence)
    model = _model_of(source, inputs, targets, loss_fn, step)
    name, module = _find_module(model, layer)
    if not owns_parameters(module) and not is_supported(module):
        inside = [n for n, m in module.named_modules(prefix=name) if n != name and
                  owns_parameters(m, trainable=True)]
        if not inside:
            raise ValueError(_parameter_free_message(name, module))
        return explain_model(source, step, layers=inside, confidence=confidence,
                             threshold=threshold, verbose=verbose, inputs=inputs,
                             targets=targets, loss_fn=loss_fn)
    if isinstance(source, GradientRecorder):
        capture = source.capture(name, step)
    else:
        captures = capture_one_batch(source, [name], inputs, targets, loss_fn)
        capture = next(iter(captures.values()))
    return build_report(capture, confidence=confidence, threshold=threshold, verbose=verbose)


def explain_model(source, step: int = None, *, layers=None, confidence: float = 0.99,
                  threshold: float = None, verbose: bool = False, inputs=None, targets=None,
                  loss_fn=None) -> ModelOverview:
    """Explain every recorded layer (for a model: every module that owns trainable
    parameters) and rank them, most affected first (layers with NaN or Inf before all others).
    Same two forms and arguments as `explain_near_zero_gradients`; ``layers`` narrows the
    layers explained (names or modules)."""
    _check_confidence(confidence)
    model = _model_of(source, inputs, targets, loss_fn, step)
    names = None
    if layers is not None:
        names = []
        for layer in ([layers] if isinstance(layers, (str, nn.Module)) else layers):
            name, module = _find_module(model, layer)
            if not owns_parameters(module) and not is_supported(module):
                raise ValueError(_parameter_free_message(name, module))
            names.append(name)
    def build(captures):
        return [build_report(c, confidence=confidence, threshold=threshold, verbose=verbose)
                for c in captures.values()]

    if isinstance(source, GradientRecorder):
        names = list(source.layers) if names is None else [source.layer_name(n) for n in names]
        reports = build({name: source.capture(name, step) for name in names})
        steps = {source.capture(name, step).step for name in names}
        step = steps.pop() if len(steps) == 1 else None
    else:
        # One pass per group of layers, each group's reports made before the next is captured:
        # the captured tensors of only one group are in memory at a time.
        reports = []
        chosen = resolve_layers(model, names)
        for group in _pass_groups(model, chosen):
            reports += build(capture_one_batch(source, group, inputs, targets, loss_fn))
        order = {name: i for i, name in enumerate(chosen)}  # model order, for the overview
        reports.sort(key=lambda r: order[r.layer])
    return ModelOverview(reports, step=step, confidence=confidence)


PASS_LAYERS = 12  # fully analysed layers captured per forward and backward pass


def _pass_groups(model, layers) -> list:
    """Layer names split into passes of at most PASS_LAYERS Linear/Conv layers each (the
    others, whose captures are their gradients only, go with the first)."""
    full = [n for n, m in layers.items() if is_supported(m)]
    count = max(1, -(-len(full) // PASS_LAYERS))
    size = -(-len(full) // count) if full else 0
    groups = [full[i * size:(i + 1) * size] for i in range(count)]
    groups[0] = [n for n, m in layers.items() if not is_supported(m)] + groups[0]
    return [g for g in groups if g]


def capture_one_batch(model: nn.Module, layers, inputs, targets, loss_fn) -> dict:
    """Captures of `layers` from one forward and backward pass, leaving the model as found."""
    if loss_fn is None or inputs is None:
        raise ValueError("explaining a model directly needs inputs= and loss_fn= (and usually "
                         "targets=); or pass a GradientRecorder")
    inner = _unwrap(model)
    chosen = resolve_layers(inner, layers)
    params = list(inner.parameters())
    saved_grads = [p.grad for p in params]
    saved_buffers = [(b, b.detach().clone()) for b in inner.buffers()]
    capture = StepCapture(inner, chosen, None, copy_parameters=False)
    # The random streams too are left as found: every pass draws the same dropout masks.
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        for p in params:
            p.grad = None
        capture.install()
        with run_eagerly(), torch.random.fork_rng(devices=devices):
            outputs = _call(model, inputs)
            loss = loss_fn(outputs) if targets is None else loss_fn(outputs, targets)
            loss.backward()
        captures = capture.finish(resolve=False)
    finally:
        capture.remove()
        for p, grad in zip(params, saved_grads):
            p.grad = grad
        with torch.no_grad():
            for buffer, value in saved_buffers:
                buffer.copy_(value)
    return captures


def _model_of(source, inputs, targets, loss_fn, step) -> nn.Module:
    if isinstance(source, GradientRecorder):
        _no_batch(inputs, targets, loss_fn)
        return source.model
    if isinstance(source, nn.Module):
        if step is not None:
            raise ValueError("step= selects a recorded step; with a model, pass inputs=, "
                             "targets= and loss_fn= instead")
        return _unwrap(source)
    raise TypeError(f"expected a GradientRecorder or an nn.Module, got {type(source).__name__}")


def _find_module(model: nn.Module, layer):
    """(name, module) of `layer`, a module name or a module of `model`."""
    if isinstance(layer, str):
        named = dict(model.named_modules())
        if layer not in named or not layer:
            raise ValueError(f"the model has no module named {layer!r}")
        return layer, named[layer]
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer and name:
                return name, module
        raise ValueError(f"{type(layer).__name__} module is not a module of the model")
    raise TypeError(f"a layer is a module name or a module, got {type(layer).__name__}")


def _parameter_free_message(name: str, module: nn.Module) -> str:
    return (f"layer {name!r} ({type(module).__name__}) is parameter-free: it has no weights "
            "and so no weight gradients to explain; explain the layer before it, whose report "
            "covers the activation or normalisation that follows it")


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
