"""What NumPy and PyTorch users expect at the edges of the API: masked arrays, byte orders,
threshold forms, bool axes, torch's lazy-bit and transformed tensors, analysis-helper inputs,
and the original toolkit's `classification_mask` and full-length conv strides."""

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference as ref

torch = pytest.importorskip("torch")


def test_masked_arrays_are_refused_with_how_to_fill_them():
    x = np.ma.masked_array([1.0, -2.0, 0.1], mask=[0, 1, 0])
    for call in (lambda: nz.tensor_classify(x), lambda: nz.threshold(x),
                 lambda: nz.matmul_classify(x, np.ones(3)),
                 lambda: nz.multiply_classify(np.ones(3), x, thresholds=0.5)):
        with pytest.raises(TypeError, match=r"filled\(np.nan\)"):
            call()
    unmasked = np.ma.masked_array([1.0, -2.0, 0.1])
    np.testing.assert_array_equal(nz.tensor_classify(unmasked, threshold=0.5)[0],
                                  nz.tensor_classify(unmasked.data, threshold=0.5)[0])
    filled = x.filled(np.nan)
    counts, _ = nz.tensor_classify(filled, threshold=0.5, nan_policy="omit")
    assert counts.sum() == 2


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">f2", ">i4", "<f4"])
def test_byte_orders_are_converted(dtype):
    x = np.array([[-2.0, 0.0, 0.3], [1.0, -0.1, 5.0]]).astype(dtype)
    native = x.astype(x.dtype.newbyteorder("="))
    assert nz.threshold(x, 0.6) == nz.threshold(native, 0.6)
    for a, b in zip(nz.tensor_classify(x, 0.6), nz.tensor_classify(native, 0.6)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(nz.matmul_classify(x, x.T, 0.6), nz.matmul_classify(native, native.T, 0.6)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad,match", [("0.1", "string"), (b"0.1", "string"),
                                       (10**400, "too large"), ((10**400, None), "too large"),
                                       (float("nan"), "non-negative"), (-1, "non-negative"),
                                       ((0.1, 0.2, 0.3), "pair"), (True, "number"),
                                       (("0.1", None), "number")])
def test_bad_thresholds_are_clear_value_errors(bad, match):
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match=match):
        nz.matmul_classify(x, x, thresholds=bad)


def test_zero_d_thresholds_of_every_library():
    x = np.array([-1.0, 0.2, 0.6])
    expected = nz.tensor_classify(x, threshold=0.5)[0]
    for t in (0.5, np.float32(0.5), np.array(0.5), torch.tensor(0.5), torch.tensor(0.5,
                                                                                  dtype=torch.float64)):
        np.testing.assert_array_equal(nz.tensor_classify(x, threshold=t)[0], expected)
        np.testing.assert_array_equal(nz.multiply_classify(x, x, thresholds=t)[0],
                                      nz.multiply_classify(x, x, thresholds=0.5)[0])
        np.testing.assert_array_equal(nz.multiply_classify(x, x, thresholds=(t, None))[0],
                                      nz.multiply_classify(x, x, thresholds=(0.5, None))[0])
    with pytest.raises(ValueError):
        nz.tensor_classify(x, threshold=torch.tensor([0.5, 0.6]))


def test_bool_axes_and_channel_axis_are_refused():
    x = np.ones((3, 3))
    for axes in (True, False, (True, 0), ([0], [True])):
        with pytest.raises(ValueError, match="axes"):
            nz.tensordot_classify(x, x, axes)
    for op in (lambda **kw: nz.tensor_classify(x, **kw),
               lambda **kw: nz.multiply_classify(x, x, **kw)):
        with pytest.raises(TypeError, match="channel_axis"):
            op(channel_axis=True, reduce="channel")
        with pytest.raises(TypeError, match="channel_axis"):
            op(channel_axis=1.0, reduce="channel")
        with pytest.raises(ValueError, match="reduce='channel'"):
            op(channel_axis=0)
        assert op(channel_axis=0, reduce="channel")[0].shape[0] == 3
        assert op(channel_axis=-1, reduce="all")[0].shape == op(reduce="all")[0].shape


def test_torch_negative_bit_is_resolved():
    base = torch.tensor([[-2.0, 0.1], [0.7, -0.3]])
    lazy = base._neg_view()
    assert lazy.is_neg()
    for a, b in zip(nz.tensor_classify(lazy, threshold=0.2), nz.tensor_classify(-base, threshold=0.2)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(nz.matmul_classify(lazy, lazy, thresholds=0.2),
                    nz.matmul_classify(-base, -base, thresholds=0.2)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_complex_nested_sparse_and_transformed_tensors_are_clear_type_errors():
    with pytest.raises(TypeError, match="complex"):
        nz.tensor_classify(torch.ones(2, dtype=torch.complex64).conj())
    with pytest.warns(UserWarning):  # torch: nested tensors are a prototype
        nested = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    with pytest.raises(TypeError, match="nested"):
        nz.tensor_classify(nested)
    with pytest.raises(TypeError, match="to_dense"):
        nz.tensor_classify(torch.eye(3).to_sparse())
    with pytest.raises(TypeError, match="torch.func"):
        torch.vmap(lambda v: nz.tensor_classify(v, threshold=0.1)[0])(torch.ones(2, 3))
    with pytest.raises(TypeError, match="torch.func"):
        torch.func.grad(lambda v: nz.tensor_classify(v, threshold=0.1)[1].sum())(torch.ones(3))


def test_analysis_helpers_refuse_what_is_not_a_classify_result():
    counts, sums = nz.matmul_classify(np.eye(3), np.ones((3, 2)), thresholds=0.5)
    with pytest.raises(ValueError, match="negative"):
        nz.summarise(-counts, sums)
    with pytest.raises(ValueError, match="negative"):
        nz.near_zero_explanation(counts - 5, sums)
    for bad in (float("nan"), -0.5):
        with pytest.raises(ValueError, match="threshold"):
            nz.near_zero_explanation(counts, sums, threshold=bad)
    tc, ts = nz.tensor_classify(np.array([1.0, 0.0]), threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        nz.tensor_near_zero_explanation(tc, ts, threshold=float("nan"))
    with pytest.raises(TypeError, match="complex"):
        nz.summarise(counts, sums.astype(np.complex64))
    with pytest.raises(TypeError, match="complex"):
        nz.near_zero_explanation(counts, sums + 1j)
    with pytest.raises(ValueError, match="one entry per group"):
        nz.filter_groups([1, 2], [3], [4])
    with pytest.raises(ValueError, match="max_groups"):
        nz.filter_groups([], [], [], max_groups=-1)


def test_classification_mask_as_the_original():
    """The original toolkit's cases: masks by the rule and the midpoint threshold."""
    cases = [(np.arange(0.0, 1.0, 0.1), 0.75, 0.25, 3 * [False] + 7 * [True], 3 * [True] + 7 * [False]),
             (np.array([-0.5, 0, -0.5]), 0.95, 0.25, [False] * 3, [False, True, False]),
             (np.array([-0.5, 0.25, 0, 0.25, -0.5]), 0.95, 0.125,
              [False, True, False, True, False], [False, False, True, False, False])]
    for x, confidence, t, p_expected, z_expected in cases:
        p, z, n, threshold = nz.classification_mask(x, confidence=confidence)
        assert threshold == t
        np.testing.assert_array_equal(p, p_expected)
        np.testing.assert_array_equal(z, z_expected)
        np.testing.assert_array_equal(n, ~(p | z))
    rng = np.random.default_rng(5)
    for x in (rng.standard_normal((4, 5)).astype(np.float32), torch.randn(3, 7)):
        p, z, n, t = nz.classification_mask(x, 0.6)
        codes = ref.classify(np.asarray(x), t)
        for mask, code in ((p, 0), (z, 1), (n, 2)):
            assert isinstance(mask, np.ndarray) and mask.dtype == bool
            np.testing.assert_array_equal(mask, codes == code)
    p, z, n, t = nz.classification_mask(np.array([1.0, np.nan, -3.0]), threshold=2.0,
                                        nan_policy="omit")
    assert t == 2.0 and list(p | z | n) == [True, False, True]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv_takes_tensorflow_full_length_strides_and_dilations(dims, data_format):
    rng = np.random.default_rng(dims)
    first = data_format == "channels_first"
    x = rng.standard_normal((2, 3) + (9,) * dims if first else (2,) + (9,) * dims + (3,))
    k = rng.standard_normal((4, 3) + (2,) * dims if first else (2,) * dims + (3, 4))
    def full(values):
        return [1, 1] + values if first else [1] + values + [1]
    strides, dilations = [2] + [1] * (dims - 1), [1] * (dims - 1) + [2]
    short = nz.conv_classify(x, k, strides, thresholds=0.3, dilations=dilations,
                             data_format=data_format)
    for s, d in ((full(strides), full(dilations)), (full(strides), dilations),
                 (strides, full(dilations))):
        got = nz.conv_classify(x, k, s, thresholds=0.3, dilations=d, data_format=data_format)
        for a, b in zip(got, short):
            np.testing.assert_array_equal(a, b)
    out_shape = short[0].shape[:-1]
    grads = (nz.conv_backprop_filter_classify(x, np.ones(out_shape), k.shape, full(strides),
                                              thresholds=0.3, dilations=full(dilations),
                                              data_format=data_format),
             nz.conv_backprop_input_classify(np.ones(out_shape), k, x.shape, full(strides),
                                             thresholds=0.3, dilations=full(dilations),
                                             data_format=data_format))
    assert grads[0][0].shape[:-1] == k.shape and grads[1][0].shape[:-1] == x.shape
    wrong_channel = [1, 2] + strides if first else full(strides)[:-1] + [2]
    for bad in ([2] + full(strides)[1:], wrong_channel,
                [1] * (dims + 1), [1] * (dims + 3), [True] * dims, [0] * dims):
        with pytest.raises(ValueError, match="strides"):
            nz.conv_classify(x, k, bad, thresholds=0.3, data_format=data_format)
    one = nz.conv_classify(x, k, [1], thresholds=0.3, data_format=data_format)
    for a, b in zip(one, nz.conv_classify(x, k, 1, thresholds=0.3, data_format=data_format)):
        np.testing.assert_array_equal(a, b)
