"""GPU reduce= and mask= forms: computed inside the kernels, equal to reducing the full GPU
result (and the CPU's reduced result) for elementwise and matmul ops."""

import numpy as np
import pytest

import nearzero as nz
from conftest import sample
from gpu_support import device  # noqa: F401  (fixture)


def reduced_like_cpu(device, got, want):
    counts, sums = device.get(got[0]), device.get(got[1])
    device.assert_native(got[0])
    assert counts.dtype == want[0].dtype and sums.dtype == want[1].dtype
    np.testing.assert_array_equal(counts, want[0])
    np.testing.assert_allclose(sums, want[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduce", ["all", "channel"])
def test_matmul_reduce_and_mask(device, rng, reduce):
    x, y = sample(rng, (3, 20, 70), "relu"), sample(rng, (70, 37), "normal")
    mask = rng.random((3, 20, 37)) > 0.5
    gx, gy = device.put(x), device.put(y)
    for m in (None, mask):
        gm = None if m is None else device.put(m)
        got = nz.matmul_classify(gx, gy, reduce=reduce, mask=gm)
        want = nz.matmul_classify(x, y, reduce=reduce, mask=m)
        reduced_like_cpu(device, got, want)
    full_counts, full_sums = nz.matmul_classify(gx, gy, mask=device.put(mask))
    c, s = nz.matmul_classify(x, y, mask=mask)
    np.testing.assert_array_equal(device.get(full_counts), c)
    np.testing.assert_array_equal(device.get(full_counts)[~mask], 0)
    np.testing.assert_array_equal(device.get(full_sums)[~mask], 0)


@pytest.mark.parametrize("xs,ys", [((40,), (40, 9)), ((6, 40), (40,)), ((2, 6, 40), (40,)),
                                   ((33, 3), (3, 65))])
def test_matmul_channel_axis_with_vectors(device, rng, xs, ys):
    x, y = sample(rng, xs, "normal"), sample(rng, ys, "discrete")
    for reduce in ("all", "channel"):
        got = nz.matmul_classify(device.put(x), device.put(y), reduce=reduce)
        reduced_like_cpu(device, got, nz.matmul_classify(x, y, reduce=reduce))


def test_matmul_reduce_float64_and_infinite_inputs(device, rng):
    x, y = sample(rng, (5, 30), "normal", np.float64), sample(rng, (30, 6), "normal", np.float64)
    for reduce in ("all", "channel"):
        got = nz.matmul_classify(device.put(x), device.put(y), reduce=reduce)
        reduced_like_cpu(device, got, nz.matmul_classify(x, y, reduce=reduce))
    x[1, 2] = np.inf  # takes the exact kernel
    got = nz.matmul_classify(device.put(x), device.put(y), thresholds=0.5, reduce="channel")
    want = nz.matmul_classify(x, y, thresholds=0.5, reduce="channel")
    np.testing.assert_array_equal(device.get(got[0]), want[0])


def test_tensordot_reduce(device, rng):
    x, y = sample(rng, (3, 4, 5), "normal"), sample(rng, (4, 5, 6), "relu")
    for reduce in ("all", "channel"):
        got = nz.tensordot_classify(device.put(x), device.put(y), 2, reduce=reduce)
        reduced_like_cpu(device, got, nz.tensordot_classify(x, y, 2, reduce=reduce))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_elementwise_reduce_and_mask(device, rng, axis):
    x, y = sample(rng, (6, 7, 5), "normal"), sample(rng, (7, 1), "relu")
    mask = rng.random((6, 7, 5)) > 0.3
    gx, gy, gm = device.put(x), device.put(y), device.put(mask)
    for reduce in ("all", "channel"):
        for m, g in ((None, None), (mask, gm)):
            got = nz.multiply_classify(gx, gy, reduce=reduce, mask=g, channel_axis=axis)
            want = nz.multiply_classify(x, y, reduce=reduce, mask=m, channel_axis=axis)
            reduced_like_cpu(device, got, want)
            got = nz.tensor_classify(gx, reduce=reduce, mask=g, channel_axis=axis)
            want = nz.tensor_classify(x, reduce=reduce, mask=m, channel_axis=axis)
            reduced_like_cpu(device, got, want)


def test_reduce_of_empty_results(device):
    x, y = np.zeros((0, 4), np.float32), np.zeros((4, 3), np.float32)
    counts, sums = nz.matmul_classify(device.put(x), device.put(y), thresholds=0.1, reduce="all")
    np.testing.assert_array_equal(device.get(counts), np.zeros(9))
    assert device.get(sums).shape == (9,)
    counts, _ = nz.matmul_classify(device.put(x), device.put(y), thresholds=0.1,
                                   reduce="channel")
    assert device.get(counts).shape == (3, 9) and not device.get(counts).any()


def test_mask_must_live_with_the_inputs(device, rng):
    x, y = sample(rng, (4, 5), "normal"), sample(rng, (5, 3), "normal")
    with pytest.raises(ValueError, match="mask must be on the same device"):
        nz.matmul_classify(device.put(x), device.put(y), mask=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="mask has shape"):
        nz.matmul_classify(device.put(x), device.put(y), mask=device.put(np.ones((3, 4), bool)))
    with pytest.raises(ValueError, match="bool"):
        nz.matmul_classify(device.put(x), device.put(y), mask=device.put(np.ones((4, 3))))
