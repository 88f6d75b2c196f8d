"""NearZeroCallback in a real Lightning `Trainer`: the demo CNN on scikit-learn's digits for a
few steps on the CPU, logging to TensorBoard."""

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tensorboard")
try:
    import lightning.pytorch as pl
except ImportError:
    pl = pytest.importorskip("pytorch_lightning")

from nearzero.demo import build_model, load_digits_tensors  # noqa: E402
from nearzero.integrations.lightning import NearZeroCallback  # noqa: E402


class DigitsModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = build_model(torch)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        return torch.nn.functional.cross_entropy(self.model(images), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def run(tmp_path, callback, steps, batch_size=64, **trainer_options):
    images, labels = load_digits_tensors(torch, "cpu")
    data = torch.utils.data.TensorDataset(images[:256], labels[:256])
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=0)
    logger = pl.loggers.TensorBoardLogger(str(tmp_path), name="run", version=0)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=logger,
                         callbacks=[callback], log_every_n_steps=2, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         default_root_dir=str(tmp_path), **trainer_options)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # Lightning's advice on data-loader workers and the like, not a fault.
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers"
                                ").*")
        warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
        warnings.filterwarnings("ignore", category=UserWarning, module="pytorch_lightning")
        # Lightning's use of a torch pytree API that newer torch deprecates.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
        trainer.fit(DigitsModule(), loader)
    return trainer


def test_lightning_records_logs_and_writes_the_report(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    callback = NearZeroCallback(record_every=4)
    trainer = run(tmp_path, callback, 5)
    recorder = callback.recorder
    assert recorder.history.steps == [0, 1, 2, 3, 4]
    assert list(recorder.layers) == ["model.0", "model.2", "model.6", "model.8"]
    assert recorder.recorded_steps == [4]
    loss = recorder.history.loss()
    assert (loss > 0).all() and (loss < 10).all()
    folder = tmp_path / "run" / "version_0" / "nearzero"
    names = {p.name for p in folder.iterdir()}
    assert {"history.png", "training-overview.png", "model-overview.png"} <= names
    assert any(n.startswith("report-layer-model_") for n in names)
    events = EventAccumulator(str(tmp_path / "run" / "version_0"))
    events.Reload()
    scalars = events.Scalars("nearzero/worst_output_dead_fraction")
    assert [s.step for s in scalars] == [0, 2, 4]
    dead = recorder.history.statistic("output_dead_fraction")
    assert [s.value for s in scalars] == pytest.approx(dead[[0, 2, 4]].max(1), rel=1e-6)
    assert [s.value for s in events.Scalars("nearzero/loss")] == pytest.approx(
        loss[[0, 2, 4]], rel=1e-6)
    assert trainer.global_step == 5


def test_lightning_writes_history_figures_without_a_full_step(tmp_path):
    callback = NearZeroCallback(record_every=None, out=tmp_path / "figures", write_every=2,
                                per_layer_scalars=True)
    writes = []
    write = callback.session.write
    callback.session.write = lambda: writes.append(len(callback.recorder.history)) or write()
    run(tmp_path, callback, 3)
    assert writes == [2, 3]  # after two steps and at the end
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "history.png", "training-overview.png"]
    assert "nearzero/near_zero_fraction/model.6" in callback.session.scalars()


def test_accumulated_batches_make_one_step(tmp_path):
    """Two batches of 32 per optimizer step against one of 64 (the same images): the same
    steps, loss (the sum of the halved losses Lightning backpropagates) and gradients."""
    histories = {}
    for accumulate, batch in ((2, 32), (1, 64)):
        callback = NearZeroCallback(record_every=None, out=tmp_path / f"a{accumulate}")
        trainer = run(tmp_path / f"a{accumulate}", callback, 3, batch_size=batch,
                      accumulate_grad_batches=accumulate)
        assert trainer.global_step == 3
        histories[accumulate] = callback.recorder.history
    split, whole = histories[2], histories[1]
    assert split.steps == whole.steps == [0, 1, 2]
    assert split.loss() == pytest.approx(whole.loss(), rel=1e-5)
    for name in ("gradient_norm", "weight_norm", "near_zero_fraction", "dead_unit_fraction"):
        assert split.statistic(name) == pytest.approx(whole.statistic(name), rel=1e-4,
                                                      abs=1e-7), name
