"""Text of a layer report, in the layout of the original `explain_near_zero_gradients` printout:
header, "Forward pass...", "Backward pass...", then the most likely cause and what to try."""

from __future__ import annotations

import numpy as np

from ..analysis import summarise

CAUSE_TITLES = {
    "non_finite": "NaN or Inf values",
    "inputs_near_zero": "inputs near zero (A_0)",
    "dead_activation": "dead activation (S_l)",
    "weights_near_zero": "weights near zero (W_l)",
    "backprop_near_zero": "backprop near zero (dJ/dA_l)",
    "cancellation": "cancellation of positive and negative terms",
    "none": "none: no excess of near-zero gradients",
}
LABEL_WIDTH = 20
_WITHOUT_GRADIENTS = ("frozen", "unused", "no_gradient")


def format_threshold(threshold: float) -> str:
    return "= 0" if threshold == 0 else f"< {threshold:.4g}"


def _line(label: str, text: str) -> str:
    return f"  {(label + ':'):{LABEL_WIDTH}} {text}"


def format_breakdown(breakdown: dict, *, percentages: bool = False) -> str:
    """The analysis helpers' one-line summary of class totals: ``PN: 13 = Σ -5.600, ...``,
    or shares and means (``PN: 61.9% x -0.4308``)."""
    counts = np.asarray(breakdown["counts"], dtype=np.int64)
    if not counts.any():
        return "(no values)"
    sums = np.asarray(breakdown["sums"], dtype=np.float64)
    return summarise(counts, sums, reduce="all", show_percentages=percentages,
                     show_means=percentages)


def render_report(data: dict, verbose: bool = False) -> str:
    lines = _header(data)
    sections = data.get("sections", [])
    if any(s.get("pass") for s in sections):
        lines += ["", "Let:",
                  "  A_0 <- input activation to target layer",
                  "  W_l <- weights of target layer",
                  "  Z_l <- pre-activation output of target layer",
                  "  S_l <- effect of activation function as element-wise multiplier (dA_l/dZ_l)",
                  "  A_l <- output activation of target layer"]
        if verbose:
            lines.append("  PZN <- breakdown of values into (P)ositive, near-(Z)ero, or (N)egative")
        for name, title in (("forward", "Forward pass..."), ("backward", "Backward pass...")):
            lines += ["", title]
            for section in sections:
                if section.get("pass") == name:
                    lines += _section(section, verbose)
    elif sections:
        lines += ["", "Gradients..."]
        for section in sections:
            lines += _section(section, verbose)
    check = data.get("gradient_check")
    if verbose and check:
        lines += ["dJ/dW_l estimate (A_0ᵀ · dJ/dZ_l from the captured tensors) vs actual:",
                  _line("max abs error", f"{check['max_abs_error']:.4g} "
                        f"(relative {check['relative_error']:.3g})")]
    lines += [""] + _causes(data, verbose)
    return "\n".join(lines)


def _header(data: dict) -> list:
    when = "one batch" if data["step"] is None else f"step {data['step']}"
    lines = [f"Layer '{data['layer']}': {data['module']} at {when}"]
    if data.get("units") is not None:
        lines.append(_line("units", str(data["units"])))
    weights = f"{data['weights']}" + (f" (+{data['biases']} biases)" if data.get("biases") else "")
    lines.append(_line("weights", weights))
    basis = ("given threshold" if data.get("threshold_from") == "given"
             else f"threshold from confidence {data['confidence']}")
    without = data.get("status") in _WITHOUT_GRADIENTS
    main = next((c for c in data.get("non_finite", []) if c["tensor"].startswith("dJ/dW")
                 or c["tensor"] == f"dJ/d{data.get('parameter')}"), None)
    if not without:
        count, total = data["near_zero_count"], data.get("gradients", 0)
        share = f"{data['near_zero_fraction'] * 100:.1f}%"
        if main is not None:  # the share is of the finite gradients
            bad = main["nan"] + main["inf"]
            share += f" of the {total - bad} finite ones; {bad} are NaN or Inf"
        lines.append(_line("near-zero gradients", f"{count} of {total} ({share}) "
                           f"{format_threshold(data['threshold'])} ({basis})"))
    if data.get("activation"):
        activation = data["activation"]
        after = "".join(f" after {step}" for step in reversed(activation.get("path", [])))
        lines.append(_line("activation", f"{activation['name']}{after} "
                           f"({activation['source']})"))
    if without:
        lines.append(_line("status", data["status"].replace("_", " ")))
    if data.get("world_size", 1) > 1:
        lines.append(_line("processes", f"{data['world_size']} (batch shards combined)"))
    for note in data.get("notes", []):
        lines.append(_line("note", note))
    return lines


def _section(section: dict, verbose: bool) -> list:
    if section["kind"] == "computation":
        return _computation(section, verbose)
    lines = [f"{section['title']}:",
             _line("shape", f"{tuple(section['shape'])} -> total values: {section['size']}")]
    summary = list(section["summary"])
    if "units_summary" in section and (verbose or section.get("units_noteworthy")):
        summary.append(section["units_summary"])
    lines.append(_line("summary", ", ".join(summary)))
    if verbose:
        lines.append(_line("threshold", format_threshold(section["threshold"])))
        if "values" in section:
            values = ", ".join(f"{v:.4g}" for v in section["values"])
            lines.append(_line("value percentiles", f"{section['percentiles']} -> [{values}]"))
        lines.append(_line("PZN counts/sums", format_breakdown(section["breakdown"])))
        lines.append(_line("PZN counts/means", format_breakdown(section["breakdown"],
                                                                percentages=True)))
    masked = section.get("masked")
    if masked:
        lines.append(_line(masked["title"], masked["summary"]))
        if verbose:
            lines.append(_line(masked["title"], format_breakdown(masked["breakdown"],
                                                                 percentages=True)))
    return lines


def _computation(section: dict, verbose: bool) -> list:
    lines = [f"{section['title']}:",
             _line("inputs examined", ", ".join(section["inputs"])),
             _line("summary", section["summary"])]
    if not verbose:
        return lines
    if section["breakdown"]["all"] is not None:
        lines.append(_line("PZN combinations", format_breakdown(section["breakdown"]["all"])))
        lines.append(_line("PZN combinations", format_breakdown(section["breakdown"]["all"],
                                                                percentages=True)))
    name = section["equation"].split(" = ")[0]
    lines.append(f"{name} {section['near_zero_fraction'] * 100:.1f}% near zero "
                 f"({format_threshold(section['threshold'])}):")
    near = section["breakdown"]["near_zero"]
    if near is None:
        return lines
    lines.append(_line("PZN combinations", format_breakdown(near)))
    lines.append(_line("PZN combinations", format_breakdown(near, percentages=True)))
    for explanation in section["explanations"]:
        lines.append(f"  {explanation['fraction'] * 100:.1f}% affected by "
                     f"{explanation['description']}")
    if not section.get("measured_cancellation"):
        lines.append("  (large result, reduced in the kernel: cancellation not measured here)")
    return lines


def _causes(data: dict, verbose: bool) -> list:
    causes = data.get("causes", [])
    if not causes and data.get("status") in _WITHOUT_GRADIENTS:
        return [f"No gradients to explain: the layer is {data['status'].replace('_', ' ')} "
                "(see the note above)"]
    if not causes:
        return ["Most likely cause: not determined (see the notes above)"]
    top = causes[0]
    lines = [f"Most likely cause: {CAUSE_TITLES[top['cause']]} ({top['fraction'] * 100:.1f}%)",
             f"  {top['description']}"]
    if top.get("advice"):
        lines.append("  What to try:")
        lines += [f"    - {tip}" for tip in top["advice"]]
    if len(causes) > 1:
        lines.append("Other causes:")
        lines += [f"  - {CAUSE_TITLES[c['cause']]}: {c['fraction'] * 100:.1f}%"
                  + (f": {c['description']}" if verbose else "") for c in causes[1:]]
    return lines
