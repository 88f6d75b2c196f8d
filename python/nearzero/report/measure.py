"""The report's measurements, as sections of the report model: one per tensor (P/Z/N shares,
negative share, units that are always near zero) and one per computation (how much of its result is near
zero, and why, from the fused nine-way classification). Memory stays bounded by the layer's own
tensors: big results use the ops' in-kernel reductions (``reduce=``, ``mask=``).
"""

from __future__ import annotations

import torch

from .._rule import near_zero, percentile_positions
from ..analysis import near_zero_explanation
from ..ops import tensor_classify
from ..terms import PAIR_TERMS, SINGLE_INDEX, SINGLE_TERMS
from . import distributed as dist
from .model import Breakdown, ComputationSection, MaskedPart, TensorSection

FULL_RESULT_BYTES = 2 * 2**20  # a full (cells x 9) result up to this size (its per-cell analysis
# costs more than the fused op itself); above it, class totals reduced in the kernel
PERCENTILES = (0, 25, 50, 75, 100)


def near_zero_mask(values: torch.Tensor, threshold: float) -> torch.Tensor:
    """The P/Z/N rule's Z class: exactly zero or |x| < threshold (NaN is never near zero)."""
    return near_zero(values, threshold)


class Measurer:
    """Measures tensors and computations of one layer at one confidence level."""

    def __init__(self, confidence: float, *, omit_non_finite: bool = False,
                 all_totals: bool = True):
        """`omit_non_finite`: the layer's tensors hold NaN where they were not finite; a tensor
        with no finite value at all then gets threshold 0 (nothing in it is near zero).
        `all_totals`: class totals over all cells of a large computation too (one more pass
        of its op; only the verbose text shows them), not only over the near-zero cells."""
        self.all_totals = all_totals
        self.confidence = float(confidence)
        self.omit_non_finite = omit_non_finite
        self._thresholds = {}  # id(tensor) -> (tensor, sharded, threshold): one selection each
        self.noteworthy_fraction = 1.1 * (1.0 - self.confidence)

    def expected_fraction(self, size: int, given_threshold: bool = False) -> float:
        """Share of `size` distinct values that a percentile threshold alone makes near zero:
        the values below the midpoint of order statistics floor/ceil((n-1)(1-confidence)),
        i.e. slightly more than 1-confidence for small tensors."""
        share = 1.0 - self.confidence
        if given_threshold or size <= 0:
            return share
        return max(share, (percentile_positions(size, share)[0] + 1) / size) if share > 0 else 0.0

    def is_noteworthy(self, fraction: float, size: int, given_threshold: bool = False) -> bool:
        """More near zero than the threshold alone implies, with 10% leeway for ties (as the
        original decided)."""
        return fraction > 1.1 * self.expected_fraction(size, given_threshold)

    def threshold(self, x: torch.Tensor, sharded: bool = True) -> float:
        """`sharded`: each process holds part of the batch (activations), rather than the same
        tensor (weights, averaged gradients)."""
        known = self._thresholds.get(id(x))
        if known is not None and known[0] is x and known[1] == sharded:
            return known[2]
        if self.omit_non_finite and dist.global_count(~torch.isnan(x)) == 0:
            t = 0.0
        else:
            t = dist.threshold(x, self.confidence, sharded=sharded)
        self._thresholds[id(x)] = (x, sharded, t)
        return t

    def tensor(self, key: str, title: str, x: torch.Tensor, *, threshold: float = None,
               unit_axis: int = None, negatives_are_bad: bool = False, mask=None,
               mask_title: str = None, sharded: bool = True) -> TensorSection:
        t = self.threshold(x, sharded) if threshold is None else float(threshold)
        reduce = "all" if unit_axis is None else "channel"
        total = dist.all_reduce_sum if sharded else (lambda v: v)
        counts, sums = tensor_classify(x, threshold=t, reduce=reduce,
                                       channel_axis=-1 if unit_axis is None else unit_axis,
                                       nan_policy="omit")
        counts, sums = total(counts), total(sums)
        totals = counts if unit_axis is None else counts.sum(0)
        near_zero = _share(totals[1], totals.sum())
        section = TensorSection(key=key, title=title, shape=list(x.shape),
                                size=dist.global_size(x) if sharded else x.numel(), threshold=t,
                                near_zero_fraction=near_zero, summary=[],
                                breakdown=_breakdown(totals, sums if unit_axis is None
                                                     else sums.sum(0), SINGLE_TERMS))
        summary = [(f"{near_zero * 100:.1f}% near-zero", near_zero)]
        if negatives_are_bad:
            negative = int(total((x < 0).sum())) / max(section.size, 1)
            section.negative_fraction = negative
            if negative > 0:
                summary.append((f"{negative * 100:.1f}% negative", negative))
        summary.sort(key=lambda item: -item[1])
        if unit_axis is not None:
            dead = _dead_units(counts, negatives_are_bad)
            section.dead_unit_fraction = dead
            condition = "near-zero or negative" if negatives_are_bad else "near-zero"
            dims = "batch" if x.dim() <= 2 else "batch and spatial"
            section.units_summary = (f"{dead * 100:.1f}% of units always {condition} across "
                                     f"all {dims} dims")
            section.units_noteworthy = dead > self.noteworthy_fraction
        section.summary = [text for text, _ in summary]
        if mask is not None:
            masked, masked_sums = tensor_classify(x, threshold=t, reduce="all", mask=mask,
                                                  nan_policy="omit")
            masked, masked_sums = total(masked), total(masked_sums)
            fraction = _share(masked[1], masked.sum())
            section.masked = MaskedPart(mask_title, fraction, f"{fraction * 100:.1f}% near-zero",
                                        _breakdown(masked, masked_sums, SINGLE_TERMS))
        return section

    def percentiles(self, x: torch.Tensor, sharded: bool = True) -> dict:
        return {"percentiles": list(PERCENTILES),
                "values": dist.percentiles(x, PERCENTILES, sharded=sharded)}

    def computation(self, key: str, equation: str, input_names, classify, result: torch.Tensor,
                    *, threshold: float = None, cells_add_up: bool = False,
                    needed: bool = False) -> ComputationSection:
        """How much of `result` is near zero, and the nine-way explanation of why.

        ``classify(reduce, mask)`` runs the fused op whose value shape is `result`'s. Small
        results are classified in full, which also measures cancellation; large ones (and,
        when distributed, results whose cells are batch positions: `cells_add_up` False) are
        reduced in the kernel to class totals over all cells and over the near-zero ones.
        With `cells_add_up`, `result` is the same on every process (the averaged gradient).
        The classification itself runs only where it can show something: when `result` is
        more often near zero than its threshold implies, when the causes need it (`needed`)
        or for the verbose text (`all_totals`); else the breakdowns are None.
        """
        t = self.threshold(result, not cells_add_up) if threshold is None else float(threshold)
        near = near_zero_mask(result, t)
        size = result.numel() if cells_add_up else dist.global_size(result)
        count = int(near.sum()) if cells_add_up else dist.global_count(near)
        fraction = count / max(size, 1)
        full = (result.numel() * 9 * 8 <= FULL_RESULT_BYTES
                and (cells_add_up or not dist.is_distributed()))
        noteworthy = self.is_noteworthy(fraction, size, threshold is not None)
        if not (noteworthy or needed or self.all_totals):
            return self._computation_section(key, equation, input_names, t, fraction, count,
                                             size, noteworthy, [], None, None, False)
        if full:
            counts, sums = classify(None, None)
            counts, sums = dist.all_reduce_sum(counts), dist.all_reduce_sum(sums)
            found = near_zero_explanation(counts, sums, mask=near, input_names=input_names,
                                          threshold=t)
            flat_counts, flat_sums = counts.reshape(-1, 9), sums.reshape(-1, 9)
            flat_near = near.reshape(-1)
            all_totals = (flat_counts.sum(0), flat_sums.sum(0))
            near_totals = (flat_counts[flat_near].sum(0), flat_sums[flat_near].sum(0))
        else:
            all_totals = (tuple(dist.all_reduce_sum(v) for v in classify("all", None))
                          if self.all_totals else None)
            near_totals = tuple(dist.all_reduce_sum(v) for v in classify("all", near))
            found = near_zero_explanation(*near_totals, input_names=input_names, reduce="all")
        explanations = [{"cause_kind": f["cause_kind"], "description": f["description"],
                         "fraction": float(f["fraction"]), "score": float(f["score"])}
                        for f in found]
        return self._computation_section(key, equation, input_names, t, fraction, count, size,
                                         noteworthy, explanations, all_totals, near_totals,
                                         full)

    @staticmethod
    def _computation_section(key, equation, input_names, t, fraction, count, size, noteworthy,
                             explanations, all_totals, near_totals, full) -> ComputationSection:
        summary = f"{fraction * 100:.1f}% near-zero"
        if noteworthy and explanations:
            top = explanations[0]
            summary += (f", of which {top['fraction'] * 100:.1f}% are affected by "
                        f"{top['description']}")
        return ComputationSection(
            key=key, title=f"compute {equation}", equation=equation, inputs=list(input_names),
            threshold=t, near_zero_fraction=fraction, near_zero_count=count, size=size,
            noteworthy=noteworthy, summary=summary, explanations=explanations,
            measured_cancellation=full,
            all_totals=None if all_totals is None else _breakdown(*all_totals, PAIR_TERMS),
            near_zero_totals=None if near_totals is None else _breakdown(*near_totals,
                                                                           PAIR_TERMS))


def _share(part, whole) -> float:
    whole = int(whole)
    return float(int(part) / whole) if whole else 0.0


def _dead_units(channel_counts, negatives_are_bad: bool) -> float:
    """Units whose every value is near zero (or, with negatives_are_bad, not positive)."""
    alive = channel_counts[:, SINGLE_INDEX["P"]] > 0
    if not negatives_are_bad:
        alive = alive | (channel_counts[:, SINGLE_INDEX["N"]] > 0)
    present = channel_counts.sum(1) > 0
    units = int(present.sum())
    return int((~alive & present).sum()) / units if units else 0.0


def _breakdown(counts, sums, terms) -> Breakdown:
    return Breakdown(list(terms), [int(c) for c in counts.reshape(-1).tolist()],
                     [float(s) for s in sums.reshape(-1).tolist()])
