"""The convolution ops against PyTorch itself: `sums.sum(-1)` equals torch.nn.functional.conv
{1,2,3}d for the forward op and autograd's gradients w.r.t. the kernel and the input for the two
backward ops, in both layouts; torch tensors in give torch tensors out, for every dtype."""

from __future__ import annotations

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference_conv as rc

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# dims, batch, in, out, groups, in spatial, kernel spatial, strides, dilations, padding (our
# argument: explicit pairs, or "SAME"/"VALID" resolved below with TensorFlow's rule)
CASES = [
    (1, 2, 3, 4, 1, (15,), (4,), (2,), (1,), "SAME"),
    (1, 1, 4, 4, 4, (9,), (3,), (1,), (2,), [(3, 1)]),
    (2, 2, 4, 6, 2, (9, 8), (3, 2), (2, 1), (1, 2), [(1, 0), (2, 2)]),
    (2, 1, 3, 5, 1, (7, 7), (4, 4), (2, 2), (1, 1), "SAME"),
    (2, 3, 6, 6, 6, (6, 5), (3, 3), (1, 1), (1, 1), "SAME"),
    (2, 2, 5, 3, 1, (4, 3), (6, 5), (1, 1), (1, 1), "SAME"),
    (2, 2, 3, 2, 1, (10, 11), (2, 3), (4, 5), (1, 1), "VALID"),
    (2, 2, 8, 4, 1, (6, 6), (1, 1), (1, 1), (1, 1), "VALID"),
    (3, 1, 2, 4, 2, (5, 4, 6), (2, 3, 3), (1, 2, 2), (2, 1, 1), "SAME"),
    (3, 2, 3, 2, 1, (4, 5, 4), (3, 1, 2), (2, 1, 1), (1, 1, 2), [(1, 1), (0, 0), (2, 1)]),
]


def tf_pads(padding, in_sp, k_sp, strides, dilations):
    return rc.resolve_padding(padding, in_sp, k_sp, strides, dilations)


def torch_conv(x, w, case):
    """channels_first torch convolution with explicit (before, after) padding via F.pad."""
    dims, _, _, _, groups, in_sp, k_sp, strides, dilations, padding = case
    pads = tf_pads(padding, in_sp, k_sp, strides, dilations)
    flat = [v for b, a in reversed(pads) for v in (b, a)]  # F.pad wants last dim first
    return CONV[dims](F.pad(x, flat), w, None, strides, 0, dilations, groups)


def shapes(case):
    dims, batch, cin, cout, groups, in_sp, k_sp = case[:7]
    return (batch, cin) + in_sp, (cout, cin // groups) + k_sp


def to_last(a):
    return a.movedim(1, -1).contiguous()


def kernel_to_last(w):
    dims = w.dim() - 2
    return w.permute(tuple(range(2, 2 + dims)) + (1, 0)).contiguous()


def kernel_from_last(w):
    dims = w.dim() - 2
    return w.permute((dims + 1, dims) + tuple(range(dims)))


def kwargs(case, data_format):
    _, _, _, _, groups, _, _, strides, dilations, padding = case
    return dict(strides=strides, padding=padding, dilations=dilations, groups=groups,
                data_format=data_format)


def bound(x, w, case, scale):
    return scale * torch_conv(x.abs(), w.abs(), case) + 1e-30


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(CASES)])
def test_matches_torch_and_autograd(case, data_format):
    gen = torch.Generator().manual_seed(7)
    x_shape, w_shape = shapes(case)
    x = torch.randn(x_shape, dtype=torch.float64, generator=gen).relu_().requires_grad_()
    w = torch.randn(w_shape, dtype=torch.float64, generator=gen).requires_grad_()
    y = torch_conv(x, w, case)
    d_out = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    y.backward(d_out)
    y = y.detach()
    kw = kwargs(case, data_format)
    last = data_format == "channels_last"
    xa, wa, da = x.detach(), w.detach(), d_out
    if last:
        xa, wa, da = to_last(xa), kernel_to_last(wa), to_last(da)

    _, sums = nz.conv_classify(xa, wa, **kw)
    assert isinstance(sums, torch.Tensor) and sums.dtype == torch.float64
    got = sums.sum(-1)
    got = got.movedim(-1, 1) if last else got
    assert got.shape == y.shape
    torch.testing.assert_close(got, y, rtol=0, atol=1e-12 * float(y.abs().max()) + 1e-13)

    _, sums = nz.conv_backprop_filter_classify(xa, da, tuple(wa.shape), **kw)
    got = sums.sum(-1)
    got = kernel_from_last(got) if last else got
    torch.testing.assert_close(got, w.grad, rtol=0, atol=1e-12 * float(w.grad.abs().max()) + 1e-13)

    _, sums = nz.conv_backprop_input_classify(da, wa, tuple(xa.shape), **kw)
    got = sums.sum(-1)
    got = got.movedim(-1, 1) if last else got
    torch.testing.assert_close(got, x.grad, rtol=0, atol=1e-12 * float(x.grad.abs().max()) + 1e-13)


@pytest.mark.parametrize("case", [CASES[2], CASES[3], CASES[8]], ids=["2d", "2d-same", "3d"])
def test_float32_within_spec_of_torch(case):
    gen = torch.Generator().manual_seed(3)
    x_shape, w_shape = shapes(case)
    x = torch.randn(x_shape, generator=gen)
    w = torch.randn(w_shape, generator=gen)
    _, sums = nz.conv_classify(x, w, **kwargs(case, "channels_first"))
    assert sums.dtype == torch.float32
    expected = torch_conv(x.double(), w.double(), case)
    err = (sums.double().sum(-1) - expected).abs()
    assert bool((err <= bound(x.double(), w.double(), case, 9e-5)).all())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int32", "bool"])
def test_dtypes_compute_as_float32(dtype):
    gen = torch.Generator().manual_seed(11)
    case = CASES[2]
    x_shape, w_shape = shapes(case)
    if dtype == "bool":
        x = torch.rand(x_shape, generator=gen) > 0.5
        w = torch.rand(w_shape, generator=gen) > 0.3
    elif dtype == "int32":
        x = torch.randint(-3, 4, x_shape, generator=gen, dtype=torch.int32)
        w = torch.randint(-2, 3, w_shape, generator=gen, dtype=torch.int32)
    else:
        x = torch.randn(x_shape, generator=gen).to(getattr(torch, dtype))
        w = torch.randn(w_shape, generator=gen).to(getattr(torch, dtype))
    kw = kwargs(case, "channels_first")
    counts, sums, (tx, tw) = nz.conv_classify(x, w, confidence=0.9, return_thresholds=True, **kw)
    assert isinstance(counts, torch.Tensor) and counts.dtype == torch.int32
    assert sums.dtype == torch.float32
    x32, w32 = x.float().numpy(), w.float().numpy()
    ref_counts, ref_sums = rc.conv_classify(x32, w32, tx, tw, **kw)
    np.testing.assert_array_equal(counts.numpy(), ref_counts)
    scale = rc.conv_abs_products("conv_classify", x32, w32, None, **kw)
    assert np.all(np.abs(sums.numpy() - ref_sums) <= 1e-5 * scale[..., None] + 1e-30)


def test_mixed_float64_and_float32_give_float64():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 6, 6, 2))
    w = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    counts, sums = nz.conv_classify(x, w, padding="SAME")
    assert sums.dtype == np.float64 and isinstance(sums, np.ndarray)


def test_inputs_are_not_modified_and_outputs_do_not_alias():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
    x0, w0 = x.copy(), w.copy()
    counts, sums = nz.conv_classify(x, w, padding="SAME")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    assert not np.shares_memory(sums, x) and not np.shares_memory(sums, w)
