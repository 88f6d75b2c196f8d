"""GPU classify ops against the CPU path and the unfused reference: elementwise, matmul (2-D,
batched, broadcast, 1-D, transposed and sliced layouts) and tensordot, over dtypes and value
distributions. Counts must match exactly and thresholds bit for bit; sums within SPEC §4."""

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference as ref
from conftest import DISTRIBUTIONS, assert_sums_close, sample
from gpu_support import device  # noqa: F401  (fixture)
from test_matmul import infinities_and_a_nan


def check_reference(device, got, ref_counts, ref_sums, abs_scale):
    """The GPU result against the unfused float64 reference itself."""
    np.testing.assert_array_equal(device.get(got[0]), ref_counts)
    assert_sums_close(device.get(got[1]), ref_sums, abs_scale)


def check_pair(device, got, want, abs_scale):
    """got: a GPU result; want: the CPU result of the same call."""
    counts, sums = got[0], got[1]
    device.assert_native(counts)
    device.assert_native(sums)
    counts, sums = device.get(counts), device.get(sums)
    assert counts.shape == want[0].shape and counts.dtype == want[0].dtype
    assert sums.shape == want[1].shape and sums.dtype == want[1].dtype
    np.testing.assert_array_equal(counts, want[0])
    assert_sums_close(sums, np.asarray(want[1], dtype=np.float64), abs_scale)
    if len(got) == 3:
        assert got[2] == want[2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_tensor_classify(device, rng, kind, dtype):
    for shape in [(), (1,), (7,), (3, 5), (2, 3, 4), (0, 4)]:
        x = sample(rng, shape, kind, dtype)
        t = 0.3 if kind != "tiny" else 1e-7
        got = nz.tensor_classify(device.put(x), threshold=t, return_threshold=True)
        want = nz.tensor_classify(x, threshold=t, return_threshold=True)
        check_pair(device, got, want, np.abs(x.astype(np.float64)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_multiply_classify_broadcasting(device, rng, kind, dtype):
    for xs, ys in [((5,), (5,)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((1,), (6, 1)),
                   ((), (2, 2)), ((2, 1, 3, 1, 2), (4, 1, 5, 1))]:
        x, y = sample(rng, xs, kind, dtype), sample(rng, ys, "normal", dtype)
        got = nz.multiply_classify(device.put(x), device.put(y), 0.8, return_thresholds=True)
        want = nz.multiply_classify(x, y, 0.8, return_thresholds=True)
        check_pair(device, got, want, ref.abs_products(np.multiply, x, y))
        check_reference(device, got, *ref.multiply_classify(x, y, *got[2]),
                        ref.abs_products(np.multiply, x, y))


def test_multiply_classify_strided_device_views(device, rng):
    x, y = sample(rng, (8, 10), "normal"), sample(rng, (10, 8), "relu")
    xv, yv = device.put(x)[::2, 1:], device.put(y).T[::2, 1:]
    got = nz.multiply_classify(xv, yv, thresholds=(0.2, 0.1))
    want = nz.multiply_classify(x[::2, 1:], y.T[::2, 1:], thresholds=(0.2, 0.1))
    check_pair(device, got, want, ref.abs_products(np.multiply, x[::2, 1:], y.T[::2, 1:]))


MATMUL_SHAPES = [
    ((1, 1), (1, 1)), ((3, 5), (5, 2)), ((17, 33), (33, 31)), ((40, 70), (70, 65)),
    ((0, 4), (4, 3)), ((3, 0), (0, 5)), ((5,), (5, 3)), ((4, 6), (6,)), ((7,), (7,)),
    ((2, 3, 4), (4, 5)), ((3, 1, 4, 6), (2, 6, 5)), ((2, 5, 8), (2, 8, 1)), ((1, 200), (200, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_matmul_matches_cpu(device, rng, kind, dtype):
    for xs, ys in MATMUL_SHAPES:
        x, y = sample(rng, xs, kind, dtype), sample(rng, ys, "normal", dtype)
        thresholds = None if x.size and y.size else (0.1, 0.2)
        got = nz.matmul_classify(device.put(x), device.put(y), 0.9, thresholds, True)
        want = nz.matmul_classify(x, y, 0.9, thresholds, True)
        check_pair(device, got, want, ref.abs_products(np.matmul, x, y))
        check_reference(device, got, *ref.matmul_classify(x, y, *got[2]),
                        ref.abs_products(np.matmul, x, y))


@pytest.mark.parametrize("layout", ["xT", "yT", "both", "sliced"])
def test_matmul_layouts(device, rng, layout):
    base_x, base_y = sample(rng, (50, 37), "normal"), sample(rng, (37, 45), "relu")
    gx, gy = device.put(base_x), device.put(base_y)
    pick = {
        "xT": lambda a, b, at, bt: (at(a).T, b),
        "yT": lambda a, b, at, bt: (a, bt(b).T),
        "both": lambda a, b, at, bt: (at(a).T, bt(b).T),
        "sliced": lambda a, b, at, bt: (a[::2, 1:], b[1:, ::3]),
    }[layout]
    host = pick(base_x, base_y, lambda a: a.T.copy(), lambda b: b.T.copy())
    gpu = pick(gx, gy, lambda a: device.put(base_x.T), lambda b: device.put(base_y.T))
    got = nz.matmul_classify(*gpu, 0.95, return_thresholds=True)
    want = nz.matmul_classify(*host, 0.95, return_thresholds=True)
    check_pair(device, got, want, ref.abs_products(np.matmul, *host))


def test_matmul_broadcast_batches(device, rng):
    x = sample(rng, (4, 1, 6, 9), "discrete")
    y = sample(rng, (3, 9, 5), "normal")
    got = nz.matmul_classify(device.put(x), device.put(y), 0.7, return_thresholds=True)
    want = nz.matmul_classify(x, y, 0.7, return_thresholds=True)
    check_pair(device, got, want, ref.abs_products(np.matmul, x, y))


def test_matmul_long_k_keeps_the_accuracy_bound(device, rng):
    # k beyond both float flush levels (128 and 2048 products); all-positive products
    x = sample(rng, (3, 5000), "relu") * np.float32(1e-3)
    y = np.abs(sample(rng, (5000, 4), "tiny"))
    got = nz.matmul_classify(device.put(x), device.put(y), return_thresholds=True)
    want = nz.matmul_classify(x, y, return_thresholds=True)
    check_pair(device, got, want, ref.abs_products(np.matmul, x, y))


def test_matmul_infinities_and_nans(device, rng):
    x, y = infinities_and_a_nan(rng)
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        nz.matmul_classify(device.put(x), thresholds=0.5, y=device.put(y))
    counts, sums = nz.matmul_classify(device.put(x), device.put(y), thresholds=0.5,
                                      nan_policy="omit")
    c, s = nz.matmul_classify(x, y, thresholds=0.5, nan_policy="omit")
    np.testing.assert_array_equal(device.get(counts), c)
    np.testing.assert_array_equal(np.isnan(device.get(sums)), np.isnan(s))
    finite = np.isfinite(s)
    np.testing.assert_allclose(device.get(sums)[finite], s[finite], rtol=1e-12, atol=1e-12)


def test_matmul_nan_omitted_without_infinities(device, rng):
    x, y = sample(rng, (9, 70), "normal"), sample(rng, (70, 33), "relu")
    x[1, 3] = y[5, 2] = np.nan
    got = nz.matmul_classify(device.put(x), device.put(y), thresholds=0.3, nan_policy="omit")
    want = nz.matmul_classify(x, y, thresholds=0.3, nan_policy="omit")
    check_pair(device, got, want, ref.abs_products(np.matmul, np.nan_to_num(x), np.nan_to_num(y)))


def test_half_precision_and_integer_inputs(device, rng):
    x16 = sample(rng, (12, 20), "normal", np.float16)
    y = sample(rng, (20, 9), "normal")
    got = nz.matmul_classify(device.put(x16), device.put(y), 0.9, return_thresholds=True)
    want = nz.matmul_classify(x16, y, 0.9, return_thresholds=True)
    check_pair(device, got, want, ref.abs_products(np.matmul, x16, y))
    xi = rng.integers(-3, 4, size=(5, 6)).astype(np.int64)
    yb = rng.random((6, 4)) > 0.5
    got = nz.matmul_classify(device.put(xi), device.put(yb), thresholds=0.5)
    want = nz.matmul_classify(xi, yb, thresholds=0.5)
    check_pair(device, got, want, ref.abs_products(np.matmul, xi, yb))
    x64 = sample(rng, (4, 8), "normal", np.float64)
    got = nz.matmul_classify(device.put(x64), device.put(y[:8]), 0.5)
    want = nz.matmul_classify(x64, y[:8], 0.5)
    check_pair(device, got, want, ref.abs_products(np.matmul, x64, y[:8]))


@pytest.mark.parametrize("xs,ys,axes", [((3, 4, 5), (4, 5, 2), 2), ((3, 4, 5), (5, 6), 1),
                                        ((4, 3, 2), (2, 4, 7), ([0, 2], [1, 0])),
                                        ((3, 2), (4, 5), 0), ((6,), (6,), 1)])
def test_tensordot(device, rng, xs, ys, axes):
    x, y = sample(rng, xs, "normal", np.float64), sample(rng, ys, "discrete", np.float64)
    got = nz.tensordot_classify(device.put(x), device.put(y), axes, 0.8, return_thresholds=True)
    want = nz.tensordot_classify(x, y, axes, 0.8, return_thresholds=True)
    scale = ref.abs_products(lambda a, b: np.tensordot(a, b, axes), x, y)
    check_pair(device, got, want, scale)
    check_reference(device, got, *ref.tensordot_classify(x, y, axes, *got[2]), scale)
