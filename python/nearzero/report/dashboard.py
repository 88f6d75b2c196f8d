"""Figures of a recorder's per-step history: the layer history (near-zero, non-finite and
no-gradient shares per layer) and the training overview (loss, warnings, and per tensor kind
the norms, a layer comparison and the dead-unit rates). With many layers the worst few are
drawn and named, the others shown as one band, so that 8 and 50 layers read alike.
"""

from __future__ import annotations

import numpy as np

from .plots import _figure, _save

NAMED_LAYERS = 8  # up to this many layers every layer is a labelled line
WORST_LAYERS = 4  # above it, the worst few are lines and the rest a band
# Tensor kinds of the overview: (title, norm statistic, rate statistic, rate title).
KINDS = (
    ("weights W_l", "weight_norm", "near_zero_fraction", "near-zero weight gradients"),
    ("weight gradients dJ/dW_l", "gradient_norm", "dead_unit_fraction",
     "units without gradient"),
    ("outputs A_l", "output_norm", "output_dead_fraction", "dead units of A_l"),
    ("output gradients dJ/dA_l", "output_gradient_norm", "output_gradient_dead_fraction",
     "dead units of dJ/dA_l"),
)
WARNINGS = (
    ("dead_unit_fraction", "units without gradient"),
    ("output_dead_fraction", "dead units of A_l"),
    ("output_gradient_dead_fraction", "dead units of dJ/dA_l"),
    ("near_zero_fraction", "near-zero weight gradients"),
    ("non_finite_fraction", "non-finite weight gradients"),
)


def plot_history(history, path, *, title: str = None) -> str:
    """Near-zero, non-finite and no-gradient shares of each layer's weight gradients."""
    steps = np.asarray(history.steps)
    fig = _figure(9, 8)
    axes = fig.subplots(3, 1, sharex=True)
    panels = (("near_zero_fraction", "near-zero weight gradients (%)"),
              ("non_finite_fraction", "non-finite weight gradients (%)"),
              ("dead_unit_fraction", "units with no gradient (%)"))
    for ax, (stat, label) in zip(axes, panels):
        _layer_lines(ax, steps, history.statistic(stat) * 100, history.layer_names)
        ax.set_ylabel(label)
        ax.set_ylim(-2, 102)
    axes[-1].set_xlabel("step")
    if not len(steps):
        axes[0].text(0.5, 0.5, "no step recorded", ha="center", transform=axes[0].transAxes)
    fig.suptitle(title or "Near-zero gradients during training")
    return _save(fig, path)


def plot_training_overview(history, path, *, title: str = None) -> str:
    """One figure: loss, warnings (worst rates over the layers), then per tensor kind the
    spread of norms over the layers, a layer comparison and the rates of every layer."""
    steps = np.asarray(history.steps)
    fig = _figure(17, 19)
    grid = fig.add_gridspec(5, 3, width_ratios=(1, 1.3, 1), height_ratios=(1.15, 1, 1, 1, 1))
    plotted = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1:])]
    _loss_axes(plotted[0], steps, history.loss())
    _warning_axes(plotted[1], steps, history)
    for row, (kind, norm_stat, rate_stat, rate_title) in enumerate(KINDS, start=1):
        norms = history.statistic(norm_stat)
        band, comparison, rates = (fig.add_subplot(grid[row, column]) for column in range(3))
        _norm_band_axes(band, steps, norms)
        band.set_title(f"{kind}: norm over layers", fontsize="medium")
        _comparison_axes(comparison, steps, norms, history.layer_names,
                         f"{kind}: layer comparison")
        _layer_lines(rates, steps, history.statistic(rate_stat) * 100, history.layer_names)
        rates.set_ylim(-2, 102)
        rates.set_ylabel("%")
        rates.set_title(rate_title, fontsize="medium")
        plotted += [band, comparison, rates]
    for ax in plotted:
        ax.set_xlabel("step")
    layers = len(history.layer_names)
    fig.suptitle(title or f"Training overview: {layers} layers, {len(steps)} steps",
                 fontsize="x-large")
    return _save(fig, path)


def _loss_axes(ax, steps, loss):
    ax.set_title("loss", fontsize="medium")
    seen = np.isfinite(loss)
    if seen.any():
        ax.plot(steps[seen], loss[seen], color="#4c72b0", linewidth=1.2)
        low, high = loss[seen].min(), loss[seen].max()
        if low > 0 and high > 10 * low:  # a log scale only where the loss spans a decade
            ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no loss given", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)


def _warning_axes(ax, steps, history):
    ax.set_title("warnings: worst layer at each step", fontsize="medium")
    for stat, label in WARNINGS:
        worst = _nan_reduce(np.nanmax, history.statistic(stat))
        if np.isfinite(worst).any():
            ax.plot(steps, worst * 100, label=f"worst {label}", linewidth=1.2)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small", loc="best")


def _norm_band_axes(ax, steps, norms):
    """Median over the layers, with the 25-75 percentile and min-max bands."""
    positive = np.where(norms > 0, norms, np.nan)
    if not np.isfinite(positive).any():
        ax.text(0.5, 0.5, "not seen", ha="center", va="center", transform=ax.transAxes)
        return
    low, q1, median, q3, high = (_nan_reduce(np.nanpercentile, positive, q=q)
                                 for q in (0, 25, 50, 75, 100))
    ax.fill_between(steps, low, high, color="#c0c0c0", alpha=0.6, label="min-max", linewidth=0)
    ax.fill_between(steps, q1, q3, color="#8fb0d8", alpha=0.8, label="25-75%", linewidth=0)
    ax.plot(steps, median, color="#2c5d9c", linewidth=1.2, label="median")
    ax.set_yscale("log")
    ax.set_ylabel("L2 norm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="best")


def _comparison_axes(ax, steps, norms, names, title):
    """log10 of each layer's norm over the median layer's, as an image: layers top to bottom
    in model order; at most 25 names on the axis."""
    ax.set_title(title, fontsize="medium")
    positive = np.where(norms > 0, norms, np.nan)
    if not len(steps) or not np.isfinite(positive).any():
        ax.text(0.5, 0.5, "not seen", ha="center", va="center", transform=ax.transAxes)
        return
    relative = np.log10(positive / _nan_reduce(np.nanmedian, positive)[:, None])
    limit = max(float(np.nanmax(np.abs(relative))), 0.1) if np.isfinite(relative).any() else 1
    extent = (steps[0] - 0.5, steps[-1] + 0.5, len(names) - 0.5, -0.5)
    image = ax.imshow(relative.T, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit,
                      extent=extent, interpolation="nearest")
    every = max(1, int(np.ceil(len(names) / 25)))
    ticks = list(range(0, len(names), every))
    ax.set_yticks(ticks, [short_name(names[i]) for i in ticks], fontsize=7)
    ax.figure.colorbar(image, ax=ax, label="log10(norm / median)", pad=0.01)


def _layer_lines(ax, steps, values, names):
    """Each layer's line when there are few; else the worst (highest mean) few as named lines
    and the others as a min-max band with their median."""
    ax.grid(alpha=0.3)
    if not len(steps) or not names:
        return
    if not np.nan_to_num(values).any():  # nothing to tell the layers apart by
        ax.plot(steps, np.nan_to_num(values).max(axis=1), color="#808080", linewidth=1.2,
                label=f"all {len(names)} layers: 0")
        ax.legend(fontsize="x-small", loc="best")
        return
    order = np.argsort(-np.nan_to_num(_nan_reduce(np.nanmean, values.T), nan=-1))
    shown = order if len(names) <= NAMED_LAYERS else order[:WORST_LAYERS]
    rest = [] if len(names) <= NAMED_LAYERS else sorted(order[WORST_LAYERS:])
    if len(rest):
        others = values[:, rest]
        ax.fill_between(steps, _nan_reduce(np.nanmin, others), _nan_reduce(np.nanmax, others),
                        color="#c0c0c0", alpha=0.6, linewidth=0,
                        label=f"other {len(rest)} layers (min-max)")
        ax.plot(steps, _nan_reduce(np.nanmedian, others), color="#808080", linewidth=1,
                label=f"other {len(rest)} layers (median)")
    for i in sorted(shown):
        ax.plot(steps, values[:, i], label=short_name(names[i], 36), linewidth=1.2)
    ax.legend(fontsize="x-small", loc="best", ncol=1 if len(shown) + 2 <= 6 else 2)


def short_name(name: str, width: int = 26) -> str:
    """A layer name cut to its last `width` characters (the distinctive end of a path)."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _nan_reduce(function, values, **kwargs):
    """`function` over the last axis of (steps, layers) without warnings for all-NaN rows."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape[0], np.nan)
    rows = np.isfinite(values).any(axis=1)
    if rows.any():
        out[rows] = function(values[rows], axis=1, **kwargs)
    return out
