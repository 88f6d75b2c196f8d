"""Shared test helpers: value distributions that stress the rule, and the SPEC §4 checks."""

from __future__ import annotations

import numpy as np
import pytest

DISTRIBUTIONS = ("normal", "relu", "discrete", "tiny")


def sample(rng: np.random.Generator, shape, kind: str, dtype=np.float32) -> np.ndarray:
    """Random data of one distribution; never all zero."""
    size = int(np.prod(shape, dtype=np.int64))
    if kind == "normal":
        v = rng.standard_normal(size)
    elif kind == "relu":  # post-ReLU activations: exact zeros and positives
        v = np.maximum(rng.standard_normal(size), 0.0)
    elif kind == "discrete":  # few values, many ties at any threshold drawn from them
        v = rng.choice(np.array([-2.0, -0.5, 0.0, 0.25, 0.5, 1.0]), size)
    elif kind == "tiny":  # gradient-like magnitudes
        v = rng.standard_normal(size) * 1e-7
    else:
        raise ValueError(kind)
    if size and not np.any(v):
        v[0] = 1.0
    return v.reshape(shape).astype(dtype)


def assert_sums_close(sums, ref_sums, abs_scale, *, rel=1e-5):
    """SPEC §4: each class sum within rel * Σ|x_i*y_i| of the float64 reference."""
    sums = np.asarray(sums, dtype=np.float64)
    ref_sums = np.asarray(ref_sums, dtype=np.float64)
    assert sums.shape == ref_sums.shape
    assert not np.isnan(sums).any()
    bound = rel * np.asarray(abs_scale, dtype=np.float64)[..., None] + 1e-300
    err = np.abs(sums - ref_sums)
    worst = np.max(err - bound) if err.size else 0.0
    assert worst <= 0, f"class sum error exceeds SPEC bound by {worst}"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
