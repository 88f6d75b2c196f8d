"""The cheap per-step history of a GradientRecorder: for every layer and step, the fraction of
near-zero weight gradients and of dead units. Statistics stay on the device as they are made
(no host synchronisation per step) and come to the host in blocks, when read.
"""

from __future__ import annotations

import numpy as np
import torch

STATISTICS = ("near_zero_fraction", "dead_unit_fraction")
_FLUSH_EVERY = 1024  # device tensors kept before they are moved to the host in one go


def gradient_statistics(grad: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(near-zero fraction, dead-unit fraction) of one weight gradient, as a device tensor.

    A gradient is near zero when |g| <= tolerance * mean|g| of the layer (exact zeros always
    are); a unit (output feature or channel, the first weight axis) is dead when it gets no
    gradient at all: every weight of it has an exactly zero gradient.
    """
    magnitude = grad.detach().abs().float()
    level = magnitude.mean() * tolerance
    near_zero = (magnitude <= level).float().mean()
    units = magnitude.reshape(magnitude.shape[0], -1) if magnitude.dim() > 1 else magnitude[:, None]
    dead = (units.amax(1) == 0).float().mean()
    return torch.stack((near_zero, dead))


class GradientHistory:
    """Per-step statistics of the recorder's layers; read with `steps` and `as_dict()`."""

    def __init__(self, layer_names):
        self.layer_names = list(layer_names)
        self._steps = []
        self._pending = []  # one (layers, 2) device tensor per step, not yet on the host
        self._host = np.zeros((0, len(self.layer_names), len(STATISTICS)), dtype=np.float64)

    def append(self, step: int, per_layer: list) -> None:
        """`per_layer`: one statistics tensor (or None when the layer had no gradient) per layer."""
        device_values = [v for v in per_layer if v is not None]
        if not device_values:
            return
        template = device_values[0]
        missing = torch.full((len(STATISTICS),), float("nan"), device=template.device)
        self._pending.append(torch.stack([missing if v is None else v for v in per_layer]))
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
        block = torch.stack([p.to(self._pending[0].device) for p in self._pending])
        self._pending = []
        self._host = np.concatenate([self._host, block.cpu().double().numpy()])
