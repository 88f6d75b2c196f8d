"""Which factor of dJ/dW_l = A_0ᵀ · (dJ/dA_l ⊙ S_l) makes a layer's gradients near zero.

Each cause is measured over the products that feed the near-zero gradients: the fraction of them
in which that factor is near zero (A_0: inputs, S_l: dead activation, dJ/dA_l: backprop), or in
which neither factor is near zero so that the gradient is small only because positive and
negative products cancel. Near-zero weights W_l are a cause through S_l: they are measured on
the pre-activations Z_l where S_l is near zero.
"""

from __future__ import annotations

import torch

from ..terms import FIRST_NEAR_ZERO, NEITHER_NEAR_ZERO, SECOND_NEAR_ZERO
from . import distributed as dist
from .advice import advice_for
from .measure import near_zero_mask
from .model import Cause

CAUSE_NAMES = ("non_finite", "inputs_near_zero", "dead_activation", "weights_near_zero",
               "backprop_near_zero", "cancellation", "none")


def no_cause(near_zero_fraction: float, expected: float, given_threshold: bool) -> list:
    basis = "the given threshold" if given_threshold else "the confidence level"
    return [Cause("none", near_zero_fraction,
                  f"{near_zero_fraction * 100:.1f}% of the weight gradients are near zero, no "
                  f"more than the {expected * 100:.1f}% that {basis} alone implies (with 10% "
                  "leeway): nothing stands out", advice_for("none"))]


def measure_causes(math, tensors: dict, thresholds: dict, grad_mask, gradient_section: dict,
                   activation, dead_input_units: float = None) -> list:
    """Causes, strongest first (`Cause`; the dead activation's carries the forward detail).

    `tensors`/`thresholds` hold a0, s, d_a, z, bias (flat where the layer needs it); `grad_mask`
    marks the near-zero weight gradients; `gradient_section` is the dJ/dW_l computation (its
    class totals over the near-zero gradients give the input and cancellation shares).
    """
    near = gradient_section.near_zero_totals.counts
    total = sum(near)
    if total == 0:
        return []
    inputs = sum(near[i] for i in FIRST_NEAR_ZERO) / total
    cancelling = sum(near[i] for i in NEITHER_NEAR_ZERO) / total
    dead = _second_factor_share(math, tensors["a0"], tensors["s"], thresholds["a0"],
                                thresholds["s"], grad_mask)
    backprop = _second_factor_share(math, tensors["a0"], tensors["d_a"], thresholds["a0"],
                                    thresholds["d_a"], grad_mask)
    forward = _dead_positions_forward(math, tensors, thresholds)
    weights = dead * forward["weights_share"]

    found = {
        "inputs_near_zero": (inputs, "A_0 (the layer input) is near zero in "
                             f"{inputs * 100:.1f}% of the products behind the near-zero "
                             "gradients" + ("" if not dead_input_units else
                                            f"; {dead_input_units * 100:.1f}% of the input "
                                            "units are near zero for the whole batch")),
        "dead_activation": (dead, f"S_l (the derivative of {activation.name}) is near zero in "
                            f"{dead * 100:.1f}% of the products behind the near-zero gradients; "
                            + forward["description"]),
        "weights_near_zero": (weights, "W_l is near zero in "
                              f"{forward['weights_share'] * 100:.1f}% of the products forming "
                              "the pre-activations where S_l is near zero"),
        "backprop_near_zero": (backprop, "dJ/dA_l (the gradient from the layers above) is near "
                               f"zero in {backprop * 100:.1f}% of the products behind the "
                               "near-zero gradients"),
        "cancellation": (cancelling, "neither A_0 nor dJ/dZ_l is near zero in "
                         f"{cancelling * 100:.1f}% of the products behind the near-zero "
                         "gradients: positive and negative products cancel out"),
    }
    causes = [Cause(name, float(fraction), text,
                    advice_for(name, activation=activation, forward=forward))
              for name, (fraction, text) in found.items() if fraction > 0]
    causes.sort(key=lambda c: -c.fraction)
    _weights_before_dead(causes, forward["weights_share"])
    for cause in causes:
        if cause.cause == "dead_activation":
            cause.detail = {k: v for k, v in forward.items()
                            if k not in ("description", "holder_description")}
    return causes


def _weights_before_dead(causes: list, weights_share: float) -> None:
    """Near-zero weights that explain most dead pre-activations are the root cause: list them
    right before the dead activation they cause."""
    names = [c.cause for c in causes]
    if weights_share < 0.5 or "weights_near_zero" not in names or "dead_activation" not in names:
        return
    weights = causes.pop(names.index("weights_near_zero"))
    causes.insert([c.cause for c in causes].index("dead_activation"), weights)


def _second_factor_share(math, a0, second, a0_threshold, second_threshold, grad_mask) -> float:
    """Fraction of the products A_0 x `second` feeding the near-zero gradients in which
    `second` is near zero (NaN entries of `second`, where it is unknown, are left out)."""
    if second is None:
        return 0.0
    counts, _ = math.weight_grad_classify(a0, second, (a0_threshold, second_threshold),
                                          reduce="all", mask=grad_mask)
    counts = dist.all_reduce_sum(counts)
    total = int(counts.sum())
    return sum(int(counts[i]) for i in SECOND_NEAR_ZERO) / total if total else 0.0


def _dead_positions_forward(math, tensors: dict, thresholds: dict) -> dict:
    """At the positions where S_l is near zero: how the activation's input got there (Z_l =
    A_0·W_l + b_l, and the normalisation after it when the activation is reached through one)."""
    z, s, bias, x = tensors["z"], tensors["s"], tensors["bias"], tensors.get("x", tensors["z"])
    dead = near_zero_mask(s, thresholds["s"])
    count = dist.global_count(dead)
    if count == 0:
        return {"weights_share": 0.0, "inputs_share": 0.0, "dead_positions": 0,
                "description": "S_l is never near zero"}
    counts, _ = math.forward_classify(tensors["a0"], tensors["weight"],
                                      (thresholds["a0"], thresholds["weight"]), reduce="all",
                                      mask=dead)
    counts = dist.all_reduce_sum(counts)
    products = max(int(counts.sum()), 1)
    weights_share = sum(int(counts[i]) for i in SECOND_NEAR_ZERO) / products
    inputs_share = sum(int(counts[i]) for i in FIRST_NEAR_ZERO) / products
    bias_b = _broadcast_bias(math, bias, z)
    units = _dead_units(math, dead)
    # Means over the dead units where there are any (units always dead, whatever the input),
    # else over the positions where S_l is near zero.
    where, where_count = dead, count
    if bool(units.any()):
        shape = [1] * dead.dim()
        shape[math.unit_axis] = -1
        where = units.reshape(shape).expand(dead.shape)
        where_count = dist.global_count(where)
    mean_z, mean_bias = _means_where(where, where_count, z, bias_b)
    mean_product = mean_z - mean_bias
    unit_bias = _unit_mean(bias, units) if bias is not None else None
    result = {"weights_share": weights_share, "inputs_share": inputs_share,
              "dead_positions": count, "dead_units": int(units.sum()), "mean_z": mean_z,
              "mean_bias": mean_bias, "dead_units_mean_bias": unit_bias,
              "mean_product": mean_product}
    norm = tensors.get("norm")
    if norm is not None and x is not z:
        # Over the dead units where there are any: their shift, not the whole layer's.
        result.update(_norm_hold(norm, where, where_count, x, math))
        result["description"] = result["holder_description"]
        return result
    if bias is not None and mean_bias < 0 and mean_bias < mean_product:
        over = "the dead units" if bool(units.any()) else "the positions where S_l is near zero"
        why = (f"over {over}, the bias b_l (mean {mean_bias:.3g}) outweighs A_0·W_l (mean "
               f"{mean_product:.3g}), holding Z_l at a mean of {mean_z:.3g}")
        result["holder"] = "bias"
    elif weights_share >= 0.5:
        why = f"there W_l is near zero in {weights_share * 100:.1f}% of the products"
        result["holder"] = "weights"
    elif inputs_share >= 0.5:
        why = f"there A_0 is near zero in {inputs_share * 100:.1f}% of the products"
        result["holder"] = "inputs"
    else:
        why = (f"there Z_l averages {mean_z:.3g} (A_0·W_l {mean_product:.3g}, b_l "
               f"{mean_bias:.3g})")
        result["holder"] = "layer_output"
    result["description"] = why
    return result


def _means_where(mask, count, *tensors) -> list:
    """Means of each tensor over the True entries of `mask` (NaN entries count as zero)."""
    sums = torch.stack([torch.where(mask, t, torch.zeros_like(t)).nansum() for t in tensors])
    return (dist.all_reduce_sum(sums.double()) / count).tolist()


def _dead_units(math, dead) -> torch.Tensor:
    """Units (features or channels) whose activation is dead at every position of the batch."""
    axis = math.unit_axis % dead.dim()
    per_unit = dead.movedim(axis, 0).reshape(dead.shape[axis], -1)
    alive = dist.all_reduce_sum((~per_unit).sum(1))
    return alive == 0


def _unit_mean(values, units):
    """Mean of a per-unit vector over the selected units, or None when none is selected."""
    if values is None or not bool(units.any()):
        return None
    return float(values.to(torch.float64)[units].mean())


def _norm_hold(norm: dict, dead, count, x, math) -> dict:
    """What holds the activation's input X_l = scale·normalised(Z_l) + shift where it is dead:
    the norm's shift, its scale, or the layer's (normalised) output itself."""
    kind = norm["type"]
    scale, shift = norm.get("weight"), norm.get("bias")
    def spread(p, fill):
        if p is None:
            return torch.full_like(x, fill)
        if norm["trailing"]:
            return p.to(x.dtype).expand(x.shape)
        shape = [1] * x.dim()
        shape[math.unit_axis] = -1
        return p.to(x.dtype).reshape(shape).expand(x.shape)

    shift_b, scale_b = spread(shift, 0.0), spread(scale, 1.0)
    mean_x, mean_shift, mean_scale = _means_where(dead, count, x, shift_b, scale_b.abs())
    overall_scale = float(scale_b.abs().nanmean()) if scale is not None else 1.0
    scaled = mean_x - mean_shift
    if shift is not None and mean_shift < 0 and mean_shift < scaled:
        holder = "norm_shift"
        why = (f"there the shift (bias) of {kind} (mean {mean_shift:.3g}) outweighs the "
               f"scaled, normalised Z_l (mean {scaled:.3g}), holding the activation's input at "
               f"a mean of {mean_x:.3g}")
    elif scale is not None and mean_scale < 0.1 * overall_scale:
        holder = "norm_scale"
        why = (f"there the scale (weight) of {kind} is near zero (mean |scale| {mean_scale:.3g}"
               f" against {overall_scale:.3g} overall), so the activation's input stays at the "
               f"shift (mean {mean_shift:.3g})")
    else:
        holder = "layer_output"
        why = (f"there Z_l itself, normalised by {kind}, keeps the activation's input low "
               f"(mean {mean_x:.3g}; shift {mean_shift:.3g}): this layer's outputs are below "
               "their batch statistics")
    return {"holder": holder, "holder_description": why, "norm": kind, "mean_input": mean_x,
            "mean_shift": mean_shift, "mean_scale": mean_scale}


def _broadcast_bias(math, bias, z):
    if bias is None:
        return torch.zeros_like(z)
    if math.is_conv:
        return bias.reshape((1, -1) + (1,) * (z.dim() - 2)).expand_as(z)
    return bias.expand_as(z)
