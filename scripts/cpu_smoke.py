"""Smoke test of the CPU kernels of the selected CPU level, NumPy only (it runs under an
emulated CPU, see .ci/run), with a comparison of two runs.

    python scripts/cpu_smoke.py run OUT.npz        # every op on fixed random inputs, checked
                                                   # against the float64 reference; saved to OUT
    python scripts/cpu_smoke.py compare A.npz B.npz  # two runs (two CPU levels or machines):
                                                   # counts identical, sums within SPEC §4

Each case covers what a level's SIMD code changes: matmul with normal, post-ReLU and
NaN operands, float32 and float64, transposed layouts; the three convolutions with
strides, padding, dilation and groups; the elementwise ops.
"""

from __future__ import annotations

import sys

import numpy as np

import nearzero as nz
from nearzero import reference as ref
from nearzero import reference_conv as rc

CONV = dict(strides=2, padding="SAME", dilations=1, groups=2)


def _sample(rng, shape, kind, dtype):
    v = rng.standard_normal(shape)
    if kind == "relu":
        v = np.maximum(v, 0.0)
    return v.astype(dtype)


def cases():
    """(name, counts, sums, reference counts, reference sums, Σ|products| per cell)."""
    rng = np.random.default_rng(2026)
    for dtype in (np.float32, np.float64):
        tag = np.dtype(dtype).name
        for kind in ("normal", "relu"):
            x = _sample(rng, (37, 300), "normal", dtype)
            y = _sample(rng, (300, 70), kind, dtype)
            c, s, (tx, ty) = nz.matmul_classify(x, y, 0.9, return_thresholds=True)
            rcnt, rsum = ref.matmul_classify(x, y, tx, ty)
            yield f"matmul_{kind}_{tag}", c, s, rcnt, rsum, ref.abs_products(np.matmul, x, y)
        x = _sample(rng, (3, 20, 129), "normal", dtype)
        y = np.asfortranarray(_sample(rng, (129, 33), "normal", dtype))
        x[0, 3, 5], x[1, 2, 7], y[4, 1] = np.nan, np.nan, np.nan  # values of no class
        c, s, (tx, ty) = nz.matmul_classify(x, y, 0.9, return_thresholds=True, nan_policy="omit")
        scale = ref.abs_products(np.matmul, np.nan_to_num(x, nan=0), np.nan_to_num(y, nan=0))
        yield f"matmul_nan_{tag}", c, s, *ref.matmul_classify(x, y, tx, ty), scale
        x = _sample(rng, (2, 13, 11, 8), "relu", dtype)
        w = _sample(rng, (3, 3, 4, 6), "normal", dtype)
        c, s, (tx, tw) = nz.conv_classify(x, w, confidence=0.9, return_thresholds=True, **CONV)
        yield (f"conv_forward_{tag}", c, s, *rc.conv_classify(x, w, tx, tw, **CONV),
               rc.conv_abs_products("conv_classify", x, w, None, **CONV))
        d_out = _sample(rng, c.shape[:-1], "normal", dtype)
        c, s, (tx, td) = nz.conv_backprop_filter_classify(x, d_out, w.shape, confidence=0.9,
                                                          return_thresholds=True, **CONV)
        yield (f"conv_filter_grad_{tag}", c, s,
               *rc.conv_backprop_filter_classify(x, d_out, w.shape, tx, td, **CONV),
               rc.conv_abs_products("conv_backprop_filter_classify", x, d_out, w.shape, **CONV))
        c, s, (td, tw) = nz.conv_backprop_input_classify(d_out, w, x.shape, confidence=0.9,
                                                         return_thresholds=True, **CONV)
        yield (f"conv_input_grad_{tag}", c, s,
               *rc.conv_backprop_input_classify(d_out, w, x.shape, td, tw, **CONV),
               rc.conv_abs_products("conv_backprop_input_classify", d_out, w, x.shape, **CONV))
        a, b = _sample(rng, (40, 33), "normal", dtype), _sample(rng, (33,), "relu", dtype)
        c, s, (ta, tb) = nz.multiply_classify(a, b, 0.9, return_thresholds=True)
        yield (f"multiply_{tag}", c, s, *ref.multiply_classify(a, b, ta, tb),
               np.abs(a.astype(np.float64) * b))
        c, s, t = nz.tensor_classify(a, 0.9, return_threshold=True)
        yield f"tensor_{tag}", c, s, *ref.tensor_classify(a, t), np.abs(a.astype(np.float64))


def _check(name, counts, sums, rcounts, rsums, scale, slack=1.0):
    np.testing.assert_array_equal(np.asarray(counts), np.asarray(rcounts), err_msg=name)
    err = np.abs(np.asarray(sums, np.float64) - np.asarray(rsums, np.float64))
    bound = slack * 1e-5 * np.asarray(scale, np.float64)[..., None] + 1e-300
    assert not np.isnan(err).any() and (err <= bound).all(), f"{name}: sums outside SPEC §4"


def run(path: str) -> None:
    saved = {}
    for name, c, s, rcnt, rsum, scale in cases():
        _check(name, c, s, rcnt, rsum, scale)
        saved[name + ":counts"], saved[name + ":sums"] = np.asarray(c), np.asarray(s)
        saved[name + ":scale"] = np.asarray(scale, np.float64)
    np.savez(path, **saved)
    level = nz.build_info()["cpu"]["selected"]
    print(f"cpu level {level}: {len(saved) // 3} cases match the reference; saved to {path}")


def compare(first: str, second: str) -> None:
    a, b = np.load(first), np.load(second)
    assert sorted(a.files) == sorted(b.files), "the two runs hold different cases"
    names = sorted({f.split(":")[0] for f in a.files})
    for n in names:
        # each run is within 1e-5 * scale of the exact sums, so the two within twice that
        _check(n, a[n + ":counts"], a[n + ":sums"], b[n + ":counts"], b[n + ":sums"],
               a[n + ":scale"], slack=2.0)
    print(f"{len(names)} cases agree: counts identical, sums within SPEC §4")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
