"""ModelOverview: the reports of every layer of a model, most affected first, as a table."""

from __future__ import annotations

from .report import Report
from .text import CAUSE_TITLES


class ModelOverview:
    """Reports of several layers from one step, ranked by near-zero gradient fraction."""

    def __init__(self, reports: list, *, step=None, confidence: float = 0.99):
        self.reports = sorted(reports, key=_rank)
        self.step = step
        self.confidence = confidence

    @classmethod
    def from_dict(cls, data: dict) -> "ModelOverview":
        return cls([Report.from_dict(d) for d in data["layers"]], step=data.get("step"),
                   confidence=data.get("confidence", 0.99))

    def to_dict(self) -> dict:
        """``{"step", "confidence", "layers": [report dict, ...]}``, most affected layer first."""
        return {"step": self.step, "confidence": self.confidence,
                "layers": [r.to_dict() for r in self.reports]}

    @property
    def worst(self) -> Report:
        """The most affected layer's report."""
        if not self.reports:
            raise ValueError("the overview has no layers")
        return self.reports[0]

    def __getitem__(self, layer: str) -> Report:
        for report in self.reports:
            if report.layer == layer:
                return report
        raise KeyError(f"no report for layer {layer!r}")

    def __iter__(self):
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    def __str__(self) -> str:
        rows = [("layer", "type", "units", "weights", "near-zero", "no-grad units",
                 "top cause (share of the products behind the near-zero gradients)")]
        for report in self.reports:
            d = report.to_dict()
            rows.append((d["layer"], d["layer_type"], "" if d.get("units") is None
                         else str(d["units"]), str(d["weights"]),
                         f"{d['near_zero_fraction'] * 100:.1f}%",
                         f"{d.get('units_without_gradient', 0.0) * 100:.1f}%", top_cause_label(d)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        when = "one batch" if self.step is None else f"step {self.step}"
        lines = [f"Near-zero gradients at {when} (confidence {self.confidence}), "
                 "most affected layer first (any with NaN or Inf before all):"]
        for i, row in enumerate(rows):
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if i == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ModelOverview step={self.step} layers={[r.layer for r in self.reports]}>"

    def plot(self, path, *, title: str = None):
        """PNG: near-zero gradient fraction of every layer, split by its causes."""
        from .plots import plot_overview

        return plot_overview(self.to_dict(), path, title=title)


_FORWARD_TENSORS = ("A_0", "W_l", "b_l", "Z_l", "A_l")


def _rank(report: Report):
    """Layers holding NaN or Inf first: those with them in the forward pass in model order (the
    first is where they start), then those with them in gradients only; then the largest share
    of near-zero gradients. The reports come in model order and the sort keeps it on ties."""
    if report.top_cause == "non_finite":
        tensors = [c["tensor"] for c in report.to_dict()["non_finite"]]
        return (0, 0 if any(t in _FORWARD_TENSORS for t in tensors) else 1, 0.0)
    return (1, 0, -report.near_zero_fraction)


def top_cause_label(d: dict) -> str:
    """The overview's cause column: a cause's share always means the same thing (of the
    products behind the near-zero gradients); `none` and the statuses carry no share."""
    causes = d.get("causes", [])
    if not causes:
        status = d.get("status")
        return {"frozen": "frozen", "unused": "unused", "no_gradient": "no gradient"}.get(
            status, "gradients only")
    top = causes[0]
    if top["cause"] == "none":
        return "none"
    if top["cause"] == "non_finite":
        return f"{CAUSE_TITLES['non_finite']} ({top['fraction'] * 100:.0f}% of the gradients)"
    return f"{CAUSE_TITLES[top['cause']]} ({top['fraction'] * 100:.0f}%)"
