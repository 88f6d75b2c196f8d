"""Every op on any NumPy or torch layout: a hypothesis fuzzer over strides (negative, zero,
not a multiple of the item size), offsets, views, byte orders and dtypes, each result compared
with the unfused reference on a contiguous copy of the same values."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import nearzero as nz
from nearzero import reference as ref
from nearzero import reference_conv as rc
from conftest import assert_sums_close

DTYPES = ["float32", "float64", "float16", ">f4", ">f8", "int16"]
LAYOUTS = ["contiguous", "fortran", "reversed", "strided", "record", "broadcast", "torch",
           "torch_permuted", "torch_expand"]


def relayout(values: np.ndarray, layout: str, rng):
    """`values` (C-contiguous) in another memory layout, same contents."""
    if layout == "contiguous" or values.ndim == 0:
        return values
    if layout == "fortran":
        return np.asfortranarray(values)
    if layout == "reversed":  # negative strides on a random set of axes
        flip = tuple(i for i in range(values.ndim) if rng.random() < 0.6) or (0,)
        return np.flip(np.ascontiguousarray(np.flip(values, flip)), flip)
    if layout == "strided":  # every other element of a larger buffer, from an offset
        base = np.zeros(tuple(2 * s + 1 for s in values.shape), values.dtype)
        index = tuple(slice(1, 1 + 2 * s, 2) for s in values.shape)
        base[index] = values
        return base[index]
    if layout == "record":  # a field of a packed struct: strides not multiples of the item
        rec = np.zeros(values.shape, dtype=[("pad", "u1"), ("v", values.dtype)])
        rec["v"] = values
        view = rec["v"]
        return view[::-1][::-1] if rng.random() < 0.5 else np.flip(np.flip(view, 0), 0)
    if layout in ("torch", "torch_permuted"):
        torch = pytest.importorskip("torch")
        t = torch.from_numpy(np.ascontiguousarray(values.astype(values.dtype.newbyteorder("="))))
        if layout == "torch_permuted":  # column-major storage of the same values
            return t.transpose(0, -1).contiguous().transpose(0, -1)
        return t
    raise ValueError(layout)


def broadcast_values(rng, shape, dtype):
    """A stride-0 view: random along some axes, repeated along the others."""
    small = tuple(s if rng.random() < 0.5 else 1 for s in shape)
    return np.broadcast_to(values_of(rng, small, dtype), shape)


def values_of(rng, shape, dtype):
    v = rng.choice(np.array([-2.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.5, 3.0]), shape)
    v = v + rng.standard_normal(shape) * 0.01 * (rng.random() < 0.5)
    return np.ascontiguousarray(v.astype(np.dtype(dtype)))


def operand(rng, shape, dtype, layout):
    if layout == "broadcast":
        values = broadcast_values(rng, shape, dtype)
        return values, np.ascontiguousarray(values)
    if layout == "torch_expand":  # torch's stride-0 form: expand()
        torch = pytest.importorskip("torch")
        values = broadcast_values(rng, shape, np.dtype(dtype).newbyteorder("="))
        small = np.array(values[tuple(slice(0, 1) if st == 0 else slice(None)
                                         for st in values.strides)])
        return torch.from_numpy(small).expand(*shape), np.ascontiguousarray(values)
    values = values_of(rng, shape, dtype)
    return relayout(values, layout, rng), values


def compute_values(values):
    """What the kernels compute on: float64 for float64 inputs, float32 otherwise."""
    target = np.float64 if values.dtype.kind == "f" and values.dtype.itemsize == 8 else np.float32
    return values.astype(target)


def numpy_of(result):
    return result.numpy() if hasattr(result, "numpy") and not isinstance(result, np.ndarray) \
        else np.asarray(result)


def check_pair(counts, sums, rcounts, rsums, scale):
    np.testing.assert_array_equal(numpy_of(counts), rcounts)
    assert_sums_close(numpy_of(sums), rsums, scale)


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(["tensor", "threshold", "multiply", "matmul", "tensordot", "conv",
                           "conv_filter", "conv_input"]),
       shape=shapes, dtypes=st.tuples(st.sampled_from(DTYPES), st.sampled_from(DTYPES)),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
       seed=st.integers(0, 2**32 - 1), derived=st.booleans())
def test_every_op_reads_every_layout(op, shape, dtypes, layouts, seed, derived):
    rng = np.random.default_rng(seed)
    if op in ("tensor", "threshold"):
        x, xv = operand(rng, tuple(shape), dtypes[0], layouts[0])
        t = nz.threshold(x, 0.7)
        assert t == ref.threshold(xv, 0.7)
        if op == "tensor":
            counts, sums = nz.tensor_classify(x, threshold=None if derived else 0.4, confidence=0.7)
            rcounts, rsums = ref.tensor_classify(xv, t if derived else 0.4)
            check_pair(counts, sums, rcounts, rsums, np.abs(xv.astype(np.float64)))
        return
    if op == "multiply":
        y_shape = tuple(s if rng.random() < 0.7 else 1 for s in shape)
        x, xv = operand(rng, tuple(shape), dtypes[0], layouts[0])
        y, yv = operand(rng, y_shape, dtypes[1], layouts[1])
        fn, rfn, scale = nz.multiply_classify, ref.multiply_classify, np.multiply
        args = ()
    elif op in ("matmul", "tensordot"):
        n, k, m = (list(shape) + [3, 4, 2])[:3]
        x, xv = operand(rng, (n, k), dtypes[0], layouts[0])
        y, yv = operand(rng, (k, m), dtypes[1], layouts[1])
        if op == "matmul":
            fn, rfn, scale = nz.matmul_classify, ref.matmul_classify, np.matmul
            args = ()
        else:
            fn = lambda a, b, **kw: nz.tensordot_classify(a, b, 1, **kw)  # noqa: E731
            rfn = lambda a, b, tx, ty: ref.tensordot_classify(a, b, 1, tx, ty)  # noqa: E731
            scale, args = (lambda a, b: np.tensordot(a, b, 1)), ()
    else:  # a 1D or 2D convolution or gradient, channels_last, operands in any layout
        dims = 1 + (len(shape) > 1)
        spatial = tuple(s + 2 for s in shape[:dims])
        x_shape, k_shape = (1,) + spatial + (2,), (2,) * dims + (2, 3)
        out_shape = (1,) + tuple(s - 1 for s in spatial) + (3,)
        first, second, shape_arg = {"conv": (x_shape, k_shape, None),
                                    "conv_filter": (x_shape, out_shape, k_shape),
                                    "conv_input": (out_shape, k_shape, x_shape)}[op]
        x, xv = operand(rng, first, dtypes[0], layouts[0])
        y, yv = operand(rng, second, dtypes[1], layouts[1])
        name = {"conv": "conv_classify", "conv_filter": "conv_backprop_filter_classify",
                "conv_input": "conv_backprop_input_classify"}[op]
        args = (x, y) if shape_arg is None else (x, y, shape_arg)
        counts, sums, (tx, ty) = getattr(nz, name)(
            *args, thresholds=None if derived else 0.4, confidence=0.7, return_thresholds=True)
        rargs = (compute_values(xv), compute_values(yv)) + (() if shape_arg is None
                                                            else (shape_arg,))
        rcounts, rsums = getattr(rc, name)(*rargs, tx, ty)
        scale = rc.conv_abs_products(name, xv, yv, shape_arg)
        check_pair(counts, sums, rcounts, rsums, scale)
        return
    counts, sums, (tx, ty) = fn(x, y, thresholds=None if derived else (0.4, 0.3),
                                confidence=0.7, return_thresholds=True)
    if derived:
        assert (tx, ty) == (ref.threshold(xv, 0.7), ref.threshold(yv, 0.7))
    rcounts, rsums = rfn(compute_values(xv), compute_values(yv), tx, ty)
    check_pair(counts, sums, rcounts, rsums,
               scale(np.abs(xv.astype(np.float64)), np.abs(yv.astype(np.float64))))


def test_record_field_views_are_read_element_by_element():
    """Byte strides (15, 5): not multiples of the 4-byte item (a packed struct's field)."""
    rec = np.zeros(6, dtype=[("a", "<f4"), ("b", "u1")])
    rec["a"] = [1, 2, 3, 4, 5, 6]
    x = rec["a"].reshape(2, 3)
    assert x.strides == (15, 5)
    eye = np.eye(3, dtype=np.float32)
    for view in (x, x[:, ::-1], x[::-1]):
        expected = np.ascontiguousarray(view)
        np.testing.assert_array_equal(nz.matmul_classify(view, eye, thresholds=0)[1].sum(-1),
                                      expected)
        np.testing.assert_array_equal(
            nz.tensordot_classify(view, eye, 1, thresholds=0)[1].sum(-1), expected)
        np.testing.assert_array_equal(nz.multiply_classify(view, 2, thresholds=0)[1].sum(-1),
                                      2 * expected)
        np.testing.assert_array_equal(nz.tensor_classify(view, threshold=0)[1].sum(-1),
                                      expected)


def test_broadcast_threshold_weights_every_repeat():
    """The percentile of a broadcast view is the percentile of the materialised array."""
    rng = np.random.default_rng(3)
    for shape, small in [((50, 7), (1, 7)), ((3, 40, 5), (3, 1, 5)), ((9, 9), (9, 1))]:
        view = np.broadcast_to(rng.standard_normal(small).astype(np.float32), shape)
        for confidence in (0.0, 0.3, 0.5, 0.77, 0.95, 1.0):
            assert nz.threshold(view, confidence) == ref.threshold(np.array(view), confidence)
