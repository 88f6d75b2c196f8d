"""What a report gives back: the one-batch form leaves the model as found, the text report,
`to_dict()` and its JSON round trip, the overview table, plots, and unsupported layer types."""

import json

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nearzero import (GradientRecorder, Report, explain_model,  # noqa: E402
                      explain_near_zero_gradients)
from nearzero.report import ModelOverview  # noqa: E402

CAUSES = {"inputs_near_zero", "dead_activation", "weights_near_zero", "backprop_near_zero",
          "cancellation", "none"}


def model_and_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        model[4].bias[:8] = -50.0
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    return model, x, y


def one_batch(model, x, y, **kwargs):
    return explain_near_zero_gradients(model, "4", inputs=x, targets=y, loss_fn=F.cross_entropy,
                                       **kwargs)


def test_one_batch_form_leaves_grads_and_buffers_as_found():
    model, x, y = model_and_batch()
    F.cross_entropy(model(x), y).backward()  # some existing gradients to keep
    model[0].weight.grad = None  # and one parameter without
    grads = {n: p.grad for n, p in model.named_parameters()}
    values = {n: None if g is None else g.clone() for n, g in grads.items()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = one_batch(model, x, y)
    for name, param in model.named_parameters():
        assert param.grad is grads[name]  # the very same tensor objects
        if grads[name] is not None:
            assert torch.equal(param.grad, values[name])
        assert torch.equal(param.detach(), weights[name])  # no optimizer step
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, buffers[name])
    for module in model.modules():
        assert not module._forward_hooks
    assert report.step is None
    assert report.top_cause == "dead_activation"


def test_text_report_layout():
    model, x, y = model_and_batch()
    text = str(one_batch(model, x, y))
    for expected in ("Layer '4': Linear(in_features=144, out_features=16, bias=True) at one batch",
                     "units:", "16", "weights:", "2304 (+16 biases)", "near-zero gradients:",
                     "Forward pass...", "A_0 - input value:", "W_l - weights of target layer:",
                     "compute Z_l = A_0 · W_l + b_l:", "S_l - derivative of the activation (ReLU)",
                     "A_l - activation output", "Backward pass...",
                     "dJ/dA_l - backprop into this layer:", "compute dJ/dZ_l = dJ/dA_l ⊙ S_l:",
                     "compute dJ/dW_l = A_0ᵀ · dJ/dZ_l:", "Most likely cause: dead activation",
                     "What to try:"):
        assert expected in text, expected
    assert text.index("Forward pass") < text.index("compute Z_l") < text.index("Backward pass")
    assert "PZN counts/sums" not in text


def test_verbose_adds_class_breakdowns():
    model, x, y = model_and_batch()
    report = one_batch(model, x, y, verbose=True)
    text = str(report)
    assert "PZN counts/sums" in text and "PZN combinations" in text
    assert "value percentiles" in text and "affected by" in text
    assert "PZN counts/sums" not in report.text(verbose=False)


def test_to_dict_fields_and_json_round_trip():
    model, x, y = model_and_batch()
    report = one_batch(model, x, y, verbose=True)
    d = report.to_dict()
    assert isinstance(d["layer"], str) and d["layer"] == "4"
    assert "step" in d
    assert isinstance(d["near_zero_fraction"], float) and isinstance(d["threshold"], float)
    assert d["causes"] and all(set(c) >= {"cause", "fraction", "description"}
                               for c in d["causes"])
    assert {c["cause"] for c in d["causes"]} <= CAUSES
    fractions = [c["fraction"] for c in d["causes"]]
    assert all(0 <= f <= 1 for f in fractions)
    again = json.loads(json.dumps(d))
    assert again == d
    assert str(Report.from_dict(again)) == str(report)


def test_overview_table_and_round_trip():
    model, x, y = model_and_batch()
    overview = explain_model(model, inputs=x, targets=y, loss_fn=F.cross_entropy)
    d = overview.to_dict()
    assert [layer["layer"] for layer in d["layers"]][0] == "4"
    assert {layer["layer"] for layer in d["layers"]} == {"0", "1", "4", "6"}  # 1: BatchNorm2d
    fractions = [layer["near_zero_fraction"] for layer in d["layers"]]
    assert fractions == sorted(fractions, reverse=True)
    text = str(overview)
    assert "layer" in text and "near-zero" in text and "top cause" in text
    assert json.loads(json.dumps(d)) == d
    assert str(ModelOverview.from_dict(d)) == text
    # Conv2d followed by BatchNorm2d: S_l cannot be elementwise, the note says why.
    conv = overview["0"].to_dict()
    assert "BatchNorm2d" in conv["activation"]["note"]


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    model, x, y = model_and_batch()
    recorder = GradientRecorder(model, record_every=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(4):
        optimizer.zero_grad()
        with recorder.step(i):
            F.cross_entropy(model(x), y).backward()
        optimizer.step()
    paths = [
        recorder.plot_history(tmp_path / "history.png"),
        explain_near_zero_gradients(recorder, "4").plot(tmp_path / "report.png"),
        explain_model(recorder).plot(tmp_path / "sub" / "overview.png"),
    ]
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_unsupported_layer_gets_gradient_statistics_and_a_note():
    model, x, y = model_and_batch()
    recorder = GradientRecorder(model, layers=["1"], record_every=1)
    with recorder.step(0):
        F.cross_entropy(model(x), y).backward()
    report = explain_near_zero_gradients(recorder, "1")
    d = report.to_dict()
    assert d["layer_type"] == "BatchNorm2d" and not d["supported"]
    assert "affine parameters" in d["notes"][0] and d["status"] == "gradients_only"
    assert {s["key"] for s in d["sections"]} == {"dJ/dweight", "dJ/dbias"}
    assert "Gradients..." in str(report)


def test_linear_whose_forward_is_bypassed_is_reported_generically():
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, batch_first=True)  # uses out_proj.weight directly
    recorder = GradientRecorder(attention, record_every=1)
    assert "out_proj" in recorder.layers
    x = torch.randn(2, 5, 8)
    with recorder.step(0):
        attention(x, x, x)[0].sum().backward()
    d = explain_near_zero_gradients(recorder, "out_proj").to_dict()
    assert "forward pass was not seen" in d["notes"][0]
    assert d["gradients"] == 64


def test_bad_arguments():
    model, x, y = model_and_batch()
    with pytest.raises(ValueError, match="inputs= and loss_fn="):
        explain_near_zero_gradients(model, "4")
    with pytest.raises(ValueError, match="confidence"):
        one_batch(model, x, y, confidence=1.5)
    with pytest.raises(TypeError):
        explain_near_zero_gradients("model", "4")
    recorder = GradientRecorder(model, record_every=1)
    with pytest.raises(ValueError, match="no step has been recorded"):
        explain_near_zero_gradients(recorder, "4")
    with recorder.step(0):
        F.cross_entropy(model(x), y).backward()
    with pytest.raises(ValueError, match="GradientRecorder already"):
        explain_near_zero_gradients(recorder, "4", inputs=x)
    with pytest.raises(ValueError, match="'2' .ReLU. is parameter-free"):
        explain_near_zero_gradients(recorder, "2")
    narrow = GradientRecorder(model, layers=["4"], record_every=1)
    with narrow.step(0):
        F.cross_entropy(model(x), y).backward()
    with pytest.raises(ValueError, match="not recorded"):
        explain_near_zero_gradients(narrow, "1")


@pytest.mark.parametrize("precision", ["bfloat16-autocast", "float64"])
def test_mixed_precision_and_double(precision):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 5))
    x, y = torch.randn(4, 3, 6, 6), torch.randint(0, 5, (4,))
    if precision == "float64":
        model, x = model.double(), x.double()
    recorder = GradientRecorder(model, record_every=1)
    with recorder.step(0):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "float64"):
            out = model(x)
        F.cross_entropy(out.float(), y).backward()
    overview = explain_model(recorder, verbose=True).to_dict()
    for layer in overview["layers"]:
        tolerance = 1e-2 if precision != "float64" else 1e-12
        assert layer["gradient_check"]["relative_error"] < tolerance
        assert layer["causes"]


def test_overview_plot_shows_at_most_25_layers(tmp_path):
    from matplotlib.image import imread

    from nearzero.report import ModelOverview

    model, x, y = model_and_batch()
    layer = explain_near_zero_gradients(model, "4", inputs=x, targets=y,
                                        loss_fn=F.cross_entropy).to_dict()
    layers = []
    for i in range(49):
        d = dict(layer, layer=f"block.{i}", near_zero_fraction=(i + 1) / 50)
        layers.append(d)
    overview = ModelOverview.from_dict({"step": 3, "confidence": 0.99, "layers": layers})
    assert overview.worst.layer == "block.48"
    height, width = imread(overview.plot(tmp_path / "overview.png")).shape[:2]
    assert width == 990 and height < 1100  # 25 bars, not 49
    from nearzero.report.plots import OVERVIEW_LAYERS

    assert OVERVIEW_LAYERS == 25
