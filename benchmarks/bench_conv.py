"""Convolution classify timings: the fused ops against PyTorch's own convolution and backward,
and against the unfused method (nine masked torch convolutions for counts plus nine for sums,
float32). Agreement is asserted before anything is timed; ratios come from one interleaved run.

Targets on a 2-core CPU for conv2d (32,16,64,64) * (32,16,3,3), padding 1, channels_first:
fused <= 5x torch.nn.functional.conv2d, and unfused / fused >= 4x; the kernel gradient
unfused / fused >= 4x at the AVX-512 level. Each timed call drops its result, so a fused call reuses the memory of
the previous one (backends/result_memory.py), as a training loop does; PyTorch's op keeps its
last result until the next returns (holding_result), so its memory is reused too.

    python -m pytest benchmarks/bench_conv.py --benchmark-enable -s
"""

from __future__ import annotations

import pytest

import nearzero as nz
from nearzero._bench_cases import unfused_torch
from conftest import holding_result, measure, report

torch = pytest.importorskip("torch")
F = torch.nn.functional

X_SHAPE, W_SHAPE = (32, 16, 64, 64), (32, 16, 3, 3)
KW = dict(padding=1, data_format="channels_first")


@pytest.fixture(scope="module")
def problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(X_SHAPE, generator=gen).relu_()  # post-ReLU input: exact zeros
    w = torch.randn(W_SHAPE, generator=gen)
    d_out = torch.randn((X_SHAPE[0], W_SHAPE[0]) + X_SHAPE[2:], generator=gen)
    return x, w, d_out, nz.threshold(x), nz.threshold(w), nz.threshold(d_out)


def assert_total_within_spec(sums, expected, abs_scale):
    """The nine class sums add up to the plain result, each within 1e-5 of Σ|x*y| (SPEC §4)."""
    err = (sums.double().sum(-1) - expected.double()).abs()
    assert bool((err <= 9e-5 * abs_scale + 1e-6).all())


def check_then_time(benchmark, title, fused, plain_op, operands, names, thresholds=None):
    """`fused()`: the fused op; `plain_op(a, b)`: PyTorch's op on the same `operands`; `names`:
    the fused op's and the plain op's labels, and the plain op's in the ratio. The fused sums'
    total matches the plain op (within SPEC §4 of Σ|a*b|, the plain op on |a| and |b|); with
    `thresholds`, the unfused method on the plain op is the reference too: its counts equal the
    fused ones and its sums agree within 2e-5 * Σ|a*b|. Then all are timed interleaved. Every
    result is dropped before timing, so the timed calls reuse the memory."""
    first, second = operands
    fused_name, plain_name, plain_label = names
    runs = {fused_name: fused, plain_name: holding_result(lambda: plain_op(first, second))}
    ratios = {f"fused / {plain_label}": (fused_name, plain_name)}
    counts, sums = fused()
    scale = plain_op(first.abs().double(), second.abs().double())
    if thresholds is not None:
        runs["unfused reference"] = lambda: unfused_torch(plain_op, first, second, *thresholds)
        ratios["reference / fused"] = ("unfused reference", fused_name)
        ref_counts, ref_sums = runs["unfused reference"]()
        assert torch.equal(counts, ref_counts.round().to(torch.int32))
        assert bool(((sums.double() - ref_sums.double()).abs()
                     <= 2e-5 * scale[..., None] + 1e-6).all())
        del ref_counts, ref_sums
    assert_total_within_spec(sums, plain_op(first, second), scale)
    del counts, sums, scale

    timings = measure(runs) if thresholds is None else measure(runs, repeats=4)
    report(title, timings, ratios, benchmark)
    benchmark.pedantic(fused, rounds=2, iterations=1)


def test_conv2d_forward(benchmark, problem):
    x, w, _, tx, tw, _ = problem
    check_then_time(benchmark, "conv_classify (32,16,64,64) * (32,16,3,3), padding 1, float32",
                    lambda: nz.conv_classify(x, w, thresholds=(tx, tw), **KW),
                    lambda a, b: F.conv2d(a, b, padding=1), (x, w),
                    ("fused conv_classify", "torch conv2d", "torch conv2d"), (tx, tw))


def test_conv2d_forward_reduced(benchmark, problem):
    """reduce='channel', as the gradient report uses it: no full result is allocated."""
    x, w, _, tx, tw, _ = problem

    def fused():
        return nz.conv_classify(x, w, thresholds=(tx, tw), reduce="channel", **KW)

    counts, _ = fused()
    ones = F.conv2d(torch.ones(X_SHAPE), torch.ones(W_SHAPE), padding=1)
    assert counts.shape == (W_SHAPE[0], 9)
    assert torch.equal(counts.sum(-1), ones.sum((0, 2, 3)).to(counts.dtype))
    timings = measure({"fused reduce='channel'": fused,
                       "torch conv2d": holding_result(lambda: F.conv2d(x, w, padding=1))})
    report("conv_classify reduce='channel'", timings,
           {"fused / torch conv2d": ("fused reduce='channel'", "torch conv2d")}, benchmark)
    benchmark.pedantic(fused, rounds=2, iterations=1)


def test_conv2d_kernel_gradient(benchmark, problem):
    x, _, d_out, tx, _, td = problem
    check_then_time(benchmark, "conv_backprop_filter_classify, same convolution",
                    lambda: nz.conv_backprop_filter_classify(x, d_out, W_SHAPE,
                                                             thresholds=(tx, td), **KW),
                    lambda a, b: torch.nn.grad.conv2d_weight(a, W_SHAPE, b, padding=1),
                    (x, d_out), ("fused kernel gradient", "autograd conv2d_weight", "autograd"),
                    (tx, td))


def test_conv2d_input_gradient(benchmark, problem):
    _, w, d_out, _, tw, td = problem
    check_then_time(benchmark, "conv_backprop_input_classify, same convolution",
                    lambda: nz.conv_backprop_input_classify(d_out, w, X_SHAPE,
                                                            thresholds=(td, tw), **KW),
                    lambda a, b: torch.nn.grad.conv2d_input(X_SHAPE, a, b, padding=1),
                    (w, d_out), ("fused input gradient", "autograd conv2d_input", "autograd"))
