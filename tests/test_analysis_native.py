"""The compiled filter_classifications and group_classifications paths against the NumPy ones:
`_filter_sorted` (the plain per-row argsort reference), the packed sorting-network path and the
NumPy grouping, on data full of ties, in both layouts the ops produce.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nearzero.analysis import filter_classifications, filtering, group_classifications, grouping
from nearzero.analysis._results import as_planes
from nearzero.terms import PAIR_TERMS, SINGLE_TERMS

COMPLETENESS = [0.0, 0.5, 0.75, 1.0]
_FILTER_SORTED = filtering._filter_sorted  # kept, as `native_only` replaces it


def _tied_case(rng, value_shape, n_terms, count_dtype, sum_dtype, layout="planes"):
    """Small counts and a few discrete sums (zeros, -0.0, negatives), some continuous cells."""
    shape = tuple(value_shape) + (n_terms,)
    counts = rng.integers(0, 4, shape)
    sums = rng.choice(np.array([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0]), shape) * (counts > 0)
    sums[..., ::3, :] = rng.choice(np.array([-0.0, 1.0, -3.0]), sums[..., ::3, :].shape)
    sums.reshape(-1, n_terms)[::4] = rng.standard_normal((sums.reshape(-1, n_terms)[::4].shape))
    counts, sums = counts.astype(count_dtype), sums.astype(sum_dtype)
    if layout == "planes":  # term-major, as the ops return: the last axis has stride = cells
        counts = np.moveaxis(np.ascontiguousarray(np.moveaxis(counts, -1, 0)), 0, -1)
        sums = np.moveaxis(np.ascontiguousarray(np.moveaxis(sums, -1, 0)), 0, -1)
    return counts, sums


def _reference(counts, sums, completeness):
    n_terms = counts.shape[-1]
    names = np.array(PAIR_TERMS if n_terms == 9 else SINGLE_TERMS)
    kept_counts, kept_sums, order = _FILTER_SORTED(
        counts.reshape(-1, n_terms), sums.reshape(-1, n_terms), completeness)
    return (kept_counts.reshape(counts.shape), kept_sums.reshape(counts.shape),
            names[order].reshape(counts.shape))


def _assert_identical(got, expected):
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(np.signbit(got[1]), np.signbit(expected[1]))  # -0.0 kept


@pytest.fixture
def native_only(monkeypatch):
    """Fails the test if filter_classifications falls back to a NumPy path."""
    def fail(*args):
        raise AssertionError("the NumPy path ran")
    monkeypatch.setattr(filtering, "_filter_packed", fail)
    monkeypatch.setattr(filtering, "_filter_sorted", fail)


@pytest.mark.parametrize("n_terms", [3, 9])
@pytest.mark.parametrize("count_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("sum_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["planes", "cells"])
def test_filter_matches_the_argsort_reference(n_terms, count_dtype, sum_dtype, layout):
    rng = np.random.default_rng(n_terms * 7 + np.dtype(sum_dtype).itemsize)
    counts, sums = _tied_case(rng, (37, 11), n_terms, count_dtype, sum_dtype, layout)
    assert np.any(counts) and np.any(np.signbit(sums) & (sums == 0)) and np.any(sums < 0)
    for completeness in COMPLETENESS:
        expected = _reference(counts, sums, completeness)
        got = filter_classifications(counts, sums, completeness)
        _assert_identical(got, expected)


@pytest.mark.parametrize("n_terms", [3, 9])
@pytest.mark.parametrize("completeness", COMPLETENESS)
def test_filter_matches_the_packed_numpy_path(n_terms, completeness):
    rng = np.random.default_rng(3 + n_terms)
    counts, sums = _tied_case(rng, (400,), n_terms, np.int32, np.float32)
    names = np.array(PAIR_TERMS if n_terms == 9 else SINGLE_TERMS)
    planes = filtering._filter_packed(as_planes(counts), as_planes(sums), completeness,
                                      names.view(f"u{names.dtype.itemsize}"))
    expected = tuple(np.moveaxis(p, 0, -1) for p in planes)
    _assert_identical(filter_classifications(counts, sums, completeness), expected)


def test_filter_takes_strided_views_without_the_numpy_paths(native_only):
    rng = np.random.default_rng(21)
    counts, sums = _tied_case(rng, (50, 40), 9, np.int32, np.float32)
    counts, sums = counts[::3, 1::2], sums[::3, 1::2]  # neither layout is contiguous now
    _assert_identical(filter_classifications(counts, sums, 0.6), _reference(counts, sums, 0.6))


def test_filter_results_are_term_major_views():
    rng = np.random.default_rng(4)
    counts, sums = _tied_case(rng, (8, 5), 9, np.int32, np.float32)
    for result in filter_classifications(counts, sums):
        assert result.shape == (8, 5, 9)
        assert result.strides[-1] == 8 * 5 * result.itemsize


@pytest.mark.parametrize("shape", [(0, 9), (0, 3), (2, 0, 9), (9,), (3,)])
def test_filter_empty_and_single_cell(shape, native_only):
    counts = np.arange(np.prod(shape), dtype=np.int32).reshape(shape) % 4
    sums = (counts * -1.5).astype(np.float32)
    got = filter_classifications(counts, sums)
    assert [g.shape for g in got] == [shape] * 3
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32
    assert got[2].dtype == np.dtype("U2" if shape[-1] == 9 else "U1")


def test_filter_infinite_and_nan_sums_follow_the_reference():
    rng = np.random.default_rng(8)
    counts = rng.integers(0, 4, (600, 9)).astype(np.int32)
    values = np.array([-2, -1, -0.0, 0, 1, 2, np.nan, np.inf, -np.inf], dtype=np.float32)
    sums = rng.choice(values, counts.shape)
    for completeness in COMPLETENESS:
        with np.errstate(invalid="ignore"):  # the reference's inf * 0
            expected = _reference(counts, sums, completeness)
        got = filter_classifications(counts, sums, completeness)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])  # NaN == NaN here
        np.testing.assert_array_equal(got[2], expected[2])


def test_filter_negative_and_huge_counts_follow_the_reference():
    rng = np.random.default_rng(9)
    counts = rng.integers(-3, 4, (500, 9)).astype(np.int64)
    counts[::5] *= 2**58
    sums = rng.choice(np.array([-2.0, -0.0, 0.0, 1.0]), counts.shape)
    for completeness in COMPLETENESS:
        _assert_identical(filter_classifications(counts, sums, completeness),
                          _reference(counts, sums, completeness))


@settings(max_examples=30, deadline=None)
@given(value_shape=st.lists(st.integers(0, 6), min_size=1, max_size=3),
       n_terms=st.sampled_from([3, 9]), seed=st.integers(0, 2**16),
       completeness=st.floats(0, 1))
def test_filter_any_shape(value_shape, n_terms, seed, completeness):
    rng = np.random.default_rng(seed)
    counts, sums = _tied_case(rng, value_shape, n_terms, np.int32, np.float32)
    _assert_identical(filter_classifications(counts, sums, completeness),
                      _reference(counts, sums, completeness))


def _numpy_grouping(monkeypatch, *args, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(grouping, "_native_takes", lambda *a: False)
        return group_classifications(*args, **kwargs)


def _assert_same_groups(got, expected):
    assert len(got[0]) == len(expected[0]) and got[2] == expected[2]
    for part in (0, 1):
        for g, e in zip(got[part], expected[part]):
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("n_terms", [3, 9])
@pytest.mark.parametrize("count_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("layout", ["planes", "cells"])
def test_grouping_matches_the_numpy_path(monkeypatch, n_terms, count_dtype, layout):
    rng = np.random.default_rng(30 + n_terms)
    counts, sums = _tied_case(rng, (60, 9), n_terms, count_dtype, np.float32, layout)
    mask = rng.random(counts.shape[:-1]) < 0.6
    filtered = filter_classifications(counts, sums, 0.5)
    for args in ((counts, sums), filtered, (counts, counts), (counts, sums.astype(np.float64))):
        for m in (None, mask, np.zeros_like(mask)):
            got = group_classifications(*args, mask=m)
            _assert_same_groups(got, _numpy_grouping(monkeypatch, *args, mask=m))
    assert len(group_classifications(*filtered)[0]) > 3


def test_grouping_names_with_placeholders_and_wrong_names(monkeypatch):
    counts = np.array([[3, 1, 0] + [0] * 6, [2, 0, 0] + [0] * 6, [0] * 9], dtype=np.int32)
    terms = np.array([["NN", "PZ"] + ["--"] * 7, ["NN", "-"] + ["--"] * 7, ["-"] * 9])
    got = group_classifications(counts, counts * 0.5, terms)
    _assert_same_groups(got, _numpy_grouping(monkeypatch, counts, counts * 0.5, terms))
    assert got[2] == [[], ["NN"], ["NN", "PZ"]]  # one cell each: by pattern, empty first
    with pytest.raises(ValueError, match="placeholder"):
        group_classifications(counts, counts * 0.5, np.array([["NN", "--"] + ["--"] * 7] * 3))
    with pytest.raises(ValueError, match="unrecognised term"):
        group_classifications(counts, counts * 0.5, np.array([["NN", "PQ"] + ["--"] * 7] * 3))
    # A wrong name outside the mask is still reported, as by the NumPy path.
    wrong = terms.copy()
    wrong[2, 0] = "QQ"
    with pytest.raises(ValueError, match="unrecognised term"):
        group_classifications(counts, counts * 0.5, wrong, mask=np.array([True, True, False]))
