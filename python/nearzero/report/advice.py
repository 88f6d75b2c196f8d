"""What to try for each cause of near-zero gradients, worded for the layer's activation and what
the report measured."""

from __future__ import annotations

# Activations whose derivative is exactly zero on a whole half-line: units can die.
_RECTIFIERS = ("relu", "relu6", "hardtanh", "threshold", "hardshrink", "softshrink")
# Activations whose derivative fades at large |Z|: units saturate.
_SATURATING = ("sigmoid", "tanh", "hardsigmoid", "softsign", "logsigmoid")


def _family(activation) -> str:
    name = (activation.name if activation is not None else "").lower().split(" ")[0]
    if name.startswith(_RECTIFIERS):
        return "rectifier"
    if name.startswith(_SATURATING):
        return "saturating"
    return "other"


def advice_for(cause: str, *, activation=None, forward: dict = None) -> list:
    forward = forward or {}
    if cause == "dead_activation":
        return _dead_activation(activation, forward)
    return list(_FIXED.get(cause, ()))


def _dead_activation(activation, forward) -> list:
    tips = []
    holder = forward.get("holder")
    if holder == "bias":
        unit_bias = forward.get("dead_units_mean_bias")
        shown = (f"the dead units' mean bias is {unit_bias:.3g}" if unit_bias is not None else
                 f"the mean bias where the activation is dead is {forward['mean_bias']:.3g}")
        tips.append(f"initialise the biases at zero or slightly positive ({shown}), and check "
                    "what drives them negative")
    elif holder == "norm_shift":
        tips.append(f"the shift (bias) of {forward['norm']} holds the activation below zero "
                    f"(mean {forward['mean_shift']:.3g}): check its initialisation (zero) and "
                    "what drives it negative (learning rate, weight decay on norm parameters)")
    elif holder == "norm_scale":
        tips.append(f"the scale (weight) of {forward['norm']} has collapsed towards zero: "
                    "exclude norm parameters from weight decay and check its initialisation "
                    "(one)")
    if _family(activation) == "saturating":
        tips += ["the activation saturates: scale inputs and initial weights down (Glorot/Xavier "
                 "initialisation) or use a non-saturating activation (ReLU family, GELU)",
                 "add normalisation (BatchNorm / LayerNorm) before the activation"]
    else:
        tips += ["use an activation that passes gradient for negative inputs: LeakyReLU, GELU, "
                 "ELU or SiLU",
                 "lower the learning rate (large updates push units into the dead region) or "
                 "add gradient clipping",
                 "use He (Kaiming) initialisation for the weights"]
        if not forward.get("norm"):
            tips.insert(-1, "add normalisation (BatchNorm / LayerNorm) before the activation")
    return tips


_FIXED = {
    "inputs_near_zero": [
        "check the data or the layer below: input features that are always zero give their "
        "weights no gradient (standardise inputs, drop constant features)",
        "if the input comes from an earlier layer, explain that layer: its units may be dead",
    ],
    "weights_near_zero": [
        "the weights have collapsed towards zero: reduce weight decay / L2 regularisation",
        "check the initialisation scale (He/Kaiming for ReLU, Glorot/Xavier otherwise) and "
        "lower the learning rate",
    ],
    "backprop_near_zero": [
        "gradients vanish above this layer: explain the layers after it (the next layer's "
        "weights, saturating activations, a saturated loss or detached outputs)",
        "add residual connections or normalisation to carry gradient down, or use a "
        "non-saturating activation above",
    ],
    "cancellation": [
        "positive and negative contributions cancel across the batch: often harmless; if it "
        "persists, try a larger batch, centred inputs or a lower learning rate",
    ],
    "none": ["nothing to fix in this layer"],
}
