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


def make_trainer(folder, steps, dropout=0.1, **arguments):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCABULARY, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    arguments = {"logging_steps": 2, "per_device_train_batch_size": 8, **arguments}
    args = TrainingArguments(output_dir=str(folder), max_steps=steps, use_cpu=True,
                             save_strategy="no", disable_tqdm=True, learning_rate=1e-3,
                             **arguments)
    return Trainer(model=BertForMaskedLM(config), args=args, train_dataset=TokenIds())


def test_trainer_records_logs_and_writes_the_report(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(tmp_path, 5, report_to=["tensorboard"])
    callback = NearZeroCallback.attach(trainer, record_every=4)
    trainer.train()
    recorder = callback.recorder
    # Numbered as the trainer logs its steps: state.global_step once each is done.
    assert recorder.history.steps == [1, 2, 3, 4, 5]
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
    # Logged at HuggingFace's step 4: the recorder's step 4 is the latest; the loss the
    # trainer logs (the mean over steps 3 and 4) is the mean of the recorder's.
    assert logged[-1]["nearzero/loss"] == pytest.approx(loss[3], rel=1e-6)
    assert logged[-1]["loss"] == pytest.approx(loss[2:4].mean(), rel=1e-4)
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


def test_gradient_accumulation_records_whole_optimizer_steps(tmp_path):
    """Two micro-batches of 4 per optimizer step against one batch of 8 (the same samples,
    dropout off): the same steps, numbered as the trainer logs them, with the loss the trainer
    logs and the weight gradients of both micro-batches."""
    histories, logs = {}, {}
    for accumulate, batch in ((2, 4), (1, 8)):
        folder = tmp_path / f"accumulate-{accumulate}"
        trainer = make_trainer(folder, 3, report_to=[], per_device_train_batch_size=batch,
                               gradient_accumulation_steps=accumulate, logging_steps=1,
                               max_grad_norm=0.0, dropout=0.0)  # no clipping: raw gradients
        callback = NearZeroCallback.attach(trainer, record_every=None)
        trainer.train()
        histories[accumulate] = callback.recorder.history
        logs[accumulate] = np.array([e["loss"] for e in trainer.state.log_history
                                     if "loss" in e])
    split, whole = histories[2], histories[1]
    assert split.steps == whole.steps == [1, 2, 3]
    # The loss of a step is the sum of what its micro-batches backpropagated: what the
    # trainer logs. (This BERT takes HuggingFace's loss arguments but returns each
    # micro-batch's mean, so the trainer backpropagates twice the batch's loss.)
    assert split.loss() == pytest.approx(logs[2], rel=1e-3)
    assert whole.loss() == pytest.approx(logs[1], rel=1e-3)
    scale = split.loss() / whole.loss()
    assert scale == pytest.approx([2.0] * 3, rel=1e-4)
    # The gradients are read once both micro-batches have added theirs: the whole batch's
    # gradients, times that factor (AdamW's updates hardly depend on it).
    np.testing.assert_allclose(split.statistic("gradient_norm"),
                               whole.statistic("gradient_norm") * scale[:, None], rtol=2e-3)
    np.testing.assert_allclose(split.statistic("weight_norm"), whole.statistic("weight_norm"),
                               rtol=1e-3)
    # Shares do not scale; after the first update the weights differ in the last digits,
    # enough to move a gradient across the near-zero level, so the first step only.
    for name in ("near_zero_fraction", "dead_unit_fraction", "non_finite_fraction"):
        np.testing.assert_array_equal(split.statistic(name)[0], whole.statistic(name)[0],
                                      err_msg=name)
    # A_l and dJ/dA_l are those of the first micro-batch: seen on every step.
    assert np.isfinite(split.statistic("output_norm")).any(axis=1).all()
