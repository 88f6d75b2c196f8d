"""GPU convolution classify (forward, kernel gradient, input gradient) against the CPU kernels:
both layouts, 1D to 3D, strides, dilations, groups, SAME and explicit padding, reduce= and
mask=, infinities, float64. Counts exact, sums within SPEC §4 of the CPU's float64 result."""

import numpy as np
import pytest

import nearzero as nz
from conftest import assert_sums_close, sample
from gpu_support import device  # noqa: F401  (fixture)

# (batch, in_channels, out_channels, input spatial, kernel spatial, keyword arguments)
GEOMETRIES = [
    (2, 3, 4, (9,), (3,), {}),
    (1, 4, 6, (7, 8), (3, 2), {"strides": 2, "padding": "SAME"}),
    (2, 4, 4, (6, 7), (3, 3), {"dilations": (2, 1), "padding": [(1, 2), (0, 1)], "groups": 2}),
    (1, 2, 3, (4, 5, 3), (2, 3, 2), {"strides": (1, 2, 1), "padding": "SAME"}),
    (3, 6, 3, (5, 5), (1, 1), {"groups": 3}),
    (1, 3, 40, (6, 6), (3, 3), {"padding": 1}),
    (2, 5, 3, (11,), (4,), {"strides": 3, "dilations": 2, "padding": "SAME"}),
]
LAYOUTS = ["channels_last", "channels_first"]


def shapes(case, data_format):
    batch, cin, cout, in_sp, k_sp, kwargs = case
    groups = kwargs.get("groups", 1)
    if data_format == "channels_first":
        x_shape, kernel_shape = (batch, cin) + in_sp, (cout, cin // groups) + k_sp
    else:
        x_shape, kernel_shape = (batch,) + in_sp + (cin,), k_sp + (cin // groups, cout)
    return x_shape, kernel_shape, kwargs


def abs_scale(op, first, second, *args, **kwargs):
    """Σ|a*b| per cell (float64): the scale of SPEC §4's bound."""
    _, sums = op(np.abs(first).astype(np.float64), np.abs(second).astype(np.float64), *args,
                 thresholds=0.0, **kwargs)
    return sums.sum(-1)


def compare(device, op, first, second, *args, dtype=np.float32, **kwargs):
    first, second = first.astype(dtype), second.astype(dtype)
    got = op(device.put(first), device.put(second), *args, return_thresholds=True, **kwargs)
    want = op(first, second, *args, return_thresholds=True, **kwargs)
    device.assert_native(got[0])
    counts, sums = device.get(got[0]), device.get(got[1])
    assert counts.dtype == want[0].dtype and sums.dtype == want[1].dtype
    np.testing.assert_array_equal(counts, want[0])
    assert got[2] == want[2]
    if kwargs.get("reduce") is None:
        assert_sums_close(sums, want[1], abs_scale(op, first, second, *args, **kwargs))
    else:
        np.testing.assert_allclose(sums, want[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", LAYOUTS)
@pytest.mark.parametrize("case", GEOMETRIES, ids=[str(i) for i in range(len(GEOMETRIES))])
def test_three_convolutions_match_cpu(device, rng, case, data_format):
    x_shape, kernel_shape, kwargs = shapes(case, data_format)
    x = sample(rng, x_shape, "relu")
    kernel = sample(rng, kernel_shape, "normal")
    kw = dict(kwargs, data_format=data_format)
    compare(device, nz.conv_classify, x, kernel, **kw)
    counts, _ = nz.conv_classify(x, kernel, thresholds=0.0, **kw)
    d_out = sample(rng, counts.shape[:-1], "tiny")
    compare(device, nz.conv_backprop_filter_classify, x, d_out, kernel_shape, **kw)
    compare(device, nz.conv_backprop_input_classify, d_out, kernel, x_shape, **kw)


@pytest.mark.parametrize("data_format", LAYOUTS)
def test_reduce_and_mask(device, rng, data_format):
    x_shape, kernel_shape, kwargs = shapes(GEOMETRIES[2], data_format)
    kw = dict(kwargs, data_format=data_format)
    x, kernel = sample(rng, x_shape, "normal"), sample(rng, kernel_shape, "discrete")
    counts, _ = nz.conv_classify(x, kernel, thresholds=0.0, **kw)
    d_out = sample(rng, counts.shape[:-1], "normal")
    for reduce in ("all", "channel"):
        compare(device, nz.conv_classify, x, kernel, reduce=reduce, **kw)
        compare(device, nz.conv_backprop_filter_classify, x, d_out, kernel_shape, reduce=reduce,
                **kw)
        compare(device, nz.conv_backprop_input_classify, d_out, kernel, x_shape, reduce=reduce,
                **kw)
    mask = rng.random(counts.shape[:-1]) > 0.4
    got = nz.conv_classify(device.put(x), device.put(kernel), mask=device.put(mask), **kw)
    want = nz.conv_classify(x, kernel, mask=mask, **kw)
    np.testing.assert_array_equal(device.get(got[0]), want[0])
    got = nz.conv_classify(device.put(x), device.put(kernel), mask=device.put(mask),
                           reduce="channel", **kw)
    want = nz.conv_classify(x, kernel, mask=mask, reduce="channel", **kw)
    np.testing.assert_array_equal(device.get(got[0]), want[0])


def test_float64_infinities_and_long_reductions(device, rng):
    x_shape, kernel_shape, kwargs = shapes(GEOMETRIES[1], "channels_first")
    kw = dict(kwargs, data_format="channels_first")
    x, kernel = sample(rng, x_shape, "normal"), sample(rng, kernel_shape, "normal")
    compare(device, nz.conv_classify, x, kernel, dtype=np.float64, **kw)
    x[0, 1, 2, 3] = np.inf  # the exact kernel
    got = nz.conv_classify(device.put(x), device.put(kernel), thresholds=0.3, **kw)
    want = nz.conv_classify(x, kernel, thresholds=0.3, **kw)
    np.testing.assert_array_equal(device.get(got[0]), want[0])
    np.testing.assert_array_equal(np.isnan(device.get(got[1])), np.isnan(want[1]))
    # a kernel gradient whose k (batch x positions) passes both float flush levels
    x = sample(rng, (3, 2, 40, 40), "relu")
    d_out = sample(rng, (3, 2, 38, 38), "normal")
    compare(device, nz.conv_backprop_filter_classify, x, d_out, (2, 2, 3, 3),
            data_format="channels_first")
