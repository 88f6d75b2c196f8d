"""GradientRecorder: hooks, step selection, the per-step history, and captures whose tensors all
come from one step (A_0ᵀ·dJ/dZ_l from the captured tensors reproduces param.grad)."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nearzero import GradientRecorder, explain_model, explain_near_zero_gradients  # noqa: E402


def train(model, recorder, steps, *, lr=0.1, make_batch=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        x, y = make_batch(generator)
        optimizer.zero_grad()
        with recorder.step(i):
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        optimizer.step()


def mlp_batch(generator):
    return torch.randn(16, 6, generator=generator), torch.randint(0, 3, (16,), generator=generator)


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def test_history_on_every_step_and_full_capture_on_chosen_steps():
    model = mlp()
    recorder = GradientRecorder(model, record_every=4, keep=2)
    train(model, recorder, 10, make_batch=mlp_batch)
    assert list(recorder.layers) == ["0", "2"]
    assert recorder.history.steps == list(range(10))
    values = recorder.history.values()
    assert values.shape[:2] == (10, 2)
    assert ((values[..., :2] >= 0) & (values[..., :2] <= 1)).all()
    assert recorder.recorded_steps == [4, 8]  # keep=2 drops step 0
    with pytest.raises(ValueError, match="not recorded"):
        recorder.capture("0", step=0)
    history = recorder.history.as_dict()
    assert set(history["layers"]) == {"0", "2"}
    assert len(history["layers"]["0"]["near_zero_fraction"]) == 10


def test_history_counts_dead_units():
    model = mlp()
    with torch.no_grad():
        model[0].bias[:4] = -100.0
    recorder = GradientRecorder(model, record_every=None)
    train(model, recorder, 3, make_batch=mlp_batch)
    values = recorder.history.values()
    assert values[:, 0, 1] == pytest.approx([0.5] * 3)  # 4 of 8 units get no gradient
    assert (values[:, 0, 0] >= 0.5).all()
    assert recorder.recorded_steps == []


def test_capture_is_from_one_step_before_the_update():
    model = mlp()
    recorder = GradientRecorder(model, record_every=5)
    weights_at_5 = {}

    def make_batch(generator):
        return mlp_batch(generator)

    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for i in range(7):
        x, y = make_batch(generator)
        optimizer.zero_grad()
        if i == 5:
            weights_at_5 = {n: p.detach().clone() for n, p in model.named_parameters()}
        with recorder.step(i):
            F.cross_entropy(model(x), y).backward()
        if i == 5:
            grads_at_5 = {n: p.grad.clone() for n, p in model.named_parameters()}
            x_at_5 = x.clone()
        optimizer.step()
    capture = recorder.capture("0")
    assert capture.step == 5
    assert torch.equal(capture.weight, weights_at_5["0.weight"])
    assert torch.equal(capture.bias, weights_at_5["0.bias"])
    assert torch.equal(capture.a0, x_at_5)
    assert torch.equal(capture.grads["weight"], grads_at_5["0.weight"])
    torch.testing.assert_close(capture.d_z.t() @ capture.a0, grads_at_5["0.weight"])
    torch.testing.assert_close(capture.d_z.sum(0), grads_at_5["0.bias"])
    torch.testing.assert_close(capture.d_z, capture.d_a * capture.s)


@pytest.mark.parametrize("conv, shape", [
    (nn.Conv1d(3, 4, 3, stride=2, padding=1), (5, 3, 11)),
    (nn.Conv2d(4, 6, 3, padding="same", dilation=2, groups=2), (3, 4, 9, 9)),
    pytest.param(nn.Conv2d(3, 4, 4, padding="same"), (3, 3, 7, 6),  # uneven padding
                 marks=pytest.mark.filterwarnings("ignore:Using padding='same'")),
    (nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding="valid"), (3, 3, 8, 7)),
    (nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect"), (2, 3, 6, 6)),
    (nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=(1, 0, 1)), (2, 2, 4, 5, 4)),
])
def test_captured_conv_tensors_reproduce_the_kernel_gradient(conv, shape):
    torch.manual_seed(0)
    model = nn.Sequential(conv, nn.GELU(), nn.Flatten())
    x = torch.randn(shape)
    recorder = GradientRecorder(model, record_every=1)
    with recorder.step(0):
        out = model(x)
        (out * torch.randn_like(out)).sum().backward()
    recorder.detach()
    capture = recorder.capture("0")
    from nearzero import conv_backprop_filter_classify
    from nearzero.report.layers import LayerMath

    math = LayerMath(conv)
    args = math.conv_arguments()
    counts, sums = conv_backprop_filter_classify(
        math.padded_input(capture.a0), capture.d_z, tuple(conv.weight.shape),
        args.pop("strides"), args.pop("padding"), **args)
    torch.testing.assert_close(sums.sum(-1), conv.weight.grad, rtol=1e-4, atol=1e-5)
    report = explain_near_zero_gradients(recorder, "0", verbose=True).to_dict()
    assert report["gradient_check"]["relative_error"] < 1e-4


def test_linear_with_leading_dimensions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.SiLU(), nn.Linear(7, 2))
    recorder = GradientRecorder(model, record_every=1)
    x = torch.randn(3, 4, 5)
    with recorder.step(0):
        model(x).square().mean().backward()
    capture = recorder.capture("0")
    a0 = capture.a0.reshape(-1, 5)
    torch.testing.assert_close(capture.d_z.reshape(-1, 7).t() @ a0, model[0].weight.grad)
    report = explain_near_zero_gradients(recorder, model[0], verbose=True)
    assert report.to_dict()["gradient_check"]["relative_error"] < 1e-5
    assert report.section("A_0")["shape"] == [12, 5]


def test_detach_removes_every_hook():
    model = mlp()
    recorder = GradientRecorder(model, record_every=1)
    train(model, recorder, 2, make_batch=mlp_batch)
    recorder.detach()
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    for param in model.parameters():
        assert not param._backward_hooks
    with pytest.raises(RuntimeError, match="detached"):
        with recorder.step(3):
            pass
    assert recorder.recorded_steps == [1]  # what was recorded stays readable
    explain_near_zero_gradients(recorder, "0")


def test_hooks_removed_when_a_step_fails():
    model = mlp()
    recorder = GradientRecorder(model, record_every=1)
    with pytest.raises(ZeroDivisionError):
        with recorder.step(0):
            model(torch.randn(2, 6))
            1 / 0
    assert recorder.recorded_steps == []
    assert all(not m._forward_hooks for m in model.modules())


def test_layer_selection_by_name_and_module():
    model = mlp()
    assert list(GradientRecorder(model, layers=["2"]).layers) == ["2"]
    assert list(GradientRecorder(model, layers=model[0]).layers) == ["0"]
    with pytest.raises(ValueError, match="no module named"):
        GradientRecorder(model, layers=["nope"])
    with pytest.raises(ValueError, match="record_every"):
        GradientRecorder(model, record_every=0)


def test_nothing_recorded_yet_is_a_clear_error():
    recorder = GradientRecorder(mlp(), record_every=10)
    with pytest.raises(ValueError, match="no step has been recorded"):
        explain_near_zero_gradients(recorder, "0")


def test_explain_model_from_recorder_ranks_layers():
    model = mlp()
    with torch.no_grad():
        model[0].bias[:6] = -100.0
    recorder = GradientRecorder(model, record_every=1)
    train(model, recorder, 2, make_batch=mlp_batch)
    overview = explain_model(recorder)
    d = overview.to_dict()
    assert d["step"] == 1
    fractions = [layer["near_zero_fraction"] for layer in d["layers"]]
    assert fractions == sorted(fractions, reverse=True)
    assert overview.worst.layer == "0"
    assert "dead activation" in str(overview)


def test_layer_called_twice_gets_a_note():
    torch.manual_seed(0)
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    recorder = GradientRecorder(model, layers=["0"], record_every=1)
    with recorder.step(0):
        model(torch.randn(5, 4)).sum().backward()
    d = explain_near_zero_gradients(recorder, "0").to_dict()
    assert any("ran 2 times" in note for note in d["notes"])
