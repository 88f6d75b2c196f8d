"""`recorder.log_to(writer)`: the history's scalars, figures and the worst layer's report in
TensorBoard event files, read back with TensorBoard's own event reader."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("tensorboard")
nn = torch.nn

from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator)

from nearzero import GradientRecorder  # noqa: E402
from nearzero.report.history import STATISTICS  # noqa: E402
from training_support import train  # noqa: E402


def read(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                           "tensors": 0})
    events.Reload()
    return events


def test_log_to_writes_scalars_figures_and_report(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    recorder = GradientRecorder(model, record_every=2)
    train(recorder, model, 3)
    writer = SummaryWriter(str(tmp_path))
    recorder.log_to(writer)
    train(recorder, model, 2, first=3)
    recorder.log_to(writer, figures=False)  # only the two new steps
    writer.close()
    events = read(tmp_path)
    tags = events.Tags()
    values = recorder.history.values()
    for layer_index, layer in enumerate(("0", "2")):
        for j, stat in enumerate(STATISTICS):
            scalars = events.Scalars(f"nearzero/{stat}/{layer}")
            assert [s.step for s in scalars] == [0, 1, 2, 3, 4]
            assert [s.value for s in scalars] == pytest.approx(values[:, layer_index, j],
                                                               rel=1e-6, abs=1e-9)
    worst = events.Scalars("nearzero/worst_dead_unit_fraction")
    assert [s.value for s in worst] == pytest.approx(
        values[:, :, STATISTICS.index("dead_unit_fraction")].max(1))
    loss = events.Scalars("nearzero/loss")
    assert [s.value for s in loss] == pytest.approx(recorder.history.loss(), rel=1e-6)
    images = set(tags["images"])
    assert {"nearzero/history", "nearzero/training_overview", "nearzero/model_overview",
            "nearzero/worst_layer_report"} <= images
    assert events.Images("nearzero/history")[0].step == 2
    assert events.Images("nearzero/history")[0].width > 500
    report = events.Tensors("nearzero/worst_layer_report/text_summary")
    text = report[0].tensor_proto.string_val[0].decode()
    assert "Most likely cause" in text


def test_log_to_without_a_recorded_step_writes_the_history_figures(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    recorder = GradientRecorder(model, record_every=None)
    train(recorder, model, 2)
    with SummaryWriter(str(tmp_path)) as writer:
        recorder.log_to(writer)
    images = set(read(tmp_path).Tags()["images"])
    assert images == {"nearzero/history", "nearzero/training_overview"}
