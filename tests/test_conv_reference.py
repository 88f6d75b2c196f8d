"""The three convolution classify ops against the unfused reference (nine masked convolutions
for counts, nine for sums, float64): exact counts and SPEC §4 sums over hand-picked edge
geometries and seeded random ones, in both layouts, 1D to 3D."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference_conv as rc
from conftest import assert_sums_close, sample


@dataclass
class Case:
    batch: int
    in_channels: int
    out_channels: int
    in_sp: tuple
    k_sp: tuple
    strides: object = 1
    padding: object = "VALID"
    dilations: object = 1
    groups: int = 1
    data_format: str = "channels_last"
    kind: str = "normal"
    kernel_kind: str = "normal"
    extra: dict = field(default_factory=dict)

    @property
    def dims(self):
        return len(self.in_sp)

    @property
    def channels_first(self):
        return self.data_format == "channels_first"

    def activation_shape(self, spatial, channels):
        if self.channels_first:
            return (self.batch, channels) + tuple(spatial)
        return (self.batch,) + tuple(spatial) + (channels,)

    @property
    def x_shape(self):
        return self.activation_shape(self.in_sp, self.in_channels)

    @property
    def kernel_shape(self):
        cg = self.in_channels // self.groups
        if self.channels_first:
            return (self.out_channels, cg) + tuple(self.k_sp)
        return tuple(self.k_sp) + (cg, self.out_channels)

    @property
    def d_out_shape(self):
        dims = self.dims
        per_dim = (lambda v: (v,) * dims if np.isscalar(v) else tuple(v))
        s, d = per_dim(self.strides), per_dim(self.dilations)
        pads = rc.resolve_padding(self.padding, self.in_sp, self.k_sp, s, d)
        out = tuple((i + b + a - (k - 1) * dd - 1) // ss + 1
                    for i, k, ss, dd, (b, a) in zip(self.in_sp, self.k_sp, s, d, pads))
        return self.activation_shape(out, self.out_channels)

    def kwargs(self):
        return dict(strides=self.strides, padding=self.padding, dilations=self.dilations,
                    groups=self.groups, data_format=self.data_format)

    def operands(self, rng, dtype=np.float32):
        x = sample(rng, self.x_shape, self.kind, dtype)
        w = sample(rng, self.kernel_shape, self.kernel_kind, dtype)
        d_out = sample(rng, self.d_out_shape, self.kernel_kind, dtype)
        return x, w, d_out


CF, CL = "channels_first", "channels_last"

EDGE_CASES = {
    "basic_2d": Case(2, 3, 4, (6, 7), (3, 3)),
    "basic_2d_cf": Case(2, 3, 4, (6, 7), (3, 3), data_format=CF),
    "kernel_larger_than_input_same": Case(1, 2, 3, (3, 2), (5, 4), padding="SAME"),
    "kernel_larger_than_input_same_cf": Case(2, 2, 3, (2, 3), (4, 5), padding="same",
                                             data_format=CF, kind="relu"),
    "stride_larger_than_kernel": Case(2, 3, 2, (11, 9), (2, 2), strides=(4, 3)),
    "stride_larger_than_kernel_same": Case(1, 2, 2, (10, 7), (1, 2), strides=(3, 5),
                                           padding="SAME", data_format=CF),
    "even_kernel_same_stride2": Case(2, 3, 5, (8, 9), (4, 2), strides=2, padding="SAME"),
    "even_kernel_same_stride2_cf": Case(1, 4, 4, (7, 6), (2, 4), strides=2, padding="SAME",
                                        data_format=CF, kind="relu"),
    "depthwise": Case(2, 6, 6, (7, 5), (3, 3), padding="SAME", groups=6),
    "depthwise_multiplier_cf": Case(1, 4, 8, (6, 6), (3, 2), groups=4, data_format=CF,
                                    strides=(1, 2)),
    "one_by_one": Case(3, 5, 7, (4, 5), (1, 1)),
    "one_by_one_cf_stride": Case(1, 5, 3, (5, 6), (1, 1), strides=2, data_format=CF),
    "batch1_dilated": Case(1, 2, 3, (9, 10), (3, 2), dilations=(2, 3), padding=[1, (0, 2)]),
    "conv1d": Case(2, 3, 4, (17,), (5,), strides=2, padding="SAME"),
    "conv1d_cf_dilated": Case(1, 2, 2, (12,), (3,), dilations=3, padding=(2, 1),
                              data_format=CF),
    "conv3d": Case(1, 2, 3, (4, 5, 3), (2, 3, 2), padding="SAME"),
    "conv3d_cf_strided": Case(2, 2, 2, (5, 4, 6), (3, 2, 2), strides=(2, 1, 2),
                              data_format=CF, kind="relu"),
    "ties_at_threshold": Case(2, 3, 3, (5, 5), (3, 3), padding="SAME", kind="discrete",
                              kernel_kind="discrete", extra={"thresholds": (0.5, 0.5)}),
    "relu_exact_zeros": Case(2, 4, 4, (6, 6), (3, 3), padding=1, kind="relu",
                             data_format=CF),
    "many_column_blocks": Case(1, 3, 37, (5, 4), (2, 2), padding="SAME"),
    "many_k_channels": Case(1, 130, 5, (4, 3), (2, 1), padding="SAME", data_format=CF),
    "many_out_channels_per_group": Case(1, 4, 140, (4, 4), (2, 2), groups=2, padding="SAME"),
    "big_kernel_panel": Case(1, 64, 80, (3, 3, 3), (3, 3, 3), padding="SAME"),
    "tiny_magnitudes": Case(2, 3, 4, (6, 6), (3, 3), kind="tiny", kernel_kind="tiny"),
    # Rows of whole 16-position tiles: result runs that start on and off 64-byte lines, one
    # class slot (post-ReLU) and all three (normal values).
    "wide_rows_relu_cf": Case(2, 6, 5, (20, 37), (3, 3), padding=1, data_format=CF,
                              kind="relu"),
    "wide_rows_normal_cf": Case(1, 4, 3, (16, 48), (3, 3), padding="SAME", data_format=CF),
    "explicit_tf_padding": Case(1, 2, 2, (5, 5), (3, 3),
                                padding=[(0, 0), (1, 2), (2, 0), (0, 0)]),
}


def random_cases(count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        dims = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 1, 2, 3]))
        cin = groups * int(rng.integers(1, 4))
        cout = groups * int(rng.integers(1, 4))
        top = {1: 14, 2: 8, 3: 5}[dims]
        in_sp = tuple(int(v) for v in rng.integers(1, top, dims))
        k_sp = tuple(int(v) for v in rng.integers(1, 5, dims))
        strides = tuple(int(v) for v in rng.integers(1, 4, dims))
        dilations = tuple(int(v) for v in rng.integers(1, 3, dims))
        padding = [
            "VALID", "SAME", "same",
            [int(v) for v in rng.integers(0, 3, dims)],
            [(int(a), int(b)) for a, b in rng.integers(0, 3, (dims, 2))],
        ][int(rng.integers(0, 5))]
        case = Case(int(rng.integers(1, 3)), cin, cout, in_sp, k_sp, strides, padding,
                    dilations, groups, [CL, CF][int(rng.integers(0, 2))],
                    str(rng.choice(["normal", "relu", "discrete"])),
                    str(rng.choice(["normal", "discrete"])))
        if all(s >= 1 for s in case.d_out_shape):
            cases.append(case)
    return cases


ALL_CASES = list(EDGE_CASES.items()) + [(f"random{i}", c) for i, c in
                                        enumerate(random_cases(24, 2024))]


def run_forward(case, x, w, **kw):
    thresholds = case.extra.get("thresholds")
    counts, sums, (tx, tw) = nz.conv_classify(x, w, confidence=0.8, thresholds=thresholds,
                                               return_thresholds=True, **case.kwargs(), **kw)
    ref = rc.conv_classify(x, w, tx, tw, **case.kwargs())
    scale = rc.conv_abs_products("conv_classify", x, w, None, **case.kwargs())
    return counts, sums, ref, scale


def run_filter_grad(case, x, d_out, **kw):
    thresholds = case.extra.get("thresholds")
    counts, sums, (tx, td) = nz.conv_backprop_filter_classify(
        x, d_out, case.kernel_shape, confidence=0.8, thresholds=thresholds,
        return_thresholds=True, **case.kwargs(), **kw)
    ref = rc.conv_backprop_filter_classify(x, d_out, case.kernel_shape, tx, td, **case.kwargs())
    scale = rc.conv_abs_products("conv_backprop_filter_classify", x, d_out, case.kernel_shape,
                                 **case.kwargs())
    return counts, sums, ref, scale


def run_input_grad(case, d_out, w, **kw):
    thresholds = case.extra.get("thresholds")
    counts, sums, (td, tw) = nz.conv_backprop_input_classify(
        d_out, w, case.x_shape, confidence=0.8, thresholds=thresholds, return_thresholds=True,
        **case.kwargs(), **kw)
    ref = rc.conv_backprop_input_classify(d_out, w, case.x_shape, td, tw, **case.kwargs())
    scale = rc.conv_abs_products("conv_backprop_input_classify", d_out, w, case.x_shape,
                                 **case.kwargs())
    return counts, sums, ref, scale


def check(counts, sums, ref, scale, value_shape, dtype=np.float32):
    ref_counts, ref_sums = ref
    assert counts.shape == tuple(value_shape) + (9,)
    assert counts.dtype == np.int32
    assert sums.dtype == (np.float64 if dtype == np.float64 else np.float32)
    np.testing.assert_array_equal(counts, ref_counts)
    assert_sums_close(sums, ref_sums, scale)


@pytest.mark.parametrize("name,case", ALL_CASES, ids=[n for n, _ in ALL_CASES])
def test_forward_matches_reference(name, case, rng):
    x, w, _ = case.operands(rng)
    counts, sums, ref, scale = run_forward(case, x, w)
    check(counts, sums, ref, scale, case.d_out_shape)
    ones = rc.conv_classify(np.ones_like(x), np.ones_like(w), 0.0, 0.0, **case.kwargs())[0]
    np.testing.assert_array_equal(counts.sum(-1), ones.sum(-1))  # in-bounds products


@pytest.mark.parametrize("name,case", ALL_CASES, ids=[n for n, _ in ALL_CASES])
def test_filter_grad_matches_reference(name, case, rng):
    x, _, d_out = case.operands(rng)
    counts, sums, ref, scale = run_filter_grad(case, x, d_out)
    check(counts, sums, ref, scale, case.kernel_shape)


@pytest.mark.parametrize("name,case", ALL_CASES, ids=[n for n, _ in ALL_CASES])
def test_input_grad_matches_reference(name, case, rng):
    _, w, d_out = case.operands(rng)
    counts, sums, ref, scale = run_input_grad(case, d_out, w)
    check(counts, sums, ref, scale, case.x_shape)


@pytest.mark.parametrize("data_format", [CL, CF])
def test_float64_all_ops(rng, data_format):
    case = Case(2, 4, 6, (7, 6), (3, 2), strides=(2, 1), padding="SAME", groups=2,
                data_format=data_format, kind="relu")
    x, w, d_out = case.operands(rng, np.float64)
    check(*run_forward(case, x, w), case.d_out_shape, np.float64)
    check(*run_filter_grad(case, x, d_out), case.kernel_shape, np.float64)
    check(*run_input_grad(case, d_out, w), case.x_shape, np.float64)


def test_filter_grad_long_reduction_accuracy(rng):
    # batch x positions far beyond the 128-product register flush, and split across tasks
    case = Case(4, 3, 5, (40, 36), (3, 3), padding="SAME", data_format=CF, kind="relu",
                kernel_kind="tiny")
    x, _, d_out = case.operands(rng)
    x *= np.float32(1e-3)
    counts, sums, ref, scale = run_filter_grad(case, x, d_out)
    check(counts, sums, ref, scale, case.kernel_shape)


def test_infinite_values_stay_in_their_pair(rng):
    case = Case(1, 2, 3, (5, 5), (3, 3), padding="SAME")
    x, w, _ = case.operands(rng, np.float64)
    x[0, 2, 2, 1] = np.inf
    counts, sums = nz.conv_classify(x, w, thresholds=0.1, **case.kwargs())
    finite = x.copy()
    finite[0, 2, 2, 1] = 1e300
    ref_counts, ref_sums = rc.conv_classify(finite, w, 0.1, 0.1, **case.kwargs())
    np.testing.assert_array_equal(counts, ref_counts)
    assert not np.isnan(sums).any()
    huge = np.abs(ref_sums) > 1e250
    np.testing.assert_array_equal(np.isinf(sums), huge)
    np.testing.assert_array_equal(np.sign(sums[huge]), np.sign(ref_sums[huge]))
    np.testing.assert_allclose(sums[~huge], ref_sums[~huge], rtol=1e-12, atol=1e-12)


def test_nan_omit_and_raise(rng):
    case = Case(2, 3, 4, (6, 6), (3, 3), padding="SAME", data_format=CF)
    x, w, d_out = case.operands(rng)
    x[0, 1, 2, 3] = np.nan
    x[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="inputs contains 2 NaN"):
        nz.conv_classify(x, w, thresholds=0.2, **case.kwargs())
    with pytest.raises(ValueError, match="x contains 2 NaN"):
        nz.conv_backprop_filter_classify(x, d_out, case.kernel_shape, thresholds=0.2,
                                         **case.kwargs())
    for op, args, ref_op, shape_arg in [
        (nz.conv_classify, (x, w), "conv_classify", None),
        (nz.conv_backprop_filter_classify, (x, d_out, case.kernel_shape),
         "conv_backprop_filter_classify", case.kernel_shape),
    ]:
        counts, sums = op(*args, thresholds=0.2, nan_policy="omit", **case.kwargs())
        first, second = args[:2]
        ref_args = (first, second) if shape_arg is None else (first, second, shape_arg)
        ref_counts, ref_sums = getattr(rc, ref_op)(*ref_args, 0.2, 0.2, **case.kwargs())
        np.testing.assert_array_equal(counts, ref_counts)
        assert_sums_close(sums, ref_sums, rc.conv_abs_products(ref_op, first, second, shape_arg,
                                                               **case.kwargs()))


def _class(v, t):
    return 1 if v == 0 or abs(v) < t else 0 if v > 0 else 2


def _brute_force_filter_grad_1d(x, d_out, k, tx, td, pad):
    """Kernel gradient of a channels_last stride-1 1D convolution, product by product in IEEE
    double arithmetic, each product added to its own pair."""
    n, length, c = x.shape
    o = d_out.shape[-1]
    sums = np.zeros((k, c, o, 9))
    counts = np.zeros((k, c, o, 9), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for b in range(n):
            for p in range(d_out.shape[1]):
                for t in range(k):
                    i = p + t - pad
                    if not 0 <= i < length:
                        continue
                    for ci in range(c):
                        for co in range(o):
                            pair = 3 * _class(x[b, i, ci], tx) + _class(d_out[b, p, co], td)
                            sums[t, ci, co, pair] += float(x[b, i, ci]) * float(d_out[b, p, co])
                            counts[t, ci, co, pair] += 1
    return counts, sums


def test_infinite_panel_values_with_exact_zero_rows(rng):
    # post-ReLU x (exact zeros are Z) meets an inf in d_out: 0 * inf is NaN in its own pair
    x = np.maximum(rng.standard_normal((2, 9, 2)), 0.0)
    d_out = rng.standard_normal((2, 9, 3))
    d_out[1, 4, 2] = np.inf
    counts, sums = nz.conv_backprop_filter_classify(x, d_out, (3, 2, 3), padding="SAME",
                                                    thresholds=0.1)
    ref_counts, ref_sums = _brute_force_filter_grad_1d(x, d_out, 3, 0.1, 0.1, 1)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(np.isnan(sums), np.isnan(ref_sums))
    finite = ~np.isnan(ref_sums)
    np.testing.assert_allclose(sums[finite], ref_sums[finite], rtol=1e-12, atol=1e-12)
    assert np.isnan(sums).any() and np.isinf(sums).any()


def test_class_segments_longer_than_the_flush_interval(rng):
    # 3x3 x 28 channels = 252 kernel entries in one block, all positive: one class segment of
    # 252 products per cell, accumulated in float32 at most 128 at a time
    case = Case(1, 28, 3, (5, 6), (3, 3), padding="SAME", data_format=CF)
    x, w, _ = case.operands(rng)
    x, w = np.abs(x) + np.float32(0.5), np.abs(w) + np.float32(0.5)
    counts, sums, ref, scale = run_forward(case, x, w)
    check(counts, sums, ref, scale, case.d_out_shape)
    assert counts[..., 0].max() > 128


@pytest.mark.parametrize("data_format", [CF, CL])
@pytest.mark.parametrize("infinite_in", ["x", "d_out"])
def test_filter_grad_float32_wide_rows_with_infinities(rng, data_format, infinite_in):
    """Rows of 36 positions (the vector packers' adjacent runs, row edges and padding) and 20
    output channels (a partial column block), float32 with +-inf in x or in d_out: counts exact,
    an infinite product stays in its own pair (reference: the inf as 1e300, in float64)."""
    case = Case(2, 5, 20, (20, 36), (3, 3), padding="SAME", data_format=data_format)
    x, _, d_out = case.operands(rng)
    x = np.abs(x) + np.float32(0.05)  # no zeros: inf * 0 would be NaN
    target = x if infinite_in == "x" else d_out
    flat = target.reshape(-1)
    spots = rng.choice(flat.size, 3, replace=False)
    flat[spots] = np.array([np.inf, -np.inf, np.inf], np.float32)
    counts, sums = nz.conv_backprop_filter_classify(x, d_out, case.kernel_shape, thresholds=0.3,
                                                    **case.kwargs())
    finite_x, finite_d = x.astype(np.float64), d_out.astype(np.float64)
    for a in (finite_x, finite_d):
        a[np.isinf(a)] = np.sign(a[np.isinf(a)]) * 1e300
    ref_counts, ref_sums = rc.conv_backprop_filter_classify(finite_x, finite_d, case.kernel_shape,
                                                            0.3, 0.3, **case.kwargs())
    np.testing.assert_array_equal(counts, ref_counts)
    assert not np.isnan(sums).any()
    huge = np.abs(ref_sums) > 1e250
    assert huge.any()
    np.testing.assert_array_equal(np.isinf(sums), huge)
    np.testing.assert_array_equal(np.sign(sums[huge]), np.sign(ref_sums[huge]))
    scale = rc.conv_abs_products("conv_backprop_filter_classify", np.abs(x).clip(max=1e6),
                                 np.abs(d_out).clip(max=1e6), case.kernel_shape, **case.kwargs())
    np.testing.assert_allclose(sums[~huge], ref_sums[~huge],
                               atol=float(1e-5 * scale.max()), rtol=1e-5)
