"""Layers other than Linear and Conv: what the report can say about them from their gradients.
Embedding rows that were not looked up, normalisation affine parameters, the projections of
nn.MultiheadAttention and the gates of LSTM/GRU get sections and notes of their own.
"""

from __future__ import annotations

import torch
from torch import nn

from .chain import is_norm
from .layers import is_supported
from .measure import near_zero_mask
from .model import Cause

# Row blocks of the stacked recurrent and attention parameters, in PyTorch's order.
_RNN_GATES = {nn.LSTM: ("input", "forget", "cell", "output"), nn.GRU: ("reset", "update", "new"),
              nn.RNN: ("hidden",)}
_ATTENTION_PROJECTIONS = ("query", "key", "value")


def explain_other(report, capture, measurer, grads: dict, param: str, threshold: float):
    """Fill the LayerReport's notes and sections for a layer that is not fully analysed;
    return its causes, or None where it has none of its own (then `none` or nothing)."""
    module = capture.module
    report.notes.append(_note(capture))
    blocks = _row_blocks(module)
    sections = []
    for name, grad in grads.items():
        t = threshold if name == param else measurer.threshold(grad, sharded=False)
        parts = _split(name, grad, blocks)
        for label, part in parts:
            key = f"dJ/d{name}" + (f"[{label}]" if label else "")
            title = f"{key} - gradient of {name}" + (f" ({label} rows)" if label else "")
            sections.append(measurer.tensor(key, title, part, threshold=t, sharded=False))
    report.sections = sections
    if isinstance(module, nn.Embedding) and capture.a0 is not None:
        return _embedding_causes(report, module, capture.a0, grads[param], threshold)
    return None


def _note(capture) -> str:
    module = capture.module
    kind = type(module).__name__
    if is_supported(module):
        if capture.z is None:
            return ("the layer's forward pass was not seen: its weights are used without "
                    "calling the module (as nn.MultiheadAttention uses its out_proj), so only "
                    "its gradients are reported")
        return "dJ/dZ_l was not captured at this step, so only the gradients are reported"
    if isinstance(module, nn.Embedding):
        return ("an Embedding is a lookup: dJ/dW_l = onehot(A_0)ᵀ · dJ/dZ_l, so only the rows "
                "looked up in the batch get gradient; the report counts the others")
    if is_norm(module):
        return (f"{kind}'s affine parameters (weight: scale, bias: shift) are explained by "
                "their gradient statistics; the layer feeding it is explained with S_l at "
                "the activation after it")
    if isinstance(module, nn.MultiheadAttention):
        return ("nn.MultiheadAttention: the query, key and value projections (in_proj) are "
                "Linear maps applied inside the attention function, whose inputs and outputs "
                "are not module calls the report can see; their gradients are shown per "
                "projection (out_proj is reported as its own layer)")
    if isinstance(module, tuple(_RNN_GATES)):
        return (f"{kind}: the recurrence applies its weights at every time step, so the report "
                "gives gradient statistics per gate (rows of each stacked weight) rather than "
                "the factors of one product")
    return (f"{kind} layers are not analysed beyond their gradients: the report covers "
            "nn.Linear and nn.Conv1d/2d/3d")


def _row_blocks(module):
    for kind, gates in _RNN_GATES.items():
        if isinstance(module, kind):
            return gates
    if isinstance(module, nn.MultiheadAttention):
        return _ATTENTION_PROJECTIONS
    return None


def _split(name: str, grad: torch.Tensor, blocks):
    """(label, rows) blocks of a stacked parameter's gradient, or [(None, grad)]."""
    stacked = name.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh", "in_proj"))
    if not blocks or not stacked or grad.dim() == 0 or grad.shape[0] % len(blocks):
        return [(None, grad)]
    return list(zip(blocks, grad.chunk(len(blocks), 0)))


def _embedding_causes(report, module, indices, grad, threshold) -> list:
    """Rows not looked up in the batch get exactly zero gradient: an input near zero (their
    one-hot input is zero everywhere)."""
    rows = module.num_embeddings
    looked_up = torch.zeros(rows, dtype=torch.bool, device=grad.device)
    looked_up[indices.reshape(-1).to(grad.device).long()] = True
    from . import distributed as dist

    if dist.is_distributed():
        looked_up = dist.all_reduce_sum(looked_up.to(torch.int64)) > 0
    unused = int((~looked_up).sum())
    near = near_zero_mask(grad, threshold)
    near_count = int(near.sum())
    in_unused = int(near[~looked_up].sum())
    report.embedding = {"rows": rows, "rows_looked_up": rows - unused}
    if unused == 0 or near_count == 0:
        return None
    share = in_unused / near_count
    padding = ("" if module.padding_idx is None
               else f" (the padding row {module.padding_idx} never gets gradient)")
    return [Cause("inputs_near_zero", float(share),
                  f"{unused} of {rows} rows ({unused / rows * 100:.1f}%) were not looked up in "
                  f"this batch{padding}: their one-hot input is zero, so their gradients are "
                  f"exactly zero; they hold {share * 100:.1f}% of the near-zero gradients",
                  ["expected for a large vocabulary: each step trains only the rows in its "
                   "batch; rows never looked up over many steps are never trained (check the "
                   "vocabulary size against the data)",
                   "with many unused rows, sparse gradients (nn.Embedding(sparse=True) with "
                   "torch.optim.SparseAdam) skip them"])]
