"""group_classifications: a hand-computed case, agreement with a cell-by-cell dictionary
grouping, masks, term arrays from filter_classifications and bad terms.
"""

from __future__ import annotations

import numpy as np
import pytest

import nearzero
from nearzero.analysis import (describe_groups, filter_classifications, filter_groups,
                               group_classifications)
from nearzero.terms import PAIR_TERMS, SINGLE_TERMS


def _group_cell_by_cell(counts, sums, terms=None, mask=None):
    """Plain dictionary grouping: pattern = (term or None) per position; largest group first,
    equal sizes by pattern (empty before any term, terms in the standard order)."""
    n_terms = counts.shape[-1]
    names = list(PAIR_TERMS if n_terms == 9 else SINGLE_TERMS)
    if terms is None:
        terms = np.broadcast_to(np.array(names), counts.shape)
    cells = [i for i in np.ndindex(counts.shape[:-1]) if mask is None or mask[i]]
    groups = {}
    for i in cells:
        pattern = tuple(names.index(t) + 1 if c != 0 else 0 for t, c in zip(terms[i], counts[i]))
        groups.setdefault(pattern, []).append(i)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    result = []
    for pattern, members in ordered:
        filled = [k for k, d in enumerate(pattern) if d]
        length = filled[-1] + 1 if filled else 0
        result.append((np.array([counts[i] for i in members]),
                       np.array([sums[i] for i in members]),
                       [str(t) for t in terms[members[0]][:length]]))
    return result


def _assert_same(got, expected):
    counts, sums, terms = got
    assert len(counts) == len(expected)
    for c, s, t, (ec, es, et) in zip(counts, sums, terms, expected):
        np.testing.assert_array_equal(c, ec)
        np.testing.assert_array_equal(s, es)
        assert t == et


def test_hand_computed_groups():
    counts = np.array([[3, 0, 1, 0, 0, 0, 0, 0, 0],   # PP, PN
                       [0, 2, 0, 0, 0, 0, 0, 0, 0],   # PZ
                       [5, 0, 2, 0, 0, 0, 0, 0, 0],   # PP, PN
                       [1, 0, 0, 0, 0, 0, 0, 0, 0],   # PP
                       [0, 0, 0, 0, 0, 0, 0, 0, 0]])  # empty
    sums = counts * 0.5
    count_groups, sum_groups, term_groups = group_classifications(counts, sums)
    # Sizes 2, 1, 1, 1; the singletons by pattern, position by position: empty, then
    # (nothing, PZ), then (PP).
    assert [g.shape[0] for g in count_groups] == [2, 1, 1, 1]
    np.testing.assert_array_equal(count_groups[0], counts[[0, 2]])
    np.testing.assert_array_equal(sum_groups[0], sums[[0, 2]])
    assert term_groups == [["PP", "PZ", "PN"], [], ["PP", "PZ"], ["PP"]]
    np.testing.assert_array_equal(count_groups[1], counts[[4]])
    np.testing.assert_array_equal(count_groups[2], counts[[1]])
    np.testing.assert_array_equal(count_groups[3], counts[[3]])


def test_filtered_groups_name_the_kept_terms():
    counts = np.array([[8, 7, 0, 0, 0, 0, 0, 0, 0], [8, 7, 0, 0, 0, 0, 0, 0, 0],
                       [5, 0, 0, 0, 0, 0, 0, 0, 0]])
    terms = np.array([["NN", "PZ", "PP", "PN", "ZP", "ZZ", "ZN", "NP", "NZ"],
                      ["NN", "PZ", "PN", "PP", "ZP", "ZZ", "ZN", "NP", "NZ"],
                      ["ZZ", "PP", "PZ", "PN", "ZP", "ZN", "NP", "NZ", "NN"]])
    count_groups, _, term_groups = group_classifications(counts, counts * 1.0, terms)
    assert term_groups == [["NN", "PZ"], ["ZZ"]]
    assert [g.shape[0] for g in count_groups] == [2, 1]


@pytest.mark.parametrize("n_terms", [3, 9])
@pytest.mark.parametrize("with_terms", [False, True])
def test_matches_cell_by_cell_grouping(n_terms, with_terms):
    rng = np.random.default_rng(5 + n_terms)
    counts = (rng.random((30, 8, n_terms)) < 0.4) * rng.integers(1, 5, (30, 8, n_terms))
    sums = rng.standard_normal(counts.shape) * counts
    terms = None
    if with_terms:
        counts, sums, terms = filter_classifications(counts.astype(np.int32),
                                                     sums.astype(np.float32), 0.6)
    mask = rng.random(counts.shape[:-1]) < 0.7
    for m in (None, mask):
        got = group_classifications(counts, sums, terms, mask=m)
        _assert_same(got, _group_cell_by_cell(np.asarray(counts), np.asarray(sums), terms, m))


def test_patterns_the_original_merged_stay_apart():
    # The original's base-9 key with digits 1..9 gives "PZ, nothing" 2*9^8 and "PP, NN"
    # 1*9^8 + 9*9^7, the same number.
    counts = np.zeros((2, 9), int)
    counts[0, 0] = 1
    terms = np.array([["PZ"] + ["--"] * 8, ["PP", "NN"] + ["--"] * 7])
    counts[1, :2] = 1
    _, _, term_groups = group_classifications(counts, counts * 1.0, terms)
    assert sorted(term_groups) == [["PP", "NN"], ["PZ"]]


def test_real_result_through_filter_group_and_describe():
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal((40, 64)), 0).astype(np.float32)
    y = rng.standard_normal((64, 12)).astype(np.float32)
    counts, sums = nearzero.matmul_classify(x, y)
    filtered = filter_classifications(counts, sums)
    groups = group_classifications(*filtered)
    _assert_same(groups, _group_cell_by_cell(*filtered))
    assert sum(g.shape[0] for g in groups[0]) == 40 * 12
    kept = filter_groups(*groups, completeness=0.5, max_groups=3)
    described = describe_groups(*kept)
    assert len(described["summaries"]) == len(kept[0]) <= 3
    # x >= 0 after ReLU: no negative first-input classes anywhere.
    assert not any(t.startswith("N") for g in kept[2] for t in g)


def test_torch_inputs_and_empty_selection():
    torch = pytest.importorskip("torch")
    counts = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0]])
    got = group_classifications(torch.from_numpy(counts), torch.from_numpy(counts * 1.0))
    assert [g.tolist() for g in got[0]] == [[counts[1].tolist()], [counts[0].tolist()]]
    assert group_classifications(counts, counts * 1.0, mask=np.array([False, False])) == (
        [], [], [])


def test_bad_terms():
    counts = np.array([[1, 2, 0, 0, 0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="unrecognised term"):
        group_classifications(counts, counts * 1.0, np.array([["PP", "QQ"] + ["--"] * 7]))
    with pytest.raises(ValueError, match="placeholder"):
        group_classifications(counts, counts * 1.0, np.array([["PP", "--"] + ["--"] * 7]))
    with pytest.raises(ValueError, match="mask must have"):
        group_classifications(counts, counts * 1.0, mask=np.array([True, False]))
