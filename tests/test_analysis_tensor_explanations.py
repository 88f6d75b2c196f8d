"""Near-zero descriptions of single tensors (tensor_classify results): fractions, texts, dead
units, masks, reduced results and torch inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import nearzero
from nearzero.analysis import (describe_tensor_near_zero_explanation,
                               describe_tensor_units_near_zero_explanation,
                               tensor_near_zero_explanation, tensor_units_near_zero_explanation)

VALUES = np.array([0.0, 0.0, 1.0, 2.0, -3.0, 0.25, 5.0, -0.25], dtype=np.float32)


def test_near_zero_fraction_and_text():
    counts, sums = nearzero.tensor_classify(VALUES, threshold=0.5)
    # Z: 0, 0, 0.25, -0.25 -> 4 of 8.
    assert describe_tensor_near_zero_explanation(counts, sums) == (["50.0% near-zero"], [0.5])
    assert describe_tensor_near_zero_explanation((counts, sums), threshold=0.5) == (
        ["50.0% near-zero (< 0.5)"], [0.5])
    assert describe_tensor_near_zero_explanation(counts, sums, threshold=0.0)[0] == [
        "50.0% near-zero (= 0)"]
    assert describe_tensor_near_zero_explanation(counts, sums, threshold=0.5,
                                                 verbose=False)[0] == ["50.0% near-zero"]


def test_negatives_are_bad_counts_every_negative_value():
    counts, sums = nearzero.tensor_classify(VALUES, threshold=0.5)
    # Negative values: -3 (N) and -0.25 (Z): 2 of 8, listed after the larger near-zero share.
    found = tensor_near_zero_explanation(counts, sums, negatives_are_bad=True)
    assert [(f["kind"], f["description"], f["fraction"]) for f in found] == [
        ("near_zero", "50.0% near-zero", 0.5), ("negative", "25.0% negative", 0.25)]
    mostly_negative = np.array([-1.0, -2.0, -3.0, 0.0])
    descriptions, fractions = describe_tensor_near_zero_explanation(
        nearzero.tensor_classify(mostly_negative, threshold=0.5), negatives_are_bad=True)
    assert descriptions == ["75.0% negative", "25.0% near-zero"] and fractions == [0.75, 0.25]


def test_mask_selects_values():
    counts, sums = nearzero.tensor_classify(VALUES, threshold=0.5)
    mask = np.array([True, True, True, True, False, False, False, False])
    assert describe_tensor_near_zero_explanation(counts, sums, mask=mask)[1] == [0.5]
    assert describe_tensor_near_zero_explanation(counts, sums, mask=~mask)[1] == [0.5]
    assert describe_tensor_near_zero_explanation(counts, sums, mask=np.zeros(8, bool))[1] == [0.0]


def test_dead_units_over_the_batch():
    # Batch 4, units 3: unit 0 always zero, unit 1 mixed, unit 2 always negative.
    x = np.array([[0.0, 1.0, -2.0], [0.0, 0.0, -1.0], [0.0, 2.0, -3.0], [0.0, 0.0, -1.0]])
    counts, sums = nearzero.tensor_classify(x, threshold=0.5)
    assert describe_tensor_units_near_zero_explanation(counts, sums) == (
        ["33.3% of units always near-zero across all batch dims"], [1 / 3])
    assert describe_tensor_units_near_zero_explanation(counts, sums, negatives_are_bad=True) == (
        ["66.7% of units always near-zero or negative across all batch dims"], [2 / 3])
    # A mask that leaves out a value of unit 0 means it is no longer dead everywhere.
    mask = np.ones(x.shape, bool)
    mask[1, 0] = False
    assert describe_tensor_units_near_zero_explanation(counts, sums, mask=mask)[1] == [0.0]


def test_dead_units_over_batch_and_spatial_dims():
    x = np.random.default_rng(4).standard_normal((2, 3, 3, 4)).astype(np.float32)
    x[..., 1] = 0
    found = tensor_units_near_zero_explanation(nearzero.tensor_classify(x, threshold=0.1))
    assert found == [{"kind": "dead_units", "fraction": 0.25,
                      "description": "25.0% of units always near-zero across all batch and "
                                     "spatial dims"}]


def test_channel_reduced_results():
    x = np.array([[0.0, 1.0, -2.0], [0.0, 0.0, -1.0], [0.0, 2.0, -3.0], [0.0, 0.0, -1.0]])
    full = nearzero.tensor_classify(x, threshold=0.5)
    per_unit = nearzero.tensor_classify(x, threshold=0.5, reduce="channel")
    assert tensor_units_near_zero_explanation(per_unit, reduce="channel")[0]["fraction"] == 1 / 3
    assert tensor_units_near_zero_explanation(per_unit, reduce="channel",
                                              negatives_are_bad=True)[0]["fraction"] == 2 / 3
    assert (describe_tensor_near_zero_explanation(per_unit, reduce="channel")
            == describe_tensor_near_zero_explanation(full))
    total = nearzero.tensor_classify(x, threshold=0.5, reduce="all")
    assert (describe_tensor_near_zero_explanation(total, reduce="all")
            == describe_tensor_near_zero_explanation(full))


@pytest.mark.parametrize("call, message", [
    (lambda c: describe_tensor_near_zero_explanation(c, reduce="all", negatives_are_bad=True),
     "sign of every value"),
    (lambda c: describe_tensor_units_near_zero_explanation(c, reduce="all"), "no units"),
])
def test_reduced_forms_that_lose_the_meaning_are_errors(call, message):
    total = nearzero.tensor_classify(VALUES, threshold=0.5, reduce="all")
    with pytest.raises(ValueError, match=message):
        call(total)


def test_two_input_results_are_rejected():
    counts, sums = nearzero.multiply_classify(VALUES, VALUES)
    with pytest.raises(ValueError, match="tensor_classify"):
        describe_tensor_near_zero_explanation(counts, sums)


def test_torch_inputs():
    torch = pytest.importorskip("torch")
    x = torch.tensor([[0.0, 1.0, -2.0], [0.0, 0.0, -1.0]])
    counts, sums = nearzero.tensor_classify(x, threshold=0.5)
    assert describe_tensor_near_zero_explanation(counts, sums, negatives_are_bad=True) == (
        ["50.0% near-zero", "33.3% negative"], [0.5, 2 / 6])
    assert describe_tensor_units_near_zero_explanation(counts, sums)[1] == [1 / 3]
