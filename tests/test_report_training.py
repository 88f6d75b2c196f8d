"""The report on what real training brings: NaN and Inf (in weights, inputs, a diverged step),
gradient checkpointing (reentrant and not), torch.compile'd models, and the model left exactly
as found (.grad, buffers, hooks)."""

import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from torch.utils.checkpoint import checkpoint  # noqa: E402

from nearzero import GradientRecorder, explain_model, explain_near_zero_gradients  # noqa: E402
from test_report_models import ResidualBlock, explain_all, model_and_batch  # noqa: E402


class Net(nn.Module):
    """stem conv, a residual block (checkpointed if asked), head."""

    def __init__(self, checkpointing=None):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = ResidualBlock(8)
        self.head = nn.Linear(8, 5)
        self.checkpointing = checkpointing  # None, "reentrant" or "non-reentrant"

    def forward(self, x):
        x = F.relu(self.stem(x))
        if self.checkpointing is None:
            x = self.block(x)
        else:
            x = checkpoint(self.block, x, use_reentrant=self.checkpointing == "reentrant")
        return self.head(x.mean((2, 3)))


def net_and_batch(checkpointing=None):
    def build():
        model = Net(checkpointing)
        with torch.no_grad():
            model.block.bn1.bias[:4] = -20.0
        return model

    return model_and_batch(build)


def test_nan_weight_is_non_finite_first_and_the_rest_still_measured():
    model, x, y = net_and_batch()
    with torch.no_grad():
        model.block.conv2.weight[0, 0, 0, 0] = float("nan")
    overview = explain_all(model, x, y)
    first = overview.reports[0].to_dict()
    assert first["causes"][0]["cause"] == "non_finite"
    assert first["layer"] == "block.conv2"  # where it starts (its weights) leads the overview
    conv2 = overview["block.conv2"].to_dict()
    assert conv2["causes"][0]["cause"] == "non_finite"
    counts = {c["tensor"]: c for c in conv2["non_finite"]}
    assert list(counts)[0] == "W_l" and counts["W_l"]["nan"] == 1
    assert "W_l: 1 NaN of 576" in conv2["causes"][0]["description"]
    # Layers whose own tensors are finite keep their usual report; the planted dead channels
    # are still found on the conv before the NaN.
    assert overview["block.conv1"].top_cause in ("non_finite", "dead_activation")
    tables = [i for i, r in enumerate(overview.reports) if r.top_cause == "non_finite"]
    assert tables == list(range(len(tables)))  # non-finite layers lead the overview
    assert "NaN or Inf values" in str(overview)


def test_inf_input_is_found_in_a0_first():
    model, x, y = net_and_batch()
    x[0, 0, 0, 0] = float("inf")
    report = explain_near_zero_gradients(model, "stem", inputs=x, targets=y,
                                         loss_fn=F.cross_entropy)
    d = report.to_dict()
    assert d["causes"][0]["cause"] == "non_finite"
    assert d["non_finite"][0] == {"tensor": "A_0", "nan": 0, "inf": 1, "size": x.numel()}
    assert "earliest in the forward pass: A_0" in d["causes"][0]["description"]
    assert d["threshold"] == d["threshold"]  # a number, not NaN


def test_diverged_step_every_gradient_nan():
    model, x, y = net_and_batch()
    recorder = GradientRecorder(model, record_every=1)
    with recorder.step(0):
        (F.cross_entropy(model(x), y) * float("nan")).backward()
    overview = explain_model(recorder, confidence=0.95, threshold=1e-6)
    assert all(r.top_cause == "non_finite" for r in overview)
    d = overview["head"].to_dict()
    assert d["causes"][0]["fraction"] == 1.0
    assert [c["tensor"] for c in d["non_finite"]] == ["dJ/dA_l", "dJ/dZ_l", "dJ/dW_l",
                                                      "dJ/dbias"][:len(d["non_finite"])] or \
        d["non_finite"][-1]["tensor"].startswith("dJ/d")
    assert d["threshold"] == 1e-6 and d["confidence"] == 0.95
    recorder.detach()


@pytest.mark.parametrize("mode", ["reentrant", "non-reentrant"])
def test_checkpointing_records_once_and_matches_the_plain_model(mode):
    plain_model, x, y = net_and_batch()
    plain = explain_all(plain_model, x, y).to_dict()
    model, _, _ = net_and_batch(mode)
    recorder = GradientRecorder(model, record_every=1)
    with recorder.step(0):
        F.cross_entropy(model(x), y).backward()
    captured = recorder.capture("block.conv1")
    assert captured.calls == 1 and captured.recomputed
    checkpointed = explain_model(recorder).to_dict()
    by_layer = {d["layer"]: d for d in checkpointed["layers"]}
    for d in plain["layers"]:
        other = by_layer[d["layer"]]
        assert other["near_zero_fraction"] == pytest.approx(d["near_zero_fraction"])
        assert [c["cause"] for c in other["causes"]] == [c["cause"] for c in d["causes"]]
        assert other.get("activation") == d.get("activation")
    assert by_layer["block.conv1"]["causes"][0]["cause"] == "dead_activation"
    recorder.detach()


def test_compiled_model_keeps_the_original_names_without_warnings():
    model, x, y = net_and_batch()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's own imports
            compiled = torch.compile(model, backend="aot_eager")  # Dynamo, no code generation
            F.cross_entropy(compiled(x), y).backward()
    except Exception as error:  # no compiler tool chain here
        pytest.skip(f"torch.compile cannot run here: {type(error).__name__}: {error}")
    from torch._dynamo.utils import counters

    model.zero_grad()
    compiled_frames = sum(counters["frames"].values())
    recorder = GradientRecorder(compiled, record_every=2)
    assert "block.conv1" in recorder.layers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for step in range(6):
            with recorder.step(step):
                F.cross_entropy(compiled(x), y).backward()
    assert sum(counters["frames"].values()) == compiled_frames  # nothing recompiled
    assert recorder.recorded_steps == [4]
    report = explain_near_zero_gradients(recorder, "block.conv1")
    assert report.top_cause == "dead_activation"
    assert explain_model(compiled, inputs=x, targets=y, loss_fn=F.cross_entropy)[
        "block.conv1"].top_cause == "dead_activation"


def test_model_left_as_found():
    model, x, y = net_and_batch("non-reentrant")
    F.cross_entropy(model(x), y).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    values = {n: p.grad.clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    hooks = [(m._forward_hooks.copy(), m._forward_pre_hooks.copy(), m._backward_hooks.copy())
             for m in model.modules()]
    explain_all(model, x, y)
    for n, p in model.named_parameters():
        assert p.grad is grads[n] and torch.equal(p.grad, values[n])
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n])
    assert hooks == [(m._forward_hooks, m._forward_pre_hooks, m._backward_hooks)
                     for m in model.modules()]


def test_many_layers_in_passes_see_the_same_dropout_and_leave_the_random_stream():
    from nearzero.report.explain import PASS_LAYERS

    torch.manual_seed(0)
    layers = []
    for _ in range(PASS_LAYERS + 3):  # more than one pass
        layers += [nn.Linear(12, 12), nn.ReLU(), nn.Dropout(0.3)]
    model = nn.Sequential(*layers, nn.Linear(12, 4))
    x, y = torch.randn(16, 12), torch.randint(0, 4, (16,))
    torch.manual_seed(5)
    state = torch.get_rng_state()
    passes = explain_all(model, x, y).to_dict()
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream as found
    torch.manual_seed(5)
    recorder = GradientRecorder(model, record_every=1)
    with recorder.step(0):
        F.cross_entropy(model(x), y).backward()
    single = {d["layer"]: d for d in explain_model(recorder).to_dict()["layers"]}
    recorder.detach()
    assert len(passes["layers"]) == len(single) == PASS_LAYERS + 4
    for d in passes["layers"]:
        assert d["near_zero_count"] == single[d["layer"]]["near_zero_count"]
        assert d["threshold"] == single[d["layer"]]["threshold"]
