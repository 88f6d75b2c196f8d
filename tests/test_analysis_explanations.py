"""Near-zero explanations of two-input results: each cause on an input built to show exactly
that cause (through the real classify ops), none of them on a healthy input, the ranking
score, the text forms, reduced results and torch inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import nearzero
from nearzero.analysis import (describe_near_zero_explanation,
                               describe_top_near_zero_explanandum, near_zero_explanation)

RNG = np.random.default_rng(21)


def _kinds(causes):
    return [(c["cause_kind"], c["terms"]) for c in causes]


def _by_terms(causes, terms):
    return next(c for c in causes if c["terms"] == terms)


def test_zeros_in_the_first_input():
    x = RNG.standard_normal((32, 64)).astype(np.float32)
    x[:16] = 0  # dead rows: their outputs are exactly zero
    y = RNG.standard_normal((64, 16)).astype(np.float32)
    counts, sums = nearzero.matmul_classify(x, y)
    mask = (x @ y) == 0
    assert mask.sum() == 16 * 16
    causes = near_zero_explanation(counts, sums, mask=mask, input_names=["A_0", "W_l"])
    top = causes[0]
    assert top["cause_kind"] == "first_near_zero" and top["terms"] == ("ZZ", "ZP", "ZN")
    assert top["description"] == "near-zero values from A_0"
    assert top["fraction"] == 1.0 and top["score"] == pytest.approx(1 / 3)
    assert top["count"] == 16 * 16 * 64
    assert _by_terms(causes, ("ZZ", "PZ", "NZ"))["fraction"] < 0.1


def test_zeros_in_the_second_input():
    x = RNG.standard_normal((16, 64)).astype(np.float32)
    y = RNG.standard_normal((64, 32)).astype(np.float32)
    y[:, ::2] = 0
    counts, sums = nearzero.matmul_classify(x, y)
    top = near_zero_explanation(counts, sums, mask=(x @ y) == 0)[0]
    assert top["cause_kind"] == "second_near_zero"
    assert top["description"] == "near-zero values from second input"
    assert top["fraction"] == 1.0


def test_mostly_zero_first_input_without_a_mask():
    x = RNG.standard_normal((32, 64)).astype(np.float32) * (RNG.random((32, 64)) < 0.2)
    y = RNG.standard_normal((64, 16)).astype(np.float32)
    causes = near_zero_explanation(*nearzero.matmul_classify(x, y))
    assert causes[0]["cause_kind"] == "first_near_zero"
    assert 0.75 < causes[0]["fraction"] < 0.85


@pytest.mark.parametrize("sign", [1, -1])
def test_first_input_positives_and_negatives_cancelling(sign):
    # x = [u, -u] against y = [v; v]: every PP product u*v meets an NP product -u*v (with v > 0;
    # with v < 0 they are PN and NN). Small integers keep every sum exact.
    u = RNG.integers(1, 4, (12, 10)) * RNG.choice([-1, 1], (12, 10))
    v = RNG.integers(1, 3, (10, 6)) * sign
    x = np.concatenate([u, -u], axis=1).astype(np.float32)
    y = np.concatenate([v, v], axis=0).astype(np.float32)
    counts, sums = nearzero.matmul_classify(x, y, thresholds=0.0)
    causes = near_zero_explanation(counts, sums)
    terms = ("PP", "NP") if sign > 0 else ("PN", "NN")
    assert causes[0]["cause_kind"] == "first_cancelling" and causes[0]["terms"] == terms
    assert causes[0]["fraction"] == 1.0 and causes[0]["score"] == 0.5
    assert causes[0]["description"] == (
        f"positive/negatives from first input cancelling out ({terms[0]} ~= {terms[1]})")
    assert all(c["cause_kind"] in ("first_cancelling", "both_cancelling") for c in causes)


def test_second_input_positives_and_negatives_cancelling():
    u = RNG.integers(1, 4, (12, 10))
    v = RNG.integers(1, 3, (10, 6)) * RNG.choice([-1, 1], (10, 6))
    x = np.concatenate([u, u], axis=1).astype(np.float32)
    y = np.concatenate([v, -v], axis=0).astype(np.float32)
    causes = near_zero_explanation(nearzero.matmul_classify(x, y, thresholds=0.0),
                                   input_names=["A_0^T", "dJ/dZ_l"])
    assert causes[0]["cause_kind"] == "second_cancelling"
    assert causes[0]["terms"] == ("PP", "PN")
    assert causes[0]["description"] == (
        "positive/negatives from dJ/dZ_l cancelling out (PP ~= PN)")


def test_both_inputs_cancelling_only_in_total():
    # Per cell r*s*(3 [PP] + 1 [NN] - 2 [PN] - 2 [NP]) = 0, while every pair of classes that
    # shares an input sign sums to +-r*s.
    r = RNG.integers(1, 4, (8, 1))
    s = RNG.integers(1, 4, (1, 5))
    x = (np.array([3, -1, 1, -2]) * r).astype(np.float32)
    y = (np.array([[1], [-1], [-2], [1]]) * s).astype(np.float32)
    counts, sums = nearzero.matmul_classify(x, y, thresholds=0.0)
    assert np.all(np.asarray(sums).sum(-1) == 0)
    causes = near_zero_explanation(counts, sums)
    assert _kinds(causes) == [("both_cancelling", ("PP", "NN", "NP", "PN"))]
    assert causes[0]["fraction"] == 1.0 and causes[0]["score"] == 0.25


def test_healthy_input_has_no_strong_cause():
    x = RNG.standard_normal((64, 128)).astype(np.float32)
    y = RNG.standard_normal((128, 64)).astype(np.float32)
    causes = near_zero_explanation(*nearzero.matmul_classify(x, y))
    # At confidence 0.95 about 5% of each input is near zero and few outputs cancel: every
    # cause stays near chance, far from the built inputs above.
    assert causes and max(c["fraction"] for c in causes) < 0.15
    assert max(c["score"] for c in causes) < 0.03


def test_ranking_does_not_depend_on_the_number_of_outputs():
    x = RNG.standard_normal((16, 32)).astype(np.float32) * (RNG.random((16, 32)) < 0.5)
    y = RNG.standard_normal((32, 8)).astype(np.float32)
    counts, sums = nearzero.matmul_classify(x, y)
    small = near_zero_explanation(counts, sums, threshold=0.5)
    large = near_zero_explanation(np.tile(counts, (50, 1, 1)), np.tile(sums, (50, 1, 1)),
                                  threshold=0.5)
    assert _kinds(small) == _kinds(large)
    assert [c["score"] for c in small] == pytest.approx([c["score"] for c in large])
    scores = [c["score"] for c in small]
    assert scores == sorted(scores, reverse=True)
    for cause in small:
        assert cause["score"] == pytest.approx(cause["fraction"] / len(cause["terms"]))


def test_hand_computed_fractions_and_threshold():
    # Two cells. Cell 0: 2 ZP products and PP = 1.0, NP = -0.9 (|0.1| < 0.2: cancelling).
    # Cell 1: PP = 3 products summing to 2.0, no cancellation.
    counts = np.array([[1, 0, 0, 2, 0, 0, 1, 0, 0], [3, 0, 0, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[1.0, 0, 0, 0.1, 0, 0, -0.9, 0, 0], [2.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    causes = near_zero_explanation(counts, sums, threshold=0.2)
    by_kind = {(c["cause_kind"], c["terms"]): c for c in causes}
    assert by_kind[("first_near_zero", ("ZZ", "ZP", "ZN"))]["fraction"] == 2 / 7
    assert by_kind[("first_cancelling", ("PP", "NP"))]["fraction"] == 2 / 7
    assert by_kind[("either_near_zero", ("ZZ", "ZP", "PZ", "ZN", "NZ"))]["count"] == 2
    assert ("second_near_zero", ("ZZ", "PZ", "NZ")) not in by_kind  # no products: left out
    # Scores 2/7/2 (PP ~= NP) > 2/7/3 (first near zero) > 2/7/4 (both) > 2/7/5 (either).
    assert [c["cause_kind"] for c in causes] == ["first_cancelling", "first_near_zero",
                                                 "both_cancelling", "either_near_zero"]


def test_threshold_from_the_outputs_interpolates_linearly():
    # Outputs 1.0 - 0.1 - 0.75 = 0.15 and 2.0; PP + NP = 0.25 in the first cell. The
    # 100*(1-confidence) percentile of |output|: 0.15 + 1.85 * 0.05 = 0.2425 at 0.95 (0.25 is
    # not below it), 0.15 + 1.85 * 0.1 = 0.335 at 0.9 (it is).
    counts = np.array([[1, 0, 0, 2, 0, 0, 1, 0, 0], [3, 0, 0, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[1.0, 0, 0, -0.1, 0, 0, -0.75, 0, 0], [2.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert all(c["terms"] != ("PP", "NP") for c in near_zero_explanation(counts, sums))
    at_90 = near_zero_explanation(counts, sums, confidence=0.9)
    assert _by_terms(at_90, ("PP", "NP"))["count"] == 2


def test_text_forms():
    counts = np.array([[1, 0, 0, 2, 0, 0, 1, 0, 0]])
    sums = np.array([[1.0, 0, 0, 0.1, 0, 0, -0.9, 0, 0]])
    descriptions, fractions = describe_near_zero_explanation(counts, sums, threshold=0.2)
    assert descriptions[0] == "positive/negatives from first input cancelling out (PP ~= NP)"
    assert fractions[0] == 0.5
    assert describe_top_near_zero_explanandum(counts, sums, threshold=0.2) == (
        descriptions[0], fractions[0])
    assert describe_top_near_zero_explanandum(counts, sums, mask=np.array([False])) == (None,
                                                                                         None)


def test_filtered_terms_are_understood():
    counts = np.array([[2, 1, 1, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[0.5, 1.0, -0.95, 0, 0, 0, 0, 0, 0]])
    terms = np.array([["ZP", "PP", "NP", "PZ", "PN", "ZZ", "ZN", "NZ", "NN"]])
    causes = near_zero_explanation(counts, sums, terms, threshold=0.2)
    assert _by_terms(causes, ("ZZ", "ZP", "ZN"))["count"] == 2
    assert _by_terms(causes, ("PP", "NP"))["count"] == 2


def test_reduced_results_give_the_near_zero_causes():
    x = RNG.standard_normal((32, 64)).astype(np.float32)
    x[:16] = 0
    y = RNG.standard_normal((64, 16)).astype(np.float32)
    mask = (x @ y) == 0
    full = near_zero_explanation(nearzero.matmul_classify(x, y), mask=mask)
    total = near_zero_explanation(nearzero.matmul_classify(x, y, reduce="all", mask=mask),
                                  reduce="all")
    per_channel = near_zero_explanation(
        nearzero.matmul_classify(x, y, reduce="channel", mask=mask), reduce="channel")
    near_zero_only = [c for c in full if c["cause_kind"].endswith("near_zero")]
    for reduced in (total, per_channel):
        assert _kinds(reduced) == _kinds(near_zero_only)
        assert [c["fraction"] for c in reduced] == [c["fraction"] for c in near_zero_only]


def test_torch_inputs_match_numpy():
    torch = pytest.importorskip("torch")
    x = torch.randn(24, 48) * (torch.rand(24, 48) < 0.5)
    y = torch.randn(48, 12)
    counts, sums = nearzero.matmul_classify(x, y)
    assert isinstance(counts, torch.Tensor)
    mask = (x @ y).abs() < 0.5
    got = near_zero_explanation(counts, sums, mask=mask)
    expected = near_zero_explanation(counts.numpy(), sums.numpy(), mask=mask.numpy())
    assert _kinds(got) == _kinds(expected)
    assert [c["count"] for c in got] == [c["count"] for c in expected]


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_names=["a"]), "exactly two"),
    (dict(reduce="all", mask=np.array(True)), "already summed"),
    (dict(confidence=1.5), "confidence"),
    (dict(reduce="rows"), "reduce must be"),
])
def test_errors(kwargs, message):
    counts = np.ones((9,), int) if kwargs.get("reduce") == "all" else np.ones((2, 9), int)
    with pytest.raises(ValueError, match=message):
        near_zero_explanation(counts, counts * 1.0, **kwargs)


def test_single_tensor_results_are_rejected():
    counts, sums = nearzero.tensor_classify(np.arange(4.0))
    with pytest.raises(ValueError, match="two-input"):
        near_zero_explanation(counts, sums)
