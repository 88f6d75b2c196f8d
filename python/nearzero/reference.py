"""Plain, unfused NumPy implementations written from the specification.

Used only by tests and benchmarks as the independent reference for the fused kernels: the
threshold by a full sort, and two-input ops as nine masked products for counts plus nine for
sums (the original's method). Slow and memory-hungry by design; never called by the library.
"""

from __future__ import annotations

import numpy as np

P, Z, N, NONE = 0, 1, 2, 3

__all__ = ["threshold", "classify", "tensor_classify", "multiply_classify", "matmul_classify",
           "tensordot_classify", "masked_parts", "abs_products"]


def threshold(x, confidence=0.95):
    """SPEC §2 literally: float32-rounded q, midpoint of two order statistics of sorted |x|."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    a = np.sort(np.abs(x.astype(dtype)).ravel())
    a = a[~np.isnan(a)]
    n = a.size
    q = np.float32(100 * (1 - confidence))
    frac = np.float64(q) / 100
    idx = (n - 1) * frac
    lo = a[int(np.clip(np.floor(idx), 0, n - 1))]
    hi = a[int(np.clip(np.ceil(idx), 0, n - 1))]
    with np.errstate(over="ignore"):
        t = dtype.type(0.5) * (lo + hi)
        if not np.isfinite(t) and np.isfinite(hi):
            t = dtype.type(0.5) * lo + dtype.type(0.5) * hi
    return float(t)


def classify(x, t):
    """Class code of every element: P=0, Z=1, N=2, NaN=3 (SPEC §1)."""
    x = np.asarray(x)
    codes = np.full(x.shape, NONE, dtype=np.int8)
    zero = (x == 0) | (np.abs(x) < t)
    codes[(x > 0) & ~zero] = P
    codes[(x < 0) & ~zero] = N
    codes[zero] = Z
    return codes


def masked_parts(x, t, dtype=np.float64):
    """For each class: (indicator as `dtype`, values masked to that class as `dtype`)."""
    codes = classify(x, t)
    xv = np.where(codes == NONE, 0, np.asarray(x)).astype(dtype)
    parts = []
    for c in (P, Z, N):
        m = codes == c
        parts.append((m.astype(dtype), np.where(m, xv, 0).astype(dtype)))
    return parts


def tensor_classify(x, t):
    codes = classify(x, t)
    counts = np.stack([(codes == c).astype(np.int64) for c in (P, Z, N)], axis=-1)
    sums = np.stack([np.where(codes == c, np.asarray(x, dtype=np.float64), 0.0)
                     for c in (P, Z, N)], axis=-1)
    return counts, sums


def _pairwise(op, x, y, tx, ty, dtype):
    px, py = masked_parts(x, tx, dtype), masked_parts(y, ty, dtype)
    counts = np.stack([op(px[a][0], py[b][0]) for a in range(3) for b in range(3)], axis=-1)
    with np.errstate(invalid="ignore"):  # masked zeros times inf: NaN, as in the original
        sums = np.stack([op(px[a][1], py[b][1]) for a in range(3) for b in range(3)], axis=-1)
    return np.rint(counts).astype(np.int64), sums


def multiply_classify(x, y, tx, ty, dtype=np.float64):
    return _pairwise(np.multiply, x, y, tx, ty, dtype)


def matmul_classify(x, y, tx, ty, dtype=np.float64):
    """Nine masked matmuls for counts plus nine for sums, in `dtype`."""
    return _pairwise(np.matmul, x, y, tx, ty, dtype)


def tensordot_classify(x, y, axes, tx, ty, dtype=np.float64):
    return _pairwise(lambda a, b: np.tensordot(a, b, axes), x, y, tx, ty, dtype)


def abs_products(op, x, y):
    """Σ|x_i*y_i| per output cell in float64: the scale of SPEC §4's error bound."""
    return op(np.abs(np.asarray(x, dtype=np.float64)), np.abs(np.asarray(y, dtype=np.float64)))
