"""Hand-written cases of the P/Z/N rule (SPEC §1), checked through the compiled kernels."""

import numpy as np
import pytest

import nearzero as nz

P, Z, N = 0, 1, 2
INF = float("inf")

# (value, threshold, expected class)
CASES = [
    (0.0, 0.0, Z),
    (-0.0, 0.0, Z),
    (0.0, 1.0, Z),
    (-0.0, 1.0, Z),
    (1e-30, 0.0, P),
    (-1e-30, 0.0, N),
    (0.5, 0.5, P),      # exactly at the threshold: not below it
    (-0.5, 0.5, N),
    (0.4999, 0.5, Z),
    (-0.4999, 0.5, Z),
    (INF, 0.5, P),
    (-INF, 0.5, N),
    (INF, INF, P),      # |inf| < inf is false, so inf stays P
    (3.0, INF, Z),      # every finite value is below an infinite threshold
    (-3.0, INF, Z),
    (2.0, 1.0, P),
    (-2.0, 1.0, N),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value,t,expected", CASES)
def test_rule_table(value, t, expected, dtype):
    counts, sums = nz.tensor_classify(np.array([value], dtype=dtype), threshold=t)
    want = np.zeros(3, dtype=np.int64)
    want[expected] = 1
    np.testing.assert_array_equal(counts[0], want)
    assert sums[0, expected] == dtype(value) or (np.isinf(value) and sums[0, expected] == value)
    assert np.count_nonzero(sums[0]) <= 1


def test_nan_belongs_to_no_class_when_omitted():
    counts, sums = nz.tensor_classify(np.array([np.nan, 1.0, 0.0]), threshold=0.5,
                                      nan_policy="omit")
    np.testing.assert_array_equal(counts, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(sums, [[0, 0, 0], [1, 0, 0], [0, 0, 0]])


def test_pair_index_order():
    # x in classes P, Z, N against y in classes P, Z, N gives all nine pairs in order.
    x = np.array([2.0, 2.0, 2.0, 0.0, 0.0, 0.0, -2.0, -2.0, -2.0])
    y = np.array([3.0, 0.0, -3.0] * 3)
    counts, sums = nz.multiply_classify(x, y, thresholds=1.0)
    np.testing.assert_array_equal(counts, np.eye(9, dtype=np.int32))
    np.testing.assert_array_equal(np.diag(sums), x * y)
    assert nz.classify_terms() == ["PP", "PZ", "PN", "ZP", "ZZ", "ZN", "NP", "NZ", "NN"]


@pytest.mark.parametrize("value,t,expected", CASES)
def test_rule_same_in_matmul(value, t, expected):
    # A 1x1 @ 1x1 product with a P partner puts the value's class in the first letter.
    counts, _ = nz.matmul_classify(np.array([[value]]), np.array([[5.0]]), thresholds=(t, 1.0))
    assert counts[0, 0].argmax() == 3 * expected and counts[0, 0].sum() == 1
