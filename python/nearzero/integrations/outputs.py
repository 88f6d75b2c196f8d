"""What the framework callbacks write to a folder: the history figures always, and, when a step
was recorded in full, the model overview and the worst layer's report. Shared by the callbacks
and `GradientRecorder.log_to`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

SCALAR_PREFIX = "nearzero"


@dataclass
class WrittenOutputs:
    """Paths written by `write_outputs`, and the worst layer's report when there was one."""

    figures: list = field(default_factory=list)  # (name, path) of every PNG
    files: list = field(default_factory=list)  # other files (text, JSON)
    report: object = None  # the worst layer's Report, or None when no step was recorded

    @property
    def paths(self) -> list:
        return [path for _, path in self.figures] + self.files


def write_outputs(recorder, folder, *, reports: bool = True) -> WrittenOutputs:
    """Write history.png and training-overview.png to `folder`; with `reports` and a step
    recorded in full, also model-overview.png, overview.json and the worst layer's
    report-layer-<name>.png / .txt."""
    os.makedirs(folder, exist_ok=True)
    out = WrittenOutputs()
    out.figures.append(("history", recorder.plot_history(os.path.join(folder, "history.png"))))
    out.figures.append(("training_overview", recorder.plot_overview(
        os.path.join(folder, "training-overview.png"))))
    if not reports or not recorder.recorded_steps:
        return out
    from ..report import explain_model

    overview = explain_model(recorder)
    out.figures.append(("model_overview", overview.plot(
        os.path.join(folder, "model-overview.png"))))
    path = os.path.join(folder, "overview.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(overview.to_dict(), f, indent=1)
    out.files.append(path)
    if len(overview):
        out.report = overview.worst
        name = out.report.layer.replace(".", "_")
        out.figures.append(("worst_layer_report", out.report.plot(
            os.path.join(folder, f"report-layer-{name}.png"))))
        path = os.path.join(folder, f"report-layer-{name}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(str(out.report) + "\n")
        out.files.append(path)
    return out


def latest_scalars(history, *, per_layer: bool = False) -> dict:
    """The latest step's values as ``{"nearzero/...": float}``: the worst layer's rates and
    the loss; with `per_layer`, every statistic of every layer too. Empty before any step."""
    import numpy as np

    from ..report.history import STATISTICS

    if not len(history):
        return {}
    values = history.values()[-1]
    scalars = {}
    for j, stat in enumerate(STATISTICS):
        column = values[:, j]
        if stat.endswith("fraction") and np.isfinite(column).any():
            scalars[f"{SCALAR_PREFIX}/worst_{stat}"] = float(np.nanmax(column))
        if per_layer:
            for name, value in zip(history.layer_names, column):
                if np.isfinite(value):
                    scalars[f"{SCALAR_PREFIX}/{stat}/{name}"] = float(value)
    loss = history.loss()[-1]
    if np.isfinite(loss):
        scalars[f"{SCALAR_PREFIX}/loss"] = float(loss)
    return scalars
