"""Builds the report of one layer at one step from its capture: the forward pass (A_0, W_l,
Z_l, S_l, A_l), the backward pass (dJ/dA_l, dJ/dZ_l, dJ/dW_l) and the ranked causes.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from . import distributed as dist
from .activations import Activation, assumed_activation
from .causes import measure_causes, no_cause
from .layers import LayerMath, is_supported, main_parameter_name, units_of
from .measure import Measurer, near_zero_mask
from .report import Report

FORWARD_KEYS = ("A_0", "W_l", "compute Z_l", "Z_l", "S_l", "A_l")
REPLICATED = ("W_l", "dJ/dW_l")  # the same on every process (the others are batch shards)
GRAD_NOTE = ("gradients were not captured for this layer at this step (its output did not "
             "reach the loss, or backward() ran outside `recorder.step()`)")


def build_report(capture, *, confidence: float = 0.99, threshold: float = None,
                 verbose: bool = False) -> Report:
    measurer = Measurer(confidence)
    module = capture.module
    param = main_parameter_name(module)
    grad = capture.grads.get(param)
    data = _header(capture, param, confidence)
    if grad is None:
        data["notes"].append(GRAD_NOTE)
        data.update(near_zero_count=0, near_zero_fraction=0.0, threshold=threshold or 0.0,
                    gradients=0, causes=[], sections=[])
        return Report(data, verbose=verbose)
    grad = _averaged({param: grad})[param]
    t = measurer.threshold(grad, sharded=False) if threshold is None else float(threshold)
    grad_mask = near_zero_mask(grad, t)
    count = int(grad_mask.sum())
    fraction = count / max(grad.numel(), 1)
    units = grad.reshape(grad.shape[0], -1) if grad.dim() > 1 else grad[:, None]
    expected = measurer.expected_fraction(grad.numel(), threshold is not None)
    noteworthy = measurer.is_noteworthy(fraction, grad.numel(), threshold is not None)
    data.update(expected_fraction=expected, threshold=t,
                threshold_from="given" if threshold is not None else "confidence",
                near_zero_count=count, near_zero_fraction=fraction, gradients=grad.numel(),
                units_without_gradient=float((units == 0).all(1).float().mean()))
    analysable = is_supported(module) and all(
        t is not None for t in (capture.a0, capture.z, capture.d_z, capture.weight))
    if not analysable:
        data["notes"].append(_generic_note(capture))
        data["sections"] = [measurer.tensor(f"dJ/d{name}", f"dJ/d{name} - gradient of {name}", g,
                                            threshold=t if name == param else None,
                                            sharded=False)
                            for name, g in _averaged(capture.grads).items()]
        data["causes"] = ([] if noteworthy
                          else no_cause(fraction, expected, threshold is not None))
        return Report(data, verbose=verbose)
    _analyse(data, capture, measurer, grad, grad_mask, t, verbose, explain_causes=noteworthy)
    if not noteworthy:
        data["causes"] = no_cause(fraction, expected, threshold is not None)
    return Report(data, verbose=verbose)


def _averaged(grads: dict) -> dict:
    """The hooks saw this process's share of each gradient; DDP applies their average."""
    if not dist.is_distributed():
        return grads
    return {name: (dist.all_reduce_sum(g) / dist.world_size()).to(g.dtype)
            for name, g in grads.items()}


def _header(capture, param, confidence) -> dict:
    module = capture.module
    weight = getattr(module, param, None) if param else None
    bias = getattr(module, "bias", None)
    return {"layer": capture.name, "layer_type": type(module).__name__,
            "module": LayerMath(module).describe(), "step": capture.step,
            "units": units_of(module),
            "weights": int(weight.numel()) if isinstance(weight, torch.Tensor) else 0,
            "biases": int(bias.numel()) if isinstance(bias, torch.Tensor) else 0,
            "parameter": param, "confidence": float(confidence),
            "world_size": dist.world_size(),
            "supported": is_supported(module), "notes": []}


def _generic_note(capture) -> str:
    if not is_supported(capture.module):
        return (f"{type(capture.module).__name__} layers are not analysed beyond their "
                "gradients: the report covers nn.Linear and nn.Conv1d/2d/3d")
    if capture.z is None:
        return ("the layer's forward pass was not seen at this step (its weights are used "
                "without calling the module), so only its gradients are reported")
    return "dJ/dZ_l was not captured at this step, so only the gradients are reported"


def _activation_tensors(capture, math):
    """S_l, A_l and dJ/dA_l (flat), with what S_l is; fills gaps the capture left."""
    z, d_z = math.flat(capture.z), math.flat(capture.d_z)
    if capture.s is None:
        s, a, d_a, activation = assumed_activation(z, d_z)
        if capture.consumer:
            activation.note = (f"Z_l feeds {capture.consumer}, which is not an elementwise "
                               f"activation; {activation.note.split('; ', 1)[-1]}")
        return s, a, d_a, activation
    s, a = math.flat(capture.s), math.flat(capture.a)
    # A copy: notes added here must not pile up on the capture when it is explained again.
    activation = dataclasses.replace(capture.activation or Activation("unknown", "module"))
    d_a = math.flat(capture.d_a)
    if d_a is None:  # A_l did not reach the loss through autograd hooks: recover where S_l != 0
        d_a = torch.where(s != 0, d_z / s, torch.full_like(d_z, float("nan")))
        activation.note = ((activation.note + "; ") if activation.note else "") + (
            "dJ/dA_l was not captured; it is dJ/dZ_l / S_l where S_l != 0")
    return s, a, d_a, activation


def _analyse(data, capture, measurer, grad, grad_mask, t, verbose, explain_causes) -> None:
    math = LayerMath(capture.module)
    a0 = math.flat(capture.a0)
    z, d_z = math.flat(capture.z), math.flat(capture.d_z)
    s, a, d_a, activation = _activation_tensors(capture, math)
    data["activation"] = {"name": activation.name, "source": activation.source,
                          "note": activation.note}
    if activation.note:
        data["notes"].append(activation.note)
    if capture.calls > 1:
        data["notes"].append(f"the layer ran {capture.calls} times in this step; the report "
                             "explains its first call, while dJ/dW_l sums over all of them")
    weight = capture.weight
    th = {"a0": measurer.threshold(a0), "weight": measurer.threshold(weight, sharded=False),
          "s": measurer.threshold(s), "d_a": measurer.threshold(d_a),
          "d_z": measurer.threshold(d_z)}
    axis = math.unit_axis
    z_section = measurer.computation(
        "compute Z_l", math.forward_equation, ["A_0", "W_l"],
        lambda reduce, mask: math.forward_classify(a0, weight, (th["a0"], th["weight"]),
                                                   reduce=reduce, mask=mask), z)
    dz_section = measurer.computation(
        "compute dJ/dZ_l", "dJ/dZ_l = dJ/dA_l ⊙ S_l", ["dJ/dA_l", "S_l"],
        lambda reduce, mask: _multiply(d_a, s, (th["d_a"], th["s"]), reduce, mask), d_z,
        threshold=None)
    dw_section = measurer.computation(
        "compute dJ/dW_l", math.weight_grad_equation, ["A_0ᵀ", "dJ/dZ_l"],
        lambda reduce, mask: math.weight_grad_classify(a0, d_z, (th["a0"], th["d_z"]),
                                                       reduce=reduce, mask=mask),
        grad, threshold=t, cells_add_up=True)
    act = activation.name
    sections = [
        measurer.tensor("A_0", "A_0 - input value", a0, threshold=th["a0"], unit_axis=axis),
        measurer.tensor("W_l", "W_l - weights of target layer", weight,
                        threshold=th["weight"], mask=grad_mask, sharded=False,
                        mask_title="corresponding to near-zero gradients"),
        z_section,
        measurer.tensor("Z_l", "Z_l - pre-activation output", z, unit_axis=axis,
                        negatives_are_bad=True),
        measurer.tensor("S_l", f"S_l - derivative of the activation ({act})", s,
                        threshold=th["s"], unit_axis=axis),
        measurer.tensor("A_l", "A_l - activation output from target layer", a),
        measurer.tensor("dJ/dA_l", "dJ/dA_l - backprop into this layer", d_a,
                        threshold=th["d_a"], unit_axis=axis),
        dz_section,
        measurer.tensor("dJ/dZ_l", "dJ/dZ_l", d_z, threshold=th["d_z"], unit_axis=axis),
        dw_section,
        measurer.tensor("dJ/dW_l", "dJ/dW_l", grad, threshold=t, sharded=False),
    ]
    values = {"A_0": a0, "W_l": weight, "Z_l": z, "S_l": s, "A_l": a, "dJ/dA_l": d_a,
              "dJ/dZ_l": d_z, "dJ/dW_l": grad}
    for section in sections:
        section["pass"] = "forward" if section["key"] in FORWARD_KEYS else "backward"
        if verbose and section["kind"] == "tensor":
            section.update(measurer.percentiles(values[section["key"]],
                                                sharded=section["key"] not in REPLICATED))
    data["sections"] = sections
    data["gradient_check"] = _gradient_check(math, a0, d_z, grad)
    if explain_causes:
        tensors = {"a0": a0, "s": s, "d_a": d_a, "z": z, "weight": weight, "bias": capture.bias}
        data["causes"] = measure_causes(math, tensors, th, grad_mask, dw_section, activation,
                                        sections[0].get("dead_unit_fraction"))


def _multiply(x, y, thresholds, reduce, mask):
    from ..ops import multiply_classify

    return multiply_classify(x, y, thresholds=thresholds, reduce=reduce, mask=mask,
                             nan_policy="omit")


def _gradient_check(math, a0, d_z, grad) -> dict:
    """How well A_0ᵀ·dJ/dZ_l from the captured tensors reproduces the recorded dJ/dW_l: a
    check that every tensor of the report comes from the same step. Computed in at least
    float32: under autocast A_0 and dJ/dZ_l can differ in dtype."""
    dtype = torch.promote_types(torch.promote_types(a0.dtype, d_z.dtype), torch.float32)
    a0, d_z = a0.to(dtype), d_z.to(dtype)
    if math.is_conv:
        m = math.module
        pairs = math.conv_arguments()["padding"]
        x = F.pad(math.padded_input(a0), [p for pair in reversed(pairs) for p in pair])
        grad_fn = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight,
                   3: torch.nn.grad.conv3d_weight}[x.dim() - 2]
        estimate = grad_fn(x, m.weight.shape, d_z, m.stride, 0, m.dilation, m.groups)
    else:
        estimate = d_z.t() @ a0
    if dist.is_distributed():
        estimate = dist.all_reduce_sum(estimate).to(grad.dtype) / dist.world_size()
    error = (estimate - grad.to(dtype)).abs().max()
    scale = grad.abs().max()
    return {"max_abs_error": float(error), "max_abs_gradient": float(scale),
            "relative_error": float(error / scale) if float(scale) > 0 else float(error)}
