"""Networks with one planted cause of near-zero gradients each, for Linear and Conv layers: the
report must name that cause first (and `none` for a healthy network)."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nearzero import explain_near_zero_gradients  # noqa: E402
from nearzero.report import measure  # noqa: E402


def linear_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 10))


def conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 10))


def batch(kind):
    generator = torch.Generator().manual_seed(1)
    shape = (64, 32) if kind == "linear" else (16, 3, 8, 8)
    x = torch.randn(shape, generator=generator)
    y = torch.randint(0, 10, (shape[0],), generator=generator)
    return x, y


def explain(model, layer, x, y, **kwargs):
    return explain_near_zero_gradients(model, layer, inputs=x, targets=y,
                                       loss_fn=F.cross_entropy, **kwargs)


NETS = {"linear": linear_net, "conv": conv_net}


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_zero_input_features_are_inputs_near_zero(kind):
    model = NETS[kind]()
    x, y = batch(kind)
    zeroed = x.shape[1] // 2
    x[:, :zeroed] = 0  # features / channels that are always zero
    d = explain(model, "0", x, y).to_dict()
    assert d["causes"][0]["cause"] == "inputs_near_zero"
    assert d["causes"][0]["fraction"] == pytest.approx(1.0)
    assert d["near_zero_fraction"] >= zeroed / x.shape[1]


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_large_negative_bias_is_dead_activation(kind):
    model = NETS[kind]()
    with torch.no_grad():
        model[0].bias[::2] = -100.0  # every other unit never activates
    x, y = batch(kind)
    d = explain(model, "0", x, y).to_dict()
    top = d["causes"][0]
    assert top["cause"] == "dead_activation"
    assert top["fraction"] == pytest.approx(1.0)
    assert "bias" in top["description"]
    assert any("bias" in tip for tip in top["advice"])
    assert d["units_without_gradient"] == pytest.approx(0.5)


def test_dead_units_mean_bias_is_over_the_dead_units_only():
    model = linear_net()
    with torch.no_grad():
        model[0].bias[:12] = -10.0  # these 12 units never activate; the others sometimes do
    x, y = batch("linear")
    top = explain(model, "0", x, y).to_dict()["causes"][0]
    assert top["cause"] == "dead_activation"
    assert top["detail"]["dead_units"] == 12
    assert top["detail"]["dead_units_mean_bias"] == pytest.approx(-10.0)
    assert "over the dead units, the bias b_l (mean -10)" in top["description"]
    assert top["detail"]["mean_bias"] == pytest.approx(-10.0)  # the mean of Z_l is theirs too
    assert top["detail"]["mean_z"] < -9.0
    assert any("the dead units' mean bias is -10" in tip for tip in top["advice"])


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_zeroed_next_layer_is_backprop_near_zero(kind):
    model = NETS[kind]()
    with torch.no_grad():
        model[2].weight.zero_()  # nothing flows back into layer 0
    x, y = batch(kind)
    d = explain(model, "0", x, y).to_dict()
    assert d["near_zero_fraction"] == 1.0
    assert d["threshold"] == 0.0
    assert d["causes"][0]["cause"] == "backprop_near_zero"
    assert d["causes"][0]["fraction"] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("layer", ["0", "2"])
def test_healthy_network_reports_none(kind, layer):
    model = NETS[kind]()
    x, y = batch(kind)
    d = explain(model, layer, x, y).to_dict()
    assert [c["cause"] for c in d["causes"]] == ["none"]
    assert d["near_zero_fraction"] <= 1.1 * d["expected_fraction"]


def test_collapsed_weights_are_weights_near_zero():
    model = linear_net()
    with torch.no_grad():
        model[0].weight[::2] = 0.0  # half the units' weights are gone and their bias is negative
        model[0].bias[::2] = -0.5
    x, y = batch("linear")
    d = explain(model, "0", x, y).to_dict()
    names = [c["cause"] for c in d["causes"]]
    assert names[0] == "weights_near_zero"
    assert names.index("dead_activation") == 1


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_reduced_and_full_results_agree(kind, monkeypatch):
    """A layer too large for full results is explained with in-kernel reductions."""
    model = NETS[kind]()
    with torch.no_grad():
        model[0].bias[::2] = -100.0
    x, y = batch(kind)
    full = explain(model, "0", x, y, verbose=True).to_dict()
    monkeypatch.setattr(measure, "FULL_RESULT_BYTES", 0)
    reduced = explain(model, "0", x, y, verbose=True).to_dict()
    # Without verbose, reduced results skip the totals over all cells (one pass less).
    brief = explain(model, "0", x, y).to_dict()
    assert all(s["breakdown"]["all"] is None for s in brief["sections"]
               if s["kind"] == "computation")
    assert [c["cause"] for c in reduced["causes"]] == [c["cause"] for c in full["causes"]]
    for a, b in zip(full["causes"], reduced["causes"]):
        if a["cause"] != "cancellation":
            assert a["fraction"] == pytest.approx(b["fraction"])
    for a, b in zip(full["sections"], reduced["sections"]):
        assert a["near_zero_fraction"] == b["near_zero_fraction"]
        parts = ("all", "near_zero") if a["kind"] == "computation" else (None,)
        for part in parts:
            x_part = a["breakdown"] if part is None else a["breakdown"][part]
            y_part = b["breakdown"] if part is None else b["breakdown"][part]
            assert x_part["counts"] == y_part["counts"]
            assert x_part["sums"] == pytest.approx(y_part["sums"], rel=1e-4, abs=1e-6)


def test_confidence_is_used_everywhere():
    model = linear_net()
    x, y = batch("linear")
    d = explain(model, "0", x, y, confidence=0.9).to_dict()
    assert d["confidence"] == 0.9
    a0 = next(s for s in d["sections"] if s["key"] == "A_0")
    assert a0["near_zero_fraction"] == pytest.approx(0.1, abs=0.01)
    for section in d["sections"]:
        if section["key"] in ("A_0", "W_l", "Z_l", "dJ/dA_l", "dJ/dW_l"):
            assert section["near_zero_fraction"] == pytest.approx(0.1, abs=0.02), section["key"]


def test_given_threshold_applies_to_the_gradients_only():
    model = linear_net()
    x, y = batch("linear")
    d = explain(model, "0", x, y, threshold=1e9).to_dict()
    assert d["threshold"] == 1e9 and d["threshold_from"] == "given"
    assert d["near_zero_fraction"] == 1.0
    a0 = next(s for s in d["sections"] if s["key"] == "A_0")
    assert a0["threshold"] < 1.0
