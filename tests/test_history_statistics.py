"""The CPU path of the per-step history: the C++ core's one-pass statistics of a tensor against
plain torch in float64, on many shapes, layouts and dtypes, with NaN and infinity; and the
recorder's history through the host path equal to the one through torch operations."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from nearzero import GradientRecorder  # noqa: E402
from nearzero.report import recorder as recorder_module  # noqa: E402
from nearzero.report.history import STATISTICS  # noqa: E402
from nearzero.report.tensor_statistics import VALUES, write  # noqa: E402

STATISTIC = {name: i for i, name in enumerate(STATISTICS)}


def reference(tensor, unit_dim, tolerance):
    """The five values from their definitions, in float64."""
    x = tensor.detach().double()
    squared = float(x.square().sum())
    if unit_dim >= 0:
        per_unit = x.movedim(unit_dim, 0).reshape(x.shape[unit_dim], x.numel() // max(
            x.shape[unit_dim], 1))
        alive, units = int((per_unit != 0).any(1).sum()), x.shape[unit_dim]
    else:
        per_unit, alive, units = x.reshape(1, -1), 0, 0
    if tolerance < 0:
        return [squared, alive, units, math.nan, math.nan]
    magnitude = per_unit.abs()
    finite_units = torch.isfinite(magnitude).all(1)
    level = float(magnitude[finite_units].sum()) * tolerance / max(x.numel(), 1)
    finite = torch.isfinite(magnitude)
    return [squared, alive, units, int(finite.sum()), int((finite & (magnitude <= level)).sum())]


def layouts(generator):
    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)

    relu = torch.relu(randn(8, 6, 5, 4))
    relu[:, 2] = 0  # a dead channel
    # Runs of whole vectors per unit (H*W = 64): a dead channel, and one alive in one value.
    conv_output = torch.relu(randn(4, 6, 8, 8))
    conv_output[:, 1] = 0
    conv_output[:, 4] = 0
    conv_output[3, 4, 7, 5] = 2.5
    # Runs of H*W values per unit and sample with a remainder after whole vectors (7 x 7), in
    # float64, of one dimension (Conv1d), of three (Conv3d), and with samples skipped.
    conv_tail = torch.relu(randn(3, 5, 7, 7))
    conv_tail[:, 3] = -0.0  # negative zeros: still dead
    conv_tail[1, 3, 6, 6] = 1e-30
    conv_tail[:, 2] = -0.0
    with_bad = randn(12, 40)
    with_bad[2, 1], with_bad[3, 0], with_bad[7] = math.nan, math.inf, 0
    return {
        "contiguous": relu,
        "channels_last": relu.to(memory_format=torch.channels_last),
        "conv_output": conv_output,
        "conv_tail": conv_tail,
        "conv_float64": torch.relu(randn(3, 4, 6, 6, dtype=torch.float64)),
        "conv1d": randn(4, 3, 100),
        "conv3d": randn(2, 5, 3, 4, 5),
        "conv_samples_sliced": randn(6, 4, 5, 5)[::2],
        "transposed": randn(10, 33).t(),
        "sliced": randn(5, 14, 3)[:, ::3, 1:],
        "expanded": randn(4, 1, 7).expand(4, 3, 7),
        "float64": randn(3, 1100, dtype=torch.float64),
        "float16": randn(9, 70, dtype=torch.float16),
        "bfloat16": randn(9, 70, dtype=torch.bfloat16),
        "non_finite": with_bad,
        "non_finite_float16": with_bad.half(),
        "long_rows": randn(3, 5000),
        "vector": randn(37),
        "scalar": randn(()),
        "empty": randn(0, 5),
        "subnormal_float16": torch.full((4, 3), 1e-7).half(),
    }


@pytest.mark.parametrize("name", sorted(layouts(torch.Generator()).keys()))
@pytest.mark.parametrize("tolerance", [-1.0, 0.01, 0.5])
def test_one_pass_statistics_follow_their_definition(name, tolerance):
    tensor = layouts(torch.Generator().manual_seed(7))[name]
    dims = range(-1, max(tensor.dim(), 1)) if tensor.dim() else [-1]
    for unit_dim in dims:
        check_one_pass(tensor, unit_dim, tolerance)


def check_one_pass(tensor, unit_dim, tolerance):
    """The five values of one tensor against `reference`, and nothing written around them."""
    out = np.full(8, 123.0)
    write(tensor, unit_dim, out, 2, tolerance)
    expected = reference(tensor if tensor.dim() else tensor.reshape(1), unit_dim, tolerance)
    assert out[:2].tolist() == [123.0, 123.0] and out[7] == 123.0  # only its five slots
    got = dict(zip(VALUES, out[2:7]))
    want = dict(zip(VALUES, expected))
    if math.isfinite(want["squared_norm"]):
        assert got["squared_norm"] == pytest.approx(want["squared_norm"], rel=1e-6, abs=1e-30)
    else:
        assert not math.isfinite(got["squared_norm"])
    for key in VALUES[1:]:
        assert got[key] == want[key] or (math.isnan(got[key]) and math.isnan(want[key])), \
            (unit_dim, key, got, want)


def test_every_cpu_level_gives_the_same_statistics():
    """The pass is compiled once per vector width and the CPU level chosen at import picks one:
    each level this machine runs, in its own process, against the reference."""
    import os
    import subprocess
    import sys

    import nearzero

    script = ("import torch, test_history_statistics as t\n"
              "for tensor in t.layouts(torch.Generator().manual_seed(7)).values():\n"
              "    for tolerance in (-1.0, 0.01):\n"
              "        for unit_dim in (range(-1, tensor.dim()) if tensor.dim() else [-1]):\n"
              "            t.check_one_pass(tensor, unit_dim, tolerance)\n")
    tests = os.path.dirname(os.path.abspath(__file__))
    for level in nearzero.build_info()["cpu"]["supported"]:
        env = dict(os.environ, NEARZERO_CPU_ISA=level,
                   PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, (level, result.stderr[-3000:])


def check_together(write_many, entries):
    """`write_many(entries, out)` gives each (tensor, unit_dim, offset, tolerance) entry the
    values that `write` gives it alone."""
    together = np.full(max(e[2] for e in entries) + 5, 7.0)
    write_many(entries, together)
    for tensor, unit_dim, offset, tolerance in entries:
        alone = np.full(5, 7.0)
        write(tensor, unit_dim, alone, 0, tolerance)
        np.testing.assert_array_equal(together[offset:offset + 5], alone)


def test_one_call_for_many_tensors_gives_each_its_values():
    from nearzero.report.tensor_statistics import write_batch

    tensors = layouts(torch.Generator().manual_seed(5))
    entries = [(tensor, min(1, tensor.dim() - 1), 5 * i, 0.01 if i % 2 else -1.0)
               for i, tensor in enumerate(tensors.values())]
    check_together(write_batch, entries)
    # Arguments are checked before any tensor is read: nothing is written.
    out = np.full(10, 7.0)
    with pytest.raises(ValueError, match="5 writeable float64 slots"):
        write_batch([(torch.ones(3), 0, 0, -1.0), (torch.ones(3), 0, 6, -1.0)], out)
    assert (out == 7.0).all()


def test_tensors_read_by_the_core_give_the_values_of_their_arguments():
    """write_tensors (the core reads each tensor's address, shape and strides) against write
    for every layout; tensors it does not read as they are (integers, a negative view, a
    scalar, another layout) go through copies, with the same values."""
    from nearzero.report.tensor_statistics import write_tensors

    tensors = dict(layouts(torch.Generator().manual_seed(5)))
    complex_values = torch.randn(4, 3, dtype=torch.complex64, generator=torch.Generator())
    tensors.update({"integers": torch.arange(12).reshape(3, 4) - 5,
                    "negative_view": complex_values.conj().imag,
                    "sparse": torch.eye(4).to_sparse()})
    assert tensors["negative_view"].is_neg()
    entries = [(tensor, min(1, tensor.dim() - 1), 5 * i, 0.01 if i % 2 else -1.0)
               for i, tensor in enumerate(tensors.values())]
    for chosen in (entries, [e for e in entries if e[0].dtype.is_floating_point and
                             e[0].dim() and e[0].layout is torch.strided and not e[0].is_neg()]):
        check_together(write_tensors, chosen)


@pytest.mark.parametrize("shape", [(16, 64, 40, 40), (9, 13, 97, 97)])
def test_large_tensors_split_over_threads_give_the_same_values(shape):
    """More than 2^20 values: the runs are split over threads, in the second shape where a
    sample's units are cut between two threads."""
    generator = torch.Generator().manual_seed(1)
    tensor = torch.relu(torch.randn(*shape, generator=generator))
    tensor[:, 5] = 0
    for unit_dim, tolerance in ((1, -1.0), (0, 0.01)):
        out = np.zeros(5)
        write(tensor, unit_dim, out, 0, tolerance)
        expected = reference(tensor, unit_dim, tolerance)
        assert out[0] == pytest.approx(expected[0], rel=1e-6)
        assert out[1:3].tolist() == expected[1:3]
        if tolerance >= 0:
            assert out[3:].tolist() == expected[3:]


def test_bad_arguments_are_refused():
    from nearzero import _core

    out = np.zeros(5)
    tensor = torch.ones(3, 4)
    with pytest.raises(ValueError, match="5 writeable float64 slots"):
        _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4, 1], 0, -1.0, out, 1)
    with pytest.raises(ValueError, match="one stride per dimension"):
        _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4], 0, -1.0, out, 0)
    with pytest.raises(ValueError, match="unit dimension"):
        _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4, 1], 2, -1.0, out, 0)
    with pytest.raises(ValueError, match="dtype codes"):
        _core.tensor_statistics(tensor.data_ptr(), 7, [3, 4], [4, 1], 0, -1.0, out, 0)
    for bad_out in (np.zeros(5, np.float32), np.zeros((1, 5)), np.zeros(5)[np.newaxis, :]):
        with pytest.raises(ValueError, match="5 writeable float64 slots"):
            _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4, 1], 0, -1.0, bad_out, 0)
    read_only = np.zeros(5)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="5 writeable float64 slots"):
        _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4, 1], 0, -1.0, read_only, 0)
    with pytest.raises(TypeError):  # a list would be copied and the values lost
        _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4, 1], 0, -1.0, [0.0] * 5, 0)
    every_other = np.full(12, 7.0)  # a strided array gets its values at its own places
    _core.tensor_statistics(tensor.data_ptr(), 0, [3, 4], [4, 1], 0, -1.0, every_other[::2], 1)
    assert every_other[::2][1:4].tolist() == [12.0, 3.0, 3.0]
    assert every_other[1::2].tolist() == [7.0] * 6 and every_other[0] == 7.0
    with pytest.raises(TypeError, match="real tensors"):
        write(torch.ones(3, dtype=torch.complex64), 0, out, 0)
    write(torch.tensor([[0, 1, 2], [0, 4, 5]]), 1, out, 0)  # integers: read as float64
    assert out[:3].tolist() == [46.0, 2.0, 3.0]


def train(model, steps, host: bool, monkeypatch):
    monkeypatch.setattr(recorder_module, "_host_path", lambda params: host)
    recorder = GradientRecorder(model, record_every=None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(4)
    for step in range(steps):
        x = torch.randn(16, 1, 8, 8, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad()
        with recorder.step(step) as training_step:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if step == 2:
                with torch.no_grad():
                    model[4].weight.grad[0, :3] = math.nan
            training_step.loss = loss
        optimizer.step() if step != 2 else None
    return recorder.history


def model_with_dead_units():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.0),
                          nn.Linear(6 * 36, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].bias[:2] = -50.0
    return model


@pytest.mark.parametrize("block_bytes", [8 << 20, 1, 2 * 3 * 4 * 5 * 8])  # 1024, 1 or 2 rows
def test_host_path_equals_the_torch_path(monkeypatch, block_bytes):
    from nearzero.report import history

    monkeypatch.setattr(history, "_BLOCK_BYTES", block_bytes)
    host = train(model_with_dead_units(), 4, True, monkeypatch)
    assert len(host._block) == {8 << 20: 1024, 1: 1}.get(block_bytes, 2)
    device = train(model_with_dead_units(), 4, False, monkeypatch)
    assert host.steps == device.steps == [0, 1, 2, 3]
    np.testing.assert_allclose(host.values(), device.values(), rtol=2e-5, atol=1e-12)
    np.testing.assert_allclose(host.loss(), device.loss(), rtol=1e-7)
    assert np.isnan(host.values()[2, 1, 1]) == np.isnan(device.values()[2, 1, 1])


def test_steps_stay_in_order_when_the_path_changes(monkeypatch):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    recorder = GradientRecorder(model, record_every=None)
    paths = [True, False, False, True, False]
    for step, host in enumerate(paths):
        monkeypatch.setattr(recorder_module, "_host_path", lambda params, host=host: host)
        with recorder.step(step, loss=float(step)):
            (model(torch.full((2, 4), float(step + 1))) ** 2).sum().backward()
        model.zero_grad()
    assert recorder.history.steps == list(range(len(paths)))
    assert recorder.history.loss().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    norms = recorder.history.statistic("output_norm")[:, 0]
    with torch.no_grad():
        expected = [float(torch.relu(model[0](torch.full((2, 4), float(s + 1)))).norm())
                    for s in range(len(paths))]
    assert norms == pytest.approx(expected, rel=1e-5)


class ViewActivation(nn.Module):
    """A parameter-free activation whose output is a view of another tensor."""

    def forward(self, x):
        return torch.tanh(x)[:]


@pytest.mark.parametrize("activation", [lambda: nn.ReLU(inplace=True), ViewActivation])
def test_output_gradients_of_views_and_in_place_activations(activation):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), activation(), nn.Linear(7, 2))
    recorder = GradientRecorder(model, record_every=None)
    seen = {}

    def keep(module, inputs, output):  # independent of the recorder: a tensor hook
        seen["A"] = output.detach().clone()
        output.register_hook(lambda grad: seen.__setitem__("dA", grad.clone()))

    model[1].register_forward_hook(keep)
    x = torch.randn(6, 5)
    for step in range(2):
        with recorder.step(step):
            (model(x) ** 2).sum().backward()
        model.zero_grad()
        norms = recorder.history.values()[step, 0]
        assert norms[STATISTIC["output_norm"]] == pytest.approx(float(seen["A"].norm()), rel=1e-5)
        assert norms[STATISTIC["output_gradient_norm"]] == pytest.approx(
            float(seen["dA"].norm()), rel=1e-5)
