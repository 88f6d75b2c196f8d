"""History figures: the layer history and the training overview at 8 and at 50 layers, with
the worst layers named and the rest as a band, and for a recorder that saw no step."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
nn = torch.nn

from nearzero import GradientRecorder  # noqa: E402
from nearzero.report import dashboard  # noqa: E402
from training_support import train  # noqa: E402


def trained_recorder(depth: int, steps: int = 6):
    torch.manual_seed(0)
    layers = []
    for _ in range(depth - 1):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(8, 3))
    recorder = GradientRecorder(model, record_every=None)
    train(recorder, model, steps, width=8)
    return recorder


@pytest.mark.parametrize("depth", [8, 50])
def test_overview_and_history_figures(tmp_path, depth):
    recorder = trained_recorder(depth)
    for path in (recorder.plot_overview(tmp_path / "overview.png"),
                 recorder.plot_history(tmp_path / "history.png")):
        with open(path, "rb") as f:
            assert f.read(4) == b"\x89PNG"


def test_many_layers_name_the_worst_and_band_the_rest():
    from matplotlib.figure import Figure

    steps = np.arange(5)
    values = np.tile(np.linspace(0, 49, 50), (5, 1))  # layer i at i %
    names = [f"block.{i}.linear" for i in range(50)]
    ax = Figure().subplots()
    dashboard._layer_lines(ax, steps, values, names)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    worst = [names[i] for i in range(50 - dashboard.WORST_LAYERS, 50)]
    assert labels == ["other 46 layers (min-max)", "other 46 layers (median)"] + worst
    ax = Figure().subplots()
    dashboard._layer_lines(ax, steps, values[:, :8], names[:8])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names[:8]


def test_figures_of_a_recorder_without_steps(tmp_path):
    recorder = GradientRecorder(nn.Sequential(nn.Linear(2, 2)), record_every=None)
    assert recorder.plot_overview(tmp_path / "o.png").endswith("o.png")
    assert recorder.plot_history(tmp_path / "h.png").endswith("h.png")


def test_short_names_keep_the_end():
    assert dashboard.short_name("bert.encoder.layer.11.attention.self.query", 21) == \
        "\u2026attention.self.query"
    assert dashboard.short_name("fc1") == "fc1"
