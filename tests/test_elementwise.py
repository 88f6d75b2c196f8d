"""tensor_classify and multiply_classify against the unfused reference."""

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference as ref
from conftest import DISTRIBUTIONS, assert_sums_close, sample

SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (16, 1, 9)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_tensor_classify_matches_reference(rng, shape, kind, dtype):
    x = sample(rng, shape, kind, dtype)
    t = 0.3 if kind != "tiny" else 1e-7
    counts, sums = nz.tensor_classify(x, threshold=t)
    rc, rs = ref.tensor_classify(x, dtype(t))
    assert counts.shape == shape + (3,) and counts.dtype == np.int32
    assert sums.dtype == (np.float64 if dtype == np.float64 else np.float32)
    np.testing.assert_array_equal(counts, rc)
    np.testing.assert_array_equal(sums, rs.astype(sums.dtype))


BROADCASTS = [((5,), (5,)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((1,), (6, 1)), ((0, 3), (3,)),
              ((), (2, 2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("xs,ys", BROADCASTS)
def test_multiply_classify_matches_reference(rng, xs, ys, kind, dtype):
    x, y = sample(rng, xs, kind, dtype), sample(rng, ys, "normal", dtype)
    if x.size == 0:
        with pytest.raises(ValueError, match="empty; pass thresholds="):
            nz.multiply_classify(x, y, 0.8)
        counts, sums, (tx, ty) = nz.multiply_classify(x, y, 0.8, (0.3, None), True)
    else:
        counts, sums, (tx, ty) = nz.multiply_classify(x, y, 0.8, return_thresholds=True)
    rc, rs = ref.multiply_classify(x, y, tx, ty)
    shape = np.broadcast_shapes(xs, ys)
    assert counts.shape == shape + (9,)
    np.testing.assert_array_equal(counts, rc)
    assert_sums_close(sums, rs, ref.abs_products(np.multiply, x, y))
    np.testing.assert_allclose(sums.sum(-1), (x * y).astype(np.float64), rtol=1e-6, atol=1e-30)


def test_multiply_classify_strided_inputs(rng):
    x = sample(rng, (8, 10), "normal")
    y = sample(rng, (10, 8), "relu")
    xv, yv = x[::2, ::-1], y.T[::2, ::-1]
    counts, sums = nz.multiply_classify(xv, yv, thresholds=(0.2, 0.1))
    rc, rs = ref.multiply_classify(xv, yv, np.float32(0.2), np.float32(0.1))
    np.testing.assert_array_equal(counts, rc)
    assert_sums_close(sums, rs, ref.abs_products(np.multiply, xv, yv))


@pytest.mark.parametrize("op", ["tensor", "multiply"])
def test_reduce_and_mask_agree_with_full_result(rng, op):
    x = sample(rng, (6, 5, 4), "normal")
    y = sample(rng, (6, 5, 4), "relu")
    mask = rng.random((6, 5, 4)) > 0.4

    def call(**kw):
        if op == "tensor":
            return nz.tensor_classify(x, threshold=0.5, **kw)
        return nz.multiply_classify(x, y, thresholds=(0.5, 0.2), **kw)

    counts, sums = call()
    c_all, s_all = call(reduce="all")
    np.testing.assert_array_equal(c_all, counts.reshape(-1, counts.shape[-1]).sum(0))
    np.testing.assert_allclose(s_all, sums.reshape(-1, sums.shape[-1]).sum(0, dtype=np.float64),
                               rtol=1e-6)
    for axis in (-1, 1, 0):
        c_ch, s_ch = call(reduce="channel", channel_axis=axis)
        other = tuple(a for a in range(3) if a != axis % 3)
        np.testing.assert_array_equal(c_ch, counts.sum(axis=other))
        np.testing.assert_allclose(s_ch, sums.sum(axis=other, dtype=np.float64), rtol=1e-6)
    c_m, s_m = call(mask=mask)
    np.testing.assert_array_equal(c_m, counts * mask[..., None])
    c_ma, _ = call(reduce="all", mask=mask)
    np.testing.assert_array_equal(c_ma, counts[mask].sum(0))


def test_float16_and_integer_inputs_compute_as_float32(rng):
    x16 = sample(rng, (50,), "normal", np.float16)
    counts, sums, t = nz.tensor_classify(x16, 0.9, return_threshold=True)
    assert sums.dtype == np.float32
    rc, _ = ref.tensor_classify(x16.astype(np.float32), np.float32(t))
    np.testing.assert_array_equal(counts, rc)
    ints = rng.integers(-3, 4, size=(4, 4))
    counts, sums = nz.multiply_classify(ints, ints > 0, thresholds=1.5)
    rc, rs = ref.multiply_classify(ints.astype(np.float32), (ints > 0).astype(np.float32), 1.5, 1.5)
    np.testing.assert_array_equal(counts, rc)
    np.testing.assert_array_equal(sums, rs.astype(np.float32))


# Rows longer than one chunk of the kernel (256 cells) and than one task (65,536 cells, split
# into pieces), broadcast (stride 0) and reversed inputs, every reduction.
LONG_CASES = [((3, 700), (3, 700)), ((70000,), (70000,)), ((5, 1, 300), (1, 4, 300)),
              ((2, 513), (513,)), ((1,), (40, 300))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,ys", LONG_CASES)
def test_long_rows_match_reference_in_every_mode(rng, xs, ys, dtype):
    x = sample(rng, xs, "normal", dtype)
    y = sample(rng, ys, "relu", dtype)[..., ::-1]  # reversed: a negative stride
    x.reshape(-1)[::97] = np.nan
    shape = np.broadcast_shapes(xs, ys)
    counts, sums = nz.multiply_classify(x, y, thresholds=(0.4, 0.2), nan_policy="omit")
    rc, rs = ref.multiply_classify(x, y, dtype(0.4), dtype(0.2))
    assert counts.shape == shape + (9,)
    np.testing.assert_array_equal(counts, rc)
    assert_sums_close(sums, rs, ref.abs_products(np.multiply, np.nan_to_num(x), y))
    c_all, s_all = nz.multiply_classify(x, y, thresholds=(0.4, 0.2), nan_policy="omit",
                                        reduce="all")
    np.testing.assert_array_equal(c_all, rc.reshape(-1, 9).sum(0))
    np.testing.assert_allclose(s_all, rs.reshape(-1, 9).sum(0, dtype=np.float64), rtol=1e-5,
                               atol=1e-3)
    for axis in range(len(shape)):
        c_ch, s_ch = nz.multiply_classify(x, y, thresholds=(0.4, 0.2), nan_policy="omit",
                                          reduce="channel", channel_axis=axis)
        other = tuple(a for a in range(len(shape)) if a != axis)
        np.testing.assert_array_equal(c_ch, rc.sum(axis=other))
        np.testing.assert_allclose(s_ch, rs.sum(axis=other, dtype=np.float64), rtol=1e-5,
                                   atol=1e-3)
    mask = rng.random(shape) < 0.3
    c_m, s_m = nz.multiply_classify(x, y, thresholds=(0.4, 0.2), nan_policy="omit", mask=mask)
    np.testing.assert_array_equal(c_m, rc * mask[..., None])
    tc, ts = nz.tensor_classify(x, threshold=0.4, nan_policy="omit", reduce="channel",
                                channel_axis=-1)
    rtc, rts = ref.tensor_classify(x, dtype(0.4))
    np.testing.assert_array_equal(tc, rtc.reshape(-1, xs[-1], 3).sum(0))
    np.testing.assert_allclose(ts, rts.reshape(-1, xs[-1], 3).sum(0, dtype=np.float64),
                               rtol=1e-5, atol=1e-3)


# Short rows and every channel axis: a channel's cells come in stretches of 1 (the last axis),
# of fewer than 16 or of many cells, and one chunk of the kernel spans several rows.
SHORT_ROWS = [(40000, 1), (9000, 3), (700, 5, 7), (300, 17), (2, 3, 3000)]


@pytest.mark.parametrize("shape", SHORT_ROWS)
def test_channel_reductions_of_short_rows_with_and_without_mask(rng, shape):
    x = sample(rng, shape, "normal")
    y = sample(rng, shape[-1:], "relu")  # broadcast along the rows
    mask = rng.random(shape) < 0.6
    rc, rs = ref.multiply_classify(x, y, np.float32(0.4), np.float32(0.2))
    counts, sums = nz.multiply_classify(x, y, thresholds=(0.4, 0.2))
    np.testing.assert_array_equal(counts, rc)
    for axis in range(len(shape)):
        other = tuple(a for a in range(len(shape)) if a != axis)
        for m in (None, mask):
            keep = np.ones(shape, bool) if m is None else m
            c_ch, s_ch = nz.multiply_classify(x, y, thresholds=(0.4, 0.2), reduce="channel",
                                              channel_axis=axis, mask=m)
            np.testing.assert_array_equal(c_ch, (rc * keep[..., None]).sum(axis=other))
            np.testing.assert_allclose(
                s_ch, (rs * keep[..., None]).sum(axis=other, dtype=np.float64), rtol=1e-5,
                atol=1e-3)
