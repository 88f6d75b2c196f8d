"""NearZeroCallback in a real HuggingFace `Trainer`: a tiny randomly initialised BERT (no
download, no tokenizer) trained for a few steps on the CPU."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("matplotlib")

from transformers import BertConfig, BertForMaskedLM, Trainer, TrainingArguments  # noqa: E402

from nearzero.integrations.transformers import NearZeroCallback  # noqa: E402

VOCABULARY = 50


class TokenIds(torch.utils.data.Dataset):
    """Random token ids as a masked-language-model batch source (labels = the ids)."""

    def __init__(self, rows=24, length=10):
        self.ids = torch.randint(0, VOCABULARY, (rows, length),
                                 generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def make_trainer(folder, steps, **arguments):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCABULARY, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
    args = TrainingArguments(output_dir=str(folder), max_steps=steps, logging_steps=2,
                             per_device_train_batch_size=8, use_cpu=True, save_strategy="no",
                             disable_tqdm=True, learning_rate=1e-3, **arguments)
    return Trainer(model=BertForMaskedLM(config), args=args, train_dataset=TokenIds())


def test_trainer_records_logs_and_writes_the_report(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(tmp_path, 5, report_to=["tensorboard"])
    callback = NearZeroCallback.attach(trainer, record_every=4)
    trainer.train()
    recorder = callback.recorder
    assert recorder.history.steps == [0, 1, 2, 3, 4]
    assert recorder.recorded_steps == [4]
    assert "bert.encoder.layer.1.intermediate.dense" in recorder.layers
    loss = recorder.history.loss()
    assert (loss > 0).all() and (loss < 10).all()  # the model output's loss, every step
    names = sorted(p.name for p in (tmp_path / "nearzero").iterdir())
    assert {"history.png", "training-overview.png", "model-overview.png",
            "overview.json"} <= set(names)
    assert sum(n.startswith("report-layer-") and n.endswith(".txt") for n in names) == 1
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logged] == [2, 4]
    assert all("nearzero/worst_near_zero_fraction" in entry for entry in logged)
    # Logged at HuggingFace's step 4, after 4 steps: the recorder's step 3 is the latest.
    assert logged[-1]["nearzero/loss"] == pytest.approx(loss[3], rel=1e-6)
    # The trainer's TensorBoard reporter got them too (HuggingFace prefixes "train/").
    (event_file,) = tmp_path.rglob("events.out.tfevents*")
    events = EventAccumulator(str(event_file.parent))
    events.Reload()
    scalars = events.Scalars("train/nearzero/worst_near_zero_fraction")
    assert [s.step for s in scalars] == [2, 4]
    near_zero = recorder.history.statistic("near_zero_fraction")
    assert scalars[-1].value == pytest.approx(near_zero[3].max(), rel=1e-6)


def test_figures_are_written_when_no_step_was_recorded_in_full(tmp_path):
    callback = NearZeroCallback(record_every=None, out=tmp_path / "figures",
                                history_outputs=False)
    trainer = make_trainer(tmp_path, 2, report_to=[])
    trainer.add_callback(callback)
    trainer.train()
    assert callback.recorder.recorded_steps == []
    history = callback.recorder.history
    assert np.isnan(history.statistic("output_norm")).all()
    assert np.isfinite(history.statistic("gradient_norm")).all()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "history.png", "training-overview.png"]
    assert not callback.recorder.layers[next(iter(callback.recorder.layers))]._forward_hooks
