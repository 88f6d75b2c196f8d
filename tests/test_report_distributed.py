"""The report under torch.distributed (gloo, two local processes, each holding half of the
batch): every process builds the same report, equal to the one of the whole batch in one
process (thresholds are global, counts and sums are summed over the processes)."""

import json
import os
import sys

import pytest
from distributed_support import WORLD, process_group, run_workers

torch = pytest.importorskip("torch")

FULL_BATCH = 16


def build_model():
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * 5 * 5, 12), nn.ReLU(), nn.Linear(12, 3))
    with torch.no_grad():
        model[3].bias[::2] = -100.0  # dead units in the Linear layer
        model[0].bias[::3] = -100.0  # and dead channels in the Conv layer
    return model


def full_batch():
    generator = torch.Generator().manual_seed(7)
    return (torch.randn(FULL_BATCH, 2, 5, 5, generator=generator),
            torch.randint(0, 3, (FULL_BATCH,), generator=generator))


def explain_overview(model, x, y, recorder_model=None):
    """One training step under a recorder, then the overview of every layer."""
    from nearzero import GradientRecorder, explain_model

    recorder = GradientRecorder(model if recorder_model is None else recorder_model,
                                record_every=1)
    with recorder.step(0):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    recorder.detach()
    return explain_model(recorder, verbose=True).to_dict()


def worker(rank: int, out: str) -> None:
    with process_group(rank, out):
        from nearzero.report import measure

        measure.FULL_RESULT_BYTES = 0  # as the reference below
        model = build_model()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        x, y = full_batch()
        shard = slice(rank * FULL_BATCH // WORLD, (rank + 1) * FULL_BATCH // WORLD)
        overview = explain_overview(ddp, x[shard], y[shard], recorder_model=ddp)
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump(overview, f)


@pytest.mark.distributed
def test_two_processes_give_the_report_of_the_whole_batch(tmp_path, monkeypatch):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    run_workers(__file__, tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert ranks[0] == ranks[1]  # every process builds the same report

    from nearzero.report import measure

    monkeypatch.setattr(measure, "FULL_RESULT_BYTES", 0)
    model = build_model()
    x, y = full_batch()
    whole = explain_overview(model, x, y)
    shared = ranks[0]
    assert [d["layer"] for d in shared["layers"]] == [d["layer"] for d in whole["layers"]]
    for got, want in zip(shared["layers"], whole["layers"]):
        assert got["world_size"] == WORLD and want["world_size"] == 1
        assert got["near_zero_count"] == want["near_zero_count"]
        assert [c["cause"] for c in got["causes"]] == [c["cause"] for c in want["causes"]]
        for a, b in zip(got["causes"], want["causes"]):
            assert a["fraction"] == pytest.approx(b["fraction"])
        assert got["gradient_check"]["relative_error"] < 1e-5
        for a, b in zip(got["sections"], want["sections"]):
            assert a["key"] == b["key"]
            assert a["near_zero_fraction"] == pytest.approx(b["near_zero_fraction"])
            if a["kind"] == "tensor":
                if a["key"] in ("W_l", "dJ/dW_l"):  # the same tensor on every process
                    assert a["shape"] == b["shape"]
                else:  # a shard of the batch
                    assert a["shape"][0] * WORLD == b["shape"][0]
                assert a["size"] == b["size"]
                assert a["breakdown"]["counts"] == b["breakdown"]["counts"], a["key"]
                if a["key"] not in ("dJ/dA_l", "dJ/dZ_l"):  # local losses are per-shard means
                    assert a["threshold"] == pytest.approx(b["threshold"], rel=1e-6)
            else:
                assert a["breakdown"]["near_zero"]["counts"] == \
                    b["breakdown"]["near_zero"]["counts"], a["key"]
    assert shared["layers"][0]["causes"][0]["cause"] == "dead_activation"


if __name__ == "__main__":
    worker(int(sys.argv[1]), sys.argv[2])
