"""summarise, standardize and describe_groups: hand-computed texts for every option and form."""

from __future__ import annotations

import numpy as np
import pytest

import nearzero
from nearzero.analysis import describe_groups, standardize, summarise

# Two cells. Totals: PP 1 (Σ 0.5), PZ 3 (Σ 0.75), NN 4 (Σ -0.25).
COUNTS = np.array([[1, 2, 0, 0, 0, 0, 0, 0, 3],
                   [0, 1, 0, 0, 0, 0, 0, 0, 1]], dtype=np.int32)
SUMS = np.array([[0.5, 0.25, 0, 0, 0, 0, 0, 0, 0.75],
                 [0.0, 0.5, 0, 0, 0, 0, 0, 0, -1.0]], dtype=np.float32)


def test_counts_and_sums_largest_count_first():
    # Largest |sum| 0.75 has scale -1, so every sum gets 4 + 1 + 1 = 6 places.
    assert summarise(COUNTS, SUMS) == "NN: 4 = Σ -0.250000, PZ: 3 = Σ 0.750000, PP: 1 = Σ 0.500000"


def test_tuple_form_and_op_tuple_with_thresholds_are_accepted():
    assert summarise((COUNTS, SUMS)) == summarise(COUNTS, SUMS)
    assert summarise((COUNTS, SUMS, [0.1, 0.2])) == summarise(COUNTS, SUMS)


def test_percentages():
    assert (summarise(COUNTS, SUMS, show_percentages=True)
            == "NN: 50.0% = Σ -0.250000, PZ: 37.5% = Σ 0.750000, PP: 12.5% = Σ 0.500000")


def test_means():
    # Means -0.0625, 0.25, 0.5: largest 0.5 has scale -1.
    assert (summarise(COUNTS, SUMS, show_means=True)
            == "NN: 4 x -0.062500, PZ: 3 x 0.250000, PP: 1 x 0.500000")


def test_percentages_and_means_together():
    assert (summarise(COUNTS, SUMS, show_percentages=True, show_means=True)
            == "NN: 50.0% x -0.062500, PZ: 37.5% x 0.250000, PP: 12.5% x 0.500000")


def test_ranges_over_cells():
    # Per cell: NN counts 3, 1 and sums 0.75, -1.0; PZ 2, 1 / 0.25, 0.5; PP 1, 0 / 0.5, 0.
    assert (summarise(COUNTS, SUMS, show_ranges=True)
            == "NN: 1..3 x -1.000..0.750, PZ: 1..2 x 0.250..0.500, PP: 0..1 x 0.000..0.500")


def test_ranges_of_negative_sums_show_smaller_magnitude_first():
    counts = np.array([[2, 0, 0, 0, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[-0.5, 0, 0, 0, 0, 0, 0, 0, 0], [-4.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert summarise(counts, sums, show_ranges=True) == "PP: 2..5 x -0.500..-4.000"


def test_mask_selects_cells_and_equal_counts_list_the_later_term_first():
    mask = np.array([False, True])
    assert summarise(COUNTS, SUMS, mask=mask) == "NN: 1 = Σ -1.000, PZ: 1 = Σ 0.500"


def test_ranges_with_mask_use_only_selected_cells():
    mask = np.array([True, False])
    assert (summarise(COUNTS, SUMS, mask=mask, show_ranges=True)
            == "NN: 3..3 x 0.750000..0.750000, PZ: 2..2 x 0.250000..0.250000, "
            "PP: 1..1 x 0.500000..0.500000")


def test_empty_summary():
    assert summarise(np.zeros((2, 9), int), np.zeros((2, 9))) == "<empty>"
    assert summarise(COUNTS, SUMS, mask=np.array([False, False])) == "<empty>"


def test_integer_counts_from_a_real_op_match_the_original_example():
    # The original's 1-D convolution test: 13 PN products summing to -5.6, 7 PZ, 1 ZN.
    inputs = np.arange(0.0, 0.9, 0.1).astype(np.float32).reshape(1, 9, 1)
    kernel = np.array([-1, 0, -1], np.float32).reshape(3, 1, 1)
    result = nearzero.conv_classify(inputs, kernel, confidence=0.90)
    assert summarise(result) == "PN: 13 = Σ -5.600, PZ: 7 = Σ 0.000, ZN: 1 = Σ 0.000"


def test_tensor_classify_results_use_single_terms():
    counts, sums = nearzero.tensor_classify(np.array([0.0, 1.0, 2.0, -3.0]), threshold=0.5)
    assert summarise(counts, sums) == "P: 2 = Σ 3.000, N: 1 = Σ -3.000, Z: 1 = Σ 0.000"


def test_filtered_terms_are_put_back_in_standard_order():
    counts = np.array([[4, 3, 1, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[-0.25, 0.75, 0.5, 0, 0, 0, 0, 0, 0]])
    terms = np.array([["NN", "PZ", "PP", "PN", "ZP", "ZZ", "ZN", "NP", "NZ"]])
    assert summarise(counts, sums, terms) == summarise(COUNTS.sum(0, keepdims=True),
                                                       SUMS.sum(0, keepdims=True))


def test_placeholder_terms_with_zero_counts_are_ignored():
    counts = np.array([[4, 3, 0, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[-0.25, 0.75, 0, 0, 0, 0, 0, 0, 0]])
    terms = np.array([["NN", "PZ"] + ["--"] * 7])
    assert summarise(counts, sums, terms) == "NN: 4 = Σ -0.250000, PZ: 3 = Σ 0.750000"


@pytest.mark.parametrize("terms, message", [
    ([["NN", "PZ", "XX"] + ["--"] * 6], "unrecognised term"),
    ([["NN", "NN"] + ["--"] * 7], "twice"),
    ([["--", "PZ"] + ["--"] * 7], "placeholder"),
])
def test_bad_terms_are_rejected(terms, message):
    counts = np.array([[4, 3, 0, 0, 0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match=message):
        summarise(counts, np.zeros((1, 9)), np.array(terms))


def test_torch_inputs_give_the_same_text():
    torch = pytest.importorskip("torch")
    assert summarise(torch.from_numpy(COUNTS), torch.from_numpy(SUMS),
                     mask=torch.tensor([False, True])) == "NN: 1 = Σ -1.000, PZ: 1 = Σ 0.500"
    assert (summarise(torch.from_numpy(COUNTS), torch.from_numpy(SUMS), show_ranges=True)
            == summarise(COUNTS, SUMS, show_ranges=True))


def test_reduced_results():
    rng = np.random.default_rng(3)
    # Multiples of 0.5: every sum is exact, so reduced and full totals agree to the bit.
    x, y = rng.integers(-2, 3, (6, 5)) * 0.5, rng.integers(-2, 3, (5, 4)) * 0.5
    full = nearzero.matmul_classify(x, y, thresholds=0.3)
    total = nearzero.matmul_classify(x, y, thresholds=0.3, reduce="all")
    per_channel = nearzero.matmul_classify(x, y, thresholds=0.3, reduce="channel")
    assert summarise(total, reduce="all") == summarise(full)
    assert summarise(per_channel, reduce="channel", show_means=True) == summarise(full,
                                                                                 show_means=True)
    channels = np.array([True, False, True, False])
    cell_mask = np.broadcast_to(channels, (6, 4))
    assert summarise(per_channel, reduce="channel", mask=channels) == summarise(full,
                                                                               mask=cell_mask)


@pytest.mark.parametrize("kwargs, message", [
    (dict(show_ranges=True, show_means=True), "cannot be combined"),
    (dict(show_ranges=True, show_percentages=True), "cannot be combined"),
    (dict(reduce="all", show_ranges=True), "per-cell"),
    (dict(reduce="channel", show_ranges=True), "per-cell"),
    (dict(reduce="sum"), "reduce must be"),
    (dict(mask=np.array([True])), "mask must have"),
])
def test_option_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        summarise(COUNTS, SUMS, **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="different shapes"):
        summarise(COUNTS, SUMS[:1])
    with pytest.raises(ValueError, match="3 .* or 9 terms"):
        summarise(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="sums are missing"):
        summarise(COUNTS)


def test_standardize_reorders_and_masks():
    counts = np.array([[4, 3, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0]])
    sums = np.array([[-0.25, 0.75, 0, 0, 0, 0, 0, 0, 0], [2.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    terms = np.array([["NN", "PZ"] + ["--"] * 7, ["ZZ"] + ["--"] * 8])
    std_counts, std_sums, names = standardize((counts, sums, terms), mask=np.array([True, False]))
    assert names == ["PP", "PZ", "PN", "ZP", "ZZ", "ZN", "NP", "NZ", "NN"]
    np.testing.assert_array_equal(std_counts, [[0, 3, 0, 0, 0, 0, 0, 0, 4], [0] * 9])
    np.testing.assert_array_equal(std_sums, [[0, 0.75, 0, 0, 0, 0, 0, 0, -0.25], [0] * 9])
    _, _, term_array = standardize(counts, sums, terms, return_terms_as_list=False)
    assert term_array.shape == (2, 9) and list(term_array[1]) == names


def test_standardize_without_terms_keeps_the_order():
    std_counts, std_sums, names = standardize(COUNTS, SUMS)
    np.testing.assert_array_equal(std_counts, COUNTS)
    np.testing.assert_array_equal(std_sums, SUMS)


def test_describe_groups_texts_and_sizes():
    groups = [np.array([[4, 3, 0, 0, 0, 0, 0, 0, 0], [2, 1, 0, 0, 0, 0, 0, 0, 0]]),
              np.array([[5, 0, 0, 0, 0, 0, 0, 0, 0]])]
    sums = [np.array([[-0.25, 0.75, 0, 0, 0, 0, 0, 0, 0], [-0.5, 0.25, 0, 0, 0, 0, 0, 0, 0]]),
            np.array([[1.5, 0, 0, 0, 0, 0, 0, 0, 0]])]
    names = [["NN", "PZ"], ["ZP"]]
    described = describe_groups(groups, sums, names)
    np.testing.assert_array_equal(described["sizes"], [2, 1])
    assert described["summaries"] == ["NN: 6 = Σ -0.750, PZ: 4 = Σ 1.000", "ZP: 5 = Σ 1.500"]
    ranged = describe_groups(groups, sums, names, show_ranges=True)
    assert ranged["summaries"][0] == ("NN: 2..4 x -0.250000..-0.500000, "
                                      "PZ: 1..3 x 0.250000..0.750000")


def test_describe_groups_rejects_unnamed_non_zero_columns():
    with pytest.raises(ValueError, match="does not name"):
        describe_groups([np.array([[1, 2, 0, 0, 0, 0, 0, 0, 0]])], [np.zeros((1, 9))], [["PP"]])


def test_longer_names_are_not_truncated_into_valid_ones():
    counts = np.array([[4, 3, 0, 0, 0, 0, 0, 0, 0]])
    terms = np.array([["NNX", "PZ"] + ["--"] * 7], dtype=object)
    with pytest.raises(ValueError, match="NNX"):
        summarise(counts, np.zeros((1, 9)), terms)
