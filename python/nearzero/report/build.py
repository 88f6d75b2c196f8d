"""Builds the report of one layer at one step from its capture: the forward pass (A_0, W_l,
Z_l, S_l, A_l), the backward pass (dJ/dA_l, dJ/dZ_l, dJ/dW_l) and the ranked causes.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from . import distributed as dist
from .activations import Activation, assumed_activation
from . import coverage
from .capture import resolve_activation
from .causes import measure_causes, no_cause
from .layers import LayerMath, is_supported, main_parameter_name, units_of
from .measure import Measurer, near_zero_mask
from .nonfinite import count_non_finite, finite_or_nan, non_finite_cause
from .model import LayerReport
from .report import Report

FORWARD_KEYS = ("A_0", "W_l", "compute Z_l", "Z_l", "X_l", "S_l", "A_l")
REPLICATED = ("W_l", "dJ/dW_l")  # the same on every process (the others are batch shards)
SHARDED = ("A_0", "Z_l", "A_l", "dJ/dA_l", "dJ/dZ_l")  # batch shards under torch.distributed
GRAD_NOTE = ("the layer ran but got no gradients at this step (its output did not reach the "
             "loss, or backward() ran outside `recorder.step()`)")


def build_report(capture, *, confidence: float = 0.99, threshold: float = None,
                 verbose: bool = False) -> Report:
    if capture.pending_activation is not None:  # S_l made for this report only
        capture = dataclasses.replace(capture)
        resolve_activation(capture)
    module = capture.module
    param = main_parameter_name(module)
    report = _header(capture, param, confidence)
    status = _unexplained_status(capture, param)
    if status is not None:
        report.status, note = status
        report.notes.append(note)
        report.threshold = threshold or 0.0
        return Report(report, verbose=verbose)
    grads = _averaged(capture.grads)
    grad = grads[param]
    found = count_non_finite(_forward_order(capture, param, grads), sharded=SHARDED)
    measurer = Measurer(confidence, omit_non_finite=bool(found), all_totals=verbose)
    if found:
        capture = _finite_capture(capture)
        grads = {name: finite_or_nan(g) for name, g in grads.items()}
        grad = grads[param]
    t = measurer.threshold(grad, sharded=False) if threshold is None else float(threshold)
    grad_mask = near_zero_mask(grad, t)
    count = int(grad_mask.sum())
    finite = int(torch.isfinite(grad).sum()) if found else grad.numel()
    fraction = count / max(finite, 1)
    units = grad.reshape(grad.shape[0], -1) if grad.dim() > 1 else grad[:, None]
    expected = measurer.expected_fraction(finite, threshold is not None)
    noteworthy = measurer.is_noteworthy(fraction, finite, threshold is not None)
    report.expected_fraction, report.threshold = expected, t
    report.threshold_from = "given" if threshold is not None else "confidence"
    report.near_zero_count, report.near_zero_fraction = count, fraction
    report.gradients = grad.numel()
    report.units_without_gradient = float((units == 0).all(1).float().mean())
    report.non_finite = found
    first = [non_finite_cause(found, f"dJ/d{param}" if not is_supported(module) else "dJ/dW_l")
             ] if found else []
    analysable = is_supported(module) and all(
        t is not None for t in (capture.a0, capture.z, capture.d_z, capture.weight))
    if not analysable:
        report.status = "gradients_only"
        causes = coverage.explain_other(report, capture, measurer, grads, param, t)
        if causes is None:
            causes = [] if noteworthy else no_cause(fraction, expected, threshold is not None)
        report.causes = first + causes
        return Report(report, verbose=verbose)
    report.status = "analysed"
    _analyse(report, capture, measurer, grad, grad_mask, t, verbose, explain_causes=noteworthy)
    if not noteworthy:
        report.causes = no_cause(fraction, expected, threshold is not None)
    report.causes = first + report.causes
    return Report(report, verbose=verbose)


def _unexplained_status(capture, param):
    """(status, note) for a layer with no gradients to explain, else None."""
    module = capture.module
    params = dict(module.named_parameters(recurse=False))
    if params and not any(p.requires_grad for p in params.values()):
        return "frozen", ("the layer is frozen: every parameter has requires_grad=False, so it "
                          "gets no gradients")
    if capture.grads.get(param) is not None:
        return None
    if capture.calls == 0:
        return "unused", ("the layer is unused: it was not called in this step's forward pass, "
                          "so its parameters got no gradient")
    return "no_gradient", GRAD_NOTE


def _forward_order(capture, param, grads) -> list:
    """The captured tensors by the report's names, in forward order."""
    named = [("A_0", capture.a0), ("W_l", capture.weight), ("b_l", capture.bias),
             ("Z_l", capture.z), ("A_l", capture.a), ("dJ/dA_l", capture.d_a),
             ("dJ/dZ_l", capture.d_z)]
    main = "dJ/dW_l" if is_supported(capture.module) else f"dJ/d{param}"
    named.append((main, grads[param]))
    named += [(f"dJ/d{name}", g) for name, g in grads.items() if name != param]
    return named


def _finite_capture(capture):
    """A copy of the capture whose tensors hold NaN wherever they held NaN or Inf."""
    fields = ("a0", "weight", "bias", "z", "x", "a", "s", "d_x", "d_a", "d_z")
    changes = {f: finite_or_nan(getattr(capture, f)) for f in fields}
    changes["grads"] = {name: finite_or_nan(g) for name, g in capture.grads.items()}
    return dataclasses.replace(capture, **changes)


def _averaged(grads: dict) -> dict:
    """The hooks saw this process's share of each gradient; DDP applies their average."""
    if not dist.is_distributed():
        return grads
    return {name: (dist.all_reduce_sum(g) / dist.world_size()).to(g.dtype)
            for name, g in grads.items()}


def _header(capture, param, confidence) -> LayerReport:
    module = capture.module
    weight = getattr(module, param, None) if param else None
    bias = getattr(module, "bias", None)
    return LayerReport(
        layer=capture.name, layer_type=type(module).__name__,
        module=LayerMath(module).describe(), step=capture.step, units=units_of(module),
        weights=int(weight.numel()) if isinstance(weight, torch.Tensor) else 0,
        biases=int(bias.numel()) if isinstance(bias, torch.Tensor) else 0,
        parameter=param, confidence=float(confidence), world_size=dist.world_size(),
        supported=is_supported(module))


def _activation_tensors(capture, math):
    """S_l, A_l, dJ/dA_l and dJ/dX_l (flat; X_l is the activation's input, Z_l itself unless
    the activation is reached through normalisation or pass-through ops), with what S_l is;
    fills gaps the capture left."""
    z, d_z = math.flat(capture.z), math.flat(capture.d_z)
    if capture.s is None:
        s, a, d_a, activation = assumed_activation(z, d_z)
        if capture.consumer:
            through = (f" through {', '.join(capture.path)}" if capture.path else "")
            activation.note = (f"Z_l feeds {capture.consumer}{through}, which is not an "
                               f"elementwise activation; {activation.note.split('; ', 1)[-1]}")
        return s, a, d_a, d_z, activation
    s, a = math.flat(capture.s), math.flat(capture.a)
    # A copy: notes added here must not pile up on the capture when it is explained again.
    activation = dataclasses.replace(capture.activation or Activation("unknown", "module"))
    looked_through = bool(activation.path)
    d_x = math.flat(capture.d_x) if looked_through else d_z
    if looked_through:
        activation.note = ((activation.note + "; ") if activation.note else "") + (
            f"Z_l reaches the activation through {', '.join(activation.path)}: S_l is the "
            "activation's derivative at its real input X_l, and dJ/dX_l = dJ/dA_l ⊙ S_l")
    d_a = math.flat(capture.d_a)
    if d_a is None and d_x is not None:  # A_l did not reach the loss through autograd hooks
        d_a = torch.where(s != 0, d_x / s, torch.full_like(d_x, float("nan")))
        activation.note = ((activation.note + "; ") if activation.note else "") + (
            "dJ/dA_l was not captured; it is dJ/dX_l / S_l where S_l != 0")
    if d_x is None:
        d_x = d_a * s
    return s, a, d_a, d_x, activation


def _analyse(report, capture, measurer, grad, grad_mask, t, verbose, explain_causes) -> None:
    math = LayerMath(capture.module)
    a0 = math.flat(capture.a0)
    z, d_z = math.flat(capture.z), math.flat(capture.d_z)
    s, a, d_a, d_x, activation = _activation_tensors(capture, math)
    looked_through = bool(activation.path)
    report.activation = {"name": activation.name, "source": activation.source,
                         "note": activation.note, "path": list(activation.path)}
    if activation.note:
        report.notes.append(activation.note)
    if capture.calls > 1:
        report.notes.append(f"the layer ran {capture.calls} times in this step; the report "
                             "explains its first call, while dJ/dW_l sums over all of them")
    weight = capture.weight
    th = {"a0": measurer.threshold(a0), "weight": measurer.threshold(weight, sharded=False),
          "s": measurer.threshold(s), "d_a": measurer.threshold(d_a),
          "d_z": measurer.threshold(d_z)}
    x_name = "dJ/dX_l" if looked_through else "dJ/dZ_l"
    axis = math.unit_axis
    z_section = measurer.computation(
        "compute Z_l", math.forward_equation, ["A_0", "W_l"],
        lambda reduce, mask: math.forward_classify(a0, weight, (th["a0"], th["weight"]),
                                                   reduce=reduce, mask=mask), z)
    dz_section = measurer.computation(
        f"compute {x_name}", f"{x_name} = dJ/dA_l ⊙ S_l", ["dJ/dA_l", "S_l"],
        lambda reduce, mask: _multiply(d_a, s, (th["d_a"], th["s"]), reduce, mask), d_x,
        threshold=None)
    dw_section = measurer.computation(
        "compute dJ/dW_l", math.weight_grad_equation, ["A_0ᵀ", "dJ/dZ_l"],
        lambda reduce, mask: math.weight_grad_classify(a0, d_z, (th["a0"], th["d_z"]),
                                                       reduce=reduce, mask=mask),
        grad, threshold=t, cells_add_up=True, needed=explain_causes)
    act = activation.name
    sections = [
        measurer.tensor("A_0", "A_0 - input value", a0, threshold=th["a0"], unit_axis=axis),
        measurer.tensor("W_l", "W_l - weights of target layer", weight,
                        threshold=th["weight"], mask=grad_mask, sharded=False,
                        mask_title="corresponding to near-zero gradients"),
        z_section,
        measurer.tensor("Z_l", "Z_l - pre-activation output", z, unit_axis=axis,
                        negatives_are_bad=True),
        *([measurer.tensor("X_l", "X_l - the activation's input (Z_l after "
                           f"{' and '.join(activation.path)})", math.flat(capture.x),
                           unit_axis=axis, negatives_are_bad=True)] if looked_through else []),
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
    values = {"A_0": a0, "W_l": weight, "Z_l": z, "X_l": math.flat(capture.x), "S_l": s,
              "A_l": a, "dJ/dA_l": d_a, "dJ/dZ_l": d_z, "dJ/dW_l": grad}
    for section in sections:
        section.pass_ = "forward" if section.key in FORWARD_KEYS else "backward"
        if verbose and section.kind == "tensor":
            found = measurer.percentiles(values[section.key],
                                         sharded=section.key not in REPLICATED)
            section.percentiles, section.values = found["percentiles"], found["values"]
    report.sections = sections
    if verbose and not report.non_finite:  # shown in the verbose text only
        report.gradient_check = _gradient_check(math, a0, d_z, grad)
    if explain_causes:
        tensors = {"a0": a0, "s": s, "d_a": d_a, "z": z, "weight": weight, "bias": capture.bias,
                   "x": math.flat(capture.x) if looked_through else z, "norm": capture.norm}
        report.causes = measure_causes(math, tensors, th, grad_mask, dw_section, activation,
                                       sections[0].dead_unit_fraction)


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
