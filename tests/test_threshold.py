"""`nearzero.threshold`: bit-equal to the sort-based reference of SPEC §2 for every size,
distribution, dtype and confidence; errors for bad input."""

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference as ref
from conftest import DISTRIBUTIONS, sample

SIZES = [1, 2, 3, 7, 64, 1000, 4097, 65536 + 13, 300_001]
CONFIDENCES = [0.0, 0.5, 0.65, 0.9, 0.95, 0.99, 0.999, 1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("size", SIZES)
def test_threshold_bit_equal_to_reference(rng, size, kind, dtype):
    x = sample(rng, (size,), kind, dtype)
    for confidence in CONFIDENCES:
        got = nz.threshold(x, confidence)
        want = ref.threshold(x, confidence)
        assert got == want, (size, kind, confidence, got, want)


def test_threshold_matches_numpy_percentile(rng):
    x = rng.standard_normal(10_001)
    for confidence in (0.5, 0.9, 0.95, 0.99):
        q = float(np.float32(100 * (1 - confidence)))
        assert nz.threshold(x, confidence) == np.percentile(np.abs(x), q, method="midpoint")


def test_threshold_float32_rounding_of_q():
    # 100*(1-0.65) is 35.00000000000001 in float64 but q is rounded to float32 first.
    x = np.tile(np.arange(0.0, 1.0, 0.1), (10, 1))
    assert nz.threshold(x, 0.65) == 0.30000000000000004


def test_threshold_confidence_one_is_min_abs(rng):
    x = sample(rng, (999,), "normal", np.float64)
    assert nz.threshold(x, 1.0) == np.abs(x).min()
    assert nz.threshold(np.array([0.0, 3.0, -1.0]), 1.0) == 0.0


def test_threshold_multidimensional_and_layouts(rng):
    x = sample(rng, (40, 30, 5), "normal", np.float32)
    for view in (x, x.transpose(2, 0, 1), x[:, ::-3, :]):
        assert nz.threshold(view, 0.9) == ref.threshold(view, 0.9)


def test_threshold_wide_ranges_and_infinities():
    x = np.array([np.inf, -np.inf, 3e38, -3e38, 1e-45, 0.0], dtype=np.float32)
    for confidence in (0.0, 0.2, 0.5, 0.8, 1.0):
        assert nz.threshold(x, confidence) == ref.threshold(x, confidence)


def test_threshold_integer_and_bool_inputs_as_float32(rng):
    ints = rng.integers(-5, 6, size=1000)
    assert nz.threshold(ints, 0.9) == ref.threshold(ints.astype(np.float32), 0.9)
    bools = rng.random(100) > 0.3
    assert nz.threshold(bools, 0.5) == ref.threshold(bools.astype(np.float32), 0.5)


def test_threshold_float16_midpoint_in_float16():
    x = np.array([1.0, 1.0009765625, 2.0, 3.0], dtype=np.float16)  # 1 and its next float16
    t = nz.threshold(x, 0.8)  # midpoint of the two smallest rounds in float16
    assert t == float(np.float16(0.5) * (np.float16(1.0) + np.float16(1.0009765625)))


def test_threshold_torch_bfloat16_and_float16():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000, generator=g)
    for dtype in (torch.float16, torch.bfloat16):
        xd = x.to(dtype)
        t = nz.threshold(xd, 0.9)
        assert torch.tensor(t, dtype=dtype).item() == t  # representable in the input dtype
        values = xd.float().abs().sort().values
        idx = (5000 - 1) * (float(np.float32(10.0)) / 100)
        lo, hi = values[int(np.floor(idx))], values[int(np.ceil(idx))]
        assert t == (torch.tensor(0.5, dtype=dtype) * (lo.to(dtype) + hi.to(dtype))).item()


def test_threshold_large_tensor(rng):
    x = rng.standard_normal(1 << 22).astype(np.float32)
    x[::7] = 0.0  # a large tied bucket
    for confidence in (0.5, 0.95):
        assert nz.threshold(x, confidence) == ref.threshold(x, confidence)


def test_threshold_nan_policy(rng):
    x = rng.standard_normal(101)
    x[[3, 50]] = np.nan
    with pytest.raises(ValueError, match="2 NaN"):
        nz.threshold(x)
    assert nz.threshold(x, 0.9, nan_policy="omit") == ref.threshold(x, 0.9)
    with pytest.raises(ValueError, match="all of its values are NaN"):
        nz.threshold(np.full(4, np.nan), nan_policy="omit")
    with pytest.raises(ValueError, match="nan_policy"):
        nz.threshold(x, nan_policy="ignore")


@pytest.mark.parametrize("confidence", [-0.1, 1.5, float("nan"), "0.9", None])
def test_threshold_bad_confidence(confidence):
    with pytest.raises(ValueError, match="confidence"):
        nz.threshold(np.ones(3), confidence)


def test_threshold_of_empty_suggests_thresholds():
    with pytest.raises(ValueError, match="thresholds="):
        nz.threshold(np.zeros((0, 3)))


def test_threshold_rejects_complex():
    with pytest.raises(TypeError, match="complex"):
        nz.threshold(np.ones(3, dtype=np.complex64))
