"""The cheap per-step history of a GradientRecorder: for every layer and step, the fraction of
near-zero weight gradients and of dead units. Statistics stay on the device as they are made
(no host synchronisation per step) and come to the host in blocks, when read.
"""

from __future__ import annotations

import numpy as np
import torch

STATISTICS = ("near_zero_fraction", "dead_unit_fraction")
_FLUSH_EVERY = 1024  # device tensors kept before they are moved to the host in one go


class StepStatistics:
    """Per layer, two counts of its weight gradient, as one int64 device tensor of shape
    (layers * 2,): weights whose gradient is near zero, and units that got some gradient
    (-1 for both where a layer got no gradient this step).

    A gradient is near zero when |g| <= tolerance * mean|g| of the layer (exact zeros always
    are); a unit (output feature or channel, the first weight axis) is dead when it gets no
    gradient at all: every weight of it has an exactly zero gradient. This runs on every
    training step, where the fixed cost of each tensor operation dominates for small layers:
    seven operations per layer, the row sums as a matrix-vector product with a vector that
    already holds the tolerance (small dimension-wise reductions can stall busy CPU threads).
    """

    def __init__(self, shapes, tolerance: float):
        self.tolerance = float(tolerance)
        self.rows = [(int(shape[0]) if len(shape) else 1, -1) for shape in shapes]
        self._row_weights = {}  # (layer, dtype, device) -> tolerance / size, per column

    def __call__(self, grads: list):
        present = [g for g in grads if g is not None]
        if not present:
            return None
        device = present[0].device
        counts = []
        with torch.no_grad():
            for index, grad in enumerate(grads):
                if grad is None:
                    counts += [torch.full((), -1, dtype=torch.int64, device=device)] * 2
                    continue
                rows = grad.abs().reshape(self.rows[index])
                if rows.dtype not in (torch.float32, torch.float64):
                    rows = rows.float()
                # Row sums times tolerance / size: their total is the near-zero level.
                scaled_row_sums = torch.mv(rows, self._weights(index, rows))
                counts.append(torch.count_nonzero(rows <= scaled_row_sums.sum()))
                counts.append(torch.count_nonzero(scaled_row_sums))
            if any(c.device != device for c in counts):  # layers spread over devices
                counts = [c.to(device) for c in counts]
            return torch.stack(counts)

    def _weights(self, index: int, rows):
        key = (index, rows.dtype, rows.device)
        weights = self._row_weights.get(key)
        if weights is None:
            weights = torch.full((rows.shape[1],), self.tolerance / rows.numel(),
                                 dtype=rows.dtype, device=rows.device)
            self._row_weights[key] = weights
        return weights


def statistics_sizes(grad_shape) -> tuple:
    """What the statistics' counts are out of: (weights, units)."""
    size = 1
    for extent in grad_shape:
        size *= int(extent)
    return size, int(grad_shape[0]) if len(grad_shape) else 1


class GradientHistory:
    """Per-step statistics of the recorder's layers; read with `steps` and `as_dict()`."""

    def __init__(self, layer_names, sizes):
        """`sizes`: per layer, (weights, units) that the statistics' counts are out of."""
        self.layer_names = list(layer_names)
        self._sizes = np.array(sizes, dtype=np.float64).reshape(-1, len(STATISTICS))
        self._steps = []
        self._pending = []  # one (layers, 2) device tensor per step, not yet on the host
        self._host = np.zeros((0, len(self.layer_names), len(STATISTICS)), dtype=np.float64)

    def append(self, step: int, counts: torch.Tensor) -> None:
        """`counts`: the device tensor of StepStatistics for this step."""
        if counts is None:
            return
        self._pending.append(counts)
        self._steps.append(int(step))
        if len(self._pending) >= _FLUSH_EVERY:
            self._flush()

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def steps(self) -> list:
        return list(self._steps)

    def values(self) -> np.ndarray:
        """(steps, layers, statistics) float64 array; NaN where a layer had no gradient."""
        self._flush()
        return self._host

    def as_dict(self) -> dict:
        """``{"steps": [...], "layers": {name: {statistic: [...]}}}``, JSON-serialisable."""
        values = self.values()
        layers = {}
        for i, name in enumerate(self.layer_names):
            layers[name] = {stat: [None if np.isnan(v) else float(v) for v in values[:, i, j]]
                            for j, stat in enumerate(STATISTICS)}
        return {"steps": self.steps, "layers": layers}

    def _flush(self) -> None:
        if not self._pending:
            return
        block = torch.stack([p.to(self._pending[0].device) for p in self._pending]).cpu()
        self._pending = []
        counts = block.numpy().reshape(len(block), -1, len(STATISTICS)).astype(np.float64)
        weights, units = self._sizes[:, 0], self._sizes[:, 1]
        fractions = np.stack([counts[..., 0] / weights, (units - counts[..., 1]) / units], -1)
        fractions[counts[..., 0] < 0] = np.nan  # the layer got no gradient at that step
        self._host = np.concatenate([self._host, fractions])
