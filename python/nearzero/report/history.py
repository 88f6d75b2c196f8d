"""The per-step history of a GradientRecorder: for every recorded layer and every step, the norms
and near-zero / non-finite / dead-unit shares of its weights, weight gradients, output A_l and
output gradient dJ/dA_l, and the step's loss. On a GPU the statistics stay on the device as they
are made (no host synchronisation per step) and come to the host in blocks, when read; on a CPU
the C++ core writes them, one pass per tensor, into a preallocated host block.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import tensor_statistics

# Per layer and step, in this order (values()'s last axis).
STATISTICS = (
    "near_zero_fraction",            # weight gradients with |g| <= tolerance * mean|g|
    "dead_unit_fraction",            # units whose weights got no gradient at all
    "non_finite_fraction",           # weight gradients that are NaN or infinite
    "weight_norm",
    "gradient_norm",
    "output_norm",                   # A_l
    "output_dead_fraction",          # units of A_l with no non-zero value in the batch
    "output_gradient_norm",          # dJ/dA_l
    "output_gradient_dead_fraction",
)
# What each (layer, step) entry holds on the device: counts (int64) and norms (float32).
COUNTS = ("near_zero", "units_with_gradient", "finite",
          "output_units_alive", "output_gradient_units_alive",
          "output_units", "output_gradient_units")
NORMS = ("weight", "gradient", "output", "output_gradient")
# On a CPU each step is one float64 row of the host block, written in place by the C++ core:
# per layer and tensor kind (in NORMS' order) the tensor_statistics.VALUES; NaN where not seen.
HOST_VALUES = len(tensor_statistics.VALUES)
_FLUSH_EVERY = 1024  # steps kept on the device before they move to the host in one go
_BLOCK_BYTES = 8 << 20  # most memory the CPU path's unread rows take (fewer steps per block)
_LARGEST = {dtype: torch.finfo(dtype).max for dtype in (torch.float32, torch.float64)}


class StepStatistics:
    """Counts and norms of every layer's weight gradient (and weight) as one step ends: an
    int64 device tensor of shape (layers, 3) (weights whose gradient is near zero, units that
    got some gradient, finite gradients; -1 for all where a layer got no gradient) and a
    float32 one of shape (layers, 2) (squared weight and gradient norms; NaN where missing).

    A gradient is near zero when |g| <= tolerance * mean|g| of the layer, the mean taken over
    the units whose gradients are all finite (exact zeros always are near zero; NaN and
    infinite values never are, they are counted apart); a unit (output feature or channel, the
    first weight axis) is dead when every weight of it has an exactly zero gradient. This runs
    on every training step, where the fixed cost of each tensor operation dominates for small
    layers: the row sums are one matrix-vector product with a vector that already holds the
    tolerance (small dimension-wise reductions can stall busy CPU threads).
    """

    def __init__(self, shapes, tolerance: float):
        self.tolerance = float(tolerance)
        self.rows = [(int(shape[0]) if len(shape) else 1, -1) for shape in shapes]
        self._row_weights = {}  # (layer, dtype, device) -> tolerance / size, per column
        self._offsets = [host_offset(index, 0) for index in range(len(self.rows))]
        self._missing = {}  # device -> (counts, norms) of a layer without gradient

    def __call__(self, grads: list, weights: list = None):
        present = [g for g in grads if g is not None]
        if not present:
            return None
        device = present[0].device
        weights = weights if weights is not None else [None] * len(grads)
        missing_count, missing_norm = self._missing_values(device)
        counts = []  # scalars, stacked once at the end
        with torch.no_grad():
            norms = torch.stack([squared_norms(weights, device, missing_norm),
                                 squared_norms(grads, device, missing_norm)], 1)
            for index, grad in enumerate(grads):
                if grad is None:
                    counts += [missing_count] * 3
                    continue
                rows = grad.abs().reshape(self.rows[index])
                if rows.dtype not in (torch.float32, torch.float64):
                    rows = rows.float()
                # Row sums times tolerance / size: their finite total is the near-zero level.
                scaled_row_sums = torch.mv(rows, self._weights(index, rows))
                level = torch.nan_to_num(scaled_row_sums, nan=0.0, posinf=0.0).sum()
                counts += [torch.count_nonzero(rows <= level),
                           torch.count_nonzero(scaled_row_sums),
                           torch.count_nonzero(rows <= _LARGEST[rows.dtype])]
            if any(c.device != device for c in counts):  # layers spread over devices
                counts = [c.to(device) for c in counts]
            return torch.stack(counts).reshape(-1, 3), norms

    def write(self, row: np.ndarray, grads: list, weights: list) -> bool:
        """The CPU path: every layer's statistics into the host `row` (see host_offset), in one
        call of the C++ core; False where no layer got a gradient (the row then holds
        nothing of this step)."""
        entries, tolerance, gradients = [], self.tolerance, False
        for grad, weight, offset in zip(grads, weights, self._offsets):
            if grad is not None:
                gradients = True
                entries.append((grad, 0, offset + HOST_VALUES, tolerance))
            if weight is not None:
                entries.append((weight, -1, offset, -1.0))
        if gradients:  # else the row holds nothing of this step
            tensor_statistics.write_tensors(entries, row)
        return gradients

    def _weights(self, index: int, rows):
        key = (index, rows.dtype, rows.device)
        weights = self._row_weights.get(key)
        if weights is None:
            weights = torch.full((rows.shape[1],), self.tolerance / rows.numel(),
                                 dtype=rows.dtype, device=rows.device)
            self._row_weights[key] = weights
        return weights

    def _missing_values(self, device):
        if device not in self._missing:
            self._missing[device] = (torch.full((), -1, dtype=torch.int64, device=device),
                                     torch.full((), math.nan, device=device))
        return self._missing[device]


def host_offset(layer: int, kind: int) -> int:
    """Where the values of `layer`'s tensor of NORMS[kind] start in a host row."""
    return (layer * len(NORMS) + kind) * HOST_VALUES


def squared_norms(tensors: list, device, missing) -> torch.Tensor:
    """Squared L2 norms of `tensors` (`missing` for None) as one float32 tensor on `device`:
    one fused operation for all of them where they are float32 on `device`."""
    present = [t for t in tensors if t is not None]
    if present and all(t.dtype == torch.float32 and t.device == device for t in present):
        norms = iter(torch._foreach_norm(present))
        return torch.stack([missing if t is None else next(norms) for t in tensors]).square()
    return torch.stack([missing if t is None else squared_norm(t).to(device) for t in tensors])


def squared_norm(tensor):
    """The squared L2 norm as a float32 scalar (the history takes the root on the host): a dot
    product where it can be one, which is the fastest full pass over a tensor on a CPU."""
    if tensor.dtype in (torch.float32, torch.float64) and tensor.is_contiguous():
        flat = tensor.reshape(-1)
        total = torch.dot(flat, flat)
        return total if total.dtype == torch.float32 else total.float()
    return torch.linalg.vector_norm(tensor, dtype=torch.float32) ** 2


def statistics_sizes(grad_shape) -> tuple:
    """What the gradient counts are out of: (weights, units)."""
    size = 1
    for extent in grad_shape:
        size *= int(extent)
    return size, int(grad_shape[0]) if len(grad_shape) else 1


class GradientHistory:
    """Per-step statistics of the recorder's layers; read with `values()`, `loss()`,
    `as_dict()` and `as_dataframe()` (needs pandas)."""

    def __init__(self, layer_names, sizes):
        """`sizes`: per layer, (weights, units) that the gradient counts are out of."""
        self.layer_names = list(layer_names)
        self._sizes = np.array(sizes, dtype=np.float64).reshape(-1, 2)
        self._steps = []
        self._pending = []  # per step: (counts, norms, loss) on the device, not yet read
        # CPU steps not yet read: rows written in place (allocated on the first), their losses.
        self._block = self._block_loss = None
        self._filled = 0
        # Read blocks, joined when read.
        self._blocks = [np.zeros((0, len(self.layer_names), len(STATISTICS)), dtype=np.float64)]
        self._losses = [np.zeros(0, dtype=np.float64)]

    def append(self, step: int, counts: torch.Tensor, norms: torch.Tensor, loss=None) -> None:
        """`counts` (layers, len(COUNTS)) int64 and `norms` (layers, len(NORMS)) float32 squared
        norms, on the device; `loss`: a tensor, a number or None."""
        if isinstance(loss, torch.Tensor):
            loss = loss.detach().reshape(()).float()
        if self._filled:  # the model moved from the CPU: keep the steps in order
            self._flush()
        self._pending.append((counts, norms, loss))
        self._steps.append(int(step))
        if len(self._pending) >= _FLUSH_EVERY:
            self._flush()

    def host_row(self) -> np.ndarray:
        """The row the next CPU step writes (all NaN); `append_row` keeps it."""
        if self._pending:  # the model moved to the CPU: keep the steps in order
            self._flush()
        if self._block is None:
            width = len(self.layer_names) * len(NORMS) * HOST_VALUES
            rows = max(1, min(_FLUSH_EVERY, _BLOCK_BYTES // (8 * width)))
            self._block, self._block_loss = np.empty((rows, width)), np.empty(rows)
        row = self._block[self._filled]
        row.fill(math.nan)
        return row

    def append_row(self, step: int, loss=None) -> None:
        """Keep the row of `host_row()`, filled, as `step`; `loss`: a tensor, number or None."""
        if isinstance(loss, torch.Tensor):
            loss = loss.item()  # one value on the CPU: no device to wait for
        self._block_loss[self._filled] = math.nan if loss is None else float(loss)
        self._filled += 1
        self._steps.append(int(step))
        if self._filled == len(self._block):
            self._flush()

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def steps(self) -> list:
        return list(self._steps)

    def values(self) -> np.ndarray:
        """(steps, layers, len(STATISTICS)) float64 array; NaN where a value was not seen (a
        layer without gradient, or not run, at that step)."""
        self._flush()
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0]

    def statistic(self, name: str) -> np.ndarray:
        """(steps, layers) array of one of STATISTICS."""
        if name not in STATISTICS:
            raise ValueError(f"unknown statistic {name!r}; known: {', '.join(STATISTICS)}")
        return self.values()[:, :, STATISTICS.index(name)]

    def loss(self) -> np.ndarray:
        """The loss of each step (NaN where none was given)."""
        self._flush()
        if len(self._losses) > 1:
            self._losses = [np.concatenate(self._losses)]
        return self._losses[0]

    def as_dict(self) -> dict:
        """``{"steps": [...], "loss": [...], "layers": {name: {statistic: [...]}}}``,
        JSON-serialisable (None for a missing value)."""
        values = self.values()
        layers = {}
        for i, name in enumerate(self.layer_names):
            layers[name] = {stat: _json_list(values[:, i, j]) for j, stat in enumerate(STATISTICS)}
        return {"steps": self.steps, "loss": _json_list(self.loss()), "layers": layers}

    def as_dataframe(self):
        """A pandas DataFrame with one row per step and layer: columns step, layer, loss and
        every statistic."""
        try:
            import pandas
        except ImportError:
            raise ImportError("as_dataframe() needs pandas: pip install pandas") from None
        values = self.values()
        steps, layers = len(self._steps), len(self.layer_names)
        frame = {"step": np.repeat(np.asarray(self._steps, dtype=np.int64), layers),
                 "layer": np.tile(np.asarray(self.layer_names, dtype=object), steps),
                 "loss": np.repeat(self.loss(), layers)}
        for j, stat in enumerate(STATISTICS):
            frame[stat] = values[:, :, j].reshape(-1)
        return pandas.DataFrame(frame)

    def _flush(self) -> None:
        if self._filled:
            self._flush_rows()
        if not self._pending:
            return
        device = self._pending[0][0].device
        counts = torch.stack([c.to(device) for c, _, _ in self._pending])
        norms = torch.stack([n.to(device) for _, n, _ in self._pending])
        losses = torch.stack([_loss_tensor(loss, device) for _, _, loss in self._pending])
        self._pending = []
        counts = counts.cpu().numpy().astype(np.float64)
        block = _fractions(counts, norms.cpu().numpy().astype(np.float64), self._sizes)
        self._blocks.append(block)
        self._losses.append(losses.cpu().numpy().astype(np.float64))

    def _flush_rows(self) -> None:
        rows = self._block[:self._filled].reshape(self._filled, len(self.layer_names), len(NORMS),
                                                  HOST_VALUES)
        value = {name: rows[..., i] for i, name in enumerate(tensor_statistics.VALUES)}
        kind = {name: i for i, name in enumerate(NORMS)}
        by_count = {
            "near_zero": value["near_zero"][:, :, kind["gradient"]],
            "units_with_gradient": value["units_alive"][:, :, kind["gradient"]],
            "finite": value["finite"][:, :, kind["gradient"]],
            "output_units_alive": value["units_alive"][:, :, kind["output"]],
            "output_gradient_units_alive": value["units_alive"][:, :, kind["output_gradient"]],
            "output_units": value["units"][:, :, kind["output"]],
            "output_gradient_units": value["units"][:, :, kind["output_gradient"]],
        }
        counts = np.nan_to_num(np.stack([by_count[name] for name in COUNTS], -1), nan=-1.0)
        block = _fractions(counts, value["squared_norm"], self._sizes)
        self._blocks.append(block)
        self._losses.append(self._block_loss[:self._filled].copy())
        self._filled = 0


def _fractions(counts, norms, sizes) -> np.ndarray:
    """The STATISTICS of a block of steps from its counts and norms."""
    column = {name: counts[..., i] for i, name in enumerate(COUNTS)}
    weights, units = sizes[:, 0], sizes[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        gradient = {
            "near_zero_fraction": column["near_zero"] / weights,
            "dead_unit_fraction": (units - column["units_with_gradient"]) / units,
            "non_finite_fraction": (weights - column["finite"]) / weights,
        }
        output = {
            "output_dead_fraction": 1 - column["output_units_alive"] / column["output_units"],
            "output_gradient_dead_fraction":
                1 - column["output_gradient_units_alive"] / column["output_gradient_units"],
        }
    for name in gradient:
        gradient[name][column["near_zero"] < 0] = np.nan  # the layer got no gradient
    output["output_dead_fraction"][column["output_units"] <= 0] = np.nan
    output["output_gradient_dead_fraction"][column["output_gradient_units"] <= 0] = np.nan
    by_name = {**gradient, **output}
    for i, name in enumerate(NORMS):
        by_name[f"{name}_norm"] = np.sqrt(norms[..., i])  # the device keeps squared norms
    return np.stack([by_name[name] for name in STATISTICS], axis=-1)


def _loss_tensor(loss, device):
    if loss is None:
        return torch.full((), math.nan, device=device)
    if isinstance(loss, torch.Tensor):
        return loss.to(device)
    return torch.tensor(float(loss), device=device)


def _json_list(values) -> list:
    return [None if not np.isfinite(v) else float(v) for v in values]
