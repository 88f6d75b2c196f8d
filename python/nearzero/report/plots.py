"""PNG figures with matplotlib, drawn on their own Figure objects (no pyplot state, no GUI):
a layer report's causes and class breakdowns, a model overview (the history's are in
dashboard.py)."""

from __future__ import annotations

import os

import numpy as np

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
    _pairs_axes(grid[1, 1], computations, "all", "all results: class pairs")
    fig.suptitle(title or f"Layer '{data['layer']}' at step {data['step']}: "
                 f"{data['near_zero_fraction'] * 100:.1f}% near-zero gradients")
    return _save(fig, path)


def plot_overview(data: dict, path, *, title: str = None) -> str:
    """Each layer's near-zero gradient share, its top cause written beside the bar."""
    layers = data["layers"]
    fig = _figure(9, 0.6 * max(len(layers), 2) + 1.5)
    ax = fig.subplots()
    names = [d["layer"] for d in layers][::-1]
    shares = [d["near_zero_fraction"] * 100 for d in layers][::-1]
    ax.barh(names, shares, color="#dd8452")
    for y, d in enumerate(layers[::-1]):
        causes = d.get("causes", [])
        label = CAUSE_TITLES[causes[0]["cause"]] if causes else "not analysed"
        ax.text(shares[y] + 1, y, label, va="center", fontsize="small")
    ax.set_xlim(0, 130)
    ax.set_xlabel("near-zero weight gradients (%)")
    fig.suptitle(title or f"Near-zero gradients by layer at step {data.get('step')}")
    return _save(fig, path)


def _causes_axes(ax, causes):
    names = [CAUSE_TITLES[c["cause"]] for c in causes][::-1]
    shares = [c["fraction"] * 100 for c in causes][::-1]
    ax.barh(names, shares, color="#c44e52")
    ax.set_xlim(0, 105)
    ax.set_xlabel("share of products behind near-zero gradients (%)")
    ax.set_title("causes, strongest at the top", fontsize="medium")
    ax.tick_params(axis="y", labelsize="small")


def _tensor_axes(ax, tensors):
    names = [s["key"] for s in tensors]
    bottom = np.zeros(len(tensors))
    for k, term in enumerate(("P", "Z", "N")):
        shares = np.array([_shares(s["breakdown"])[k] for s in tensors]) * 100
        ax.bar(names, shares, bottom=bottom, label=term, color=_CLASS_COLOURS[term])
        bottom += shares
    ax.set_ylabel("% of values")
    ax.set_title("tensors: positive / near-zero / negative", fontsize="medium")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    if tensors:
        ax.legend(fontsize="small")


def _pairs_axes(ax, computations, which, title):
    terms = ("PP", "PZ", "PN", "ZP", "ZZ", "ZN", "NP", "NZ", "NN")
    width = 0.8 / max(len(computations), 1)
    x = np.arange(len(terms))
    for i, section in enumerate(computations):
        shares = np.array(_shares(section["breakdown"][which])) * 100
        ax.bar(x + i * width, shares, width, label=section["equation"].split(" = ")[0])
    ax.set_xticks(x + width * (len(computations) - 1) / 2, terms)
    ax.set_ylabel("% of products")
    ax.set_title(title, fontsize="medium")
    if computations:
        ax.legend(fontsize="small")


def _shares(breakdown: dict) -> list:
    counts = breakdown["counts"]
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]
