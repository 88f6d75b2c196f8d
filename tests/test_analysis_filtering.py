"""filter_classifications and filter_groups: hand-computed cases, and agreement with a
step-by-step per-cell version of the three filtering steps on data full of ties.
"""

from __future__ import annotations

import numpy as np
import pytest

import nearzero
from nearzero.analysis import filter_classifications, filter_groups, summarise
from nearzero.analysis import filtering
from nearzero.terms import PAIR_TERMS, SINGLE_TERMS


def _filter_step_by_step(counts, sums, completeness):
    """One cell at a time: sort by |sum| (stable), flip, sort by count (stable), flip, keep
    what either step kept, zero the rest, then stable-sort by kept count, largest first.
    """
    names = np.array(PAIR_TERMS if counts.shape[-1] == 9 else SINGLE_TERMS)
    out = [np.empty_like(counts), np.empty_like(sums), np.empty(counts.shape, names.dtype)]
    for cell in np.ndindex(counts.shape[:-1]):
        c, s, t = counts[cell], sums[cell], names.copy()
        keep = np.zeros(c.shape, bool)
        order = np.argsort(np.abs(s), kind="stable")
        c, s, t, keep = c[order], s[order], t[order], keep[order]
        positive = np.cumsum(np.where(s > 0, s, 0))
        negative = np.cumsum(np.where(s < 0, -s, 0))
        keep |= np.maximum(positive, negative) >= max(positive[-1], negative[-1]) * (
            1 - completeness)
        c, s, t, keep = c[::-1], s[::-1], t[::-1], keep[::-1]
        order = np.argsort(c, kind="stable")
        c, s, t, keep = c[order], s[order], t[order], keep[order]
        keep |= np.cumsum(c) >= c.sum() * (1 - completeness)
        c, s, t, keep = c[::-1], s[::-1], t[::-1], keep[::-1]
        c, s = c * keep, s * keep
        order = np.argsort(-c, kind="stable")
        out[0][cell], out[1][cell], out[2][cell] = c[order], s[order], t[order]
    return tuple(out)


# The original's own test vectors (its expected counts and sums; terms kept, not '--').
ORIGINAL_COUNTS = np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8],
                            [0, 1, 2, 3, 4, 5, 6, 7, 8],
                            [8, 7, 6, 5, 4, 3, 2, 1, 0]], dtype=np.int32)
ORIGINAL_SUMS = np.array([[0, 1, 3, 6, 10, 15, 21, 28, 36],
                          [0, 36, 1, 28, 3, 21, 6, 15, 10],
                          [8, 15, 21, 26, 30, 33, 35, 36, 0]], dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_original_vectors(dtype):
    counts, sums, terms = filter_classifications(ORIGINAL_COUNTS, ORIGINAL_SUMS.astype(dtype))
    np.testing.assert_array_equal(counts, [[8, 7, 6, 5, 4, 0, 0, 0, 0],
                                           [8, 7, 6, 5, 4, 3, 1, 0, 0],
                                           [8, 7, 6, 5, 4, 3, 2, 1, 0]])
    np.testing.assert_array_equal(sums, [[36, 28, 21, 15, 10, 0, 0, 0, 0],
                                         [10, 15, 6, 21, 3, 28, 36, 0, 0],
                                         [8, 15, 21, 26, 30, 33, 35, 36, 0]])
    assert terms[0, :5].tolist() == ["NN", "NZ", "NP", "ZN", "ZZ"]
    assert terms[1, :7].tolist() == ["NN", "NZ", "NP", "ZN", "ZZ", "ZP", "PZ"]
    assert terms[2].tolist() == ["PP", "PZ", "PN", "ZP", "ZZ", "ZN", "NP", "NZ", "NN"]
    assert counts.dtype == np.int32 and sums.dtype == dtype
    assert sorted(terms[0].tolist()) == sorted(PAIR_TERMS)  # dropped terms keep their names


def test_a_large_sum_with_a_small_count_is_kept_by_the_sum_step():
    # Counts alone would keep PP and PZ (90 of 100); NN holds most of the negative extent.
    counts = np.array([[60, 30, 0, 0, 0, 0, 0, 0, 10]])
    sums = np.array([[6.0, 3.0, 0, 0, 0, 0, 0, 0, -50.0]], dtype=np.float32)
    kept_counts, kept_sums, terms = filter_classifications(counts, sums)
    assert terms[0, :3].tolist() == ["PP", "PZ", "NN"]
    np.testing.assert_array_equal(kept_counts[0, :3], [60, 30, 10])
    np.testing.assert_array_equal(kept_sums[0, :3], [6.0, 3.0, -50.0])
    # With the count step alone keeping everything, nothing is dropped either way.
    assert filter_classifications(counts, sums, completeness=1.0)[0][0].sum() == 100


def test_completeness_zero_keeps_only_what_is_needed():
    counts = np.array([[5, 1, 0, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[1.0, 4.0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    kept_counts, kept_sums, terms = filter_classifications(counts, sums, completeness=0.0)
    # Sum step keeps PZ (the largest sum reaches the full extent only with everything, so
    # the last one, PZ, is kept); count step keeps PP (the largest count).
    assert terms[0, :2].tolist() == ["PP", "PZ"]
    np.testing.assert_array_equal(kept_counts[0], [5, 1, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("n_terms", [3, 9])
@pytest.mark.parametrize("completeness", [0.0, 0.3, 0.5, 0.75, 0.9, 1.0])
def test_matches_step_by_step_on_ties(n_terms, completeness):
    rng = np.random.default_rng(7 + n_terms)
    counts = rng.integers(0, 4, (40, 7, n_terms)).astype(np.int32)
    sums = (rng.integers(-3, 4, counts.shape) * (counts > 0)).astype(np.float32)
    sums[::3] = (rng.standard_normal(sums[::3].shape) * counts[::3]).astype(np.float32)
    expected = _filter_step_by_step(counts, sums, completeness)
    for fast_path in (True, False):
        got = filter_classifications(counts, sums if fast_path else sums.astype(np.float64),
                                     completeness)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
        np.testing.assert_array_equal(np.signbit(got[1]), np.signbit(expected[1]))


def test_cells_whose_kept_terms_are_not_the_top_counts_are_reordered(monkeypatch):
    # PZ is kept for its sum although ZP (kept by nothing) has a larger count: kept first.
    counts = np.array([[50, 1, 0, 40, 0, 0, 0, 0, 0]])
    sums = np.array([[5.0, -30.0, 0, 0.5, 0, 0, 0, 0, 0]], dtype=np.float32)
    calls = []
    original = filtering._shown_first
    monkeypatch.setattr(filtering, "_shown_first", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(filtering, "_native_takes", lambda counts, sums: False)  # NumPy path
    kept_counts, kept_sums, terms = filter_classifications(counts, sums, completeness=0.5)
    assert calls  # the packed path's re-ordering network ran
    expected = _filter_step_by_step(counts, sums, 0.5)
    assert terms[0, :3].tolist() == ["PP", "PZ", "ZP"]
    np.testing.assert_array_equal(kept_counts, expected[0])
    np.testing.assert_array_equal(kept_counts[0, :3], [50, 1, 0])


def test_large_counts_take_the_general_path():
    counts = np.array([[2**22, 5, 0, 0, 0, 0, 0, 0, 0]], dtype=np.int64)
    sums = np.array([[1.0, 2.0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    assert not filtering._fits_packed_keys(counts, sums)
    got = filter_classifications(counts, sums)
    for g, e in zip(got, _filter_step_by_step(counts, sums, 0.75)):
        np.testing.assert_array_equal(g, e)


def test_real_matmul_result_keeps_shape_and_totals():
    rng = np.random.default_rng(11)
    counts, sums = nearzero.matmul_classify(rng.standard_normal((20, 30)),
                                            rng.standard_normal((30, 10)).astype(np.float32))
    kept_counts, kept_sums, terms = filter_classifications(counts, sums)
    assert kept_counts.shape == kept_sums.shape == terms.shape == (20, 10, 9)
    expected = _filter_step_by_step(np.asarray(counts), np.asarray(sums), 0.75)
    for g, e in zip((kept_counts, kept_sums, terms), expected):
        np.testing.assert_array_equal(g, e)
    # Kept counts cover at least 75% of every cell's products.
    assert np.all(kept_counts.sum(-1) >= 0.75 * counts.sum(-1))
    assert summarise(kept_counts, kept_sums, terms).startswith(("PP", "PN", "NP", "NN"))


def test_torch_input():
    torch = pytest.importorskip("torch")
    got = filter_classifications(torch.from_numpy(ORIGINAL_COUNTS),
                                 torch.from_numpy(ORIGINAL_SUMS))
    expected = filter_classifications(ORIGINAL_COUNTS, ORIGINAL_SUMS)
    for g, e in zip(got, expected):
        assert isinstance(g, np.ndarray)
        np.testing.assert_array_equal(g, e)


def test_reduced_all_form_is_one_cell():
    counts, sums, terms = filter_classifications(ORIGINAL_COUNTS[2], ORIGINAL_SUMS[2])
    np.testing.assert_array_equal(counts, [8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert terms.shape == (9,)


@pytest.mark.parametrize("completeness", [-0.1, 1.5, float("nan")])
def test_bad_completeness(completeness):
    with pytest.raises(ValueError, match="completeness"):
        filter_classifications(ORIGINAL_COUNTS, ORIGINAL_SUMS, completeness)


def _groups(*sizes):
    return ([np.full((n, 9), i) for i, n in enumerate(sizes)],
            [np.zeros((n, 9)) for n in sizes], [[PAIR_TERMS[i]] for i in range(len(sizes))])


def test_filter_groups_keeps_groups_until_the_rest_is_small():
    # Sizes 50, 30, 15, 5 of 100: with 0.75 the tail must hold 25; "15 + 5" = 20 < 25.
    counts, sums, terms, coverage = filter_groups(*_groups(50, 30, 15, 5), return_coverage=True)
    assert [c.shape[0] for c in counts] == [50, 30]
    assert terms == [["PP"], ["PZ"]] and coverage == 0.8
    assert len(filter_groups(*_groups(50, 30, 15, 5), completeness=0.9)[0]) == 3
    assert len(filter_groups(*_groups(50, 30, 15, 5), completeness=None)[0]) == 4
    assert len(filter_groups(*_groups(50, 30, 15, 5), completeness=1.0, max_groups=2)[0]) == 2


def test_filter_groups_of_nothing():
    assert filter_groups([], [], [], return_coverage=True) == ([], [], [], 1.0)
