"""The worked example of the original's notebook (seed 002): a = b = ten rows of 0.0 .. 0.9."""

import numpy as np

import nearzero as nz


def test_worked_example_counts():
    a = np.tile(np.arange(0.0, 1.0, 0.1), (10, 1))
    counts, sums, thresholds = nz.matmul_classify(a, a, confidence=0.65, return_thresholds=True)
    # The notebook prints "threshold: 0.30000000000000004 (midpoint)".
    assert thresholds == [0.30000000000000004, 0.30000000000000004]
    np.testing.assert_allclose(sums.sum(-1), a @ a, rtol=1e-12)
    # The notebook's counts (PP 6 for columns 4..9, PZ 6 for columns 0..3, ZP 4 / ZZ 4) put the
    # value 0.30000000000000004, equal to the threshold, in Z. The contract's rule (Z only when
    # |x| < t) puts it in P, so at the printed threshold column 3 and the k = 3 terms move from
    # Z to P; any threshold in (0.3, 0.4] reproduces the notebook's printed counts exactly.
    counts_nb, _ = nz.matmul_classify(a, a, thresholds=0.35)
    pp, pz, zp, zz = (counts_nb[..., i] for i in (0, 1, 3, 4))
    row = lambda v: np.tile(np.array(v), (10, 1))  # noqa: E731
    np.testing.assert_array_equal(pp, row([0, 0, 0, 0, 6, 6, 6, 6, 6, 6]))
    np.testing.assert_array_equal(pz, row([6, 6, 6, 6, 0, 0, 0, 0, 0, 0]))
    np.testing.assert_array_equal(zp, row([0, 0, 0, 0, 4, 4, 4, 4, 4, 4]))
    np.testing.assert_array_equal(zz, row([4, 4, 4, 4, 0, 0, 0, 0, 0, 0]))
    assert counts_nb[..., [2, 5, 6, 7, 8]].sum() == 0
    # At the printed threshold itself: 7 P and 3 Z per row, columns 0..2 Z.
    np.testing.assert_array_equal(counts[..., 0], row([0, 0, 0, 7, 7, 7, 7, 7, 7, 7]))
    np.testing.assert_array_equal(counts[..., 1], row([7, 7, 7, 0, 0, 0, 0, 0, 0, 0]))
    np.testing.assert_array_equal(counts[..., 4], row([3, 3, 3, 0, 0, 0, 0, 0, 0, 0]))
    np.testing.assert_allclose(sums_pp := sums[0, 9, 0], sum(0.1 * k * 0.9 for k in range(3, 10)))
    assert sums_pp > 0
