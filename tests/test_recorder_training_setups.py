"""GradientRecorder inside the training set-ups people use: gradient checkpointing (reentrant
and not), a torch.compile'd model, and DistributedDataParallel over gloo with two local
processes. Each history is compared with the one of the plain model trained on the same
data (the whole batch in one process for DDP)."""

import json
import os
import sys

import numpy as np
import pytest
from distributed_support import WORLD, process_group, run_workers

torch = pytest.importorskip("torch")
nn = torch.nn

from nearzero import GradientRecorder  # noqa: E402
from nearzero.report.history import STATISTICS  # noqa: E402

STEPS = 4
BATCH = 16


class Blocks(nn.Module):
    """Conv - ReLU - Conv - ReLU - Linear - ReLU - Linear; `checkpoint` runs the first two
    blocks under torch.utils.checkpoint."""

    def __init__(self, checkpoint=None):
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU())
        self.second = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(6 * 5 * 5, 12), nn.ReLU(), nn.Linear(12, 3))
        with torch.no_grad():
            self.head[0].bias[::3] = -50.0  # dead units: a share that must match exactly
        self.checkpoint = checkpoint

    def forward(self, x):
        if self.checkpoint:  # the reentrant checkpoint needs an input that wants a gradient
            x = x.detach().requires_grad_()
        for block in (self.first, self.second):
            if self.checkpoint is None:
                x = block(x)
            else:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=self.checkpoint)
        return self.head(x)


def batches():
    generator = torch.Generator().manual_seed(3)
    return [(torch.randn(BATCH, 2, 5, 5, generator=generator),
             torch.randint(0, 3, (BATCH,), generator=generator)) for _ in range(STEPS)]


def train(model, data, record_every=None, recorder_model=None):
    recorder = GradientRecorder(model if recorder_model is None else recorder_model,
                                record_every=record_every)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, (x, y) in enumerate(data):
        optimizer.zero_grad()
        with recorder.step(step) as training_step:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            training_step.loss = loss
        optimizer.step()
    recorder.detach()
    return recorder


def assert_same_history(got, want, rtol=1e-5):
    assert got.steps == want.steps
    assert got.layer_names == want.layer_names
    assert np.isfinite(got.values()).all()
    for j, name in enumerate(STATISTICS):
        np.testing.assert_allclose(got.values()[:, :, j], want.values()[:, :, j], rtol=rtol,
                                   atol=1e-7, err_msg=name)
    np.testing.assert_allclose(got.loss(), want.loss(), rtol=rtol)


@pytest.mark.parametrize("reentrant", [False, True])
def test_gradient_checkpointing_gives_the_history_of_the_plain_model(reentrant):
    data = batches()
    plain = train(Blocks(), data, record_every=2)
    checkpointed = train(Blocks(checkpoint=reentrant), data, record_every=2)
    assert_same_history(checkpointed.history, plain.history)
    assert checkpointed.recorded_steps == plain.recorded_steps == [2]
    for name in plain.layers:  # the full capture too
        got, want = checkpointed.capture(name), plain.capture(name)
        torch.testing.assert_close(got.grads["weight"], want.grads["weight"])


def test_compiled_model_gives_the_history_of_the_plain_model():
    torch._dynamo.reset()
    data = batches()
    plain = train(Blocks(), data)
    model = Blocks()
    compiled = torch.compile(model, backend="aot_eager")
    recorder = train(compiled, data)
    # Compiled code never ran inside a step (hooks there would be ignored or retrace).
    assert_same_history(recorder.history, plain.history)
    assert list(recorder.layers) == list(plain.layers)  # the original module names
    # Outside the steps the model is compiled, without any of the recorder's hooks.
    from torch._dynamo.utils import counters

    with torch.no_grad():
        compiled(data[0][0])
    assert counters["stats"]["unique_graphs"] >= 1
    assert not any(m._forward_hooks for m in model.modules())


def worker(rank: int, out: str) -> None:
    with process_group(rank, out):
        model = Blocks()
        ddp = nn.parallel.DistributedDataParallel(model)
        shard = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        data = [(x[shard], y[shard]) for x, y in batches()]
        recorder = train(ddp, data, record_every=2, recorder_model=ddp)
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump({"history": recorder.history.as_dict(),
                       "recorded": recorder.recorded_steps}, f)


@pytest.mark.distributed
def test_ddp_records_the_history_on_every_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    run_workers(__file__, tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    whole = train(Blocks(), batches(), record_every=2).history.as_dict()
    for rank in ranks:
        assert rank["recorded"] == [2]
        history = rank["history"]
        assert history["steps"] == whole["steps"] == list(range(STEPS))
        for layer, statistics in history["layers"].items():
            for name, values in statistics.items():
                assert all(v is not None for v in values), (layer, name)
            # DDP averages the gradients over the processes: the whole batch's gradients
            # and weights, on each of them.
            for name in ("gradient_norm", "weight_norm", "near_zero_fraction",
                         "dead_unit_fraction"):
                np.testing.assert_allclose(statistics[name], whole["layers"][layer][name],
                                           rtol=1e-5, err_msg=f"{layer} {name}")
    # A_l is each process's half of the batch: the squared norms add up to the whole's.
    for layer in whole["layers"]:
        for name in ("output_norm", "output_gradient_norm"):
            halves = np.array([r["history"]["layers"][layer][name] for r in ranks])
            want = np.array(whole["layers"][layer][name])
            if name == "output_gradient_norm":
                want = want * WORLD  # each process's loss is the mean over half the batch
            np.testing.assert_allclose(np.sqrt((halves ** 2).sum(0)), want, rtol=1e-5,
                                       err_msg=f"{layer} {name}")
    # Each process's loss is its own half's; their mean is the whole batch's.
    losses = np.array([r["history"]["loss"] for r in ranks])
    np.testing.assert_allclose(losses.mean(0), whole["loss"], rtol=1e-5)


if __name__ == "__main__":
    worker(int(sys.argv[1]), sys.argv[2])
