"""Bad convolution arguments raise ValueError (TypeError for complex data) with messages that
name the offending shapes or values (SPEC §7)."""

from __future__ import annotations

import numpy as np
import pytest

import nearzero as nz

X = np.ones((1, 6, 6, 3), np.float32)
W = np.ones((3, 3, 3, 4), np.float32)
D_OUT = np.ones((1, 4, 4, 4), np.float32)


@pytest.mark.parametrize("kwargs,message", [
    (dict(padding="FULL"), "padding must be 'VALID', 'SAME'"),
    (dict(padding=[1, 1, 1]), "padding needs 2 entries"),
    (dict(padding=[-1, 0]), "must not be negative"),
    (dict(padding=[(0, 0), 1, 1, (1, 0)]), "batch and channel axes must be 0"),
    (dict(padding=[(1, 2, 3), 1]), r"\(before, after\) pairs"),
    (dict(strides=0), "strides must be positive"),
    (dict(strides=(1, -2)), "strides must be positive"),
    (dict(strides=(1, 1, 1)), "one per spatial dimension"),
    (dict(dilations=0), "dilations must be positive"),
    (dict(groups=2), "groups=2 must divide the input channels"),
    (dict(groups=0), "groups must be a positive int"),
    (dict(data_format="NHWC"), "data_format must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nz.conv_classify(X, W, thresholds=0.1, **kwargs)


def test_mismatched_channels_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 3, 2, 4\).*\(1, 6, 6, 3\)"):
        nz.conv_classify(X, np.ones((3, 3, 2, 4), np.float32), thresholds=0.1)
    with pytest.raises(ValueError, match="expects 3 input channels per group"):
        nz.conv_classify(np.ones((1, 6, 6, 6), np.float32), W, thresholds=0.1)


def test_channels_first_kernel_checked_in_its_layout():
    x = np.ones((1, 3, 6, 6), np.float32)
    with pytest.raises(ValueError, match="expects 4 input channels"):
        nz.conv_classify(x, np.ones((2, 4, 3, 3), np.float32), thresholds=0.1,
                         data_format="channels_first")


def test_rank_errors():
    with pytest.raises(ValueError, match="different ranks"):
        nz.conv_classify(X, np.ones((3, 3, 4), np.float32), thresholds=0.1)
    with pytest.raises(ValueError, match="rank 3, 4 or 5"):
        nz.conv_classify(np.ones((6, 3), np.float32), np.ones((3, 4), np.float32),
                         thresholds=0.1)


def test_output_smaller_than_one():
    with pytest.raises(ValueError, match="output would be empty"):
        nz.conv_classify(np.ones((1, 2, 2, 3), np.float32), W, thresholds=0.1)
    with pytest.raises(ValueError, match="output would be empty"):
        nz.conv_classify(X, W, thresholds=0.1, dilations=3)


def test_filter_grad_shape_errors():
    with pytest.raises(ValueError, match=r"d_out has shape \(1, 3, 4, 4\).*\(1, 4, 4, 4\)"):
        nz.conv_backprop_filter_classify(X, np.ones((1, 3, 4, 4), np.float32), W.shape,
                                         thresholds=0.1)
    with pytest.raises(ValueError, match="d_out has shape"):
        nz.conv_backprop_filter_classify(X, D_OUT, (2, 2, 3, 4), thresholds=0.1)
    with pytest.raises(ValueError, match="kernel_shape must be"):
        nz.conv_backprop_filter_classify(X, D_OUT, (3, -3, 3, 4), thresholds=0.1)
    with pytest.raises(ValueError, match="expects 2 input channels"):
        nz.conv_backprop_filter_classify(X, D_OUT, (3, 3, 2, 4), thresholds=0.1)


def test_input_grad_shape_errors():
    with pytest.raises(ValueError, match=r"input_shape \(1, 7, 7, 3\).*\(1, 5, 5, 4\)"):
        nz.conv_backprop_input_classify(D_OUT, W, (1, 7, 7, 3), thresholds=0.1)
    with pytest.raises(ValueError, match="d_out has shape"):
        nz.conv_backprop_input_classify(D_OUT, W, (1, 6, 6, 3), strides=2, thresholds=0.1)
    # A bad input_shape is named as such.
    with pytest.raises(ValueError, match="input_shape must be non-negative ints"):
        nz.conv_backprop_input_classify(D_OUT, W, (1, -5, 5, 3), thresholds=0.1)
    with pytest.raises(ValueError, match="input_shape must be a sequence of ints"):
        nz.conv_backprop_input_classify(D_OUT, W, 5, thresholds=0.1)
    # with stride 2 both 7 and 8 give a 4-wide output: each is a valid input_shape
    for size in (7, 8):
        counts, _ = nz.conv_backprop_input_classify(D_OUT, W, (1, size, size, 3), strides=2,
                                                    padding="SAME", thresholds=0.1)
        assert counts.shape == (1, size, size, 3, 9)


def test_complex_is_a_type_error():
    with pytest.raises(TypeError, match="complex"):
        nz.conv_classify(X.astype(np.complex64), W, thresholds=0.1)


def test_bad_thresholds_and_reduce():
    with pytest.raises(ValueError, match="non-negative"):
        nz.conv_classify(X, W, thresholds=-1.0)
    with pytest.raises(ValueError, match="pair"):
        nz.conv_classify(X, W, thresholds=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="reduce must be"):
        nz.conv_classify(X, W, thresholds=0.1, reduce="rows")
    with pytest.raises(ValueError, match="nan_policy"):
        nz.conv_classify(X, W, thresholds=0.1, nan_policy="ignore")


def test_size_guard_suggests_reduce(monkeypatch):
    from nearzero.backends import cpu_results

    monkeypatch.setattr(cpu_results, "available_memory_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match="reduce="):
        nz.conv_classify(X, W, thresholds=0.1)
    counts, _ = nz.conv_classify(X, W, thresholds=0.1, reduce="channel")
    assert counts.shape == (4, 9)
