"""NaN and Inf in a layer's captured tensors: counted per tensor in forward order, reported as
the cause `non_finite`, and left out of everything else the report measures (they become NaN,
which every classification and threshold of the report omits)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import distributed as dist
from .model import Cause


@dataclass
class NonFiniteCount:
    """NaN and Inf values of one captured tensor (over every process's shard)."""

    tensor: str  # A_0, W_l, b_l, Z_l, A_l, dJ/dA_l, dJ/dZ_l, dJ/dW_l or dJ/d<parameter>
    nan: int
    inf: int
    size: int

    def to_dict(self) -> dict:
        return {"tensor": self.tensor, "nan": self.nan, "inf": self.inf, "size": self.size}

    def describe(self) -> str:
        parts = [f"{n} {kind}" for n, kind in ((self.nan, "NaN"), (self.inf, "Inf")) if n]
        return f"{self.tensor}: {' and '.join(parts)} of {self.size}"


def count_non_finite(named_tensors, sharded=()) -> list:
    """Counts for the (name, tensor) pairs holding NaN or Inf, in the order given (forward
    order); one host read for all of them. Names in `sharded` are batch shards (summed over
    processes under torch.distributed)."""
    named = [(n, t) for n, t in named_tensors if isinstance(t, torch.Tensor)
             and t.is_floating_point() and t.numel()]
    if not named:
        return []
    # A NaN or Inf always makes the sum non-finite: one reduction per tensor finds the
    # candidates (an overflowing sum of finite values only costs an exact count).
    sums = torch.stack([t.sum(dtype=torch.float32 if t.dtype != torch.float64 else None)
                        .to(torch.float64).to(named[0][1].device) for _, t in named])
    if dist.is_distributed():
        sums = dist.all_reduce_sum(sums)
    flagged = [pair for pair, ok in zip(named, torch.isfinite(sums).tolist()) if not ok]
    found = []
    for name, t in flagged:
        nan = dist.global_count(torch.isnan(t)) if name in sharded else int(torch.isnan(t).sum())
        inf = dist.global_count(torch.isinf(t)) if name in sharded else int(torch.isinf(t).sum())
        size = dist.global_size(t) if name in sharded else t.numel()
        if nan or inf:
            found.append(NonFiniteCount(name, nan, inf, size))
    return found


def finite_or_nan(t):
    """`t` with Inf replaced by NaN (a copy only when it holds Inf), so that the report's
    thresholds come from the finite values and every class leaves them out."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        return t
    return torch.where(torch.isinf(t), torch.full_like(t, float("nan")), t)


def non_finite_cause(counts: list, gradient_name: str) -> dict:
    """The cause entry: its fraction is the share of the weight gradients that are not finite
    (or, when they all are, of the first tensor that is not)."""
    by_name = {c.tensor: c for c in counts}
    basis = by_name.get(gradient_name, counts[0])
    fraction = (basis.nan + basis.inf) / max(basis.size, 1)
    first = counts[0].tensor
    description = ("NaN or Inf values in " + "; ".join(c.describe() for c in counts)
                   + f" (earliest in the forward pass: {first}); the rest of this report "
                   "leaves them out, with thresholds from the finite values")
    return Cause("non_finite", float(fraction), description, _advice(first))


def _advice(first: str) -> list:
    if first == "A_0":
        return ["the layer's input is already not finite: check the data (or explain the "
                "layer before this one, which produced it)"]
    if first in ("W_l", "b_l"):
        return ["the parameters hold NaN or Inf: a previous update diverged; lower the "
                "learning rate, clip gradients, or restart from a finite checkpoint"]
    return ["values overflow during this step: lower the learning rate, clip gradients "
            "(torch.nn.utils.clip_grad_norm_), check the loss for log(0) or division by zero, "
            "and under mixed precision use a gradient scaler"]
