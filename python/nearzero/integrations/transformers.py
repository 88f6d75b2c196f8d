"""`NearZeroCallback` for HuggingFace transformers' `Trainer`: records the model's near-zero
gradients while it trains, writes the figures and the worst layer's report to
``<output_dir>/nearzero`` at the end (and every `write_every` steps), and adds the history's
scalars (``nearzero/...``) to the trainer's logs. Needs ``pip install 'nearzero[transformers]'``.
"""

from __future__ import annotations

import os

from transformers import TrainerCallback

from .callback_core import SessionCallback


class NearZeroCallback(TrainerCallback, SessionCallback):
    """Pass in ``Trainer(callbacks=[...])``, or use ``NearZeroCallback.attach(trainer)`` so
    that the scalars reach the reporting callbacks (TensorBoard, W&B, ...), which HuggingFace
    calls before the ones passed in.

    Each optimizer step is one recorder step (from before the first forward pass of the step
    to just before the optimizer, after gradient clipping; with gradient accumulation, every
    micro-batch of it), numbered as HuggingFace logs it (``state.global_step`` once the step
    is done: 1, 2, ...); its loss is read from the model's outputs, summed as they were
    backpropagated, which is the loss the trainer logs. ``record_every``: steps recorded in full (tensors for the report); ``layers``: as
    for `GradientRecorder` (None: every module that owns trainable parameters); ``out``: the folder (default
    ``<output_dir>/nearzero``); ``per_layer_scalars``: log every layer's statistics, not just
    the worst layer's rates. The recorder is `self.recorder` once training has started.
    """

    @classmethod
    def attach(cls, trainer, **options) -> "NearZeroCallback":
        """A callback added to `trainer` ahead of its reporting callbacks."""
        callback = cls(**options)
        trainer.callback_handler.callbacks.insert(0, callback)
        return callback

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        folder = self.out if self.out is not None else os.path.join(args.output_dir, "nearzero")
        self.session.start(model, folder)

    def on_step_begin(self, args, state, control, **kwargs):
        self.session.begin(state.global_step + 1)  # the step's number once it is done

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.session.end()

    def on_step_end(self, args, state, control, **kwargs):
        self.session.end()  # no optimizer step happened (it was skipped)
        self.session.after_step(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:
            return  # evaluation and end-of-training summaries
        scalars = self.session.scalars()
        logs.update(scalars)
        if state.log_history:
            state.log_history[-1].update(scalars)

    def on_train_end(self, args, state, control, **kwargs):
        self.session.finish()
