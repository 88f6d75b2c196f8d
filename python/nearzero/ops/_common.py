"""What every classify op shares: operand preparation (the backend, the inputs' values and
thresholds), the `channel_axis=` check and result wrapping. Everything that depends on the
device is behind `Prepared.backend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from .._arrays import Operand, as_operand, common_device, compute_dtype
from ..backends import Backend, backend_for
from ..thresholds import (check_nan_policy, check_threshold_value, in_dtype, raise_on_nans,
                          resolve_thresholds, threshold_of)


@dataclass
class Prepared:
    """Operands of one op call, on one device, with their thresholds in compute dtype."""

    operands: list
    values: list  # what `backend` takes for each operand, in the compute dtype
    thresholds: list  # Python floats, already rounded to each input's dtype
    dtype: np.dtype
    device: str
    backend: Backend


def prepare(inputs, names, confidence, thresholds_pair, nan_policy) -> Prepared:
    """Validate inputs, pick the backend and derive thresholds (SPEC §2, §7)."""
    check_nan_policy(nan_policy)
    operands = [as_operand(x, n) for x, n in zip(inputs, names)]
    device = common_device(*operands)
    dtype = compute_dtype(*operands)
    backend = backend_for(device)
    values = [backend.values(op, dtype) for op in operands]
    for op, v in zip(operands, values):
        raise_on_nans(backend, op, v, nan_policy)
    resolved = []
    for op, v, t in zip(operands, values, thresholds_pair):
        if t is None:
            resolved.append(threshold_of(backend, op, v, confidence, nan_policy))
        else:
            resolved.append(in_dtype(t, op.dtype))
    return Prepared(operands, values, resolved, dtype, device, backend)


def prepare_pair(x, y, names, confidence, thresholds, nan_policy) -> Prepared:
    return prepare((x, y), names, confidence, resolve_thresholds(thresholds), nan_policy)


def prepare_single(x, name, confidence, threshold, nan_policy) -> Prepared:
    t = None if threshold is None else check_threshold_value(threshold, "threshold")
    return prepare((x,), (name,), confidence, (t,), nan_policy)


def check_channel_axis(channel_axis, reduce) -> int:
    """`channel_axis=` of the elementwise ops: an int, only with a reduction (-1 if None)."""
    if channel_axis is None:
        return -1
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, Integral):
        raise TypeError(f"channel_axis must be an int, got {channel_axis!r}")
    if reduce is None:
        raise ValueError("channel_axis applies to reduce='channel' only; pass "
                         "reduce='channel' or leave channel_axis out")
    return int(channel_axis)


def package(prepared: Prepared, counts, sums, return_thresholds, *, single=False):
    """Wrap results as the first input's array type and append thresholds if asked."""
    first: Operand = prepared.operands[0]
    wrap = prepared.backend.wrap
    counts, sums = wrap(first, counts), wrap(first, sums)
    if not return_thresholds:
        return counts, sums
    if single:
        return counts, sums, prepared.thresholds[0]
    return counts, sums, list(prepared.thresholds)
