"""What the HuggingFace and Lightning callbacks share: the options, the recorder's life over a
training run, when to write the figures and which scalars to log. The framework modules only
translate their hooks into these calls."""

from __future__ import annotations

import os

from .outputs import latest_scalars, write_outputs


class SessionCallback:
    """What both callbacks take and show: their options, their `RecorderSession`
    (``self.session``) and its read-only face."""

    def __init__(self, record_every: int = 100, *, layers=None, write_every: int = None,
                 out=None, per_layer_scalars: bool = False, keep: int = 1,
                 history_tolerance: float = 0.01, history_outputs: bool = True):
        self.session = RecorderSession(record_every=record_every, layers=layers,
                                       write_every=write_every,
                                       per_layer_scalars=per_layer_scalars, keep=keep,
                                       history_tolerance=history_tolerance,
                                       history_outputs=history_outputs)
        self.out = out

    @property
    def recorder(self):
        """The GradientRecorder, once training has started."""
        return self.session.recorder

    @property
    def written(self) -> list:
        """Paths of the files written so far."""
        return self.session.written


class RecorderSession:
    """A GradientRecorder over one training run: recording every `record_every`-th step in
    full, writing the figures and the worst layer's report to `folder` at the end and every
    `write_every` steps, and giving the history scalars to log."""

    def __init__(self, *, record_every, layers, write_every, per_layer_scalars, keep,
                 history_tolerance, history_outputs):
        if write_every is not None and int(write_every) < 1:
            raise ValueError(f"write_every must be a positive step count, got {write_every!r}")
        self.options = dict(layers=layers, record_every=record_every, keep=keep,
                            history_tolerance=history_tolerance,
                            history_outputs=history_outputs)
        self.write_every = None if write_every is None else int(write_every)
        self.per_layer_scalars = bool(per_layer_scalars)
        self.recorder = None
        self.folder = None
        self.written = []  # paths written so far

    def start(self, model, folder) -> None:
        from ..report import GradientRecorder

        self.recorder = GradientRecorder(model, **self.options)
        self.folder = os.fspath(folder)

    def begin(self, step: int) -> None:
        if self.recorder is not None and not self.recorder.in_step:
            self.recorder.begin_step(step)

    def end(self, *, loss=None) -> None:
        if self.recorder is not None and self.recorder.in_step:
            self.recorder.end_step(loss=loss)

    def add_loss(self, loss) -> None:
        """A loss that is backpropagated in the step: the step's loss is their sum (with
        gradient accumulation each is already the share of its micro-batch)."""
        if self.recorder is not None and self.recorder.in_step:
            step = self.recorder.current_step
            loss = loss.detach() if hasattr(loss, "detach") else loss
            step.loss = loss if step.loss is None else step.loss + loss

    def after_step(self, completed: int) -> None:
        """Write the figures when `completed` steps are a multiple of `write_every`."""
        if self.write_every is not None and completed > 0 and completed % self.write_every == 0:
            self.write()

    def scalars(self) -> dict:
        if self.recorder is None:
            return {}
        return latest_scalars(self.recorder.history, per_layer=self.per_layer_scalars)

    def write(self) -> list:
        if self.recorder is None:
            return []
        paths = write_outputs(self.recorder, self.folder).paths
        self.written = sorted(set(self.written) | set(paths))
        return paths

    def finish(self) -> list:
        """End of training: drop a step left open, write everything, remove the hooks."""
        if self.recorder is None:
            return []
        self.recorder.abort_step()
        paths = self.write()
        self.recorder.detach()
        return paths
