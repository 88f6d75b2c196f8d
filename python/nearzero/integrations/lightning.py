"""`NearZeroCallback` for Lightning's `Trainer`: records the LightningModule's near-zero
gradients while it trains, logs the history's scalars (``nearzero/...``) to every logger of
the trainer, and writes the figures and the worst layer's report to ``<log_dir>/nearzero`` at
the end (and every `write_every` steps). Needs ``pip install 'nearzero[lightning]'``.
"""

from __future__ import annotations

import os

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the standalone package
    from pytorch_lightning.callbacks import Callback

from .callback_core import SessionCallback


class NearZeroCallback(Callback, SessionCallback):
    """``Trainer(callbacks=[NearZeroCallback()])``. Each optimizer step is one recorder step
    (from the first batch's forward pass to just before the optimizer), numbered by
    ``trainer.global_step`` as Lightning logs it; its loss is the sum of the losses Lightning
    backpropagates (with ``accumulate_grad_batches``, each already divided by their number). Scalars go to the loggers every `log_every` steps (default: the
    trainer's ``log_every_n_steps``). The other options (``layers``, ``write_every``, ``out``,
    ``per_layer_scalars``, ``keep``, ``history_tolerance``, ``history_outputs``) are
    `SessionCallback`'s, as for `GradientRecorder`; ``out``: the folder (default
    ``<log_dir>/nearzero``). The recorder is `self.recorder` once training has started.
    """

    def __init__(self, record_every: int = 100, *, log_every: int = None, **options):
        SessionCallback.__init__(self, record_every, **options)
        self.log_every = log_every

    def on_train_start(self, trainer, pl_module):
        folder = self.out
        if folder is None:
            folder = os.path.join(trainer.log_dir or trainer.default_root_dir, "nearzero")
        self.session.start(pl_module, folder)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.session.begin(trainer.global_step)

    def on_before_backward(self, trainer, pl_module, loss):
        self.session.add_loss(loss)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        step = trainer.global_step
        self.session.end()
        every = self.log_every or trainer.log_every_n_steps
        if trainer.loggers and every and step % every == 0:
            scalars = self.session.scalars()
            for logger in trainer.loggers:
                logger.log_metrics(scalars, step=step)
        self.session.after_step(step + 1)  # steps completed, as HuggingFace counts them

    def on_train_end(self, trainer, pl_module):
        self.session.finish()

    def on_exception(self, trainer, pl_module, exception):
        if self.recorder is not None:
            self.recorder.abort_step()
