"""Report: the explanation of one layer's near-zero gradients at one step, made from the typed
report model (`model.LayerReport`); `print(report)` gives the text, `to_dict()` the JSON-ready
data, `plot(path)` a figure."""

from __future__ import annotations

import copy

from .model import LayerReport
from .text import render_report


class Report:
    """Why a layer's weight gradients are near zero. See `to_dict` for the fields."""

    def __init__(self, data, *, verbose: bool = None):
        """`data`: a LayerReport, or a dict of `to_dict()`'s form (read back from JSON)."""
        self.model = data if isinstance(data, LayerReport) else None
        data = data.to_dict() if isinstance(data, LayerReport) else data
        self._data = data
        self.verbose = bool(data.get("verbose", False) if verbose is None else verbose)
        data["verbose"] = self.verbose

    @classmethod
    def from_dict(cls, data: dict, *, verbose: bool = None) -> "Report":
        """The report a `to_dict()` result (e.g. read back from JSON) came from."""
        return cls(copy.deepcopy(data), verbose=verbose)

    def to_dict(self) -> dict:
        """JSON-serialisable: ``layer``, ``step``, ``near_zero_fraction``, ``near_zero_count``,
        ``threshold``, ``confidence``, ``status``, ``causes`` (strongest first, each with
        ``cause`` in non_finite / inputs_near_zero / dead_activation / weights_near_zero /
        backprop_near_zero / cancellation / none, ``fraction``, ``description`` and
        ``advice``), ``non_finite``, ``sections`` (every tensor and computation of the report),
        ``activation``, ``notes`` and the layer's size."""
        return copy.deepcopy(self._data)

    @property
    def layer(self) -> str:
        return self._data["layer"]

    @property
    def step(self):
        return self._data["step"]

    @property
    def near_zero_fraction(self) -> float:
        return self._data["near_zero_fraction"]

    @property
    def causes(self) -> list:
        return copy.deepcopy(self._data.get("causes", []))

    @property
    def top_cause(self):
        """The strongest cause's name, or None when the layer type is not analysed."""
        causes = self._data.get("causes", [])
        return causes[0]["cause"] if causes else None

    def section(self, key: str) -> dict:
        for section in self._data.get("sections", []):
            if section["key"] == key:
                return copy.deepcopy(section)
        raise KeyError(f"no section {key!r}; sections: "
                       f"{[s['key'] for s in self._data.get('sections', [])]}")

    def text(self, verbose: bool = None) -> str:
        return render_report(self._data, self.verbose if verbose is None else verbose)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return (f"<Report layer={self.layer!r} step={self.step} near_zero="
                f"{self.near_zero_fraction:.3f} top_cause={self.top_cause}>")

    def plot(self, path, *, title: str = None):
        """PNG with the causes and the class breakdown (P/Z/N and the nine pairs) of every
        tensor and computation; returns the path."""
        from .plots import plot_report

        return plot_report(self._data, path, title=title)
