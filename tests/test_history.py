"""The recorder's per-step history: every statistic of every layer and step against the same
quantities computed directly from tensors kept by independent hooks, the loss, non-finite
gradients, and the readers (values, as_dict, as_dataframe)."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nearzero import GradientRecorder  # noqa: E402
from nearzero.report.history import STATISTICS, StepStatistics  # noqa: E402


def reference_gradient_statistics(grad, tolerance=0.01):
    """near-zero, units with gradient, non-finite: plain torch on the whole tensor."""
    magnitude = grad.detach().abs().double()
    units = magnitude.reshape(grad.shape[0], -1)
    finite_units = torch.isfinite(units).all(1)
    level = units[finite_units].sum() * tolerance / grad.numel()
    near_zero = int((torch.isfinite(magnitude) & (magnitude <= level)).sum())
    with_gradient = int((units.nan_to_num(nan=1.0).amax(1) > 0).sum())
    return near_zero, with_gradient, int((~torch.isfinite(magnitude)).sum())


def test_step_statistics_follow_their_definition():
    generator = torch.Generator().manual_seed(3)
    grads = [torch.randn(16, 1, 3, 3, generator=generator),
             torch.randn(32, 16, 3, 3, generator=generator).double(),
             torch.zeros(10, 64), torch.randn(7, generator=generator),
             torch.randn(12, 5, generator=generator)]
    grads[1][:5] = 0
    grads[1][5:9] = 1e-12
    grads[4][2, 1] = float("nan")
    grads[4][3, 0] = float("inf")
    grads[4][7] = 0
    weights = [torch.randn(g.shape, generator=generator) for g in grads]
    statistics = StepStatistics([g.shape for g in grads], 0.01)
    counts, squared_norms = statistics(grads, weights)
    for row, norms, grad, weight in zip(counts, squared_norms, grads, weights):
        near_zero, with_gradient, non_finite = reference_gradient_statistics(grad)
        assert tuple(int(c) for c in row) == (near_zero, with_gradient, grad.numel() - non_finite)
        assert float(norms[0]) == pytest.approx(float(weight.double().norm()) ** 2, rel=1e-5)
        if torch.isfinite(grad).all():
            assert float(norms[1]) == pytest.approx(float(grad.double().norm()) ** 2, rel=1e-5)
        else:
            assert not math.isfinite(float(norms[1]))
    counts, squared_norms = statistics([grads[0], None, grads[2], grads[3], None], weights)
    assert (counts[1] == -1).all() and torch.equal(counts[0], statistics(grads, weights)[0][0])
    assert math.isnan(float(squared_norms[1, 1])) and math.isfinite(float(squared_norms[1, 0]))


class Probe:
    """Independent hooks: the step's weights, .grad, A_l (the ReLU's output, or the layer's
    own output where no activation follows) and dJ/dA_l, as tensors."""

    def __init__(self, model, outputs: dict):
        self.model, self.outputs = model, outputs  # layer name -> module giving A_l
        self.tensors = {}
        for name, module in outputs.items():
            module.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, inputs, output):
            self.tensors[name, "A"] = output.detach().clone()
            output.register_hook(lambda g: self.tensors.__setitem__((name, "dA"), g.clone()))

        return hook


def dead_fraction(tensor, unit_dim):
    per_unit = tensor.movedim(unit_dim, 0).reshape(tensor.shape[unit_dim], -1)
    return float((per_unit == 0).all(1).double().mean())


def test_every_statistic_matches_the_step_tensors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 36, 8),
                          nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].bias[:2] = -50.0  # two dead channels
        model[3].bias[:3] = -50.0  # BatchNorm re-centres these: not dead after it
    recorder = GradientRecorder(model, layers=["0", "3", "6"], record_every=None)
    probe = Probe(model, {"0": model[1], "3": model[5], "6": model[6]})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1)
    expected = []
    for step in range(4):
        x = torch.randn(16, 1, 8, 8, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad()
        with recorder.step(step) as training_step:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            training_step.loss = loss
        rows = []
        for name, unit_dim in (("0", 1), ("3", 1), ("6", 1)):
            weight = dict(model.named_modules())[name].weight
            near, alive, non_finite = reference_gradient_statistics(weight.grad)
            a, d_a = probe.tensors[name, "A"], probe.tensors[name, "dA"]
            rows.append({
                "near_zero_fraction": near / weight.numel(),
                "dead_unit_fraction": 1 - alive / weight.shape[0],
                "non_finite_fraction": non_finite / weight.numel(),
                "weight_norm": float(weight.detach().double().norm()),
                "gradient_norm": float(weight.grad.double().norm()),
                "output_norm": float(a.double().norm()),
                "output_dead_fraction": dead_fraction(a, unit_dim),
                "output_gradient_norm": float(d_a.double().norm()),
                "output_gradient_dead_fraction": dead_fraction(d_a, unit_dim),
            })
        expected.append((rows, float(loss.detach())))
        optimizer.step()
    assert len(recorder.history._blocks[-1]) == 0  # nothing converted per step, only when read
    values = recorder.history.values()
    assert values.shape == (4, 3, len(STATISTICS))
    for step, (rows, loss) in enumerate(expected):
        assert recorder.history.loss()[step] == pytest.approx(loss, rel=1e-6)
        for layer, row in enumerate(rows):
            for j, stat in enumerate(STATISTICS):
                assert values[step, layer, j] == pytest.approx(row[stat], rel=1e-5, abs=1e-12), \
                    (step, layer, stat)
    assert values[:, 0, STATISTICS.index("output_dead_fraction")] == pytest.approx([2 / 6] * 4)
    assert recorder._outputs.has_activation == [True, True, False]


def test_default_layers_include_normalisation_with_gradient_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    recorder = GradientRecorder(model, record_every=None)
    assert list(recorder.layers) == ["0", "1", "3"]
    for step in range(2):
        with recorder.step(step):
            F.cross_entropy(model(torch.randn(16, 5)), torch.randint(0, 3, (16,))).backward()
    values = recorder.history.values()
    assert values.shape == (2, 3, len(STATISTICS))
    norm = STATISTICS.index("gradient_norm")
    assert values[-1, 1, norm] == pytest.approx(float(model[1].weight.grad.double().norm()),
                                                rel=1e-5)


def test_loss_from_argument_model_output_or_none():
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, x):
            out = self.linear(x)
            return {"logits": out, "loss": out.square().mean()}

    torch.manual_seed(0)
    model = WithLoss()
    recorder = GradientRecorder(model, record_every=None)
    x = torch.randn(5, 4)
    with recorder.step(0, loss=1.5):
        model(x)["loss"].backward()
    with recorder.step(1):
        output = model(x)
        output["loss"].backward()
    plain = nn.Sequential(nn.Linear(4, 2))
    other = GradientRecorder(plain, record_every=None)
    with other.step(0):
        plain(x).sum().backward()
    loss = recorder.history.loss()
    assert loss[0] == 1.5 and loss[1] == pytest.approx(float(output["loss"].detach()))
    assert math.isnan(other.history.loss()[0])
    assert other.history.as_dict()["loss"] == [None]


def test_non_finite_gradients_are_counted_per_layer_and_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    recorder = GradientRecorder(model, record_every=None)
    x = torch.randn(8, 4)
    for step in range(3):
        model.zero_grad()
        with recorder.step(step):
            model(x).sum().backward()
            if step == 1:
                with torch.no_grad():
                    model[2].weight.grad[0, :3] = float("nan")
                    model[2].weight.grad[1, 0] = float("inf")
    non_finite = recorder.history.statistic("non_finite_fraction")
    assert non_finite[:, 0].tolist() == [0, 0, 0]
    assert non_finite[:, 1].tolist() == [0, 4 / 12, 0]
    near_zero = recorder.history.statistic("near_zero_fraction")
    assert 0 <= near_zero[1, 1] <= 8 / 12  # computed over the finite gradients


def test_readers_as_dict_and_dataframe():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    recorder = GradientRecorder(model, record_every=None)
    for step in range(3):
        model.zero_grad()
        with recorder.step(step, loss=float(step)):
            model(torch.randn(8, 4)).sum().backward()
    data = recorder.history.as_dict()
    json.dumps(data)
    assert data["steps"] == [0, 1, 2] and data["loss"] == [0.0, 1.0, 2.0]
    assert set(data["layers"]["0"]) == set(STATISTICS)
    assert data["layers"]["2"]["weight_norm"] == pytest.approx(
        recorder.history.statistic("weight_norm")[:, 1].tolist())
    pandas = pytest.importorskip("pandas")
    frame = recorder.history.as_dataframe()
    assert isinstance(frame, pandas.DataFrame)
    assert len(frame) == 6 and list(frame.columns[:3]) == ["step", "layer", "loss"]
    row = frame[(frame.step == 2) & (frame.layer == "2")].iloc[0]
    assert row["gradient_norm"] == pytest.approx(data["layers"]["2"]["gradient_norm"][2])
    with pytest.raises(ValueError, match="unknown statistic"):
        recorder.history.statistic("nope")


def test_a_layer_that_does_not_run_gets_nan_outputs():
    torch.manual_seed(0)
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    model = nn.ModuleDict({"a": first, "b": second})
    recorder = GradientRecorder(model, record_every=None)
    with recorder.step(0):
        first(torch.randn(2, 3)).sum().backward()
    values = recorder.history.values()[0]
    assert np.isfinite(values[0]).all()
    assert np.isnan(values[1, STATISTICS.index("output_norm")])
    assert np.isnan(values[1, STATISTICS.index("gradient_norm")])
    assert np.isfinite(values[1, STATISTICS.index("weight_norm")])


def test_begin_and_end_step_and_abort():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    recorder = GradientRecorder(model, record_every=1)
    step = recorder.begin_step(5)
    assert recorder.in_step and recorder.current_step is step and step.index == 5
    model(torch.randn(2, 3)).sum().backward()
    recorder.end_step(loss=torch.tensor(0.25))
    assert recorder.history.steps == [5] and recorder.history.loss()[0] == 0.25
    recorder.begin_step()
    recorder.abort_step()
    assert not recorder.in_step and recorder.history.steps == [5]
    assert not model[0]._forward_hooks and not model[1]._forward_hooks
    with pytest.raises(RuntimeError, match="without begin_step"):
        recorder.end_step()


def test_history_without_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    recorder = GradientRecorder(model, record_every=None, history_outputs=False)
    with recorder.step(0):
        assert not model[0]._forward_hooks and not model[2]._forward_hooks
        model(torch.randn(8, 4)).sum().backward()
    values = recorder.history.values()[0]
    for j, stat in enumerate(STATISTICS):
        assert np.isnan(values[:, j]).all() == stat.startswith("output_"), stat


def test_a_module_with_own_and_child_parameters_is_recorded_by_its_own():
    class Head(nn.Module):  # like a language-model head: a bias of its own, a larger child
        def __init__(self):
            super().__init__()
            self.decoder = nn.Linear(8, 30, bias=False)
            self.bias = nn.Parameter(torch.zeros(30))

        def forward(self, x):
            return self.decoder(x) + self.bias

    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), Head())
    recorder = GradientRecorder(model, record_every=None)
    assert list(recorder.layers) == ["0", "2", "2.decoder"]
    with recorder.step(0):
        F.cross_entropy(model(torch.randn(16, 5)), torch.randint(0, 30, (16,))).backward()
    norm = STATISTICS.index("gradient_norm")
    assert recorder.history.values()[0, 1, norm] == pytest.approx(
        float(model[2].bias.grad.double().norm()), rel=1e-5)


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU,
                                        lambda: nn.ReLU(inplace=True)])
def test_outputs_read_with_their_gradient_or_as_they_return_agree(activation):
    """On a CPU, A_l of an activation whose gradient node keeps its result (ReLU, Sigmoid,
    Tanh) is read with dJ/dA_l in the backward pass, others (GELU) as they return: every step,
    in every case, against the tensors themselves; the first step (which finds the chains)
    and the later ones (one hook per activation)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 5, 3), activation(), nn.Flatten(), nn.Linear(5 * 25, 6),
                          activation(), nn.Linear(6, 3))
    recorder = GradientRecorder(model, record_every=None)
    probe = Probe(model, {"0": model[1], "3": model[4], "5": model[5]})
    generator = torch.Generator().manual_seed(2)
    for step in range(3):
        model.zero_grad()
        with recorder.step(step):
            output = model(torch.randn(4, 2, 7, 7, generator=generator))
            held = set(recorder._outputs._step.deferred)
            output.square().sum().backward()
        assert held == (set() if activation is nn.GELU else {0, 1})
        values = recorder.history.values()[step]
        for layer, name in enumerate(("0", "3", "5")):
            a, d_a = probe.tensors[name, "A"], probe.tensors[name, "dA"]
            got = dict(zip(STATISTICS, values[layer]))
            assert got["output_norm"] == pytest.approx(float(a.double().norm()), rel=1e-5)
            assert got["output_gradient_norm"] == pytest.approx(float(d_a.double().norm()),
                                                                rel=1e-5)
            assert got["output_dead_fraction"] == pytest.approx(dead_fraction(a, 1))
            assert got["output_gradient_dead_fraction"] == pytest.approx(dead_fraction(d_a, 1))


def test_outputs_of_a_step_without_backward_pass_are_read_as_it_ends():
    """A_l held for its backward pass is read as the step ends where no backward pass came;
    a backward pass after the step ended writes nothing into the history."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2), nn.Sigmoid())
    recorder = GradientRecorder(model, record_every=None)
    with recorder.step(0):  # the first step, which finds the chains
        model(torch.randn(8, 4)).sum().backward()
    x = torch.randn(8, 4)
    with recorder.step(1):
        hidden = model[1](model[0](x))
        output = model[3](model[2](hidden))
    values = recorder.history.values()[1]
    assert values[0, STATISTICS.index("output_norm")] == pytest.approx(
        float(hidden.detach().double().norm()), rel=1e-6)
    assert values[1, STATISTICS.index("output_norm")] == pytest.approx(
        float(output.detach().double().norm()), rel=1e-6)
    assert np.isnan(values[:, STATISTICS.index("output_gradient_norm")]).all()
    output.sum().backward()  # after the step: the history keeps what the step saw
    with recorder.step(2):
        model(x).sum().backward()
    values = recorder.history.values()
    assert np.isnan(values[1, :, STATISTICS.index("output_gradient_norm")]).all()
    assert np.isfinite(values[2, :, STATISTICS.index("output_gradient_norm")]).all()


def test_outputs_under_saved_tensor_hooks_are_read_as_they_return():
    """Inside saved-tensor hooks (here torch's CPU offloading context) A_l is not held for the
    backward pass: it is read as its activation returns, with the same values."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    recorder = GradientRecorder(model, record_every=None)
    probe = Probe(model, {"0": model[1], "2": model[2]})
    for step in range(2):
        model.zero_grad()
        with recorder.step(step), torch.autograd.graph.save_on_cpu():
            output = model(torch.randn(8, 4))
            assert not recorder._outputs._step.deferred
            output.sum().backward()
        values = recorder.history.values()[step]
        assert values[0, STATISTICS.index("output_norm")] == pytest.approx(
            float(probe.tensors["0", "A"].double().norm()), rel=1e-6)
        assert values[0, STATISTICS.index("output_gradient_norm")] == pytest.approx(
            float(probe.tensors["0", "dA"].double().norm()), rel=1e-6)


def test_an_aborted_step_holds_no_output():
    """A step dropped after its forward pass (the loss was NaN, an exception) keeps no A_l, nor
    the autograd graph behind it, and its gradient hooks write nothing if a backward pass
    comes later."""
    import weakref

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    recorder = GradientRecorder(model, record_every=None)
    for step in range(2):
        with recorder.step(step):
            model(torch.randn(8, 4)).sum().backward()
    with pytest.raises(ValueError, match="stop"):
        with recorder.step(2):
            hidden = model[1](model[0](torch.randn(8, 4)))
            assert recorder._outputs._step.deferred  # the ReLU's output, held for backward
            raise ValueError("stop")
    assert recorder._outputs._step is None
    kept = weakref.ref(hidden)
    loss = model[2](hidden).sum()
    del hidden
    loss.backward()  # after the step: nothing written
    del loss
    assert kept() is None
    assert recorder.history.steps == [0, 1]
    with recorder.step(3):
        model(torch.randn(8, 4)).sum().backward()
    assert np.isfinite(recorder.history.values()[-1]).all()
