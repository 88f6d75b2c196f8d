"""reduce= and mask= of the convolution ops agree with the full result; empty inputs give
correctly shaped results; concurrent calls agree; shapes match torch for random geometries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nearzero as nz
from conftest import sample
from test_errors import assert_threads_agree

CF, CL = "channels_first", "channels_last"


def operands(rng, data_format, dtype=np.float32):
    """x, kernel, d_out of a strided, grouped, SAME-padded 2D convolution."""
    if data_format == CF:
        x_shape, w_shape, d_shape = (2, 4, 7, 6), (6, 2, 3, 2), (2, 6, 4, 6)
    else:
        x_shape, w_shape, d_shape = (2, 7, 6, 4), (3, 2, 2, 6), (2, 4, 6, 6)
    return (sample(rng, x_shape, "relu", dtype), sample(rng, w_shape, "normal", dtype),
            sample(rng, d_shape, "normal", dtype))


KW = dict(strides=(2, 1), padding="SAME", groups=2)


def calls(x, w, d_out, data_format):
    kw = dict(KW, data_format=data_format, thresholds=(0.3, 0.2))
    return {
        "forward": (lambda **e: nz.conv_classify(x, w, **kw, **e),
                    1 if data_format == CF else -1),
        "filter": (lambda **e: nz.conv_backprop_filter_classify(x, d_out, w.shape, **kw, **e),
                   0 if data_format == CF else -1),
        "input": (lambda **e: nz.conv_backprop_input_classify(d_out, w, x.shape, **kw, **e),
                  1 if data_format == CF else -1),
    }


@pytest.mark.parametrize("op", ["forward", "filter", "input"])
@pytest.mark.parametrize("data_format", [CL, CF])
def test_reduce_and_mask_agree_with_full(rng, op, data_format):
    x, w, d_out = operands(rng, data_format)
    call, channel_axis = calls(x, w, d_out, data_format)[op]
    counts, sums = call()
    value_shape = counts.shape[:-1]
    c64, s64 = counts.astype(np.int64), sums.astype(np.float64)

    counts_all, sums_all = call(reduce="all")
    assert counts_all.shape == (9,) and counts_all.dtype == np.int32
    np.testing.assert_array_equal(counts_all, c64.reshape(-1, 9).sum(0))
    np.testing.assert_allclose(sums_all, s64.reshape(-1, 9).sum(0), rtol=1e-5, atol=1e-5)

    counts_ch, sums_ch = call(reduce="channel")
    channel_axis %= len(value_shape)  # an axis of the value shape, not of the pair axis
    moved_c = np.moveaxis(c64, channel_axis, 0)
    moved_s = np.moveaxis(s64, channel_axis, 0)
    channels = value_shape[channel_axis]
    assert counts_ch.shape == (channels, 9)
    np.testing.assert_array_equal(counts_ch, moved_c.reshape(channels, -1, 9).sum(1))
    np.testing.assert_allclose(sums_ch, moved_s.reshape(channels, -1, 9).sum(1), rtol=1e-5,
                               atol=1e-5)

    mask = rng.random(value_shape) < 0.4
    counts_m, sums_m = call(mask=mask)
    np.testing.assert_array_equal(counts_m[mask], counts[mask])
    np.testing.assert_array_equal(sums_m[mask], sums[mask])
    assert not counts_m[~mask].any() and not sums_m[~mask].any()
    counts_ma, sums_ma = call(reduce="all", mask=mask)
    np.testing.assert_array_equal(counts_ma, c64[mask].sum(0))
    np.testing.assert_allclose(sums_ma, s64[mask].sum(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["relu", "normal"])
@pytest.mark.parametrize("data_format", [CL, CF])
def test_reductions_of_many_tiles_agree_with_full(rng, kind, data_format):
    """Whole 16-position tiles, several per task and row: the reductions add each row's lanes
    across tiles before the writer sees them; they must equal the full result added up."""
    cf = data_format == CF
    x = sample(rng, (3, 10, 24, 40) if cf else (3, 24, 40, 10), kind, np.float32)
    w = sample(rng, (12, 5, 3, 3) if cf else (3, 3, 5, 12), "normal", np.float32)
    d_out = sample(rng, (3, 12, 24, 40) if cf else (3, 24, 40, 12), "normal", np.float32)
    kw = dict(padding="SAME", groups=2, data_format=data_format)
    for op, first, second, axis in [(nz.conv_classify, x, w, 1 if cf else 3),
                                    (nz.conv_backprop_input_classify, d_out, w, 1 if cf else 3)]:
        args = (first, second) if op is nz.conv_classify else (first, second, x.shape)
        counts, sums = op(*args, **kw)
        moved_c = np.moveaxis(counts.astype(np.int64), axis, 0)
        moved_s = np.moveaxis(sums.astype(np.float64), axis, 0)
        channels = moved_c.shape[0]
        counts_ch, sums_ch = op(*args, reduce="channel", **kw)
        np.testing.assert_array_equal(counts_ch, moved_c.reshape(channels, -1, 9).sum(1))
        np.testing.assert_allclose(sums_ch, moved_s.reshape(channels, -1, 9).sum(1), rtol=1e-5,
                                   atol=1e-4)
        counts_all, sums_all = op(*args, reduce="all", **kw)
        np.testing.assert_array_equal(counts_all, moved_c.reshape(-1, 9).sum(0))
        np.testing.assert_allclose(sums_all, moved_s.reshape(-1, 9).sum(0), rtol=1e-5, atol=1e-3)


def test_mask_of_wrong_shape_is_rejected(rng):
    x, w, _ = operands(rng, CL)
    with pytest.raises(ValueError, match="mask has shape"):
        nz.conv_classify(x, w, **KW, mask=np.ones((2, 4, 6), bool))


@pytest.mark.parametrize("data_format", [CL, CF])
def test_empty_batch(data_format):
    if data_format == CF:
        x, w, d_out = np.zeros((0, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32), \
            np.zeros((0, 3, 5, 5), np.float32)
    else:
        x, w, d_out = np.zeros((0, 5, 5, 2), np.float32), np.ones((3, 3, 2, 3), np.float32), \
            np.zeros((0, 5, 5, 3), np.float32)
    kw = dict(padding="SAME", data_format=data_format, thresholds=0.1)
    counts, sums = nz.conv_classify(x, w, **kw)
    assert counts.shape == d_out.shape + (9,)
    counts, sums = nz.conv_backprop_filter_classify(x, d_out, w.shape, **kw)
    assert counts.shape == w.shape + (9,) and not counts.any() and not sums.any()
    counts, sums = nz.conv_backprop_input_classify(d_out, w, x.shape, **kw)
    assert counts.shape == x.shape + (9,)
    counts, sums = nz.conv_classify(x, w, reduce="all", **kw)
    assert counts.shape == (9,) and not counts.any()
    with pytest.raises(ValueError, match="pass thresholds="):
        nz.conv_classify(x, w, padding="SAME", data_format=data_format)


def test_zero_input_channels_give_zero_counts():
    x = np.zeros((1, 4, 4, 0), np.float32)
    w = np.zeros((3, 3, 0, 2), np.float32)
    counts, sums = nz.conv_classify(x, w, padding="SAME", thresholds=0.1)
    assert counts.shape == (1, 4, 4, 2, 9) and not counts.any() and not sums.any()


def test_concurrent_calls_agree(rng):
    x, w, _ = operands(rng, CF)
    assert_threads_agree(lambda: nz.conv_classify(x, w, **KW, data_format=CF), 4)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_output_shape_and_values_match_torch(data):
    torch = pytest.importorskip("torch")
    dims = data.draw(st.integers(1, 3))
    groups = data.draw(st.integers(1, 3))
    cin = groups * data.draw(st.integers(1, 3))
    cout = groups * data.draw(st.integers(1, 3))
    k = tuple(data.draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims)))
    dil = tuple(data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims)))
    stride = tuple(data.draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims)))
    pad = tuple(data.draw(st.lists(st.integers(0, 3), min_size=dims, max_size=dims)))
    sizes = tuple(data.draw(st.integers(max(1, (kk - 1) * d + 1 - 2 * p), 12))
                  for kk, d, p in zip(k, dil, pad))
    seed = data.draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((2, cin) + sizes, dtype=torch.float64, generator=gen)
    w = torch.randn((cout, cin // groups) + k, dtype=torch.float64, generator=gen)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[dims]
    expected = conv(x, w, None, stride, pad, dil, groups)
    _, sums = nz.conv_classify(x, w, stride, list(pad), thresholds=0.5,
                               data_format=CF, dilations=dil, groups=groups)
    assert sums.shape == expected.shape + (9,)
    torch.testing.assert_close(sums.sum(-1), expected, rtol=1e-10, atol=1e-10)
