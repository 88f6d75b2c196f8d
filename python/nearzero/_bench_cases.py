"""The cases `nearzero bench` times: for each op and device the fused call, the plain operation
(NumPy/torch; cuBLAS/cuDNN with TF32 off on a GPU) and the unfused reference (nine masked
products for counts plus nine for sums: NumPy on the CPU, torch on the GPU), with a check that
the fused and reference results agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import reference
from ._rule import near_zero, percentile_positions

__all__ = ["Case", "cases", "unfused_torch"]


@dataclass
class Case:
    op: str
    size: str
    fused: Callable
    plain: Optional[Callable]
    reference: Optional[Callable]
    agree: Callable  # (fused result, reference result) -> None, raises AssertionError


# Sizes per (device, quick): the fused op takes at least about 20 ms at each, so that the
# ratios measure the kernels, not call overheads (faster plain ops are timed in batches).
SIZES = {
    ("cpu", True): dict(threshold=1 << 24, multiply=2048, matmul=(640, 640, 640),
                        conv=(16, 16, 64, 32)),
    ("cpu", False): dict(threshold=1 << 25, multiply=3072, matmul=(1024, 1024, 1024),
                         conv=(32, 16, 64, 64)),
    ("cuda", True): dict(threshold=1 << 26, multiply=4096, matmul=(2048, 2048, 2048),
                         conv=(32, 64, 56, 64)),
    ("cuda", False): dict(threshold=1 << 28, multiply=8192, matmul=(4096, 4096, 4096),
                          conv=(64, 64, 56, 64)),
}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _to_numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _agree_pairs(abs_scale):
    """Counts equal; sums within 1e-4 of Σ|a*b| per cell (both sides accumulate in float32).
    Checked where the results live (on the GPU with torch), so large results stay there."""
    def agree(fused, ref):
        counts, sums = fused[:2]
        ref_counts, ref_sums = ref[:2]
        scale = abs_scale()
        torch = _torch()
        if torch is not None and isinstance(counts, torch.Tensor):
            assert torch.equal(counts, ref_counts.round().to(counts.dtype)), \
                "fused counts differ from the reference"
            error = (sums.double() - ref_sums.double()).abs()
            assert bool((error <= 1e-4 * scale.double()[..., None] + 1e-6).all()), \
                "fused sums differ from the reference"
            return
        counts, sums, ref_counts, ref_sums, scale = (
            _to_numpy(v) for v in (counts, sums, ref_counts, ref_sums, scale))
        np.testing.assert_array_equal(counts, np.rint(ref_counts).astype(counts.dtype))
        error = np.abs(sums.astype(np.float64) - ref_sums)
        assert np.all(error <= 1e-4 * scale[..., None] + 1e-6), \
            "fused sums differ from the reference"
    return agree


def _torch_masked_parts(a, t):
    torch = _torch()
    z = near_zero(a, t)
    masks = [(a > 0) & ~z, z, (a < 0) & ~z]
    return [(m.to(a.dtype), torch.where(m, a, torch.zeros((), dtype=a.dtype, device=a.device)))
            for m in masks]


def unfused_torch(op, x, y, tx, ty):
    """The unfused method on torch, the baseline the fused ops are timed against: nine masked
    `op(x_part, y_part)` for counts and nine for sums, stacked on a last axis of 9 in the order
    PP..NN. `op` is any bilinear torch operation (matmul, mul, conv2d, its gradients)."""
    torch = _torch()
    px, py = _torch_masked_parts(x, tx), _torch_masked_parts(y, ty)
    counts = torch.stack([op(px[a][0], py[b][0]) for a in range(3) for b in range(3)], dim=-1)
    sums = torch.stack([op(px[a][1], py[b][1]) for a in range(3) for b in range(3)], dim=-1)
    return counts, sums


def _torch_threshold(x, confidence):
    """SPEC §2 by a full sort on the device (the unfused way)."""
    torch = _torch()
    a = torch.sort(x.abs().flatten()).values
    n = a.numel()
    frac = float(np.float64(np.float32(100 * (1 - confidence))) / 100)
    low, high, _ = percentile_positions(n, frac)
    lo, hi = a[low], a[high]
    return float((0.5 * (lo + hi)).item())


def cases(device: str, quick: bool, rng: np.random.Generator) -> list:
    import nearzero as nz

    sizes = SIZES[(device, quick)]
    torch = _torch()
    gpu = device == "cuda"

    def put(a):
        return torch.from_numpy(a).to("cuda") if gpu else a

    out = []
    n = sizes["threshold"]
    x = put(rng.standard_normal(n).astype(np.float32))
    out.append(Case(
        "threshold", f"{n:,} values", lambda: nz.threshold(x, 0.95),
        (lambda: torch.amax(x)) if gpu else (lambda: np.max(x)),
        (lambda: _torch_threshold(x, 0.95)) if gpu else (lambda: reference.threshold(x, 0.95)),
        lambda fused, ref: np.testing.assert_equal(fused, ref)))

    s = sizes["multiply"]
    a = put(rng.standard_normal((s, s)).astype(np.float32))
    b = put(np.maximum(rng.standard_normal((s, s)), 0).astype(np.float32))
    out.append(Case(
        "multiply_classify", f"{s}x{s}", lambda: nz.multiply_classify(a, b, thresholds=0.1),
        lambda: a * b,
        (lambda: unfused_torch(torch.mul, a, b, 0.1, 0.1)) if gpu
        else (lambda: reference.multiply_classify(a, b, np.float32(0.1), np.float32(0.1),
                                                  dtype=np.float32)),
        _agree_pairs(lambda: abs(a * b))))

    n_, k_, m_ = sizes["matmul"]
    p = put(rng.standard_normal((n_, k_)).astype(np.float32))
    q = put(np.maximum(rng.standard_normal((k_, m_)), 0).astype(np.float32))
    out.append(Case(
        "matmul_classify", f"{n_}x{k_} @ {k_}x{m_}",
        lambda: nz.matmul_classify(p, q, thresholds=0.1), lambda: p @ q,
        (lambda: unfused_torch(torch.matmul, p, q, 0.1, 0.1)) if gpu
        else (lambda: reference.matmul_classify(p, q, np.float32(0.1), np.float32(0.1),
                                                dtype=np.float32)),
        _agree_pairs(lambda: abs(p) @ abs(q))))

    if torch is not None and hasattr(nz, "conv_classify"):
        out.extend(_conv_cases(sizes["conv"], rng, gpu))
    return out


def _conv_cases(conv_size, rng, gpu) -> list:
    import torch
    import torch.nn.functional as F

    import nearzero as nz

    batch, channels, spatial, out_channels = conv_size
    dev = "cuda" if gpu else "cpu"
    x = torch.from_numpy(np.maximum(rng.standard_normal((batch, channels, spatial, spatial)),
                                    0).astype(np.float32)).to(dev)
    w = torch.from_numpy(rng.standard_normal((out_channels, channels, 3, 3))
                         .astype(np.float32)).to(dev)
    dy = torch.from_numpy(rng.standard_normal((batch, out_channels, spatial, spatial))
                          .astype(np.float32) * 1e-3).to(dev)
    kw = dict(padding=1, data_format="channels_first", thresholds=(0.05, 0.05))
    size = f"({batch},{channels},{spatial},{spatial}) * ({out_channels},{channels},3,3)"

    def weight_grad(a, g):
        return torch.nn.grad.conv2d_weight(a, tuple(w.shape), g, padding=1)

    def input_grad(g, k):
        return torch.nn.grad.conv2d_input(tuple(x.shape), k, g, padding=1)

    def conv(a, k):
        return F.conv2d(a, k, padding=1)

    def nine(op, first, second):
        return unfused_torch(op, first, second, 0.05, 0.05)

    return [
        Case("conv_classify", size, lambda: nz.conv_classify(x, w, **kw), lambda: conv(x, w),
             lambda: nine(conv, x, w), _agree_pairs(lambda: conv(x.abs(), w.abs()))),
        Case("conv_backprop_filter", size,
             lambda: nz.conv_backprop_filter_classify(x, dy, tuple(w.shape), **kw),
             lambda: weight_grad(x, dy), lambda: nine(weight_grad, x, dy),
             _agree_pairs(lambda: weight_grad(x.abs(), dy.abs()))),
        Case("conv_backprop_input", size,
             lambda: nz.conv_backprop_input_classify(dy, w, tuple(x.shape), **kw),
             lambda: input_grad(dy, w), lambda: nine(input_grad, dy, w),
             _agree_pairs(lambda: input_grad(dy.abs(), w.abs()))),
    ]
