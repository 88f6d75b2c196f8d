"""Why are the outputs of a two-input op near zero? Candidate causes (near-zero inputs, positive
and negative products cancelling), each measured on the selected output cells and ranked.
"""

from __future__ import annotations

from ..terms import pair_indices
from ..thresholds import check_threshold_value, percentile_fraction
from . import _device
from ._results import check_reduce, check_shapes, unpack

__all__ = [
    "CAUSES",
    "near_zero_explanation",
    "describe_near_zero_explanation",
    "describe_top_near_zero_explanandum",
]

# (cause_kind, class pairs, description template, measured on cancelling cells only), in the
# original's listing order, which also breaks ties in the ranking.
CAUSES = (
    ("first_near_zero", ("ZZ", "ZP", "ZN"), "near-zero values from {first}", False),
    ("second_near_zero", ("ZZ", "PZ", "NZ"), "near-zero values from {second}", False),
    ("either_near_zero", ("ZZ", "ZP", "PZ", "ZN", "NZ"), "near-zero values from either input",
     False),
    ("first_cancelling", ("PP", "NP"),
     "positive/negatives from {first} cancelling out (PP ~= NP)", True),
    ("first_cancelling", ("PN", "NN"),
     "positive/negatives from {first} cancelling out (PN ~= NN)", True),
    ("second_cancelling", ("PP", "PN"),
     "positive/negatives from {second} cancelling out (PP ~= PN)", True),
    ("second_cancelling", ("NP", "NN"),
     "positive/negatives from {second} cancelling out (NP ~= NN)", True),
    ("both_cancelling", ("PP", "NN", "NP", "PN"),
     "sums of positive/negatives from both inputs cancelling out (PP+NN ~= NP+PN)", True),
)


def near_zero_explanation(counts, sums=None, terms=None, *, mask=None, input_names=None,
                          confidence=0.95, threshold=None, reduce=None) -> list:
    """Candidate causes of near-zero outputs of a two-input classify op, strongest first.

    `counts`, `sums` (and `terms` after `filter_classifications`) are a 9-term result, or pass
    the op's return tuple as `counts`. `mask` (value shape) selects the outputs to explain,
    usually the near-zero ones; without it every output is explained. Arrays may be NumPy,
    torch or CuPy, on CPU or GPU: the reductions run where the arrays live and only class totals
    and scalars come to the host.

    Returns a list of dicts, one per cause that affects any product, strongest first:

    - ``cause_kind``: which input and mechanism.
      ``"first_near_zero"`` (class pairs ZZ, ZP, ZN: near-zero values of the first input),
      ``"second_near_zero"`` (ZZ, PZ, NZ), ``"either_near_zero"`` (ZZ, ZP, PZ, ZN, NZ),
      ``"first_cancelling"`` (positive and negative values of the first input cancelling:
      PP ~= NP, or PN ~= NN; two entries), ``"second_cancelling"`` (PP ~= PN, or NP ~= NN;
      two entries), ``"both_cancelling"`` (PP+NN ~= NP+PN).
    - ``description``: the original's text, e.g. ``"near-zero values from W_l"``; inputs are
      named by `input_names` (default ``["first input", "second input"]``).
    - ``terms``: the class pairs the cause spans, e.g. ``("PP", "NP")``.
    - ``count``: products in those class pairs, over the selected outputs; for a cancelling
      cause only in outputs where the sum of those class pairs is itself near zero (magnitude
      below `threshold`, or exactly zero).
    - ``fraction``: ``count`` over all products of the selected outputs (0..1).
    - ``score``: ``fraction / len(terms)``, the share of products per class pair spanned. A
      cause spanning more class pairs collects more products by chance (all nine pairs equally
      common give every cause the score 1/9), so this is what ranks causes; ties go to the
      larger fraction, then to the listing order above. (The original added a fraction to a raw
      count, so its order depended on the size of the tensor.)

    `threshold` is the near-zero level of an output for the cancelling causes; when None it is
    the ``100*(1-confidence)`` percentile of |output| over all outputs (unmasked), linearly
    interpolated, as the original. With ``reduce="all"`` or ``"channel"`` (results of an op
    called with that `reduce=`, and its `mask=`), per-output sums are gone, so only the
    near-zero causes are measured; `mask` then selects channels (``"channel"`` only).
    """
    counts, sums, terms = unpack(counts, sums, terms)
    check_reduce(reduce)
    names = _input_names(input_names)
    if reduce == "all":
        if mask is not None:
            raise ValueError("reduce='all' results are already summed over the outputs; pass "
                             "mask= to the classify op instead")
        counts, sums = counts.reshape(1, -1), sums.reshape(1, -1)
        if terms is not None:
            terms = terms.reshape(1, -1)
    check_shapes(counts, sums, terms, mask, term_count=9)
    if threshold is not None:
        threshold = check_threshold_value(threshold, "threshold")
    if threshold is None and reduce is None:
        threshold = _output_threshold(sums, confidence)
    count_cells, sum_cells = _device.selected_cells(counts, sums, terms, mask, 9)
    totals = _device.class_totals(count_cells)
    total = int(totals.sum())
    if total == 0:
        return []

    causes = []
    for order, (kind, pairs, template, cancelling) in enumerate(CAUSES):
        if cancelling and reduce is not None:
            continue
        columns = list(pair_indices(*pairs))
        if cancelling:
            count = _device.count_where_sum_near_zero(count_cells, sum_cells, columns, threshold)
        else:
            count = int(totals[columns].sum())
        if count == 0:
            continue
        fraction = count / total
        causes.append({
            "cause_kind": kind,
            "description": template.format(first=names[0], second=names[1]),
            "terms": pairs,
            "count": count,
            "fraction": fraction,
            "score": fraction / len(pairs),
            "_order": order,
        })
    causes.sort(key=lambda c: (-c["score"], -c["fraction"], c["_order"]))
    for cause in causes:
        del cause["_order"]
    return causes


def describe_near_zero_explanation(counts, sums=None, terms=None, *, mask=None, input_names=None,
                                   confidence=0.95, threshold=None, reduce=None):
    """The original's text form of `near_zero_explanation`: ``(descriptions, fractions)``,
    strongest cause first, e.g. ``["near-zero values from first input", ...], [0.8, ...]``.
    See `near_zero_explanation` for the arguments, the causes and how they are ranked.
    """
    causes = near_zero_explanation(counts, sums, terms, mask=mask, input_names=input_names,
                                   confidence=confidence, threshold=threshold, reduce=reduce)
    return [c["description"] for c in causes], [c["fraction"] for c in causes]


def describe_top_near_zero_explanandum(counts, sums=None, terms=None, *, mask=None,
                                       input_names=None, confidence=0.95, threshold=None,
                                       reduce=None):
    """The strongest cause of `describe_near_zero_explanation` as ``(description, fraction)``,
    or ``(None, None)`` when no cause affects any product.
    """
    descriptions, fractions = describe_near_zero_explanation(
        counts, sums, terms, mask=mask, input_names=input_names, confidence=confidence,
        threshold=threshold, reduce=reduce)
    if not descriptions:
        return None, None
    return descriptions[0], fractions[0]


def _input_names(input_names):
    if input_names is None:
        return ["first input", "second input"]
    input_names = list(input_names)
    if len(input_names) != 2:
        raise ValueError(f"input_names must name exactly two inputs, got {len(input_names)}")
    return input_names


def _output_threshold(sums, confidence) -> float:
    """Near-zero level of an output: a percentile of |Σ sums| over every output cell."""
    # A cell's value does not depend on its term order, so filtered results need no re-ordering.
    return _device.abs_percentile_linear(sums.sum(-1), percentile_fraction(confidence))
