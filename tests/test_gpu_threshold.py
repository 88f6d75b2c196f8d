"""GPU threshold selection and NaN checks: bit-identical to the CPU's radix select for every
dtype, distribution and size, on torch CUDA tensors, CuPy arrays and the CPU emulation."""

import numpy as np
import pytest

import nearzero as nz
from conftest import DISTRIBUTIONS, sample
from gpu_support import device  # noqa: F401  (fixture)

SIZES = [1, 2, 7, 1000, 4099, 70001]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_threshold_bit_identical_to_cpu(device, rng, kind, dtype):
    for n in SIZES:
        x = sample(rng, (n,), kind, dtype)
        for confidence in (0.0, 0.5, 0.95, 0.999, 1.0):
            assert nz.threshold(device.put(x), confidence) == nz.threshold(x, confidence)


def test_threshold_half_precision_and_integers(device, rng):
    x = sample(rng, (3001,), "normal", np.float16)
    assert nz.threshold(device.put(x), 0.9) == nz.threshold(x, 0.9)
    ints = rng.integers(-50, 50, size=(40, 30)).astype(np.int32)
    assert nz.threshold(device.put(ints), 0.8) == nz.threshold(ints, 0.8)
    flags = rng.random((100,)) > 0.3
    assert nz.threshold(device.put(flags), 0.5) == nz.threshold(flags, 0.5)


def test_threshold_of_transposed_and_sliced_inputs(device, rng):
    x = sample(rng, (64, 33), "relu")
    put = device.put(x)
    assert nz.threshold(put.T, 0.9) == nz.threshold(x.T, 0.9)
    assert nz.threshold(put[::2, 3:], 0.9) == nz.threshold(x[::2, 3:], 0.9)


def test_threshold_ties_and_extremes(device):
    x = np.array([0.0, -0.0, 1.0, -1.0, 1.0, np.inf, -np.inf, 3.0e38, 1e-45], dtype=np.float32)
    for confidence in np.linspace(0, 1, 11):
        assert nz.threshold(device.put(x), confidence) == nz.threshold(x, confidence)


def test_nan_raise_and_omit(device, rng):
    x = sample(rng, (5000,), "normal")
    x[[3, 70, 4000]] = np.nan
    with pytest.raises(ValueError, match="x contains 3 NaN values of 5000"):
        nz.threshold(device.put(x))
    assert nz.threshold(device.put(x), nan_policy="omit") == nz.threshold(x, nan_policy="omit")
    with pytest.raises(ValueError, match="all of its values are NaN"):
        nz.threshold(device.put(np.full(9, np.nan, np.float32)), nan_policy="omit")
    with pytest.raises(ValueError, match="empty"):
        nz.threshold(device.put(np.zeros((0, 3), np.float32)))
