"""The typed report model: what the measuring modules hand to each other and to `Report`.
Sections, breakdowns and causes are dataclasses; `to_dict()` turns them into the JSON-ready
dicts of SPEC §8 at the edge (text, plots and `Report.to_dict()` read those)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def _plain(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _ToDict:
    """`to_dict()` of every field; those in `_OPTIONAL` only when set. `pass_` is `pass`."""

    _OPTIONAL = ()

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self._OPTIONAL:
                continue
            out[f.name.rstrip("_")] = _plain(value)
        return out


@dataclass
class Breakdown(_ToDict):
    """Class totals: counts and sums per term (P/Z/N, or the nine pairs)."""

    terms: list
    counts: list
    sums: list


@dataclass
class MaskedPart(_ToDict):
    """A tensor's classes over a subset (W_l where the gradients are near zero)."""

    title: str
    near_zero_fraction: float
    summary: str
    breakdown: Breakdown


@dataclass
class TensorSection(_ToDict):
    """One captured tensor: its P/Z/N shares and, per unit, the units always near zero."""

    key: str
    title: str
    shape: list
    size: int
    threshold: float
    near_zero_fraction: float
    breakdown: Breakdown
    summary: list
    kind: str = "tensor"
    negative_fraction: float = None
    dead_unit_fraction: float = None
    units_summary: str = None
    units_noteworthy: bool = None
    masked: MaskedPart = None
    pass_: str = None  # "forward" or "backward" in a full report
    percentiles: list = None
    values: list = None

    _OPTIONAL = ("negative_fraction", "dead_unit_fraction", "units_summary", "units_noteworthy",
                 "masked", "pass_", "percentiles", "values")


@dataclass
class ComputationSection(_ToDict):
    """One product (Z_l, dJ/dX_l, dJ/dW_l): how much of it is near zero and why. The class
    pair totals are None where the computation was not classified."""

    key: str
    title: str
    equation: str
    inputs: list
    threshold: float
    near_zero_fraction: float
    near_zero_count: int
    size: int
    noteworthy: bool
    summary: str
    explanations: list
    measured_cancellation: bool
    all_totals: Breakdown = None
    near_zero_totals: Breakdown = None
    kind: str = "computation"
    pass_: str = None

    _OPTIONAL = ("pass_",)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["breakdown"] = {"all": out.pop("all_totals"), "near_zero": out.pop("near_zero_totals")}
        return out


@dataclass
class Cause(_ToDict):
    """One cause of the near-zero gradients; `fraction` as SPEC §8 and docs/report.md say."""

    cause: str
    fraction: float
    description: str
    advice: list = field(default_factory=list)
    detail: dict = None

    _OPTIONAL = ("detail",)


@dataclass
class LayerReport(_ToDict):
    """Everything one layer's report says; `Report` wraps it."""

    layer: str
    layer_type: str
    module: str
    step: object
    units: int
    weights: int
    biases: int
    parameter: str
    confidence: float
    world_size: int
    supported: bool
    notes: list = field(default_factory=list)
    status: str = None  # analysed, gradients_only, frozen, unused, no_gradient
    near_zero_count: int = 0
    near_zero_fraction: float = 0.0
    threshold: float = 0.0
    gradients: int = 0
    threshold_from: str = None
    expected_fraction: float = None
    units_without_gradient: float = None
    non_finite: list = field(default_factory=list)  # NonFiniteCount, forward order
    activation: dict = None
    causes: list = field(default_factory=list)  # Cause, strongest first
    sections: list = field(default_factory=list)  # TensorSection / ComputationSection
    gradient_check: dict = None
    embedding: dict = None

    _OPTIONAL = ("threshold_from", "expected_fraction", "units_without_gradient", "activation",
                 "gradient_check", "embedding")

    def section(self, key: str):
        for section in self.sections:
            if section.key == key:
                return section
        return None
