"""The report under torch.distributed: each process holds its shard of the batch; totals that
add up across the batch are summed over the processes, and thresholds are exact percentiles of
the whole (global) tensor, so every process builds the same report.
"""

from __future__ import annotations

import numpy as np
import torch

from .._rule import percentile_positions
from ..thresholds import _midpoint, percentile_fraction, threshold as local_threshold


def world_size() -> int:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def is_distributed() -> bool:
    return world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over the processes (a new tensor; integers are summed as int64, floats as float64)."""
    if not is_distributed():
        return tensor
    wide = tensor.to(torch.float64 if tensor.is_floating_point() else torch.int64).clone()
    torch.distributed.all_reduce(wide)
    return wide


def global_count(mask: torch.Tensor) -> int:
    """Number of True entries of `mask` over every process (one host read)."""
    return int(all_reduce_sum(mask.sum().to(torch.int64)))


def global_size(tensor: torch.Tensor) -> int:
    return int(all_reduce_sum(torch.tensor(tensor.numel(), dtype=torch.int64,
                                           device=tensor.device)))


def threshold(x: torch.Tensor, confidence: float, *, sharded: bool = True) -> float:
    """The SPEC §2 threshold of `x` (NaNs left out); over all processes' shards when
    distributed and `x` is a shard of one global tensor, else the library's own selection."""
    if not (sharded and is_distributed()):
        return local_threshold(x, confidence, nan_policy="omit")
    fraction = percentile_fraction(confidence)
    keys, to_value = _sortable(x.detach().abs().reshape(-1))
    count = global_count(~torch.isnan(x.detach().reshape(-1)) if x.is_floating_point()
                         else torch.ones(x.numel(), dtype=torch.bool, device=x.device))
    if count == 0:
        raise ValueError("cannot derive a threshold: the tensor is empty or all NaN")
    low, high, _ = percentile_positions(count, fraction)
    low_value = to_value(_order_statistic(keys, low))
    high_value = low_value if high == low else to_value(_order_statistic(keys, high))
    return _midpoint(low_value, high_value, _dtype_name(x))


def percentiles(x: torch.Tensor, quantiles, *, sharded: bool = True) -> list:
    """Values of `x` at the given percentiles (nearest rank, NaNs left out), over all shards
    when `sharded`."""
    keys, to_value = _sortable(x.detach().reshape(-1))
    if not sharded:
        finite = torch.sort(keys[keys < _nan_key()]).values
        count = int(finite.numel())
        return ([to_value(int(finite[_nearest_rank(count, q)])) for q in quantiles]
                if count else [float("nan")] * len(quantiles))
    count = global_count(keys < _nan_key())
    if count == 0:
        return [float("nan")] * len(quantiles)
    return [to_value(_order_statistic(keys, _nearest_rank(count, q))) for q in quantiles]


def _nearest_rank(count: int, percent: float) -> int:
    """The 0-based rank nearest the `percent` percentile of `count` sorted values."""
    return min(count - 1, round((count - 1) * percent / 100))


def _dtype_name(x: torch.Tensor) -> str:
    if x.dtype in (torch.float64, torch.float16, torch.bfloat16):
        return str(x.dtype).replace("torch.", "")
    return "float32"


def _sortable(values: torch.Tensor):
    """Integer keys that sort like the float values (NaN above +inf), and their inverse."""
    if values.dtype == torch.float64:
        bits = values.view(torch.int64)
        keys = torch.where(bits < 0, bits ^ 0x7FFFFFFFFFFFFFFF, bits)
        int_type, float_type, flip = np.int64, np.float64, 0x7FFFFFFFFFFFFFFF
    else:
        bits = values.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
        keys = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
        int_type, float_type, flip = np.int32, np.float32, 0x7FFFFFFF
    keys = torch.where(torch.isnan(values), _nan_key(), keys)

    def to_value(key: int) -> float:
        raw = key ^ flip if key < 0 else key
        return float(np.array([raw], dtype=int_type).view(float_type)[0])

    return keys, to_value


def _nan_key() -> int:
    return torch.iinfo(torch.int64).max


def _order_statistic(keys: torch.Tensor, k: int) -> int:
    """The key of rank k (0-based) of all shards together: bisection on the key, one summed
    count per round, so no shard leaves its process."""
    local = keys[keys < _nan_key()]
    # An empty shard offers extremes that lose to every other shard's.
    low = int(local.min()) if local.numel() else 2**63 - 1
    high = int(local.max()) if local.numel() else -(2**63)
    low = _global_extreme(low, keys.device, minimum=True)
    high = _global_extreme(high, keys.device, minimum=False)
    while low < high:
        middle = (low + high) // 2
        if global_count(local <= middle) >= k + 1:
            high = middle
        else:
            low = middle + 1
    return low


def _global_extreme(value: int, device, *, minimum: bool) -> int:
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    op = torch.distributed.ReduceOp.MIN if minimum else torch.distributed.ReduceOp.MAX
    torch.distributed.all_reduce(t, op=op)
    return int(t)
