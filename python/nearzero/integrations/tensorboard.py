"""`GradientRecorder.log_to(writer)`: the history as TensorBoard scalars (per statistic and
layer, the worst layer's rates, the loss) and the figures as images, through any
``SummaryWriter`` (torch.utils.tensorboard or tensorboardX)."""

from __future__ import annotations

import tempfile

import numpy as np

from .outputs import SCALAR_PREFIX, write_outputs


def log_recorder(recorder, writer, *, figures: bool = True, reports: bool = True) -> None:
    """Scalars of the history steps not yet written to this writer; then, with `figures`, the
    history and overview figures (and with `reports`, when a step was recorded in full, the
    worst layer's report figure and text) at the latest step."""
    from ..report.history import STATISTICS

    history = recorder.history
    if not len(history):
        return
    written = recorder._logged_steps.get(id(writer), -1)  # history entries already written
    values, loss, steps = history.values(), history.loss(), history.steps
    for row in range(written + 1, len(steps)):
        step = steps[row]
        for j, stat in enumerate(STATISTICS):
            column = values[row, :, j]
            for name, value in zip(history.layer_names, column):
                if np.isfinite(value):
                    writer.add_scalar(f"{SCALAR_PREFIX}/{stat}/{name}", value, step)
            if stat.endswith("fraction") and np.isfinite(column).any():
                writer.add_scalar(f"{SCALAR_PREFIX}/worst_{stat}", np.nanmax(column), step)
        if np.isfinite(loss[row]):
            writer.add_scalar(f"{SCALAR_PREFIX}/loss", loss[row], step)
    recorder._logged_steps[id(writer)] = len(steps) - 1
    if figures:
        _log_figures(recorder, writer, steps[-1], reports)
    writer.flush()


def _log_figures(recorder, writer, step: int, reports: bool) -> None:
    from matplotlib.image import imread

    with tempfile.TemporaryDirectory() as folder:
        out = write_outputs(recorder, folder, reports=reports)
        for name, path in out.figures:
            image = imread(path)[..., :3]  # RGBA floats in [0, 1]
            writer.add_image(f"{SCALAR_PREFIX}/{name}", image, step, dataformats="HWC")
        if out.report is not None:
            text = "\n".join("    " + line for line in str(out.report).splitlines())
            writer.add_text(f"{SCALAR_PREFIX}/worst_layer_report", text, step)
