"""matmul_classify and tensordot_classify against the unfused reference (nine masked matmuls
for counts, nine for sums, float64), over shapes, batches, layouts, dtypes and distributions."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nearzero as nz
from nearzero import reference as ref
from conftest import DISTRIBUTIONS, assert_sums_close, sample

SHAPES = [
    ((1, 1), (1, 1)), ((3, 5), (5, 2)), ((17, 33), (33, 31)), ((2, 70), (70, 65)),
    ((64, 129), (129, 40)), ((0, 4), (4, 3)), ((3, 0), (0, 5)), ((5,), (5, 3)), ((4, 6), (6,)),
    ((7,), (7,)), ((2, 3, 4), (4, 5)), ((3, 1, 4, 6), (2, 6, 5)), ((2, 5, 8), (2, 8, 1)),
    ((1, 200), (200, 1)), ((300, 2), (2, 300)),
]


def check(x, y, counts, sums, tx, ty):
    rc, rs = ref.matmul_classify(x, y, tx, ty)
    assert counts.shape == np.matmul(x, y).shape + (9,)
    np.testing.assert_array_equal(counts, rc)
    assert_sums_close(sums, rs, ref.abs_products(np.matmul, x, y))
    k = x.shape[-1]
    np.testing.assert_array_equal(counts.sum(-1), np.full(counts.shape[:-1], k))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("xs,ys", SHAPES)
def test_matmul_matches_reference(rng, xs, ys, kind, dtype):
    x, y = sample(rng, xs, kind, dtype), sample(rng, ys, "normal", dtype)
    thresholds = None if x.size and y.size else (0.1, 0.2)
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, 0.9, thresholds, True)
    assert counts.dtype == np.int32
    assert sums.dtype == (np.float64 if dtype == np.float64 else np.float32)
    check(x, y, counts, sums, tx, ty)


@pytest.mark.parametrize("layout", ["xT", "yT", "both", "sliced", "negative"])
def test_matmul_layouts(rng, layout):
    base_x = sample(rng, (90, 70), "normal")
    base_y = sample(rng, (70, 90), "relu")
    x, y = {
        "xT": (np.asfortranarray(base_x), base_y),
        "yT": (base_x, base_y.T.copy().T),
        "both": (base_y.T, base_x.T),
        "sliced": (base_x[::2, 1:], base_y[1:, ::3]),
        "negative": (base_x[::-1, ::-1], base_y[::-1]),
    }[layout]
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, 0.95, return_thresholds=True)
    check(x, y, counts, sums, tx, ty)


def test_matmul_broadcast_batch_shares_data(rng):
    x = sample(rng, (4, 1, 6, 9), "discrete")
    y = np.broadcast_to(sample(rng, (9, 5), "normal"), (3, 9, 5))
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, 0.7, return_thresholds=True)
    check(x, y, counts, sums, tx, ty)


def test_matmul_long_k_accuracy(rng):
    # k far beyond the register flush interval; post-ReLU and tiny magnitudes
    x = sample(rng, (3, 20000), "relu") * np.float32(1e-3)
    y = sample(rng, (20000, 4), "tiny")
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, return_thresholds=True)
    check(x, y, counts, sums, tx, ty)


def infinities_and_a_nan(rng):
    """float64 x (6, 40) and y (40, 7) with x[2, 5] = inf, y[9, 3] = -inf, x[4, 7] NaN."""
    x = sample(rng, (6, 40), "normal", np.float64)
    y = sample(rng, (40, 7), "normal", np.float64)
    x[2, 5] = np.inf
    y[9, 3] = -np.inf
    x[4, 7] = np.nan
    return x, y


def test_matmul_infinite_and_nan_inputs(rng):
    x, y = infinities_and_a_nan(rng)
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        nz.matmul_classify(x, y, thresholds=0.5)
    counts, sums = nz.matmul_classify(x, y, thresholds=0.5, nan_policy="omit")
    rc, _ = ref.matmul_classify(x, y, 0.5, 0.5)
    np.testing.assert_array_equal(counts, rc)
    assert counts[4].sum(-1).max() == 39  # the NaN product belongs to no class
    finite_rows = [0, 1, 3, 5]
    finite_cols = [0, 1, 2, 4, 5, 6]
    xs, ys = np.nan_to_num(x, nan=0.0), y
    _, rs = ref.matmul_classify(xs[finite_rows], ys[:, finite_cols], 0.5, 0.5)
    assert_sums_close(sums[np.ix_(finite_rows, finite_cols)], rs,
                      ref.abs_products(np.matmul, xs[finite_rows], ys[:, finite_cols]))
    # the infinite product sits in its own class; other classes stay finite
    assert sums[2, 0, 0] in (np.inf, -np.inf) or sums[2, 0, 2] in (np.inf, -np.inf)
    assert np.isfinite(sums[2, :, 3:]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_kind,y_kind", [("normal", "relu"), ("relu", "relu"),
                                           ("relu", "normal"), ("discrete", "relu")])
@pytest.mark.parametrize("k", [200, 1000])
def test_matmul_empty_and_zero_classes(rng, x_kind, y_kind, dtype, k):
    # Post-ReLU operands leave whole classes empty (no N) or exactly zero (Z at threshold 0):
    # the kernel skips those products, which must not change a count or a sum. A k of 1000
    # takes a post-ReLU y in several L1 slices at the AVX-512 level.
    x, y = sample(rng, (37, k), x_kind, dtype), sample(rng, (k, 45), y_kind, dtype)
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, return_thresholds=True)
    check(x, y, counts, sums, tx, ty)


@pytest.mark.parametrize("k", [130, 700])
def test_matmul_zero_times_inf_is_nan_in_its_class(rng, k):
    # An exact-zero x against +inf in y is NaN, as in x @ y, and only in the ZP class.
    x = sample(rng, (9, k), "relu")
    y = sample(rng, (k, 40), "relu")
    x[:, 70] = np.where(np.arange(9) % 2 == 0, 0.0, 1.5).astype(np.float32)
    y[70, 33] = np.inf
    counts, sums = nz.matmul_classify(x, y, thresholds=0.0)
    with np.errstate(invalid="ignore"):
        plain = x @ y
    zero_rows, positive_rows = np.arange(0, 9, 2), np.arange(1, 9, 2)
    assert np.isnan(plain[zero_rows, 33]).all() and np.isinf(plain[positive_rows, 33]).all()
    assert np.isnan(sums[zero_rows, 33, 3]).all()  # ZP
    assert np.isposinf(sums[positive_rows, 33, 0]).all()  # PP
    others = np.ones(sums.shape, dtype=bool)
    others[zero_rows, 33, 3] = others[positive_rows, 33, 0] = False
    assert np.isfinite(sums[others]).all()
    finite = np.ones(40, dtype=bool)
    finite[33] = False
    rc, rs = ref.matmul_classify(x, y[:, finite], 0.0, 0.0)
    np.testing.assert_array_equal(counts[:, finite], rc)
    assert_sums_close(sums[:, finite], rs, ref.abs_products(np.matmul, x, y[:, finite]))
    np.testing.assert_array_equal(counts.sum(-1), np.full((9, 40), k))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [512, 520])
def test_matmul_large_result(rng, m, dtype):
    # A full result of 16 MiB or more is written with streaming stores at the AVX-512 level,
    # where its rows start on whole cache lines (m = 512: all of them; m = 520: every other row,
    # and never the last column block); the others take the plain writer.
    x, y = sample(rng, (512, 24), "normal", dtype), sample(rng, (24, m), "discrete", dtype)
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, 0.8, return_thresholds=True)
    assert counts.nbytes + sums.nbytes >= 16 << 20
    check(x, y, counts, sums, tx, ty)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_near_zero_sums_beside_large_products(rng, dtype):
    # Large P and N values of y beside tiny near-zero ones: where the kernel takes the near-zero
    # sums as the total less the P and N sums, their error must still be within SPEC §4's bound,
    # over long runs of one class (several flushes of the partial sums).
    x = sample(rng, (6, 3000), "normal", dtype)
    y = sample(rng, (3000, 40), "normal", dtype)
    y = np.where(np.abs(y) > 0.3, y * 1e4, y * 1e-4).astype(dtype)
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, thresholds=(0.1, 1.0),
                                                return_thresholds=True)
    check(x, y, counts, sums, tx, ty)


@pytest.mark.parametrize("form", [0.25, (0.25, None), (None, 0.5), [0.1, 0.3], np.float64(0.2)])
def test_threshold_forms(rng, form):
    x, y = sample(rng, (5, 8), "normal"), sample(rng, (8, 3), "normal")
    _, _, (tx, ty) = nz.matmul_classify(x, y, 0.9, form, True)
    pair = (form, form) if np.ndim(form) == 0 else tuple(form)
    for got, given_t, v in zip((tx, ty), pair, (x, y)):
        want = ref.threshold(v, 0.9) if given_t is None else float(np.float32(given_t))
        assert got == want and isinstance(got, float)


def test_reduce_and_mask(rng):
    x, y = sample(rng, (3, 20, 30), "relu"), sample(rng, (30, 11), "normal")
    counts, sums = nz.matmul_classify(x, y)
    c_all, s_all = nz.matmul_classify(x, y, reduce="all")
    assert c_all.shape == (9,) and s_all.shape == (9,) and s_all.dtype == np.float32
    np.testing.assert_array_equal(c_all, counts.reshape(-1, 9).sum(0))
    np.testing.assert_allclose(s_all, sums.reshape(-1, 9).sum(0, dtype=np.float64), rtol=1e-5,
                               atol=1e-4)
    c_ch, s_ch = nz.matmul_classify(x, y, reduce="channel")
    assert c_ch.shape == (11, 9)
    np.testing.assert_array_equal(c_ch, counts.sum(axis=(0, 1)))
    np.testing.assert_allclose(s_ch, sums.sum(axis=(0, 1), dtype=np.float64), rtol=1e-5, atol=1e-4)
    mask = rng.random((3, 20, 11)) > 0.5
    c_m, s_m = nz.matmul_classify(x, y, mask=mask)
    np.testing.assert_array_equal(c_m, counts * mask[..., None])
    np.testing.assert_array_equal(s_m, sums * mask[..., None])
    c_mc, _ = nz.matmul_classify(x, y, reduce="channel", mask=mask)
    np.testing.assert_array_equal(c_mc, (counts * mask[..., None]).sum(axis=(0, 1)))


def test_reduced_counts_widen_to_int64_only_when_needed(rng):
    x, y = sample(rng, (4, 5), "normal"), sample(rng, (5, 6), "normal")
    c, _ = nz.matmul_classify(x, y, reduce="all")
    assert c.dtype == np.int32


TENSORDOT = [((3, 4, 5), (4, 5, 2), 2), ((3, 4, 5), (5, 6), 1), ((2, 3), (3, 2), ([1], [0])),
             ((4, 3, 2), (2, 4, 7), ([0, 2], [1, 0])), ((3, 2), (4, 5), 0), ((6,), (6,), 1)]


@pytest.mark.parametrize("xs,ys,axes", TENSORDOT)
def test_tensordot_matches_reference(rng, xs, ys, axes):
    x, y = sample(rng, xs, "normal", np.float64), sample(rng, ys, "discrete", np.float64)
    counts, sums, (tx, ty) = nz.tensordot_classify(x, y, axes, 0.8, return_thresholds=True)
    rc, rs = ref.tensordot_classify(x, y, axes, tx, ty)
    assert counts.shape == np.tensordot(x, y, axes).shape + (9,)
    np.testing.assert_array_equal(counts, rc)
    assert_sums_close(sums, rs, ref.abs_products(lambda a, b: np.tensordot(a, b, axes), x, y))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 9), k=st.integers(0, 140), m=st.integers(0, 40),
    batch=st.sampled_from([(), (1,), (2,), (2, 1)]),
    t=st.floats(0, 2), seed=st.integers(0, 2**31 - 1),
)
def test_matmul_properties(n, k, m, batch, t, seed):
    r = np.random.default_rng(seed)
    x = r.choice([-1.5, -0.25, 0.0, 0.25, 1.0, 2.0], size=batch + (n, k)).astype(np.float32)
    y = r.standard_normal((k, m)).astype(np.float32)
    counts, sums = nz.matmul_classify(x, y, thresholds=t)
    assert counts.shape == batch + (n, m, 9)
    np.testing.assert_array_equal(counts.sum(-1), np.full(batch + (n, m), k))
    rc, rs = ref.matmul_classify(x, y, np.float32(t), np.float32(t))
    np.testing.assert_array_equal(counts, rc)
    assert_sums_close(sums, rs, ref.abs_products(np.matmul, x, y))
