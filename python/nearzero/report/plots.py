"""PNG figures with matplotlib, drawn on their own Figure objects (no pyplot state, no GUI):
a layer report's causes and class breakdowns, a model overview (the history's are in
dashboard.py)."""

from __future__ import annotations

import os

import numpy as np

from ..terms import PAIR_TERMS
from .text import CAUSE_TITLES

_CLASS_COLOURS = {"P": "#4c72b0", "Z": "#dd8452", "N": "#55a868"}


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path) -> str:
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_report(data: dict, path, *, title: str = None) -> str:
    """Causes (bars) and the class breakdown of every tensor (P/Z/N) and computation (nine
    class pairs over its near-zero results)."""
    sections = data.get("sections", [])
    tensors = [s for s in sections if s["kind"] == "tensor"]
    computations = [s for s in sections if s["kind"] == "computation"]
    fig = _figure(11, 8)
    grid = fig.subplots(2, 2)
    _causes_axes(grid[0, 0], data.get("causes", []))
    _tensor_axes(grid[0, 1], tensors)
    _pairs_axes(grid[1, 0], computations, "near_zero", "near-zero results: class pairs")
    _pairs_axes(grid[1, 1], computations, "all", "all results: class pairs (verbose reports)")
    when = "one batch" if data.get("step") is None else f"step {data['step']}"
    fig.suptitle(title or f"Layer '{data['layer']}' at {when}: "
                 f"{data['near_zero_fraction'] * 100:.1f}% near-zero gradients")
    return _save(fig, path)


OVERVIEW_LAYERS = 25  # the overview plot shows the worst layers and counts the rest


def plot_overview(data: dict, path, *, title: str = None) -> str:
    """The near-zero gradient share of the most affected layers (at most OVERVIEW_LAYERS), each
    with its top cause written beside the bar; how many more layers there are below them."""
    from .overview import top_cause_label

    layers = data["layers"][:OVERVIEW_LAYERS]
    hidden = len(data["layers"]) - len(layers)
    fig = _figure(9, 0.32 * max(len(layers), 2) + 1.6)
    ax = fig.subplots()
    names = [d["layer"] for d in layers][::-1]
    shares = [d["near_zero_fraction"] * 100 for d in layers][::-1]
    ax.barh(names, shares, color="#dd8452")
    for y, d in enumerate(layers[::-1]):
        inside = shares[y] > 55  # long bars carry their label inside, so it stays within 100%
        ax.text(shares[y] - 1 if inside else shares[y] + 1, y, top_cause_label(d), va="center",
                ha="right" if inside else "left", fontsize="x-small")
    ax.set_xlim(0, 100)
    ax.tick_params(axis="y", labelsize="small")
    ax.set_xlabel("weight gradients below the confidence threshold (%) - top cause beside")
    if hidden:
        ax.set_title(f"the {len(layers)} most affected layers; {hidden} more not shown",
                     fontsize="small")
    when = "one batch" if data.get("step") is None else f"step {data.get('step')}"
    fig.suptitle(title or f"Near-zero gradients by layer at {when}")
    return _save(fig, path)


def _causes_axes(ax, causes):
    names = [CAUSE_TITLES[c["cause"]] for c in causes][::-1]
    shares = [min(c["fraction"], 1.0) * 100 for c in causes][::-1]
    ax.barh(names, shares, color="#c44e52")
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of products behind near-zero gradients (%)")
    ax.set_title("causes, strongest at the top", fontsize="medium")
    ax.tick_params(axis="y", labelsize="small")
    if sum(shares) > 100.5:
        ax.annotate("a product can have several near-zero factors,\nso the shares can add up "
                    "past 100%", (0.98, 0.02), xycoords="axes fraction", ha="right",
                    va="bottom", fontsize="x-small", color="#555555")


def _tensor_axes(ax, tensors):
    names = [s["key"] for s in tensors]
    bottom = np.zeros(len(tensors))
    for k, term in enumerate(("P", "Z", "N")):
        shares = np.array([_shares(s["breakdown"])[k] for s in tensors]) * 100
        ax.bar(names, shares, bottom=bottom, label=term, color=_CLASS_COLOURS[term])
        bottom += shares
    ax.set_ylabel("% of values")
    ax.set_ylim(0, 100)
    ax.set_title("tensors: positive / near-zero / negative", fontsize="medium")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    if tensors:  # beside the axes: stacked bars fill them to the top
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _pairs_axes(ax, computations, which, title):
    computations = [s for s in computations if s["breakdown"][which] is not None]
    terms = PAIR_TERMS
    width = 0.8 / max(len(computations), 1)
    x = np.arange(len(terms))
    for i, section in enumerate(computations):
        shares = np.array(_shares(section["breakdown"][which])) * 100
        ax.bar(x + i * width, shares, width, label=section["equation"].split(" = ")[0])
    ax.set_xticks(x + width * (len(computations) - 1) / 2, terms)
    if not computations:
        ax.text(0.5, 0.5, "not measured: no computation stood out\n(verbose reports measure all)",
                transform=ax.transAxes, ha="center", va="center", fontsize="small",
                color="#555555")
    ax.set_ylabel("% of products")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize="medium", pad=28 if computations else 6)
    if computations:
        ax.legend(fontsize="x-small", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3,
                  frameon=False)


def _shares(breakdown: dict) -> list:
    counts = breakdown["counts"]
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]
