"""Cost of GradientRecorder's per-step history on a training step of the demo CNN (batch 64):
the ratio of a step with the recorder attached (history only, no full capture: norms and
near-zero, non-finite and dead-unit shares of W_l, dJ/dW_l, A_l and dJ/dA_l, and the loss) to a
plain step.

Target: <= 1.10 (the history adds at most 10% to a training step). Also timed: the history
without A_l and dJ/dA_l (``history_outputs=False``). On a CPU a second test times short blocks
of the same steps on one torch thread, in a shuffled order each round, in thread CPU time (which
other work on a shared machine disturbs much less) and in wall time, with the load average.
"""

import contextlib
import os
import random
import time

import numpy as np
import pytest

from conftest import measure, report

STEPS = 20  # training steps per timed block of the first test
BLOCK = 4  # steps per timed block of the second test: short, so that many run undisturbed
BLOCK_ROUNDS = 150


def _setup(torch, device):
    from nearzero.demo import build_model, load_digits_tensors

    images, labels = load_digits_tensors(torch, device)
    torch.manual_seed(0)
    model = build_model(torch).to(device)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, images.shape[0], (64,), generator=generator).to(device)
               for _ in range(STEPS)]
    return model, images, labels, batches


def _trainer(torch, model, images, labels, batches, recorder):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    step_context = recorder.step if recorder is not None else (
        lambda i: contextlib.nullcontext())

    def run():
        for i, index in enumerate(batches):
            optimizer.zero_grad()
            with step_context(i) as training_step:
                loss = torch.nn.functional.cross_entropy(model(images[index]), labels[index])
                loss.backward()
                if training_step is not None:
                    training_step.loss = loss
            optimizer.step()

    return run


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_recorder_history_overhead(benchmark, device):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from nearzero import GradientRecorder

    # Agreement first: the recorder must not change training.
    plain_model, images, labels, batches = _setup(torch, device)
    recorded_model, _, _, _ = _setup(torch, device)
    recorder = GradientRecorder(recorded_model, record_every=None)
    _trainer(torch, plain_model, images, labels, batches, None)()
    _trainer(torch, recorded_model, images, labels, batches, recorder)()
    for a, b in zip(plain_model.parameters(), recorded_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(recorder.history) == STEPS
    assert np.isfinite(recorder.history.values()).all()  # every statistic of every layer seen
    assert np.isfinite(recorder.history.loss()).all()

    gradients_model, _, _, _ = _setup(torch, device)
    gradients_only = GradientRecorder(gradients_model, record_every=None, history_outputs=False)
    sync = torch.cuda.synchronize if device == "cuda" else None
    timings = measure({
        "plain training step": _trainer(torch, plain_model, images, labels, batches, None),
        "with recorder history": _trainer(torch, recorded_model, images, labels, batches,
                                          recorder),
        "history without outputs": _trainer(torch, gradients_model, images, labels, batches,
                                            gradients_only),
    }, repeats=7, sync=sync)
    plain = "plain training step"
    ratios = report(f"GradientRecorder history, {STEPS} demo CNN steps on {device}", timings,
                    {"recorder / plain": ("with recorder history", plain),
                     "without outputs / plain": ("history without outputs", plain)},
                    benchmark)
    benchmark.pedantic(_trainer(torch, recorded_model, images, labels, batches, recorder),
                       rounds=1, iterations=1)
    recorder.detach()
    # Loose: shared machines are noisy. Target 1.10 for one thread (the test below); with two
    # threads torch spreads the step over both cores and the hooks run on one
    # (docs/benchmarks.md gives the figures).
    assert ratios["recorder / plain"] < 2.0


def test_recorder_history_cpu_time():
    """One torch thread, the same batches for every variant: many short blocks of BLOCK steps
    in a shuffled order each round, timed in thread CPU time and in wall time; the best and
    the 10th percentile of each. A second plain model ("plain again") shows the noise."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from nearzero import GradientRecorder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for name, options in (("plain training step", None), ("with recorder history", {}),
                              ("history without outputs", {"history_outputs": False}),
                              ("plain again", None)):
            model, images, labels, batches = _setup(torch, "cpu")
            recorder = None if options is None else GradientRecorder(model, record_every=None,
                                                                     **options)
            runs[name] = _trainer(torch, model, images, labels, batches[:BLOCK], recorder)
        for run in list(runs.values()) * 2:  # warm-up; the first step finds the activations
            run()
        cpu = {name: [] for name in runs}
        wall = {name: [] for name in runs}
        order = random.Random(0)
        for _ in range(BLOCK_ROUNDS):
            names = list(runs)
            order.shuffle(names)
            for name in names:
                start_cpu, start_wall = time.thread_time(), time.perf_counter()
                runs[name]()
                cpu[name].append((time.thread_time() - start_cpu) / BLOCK)
                wall[name].append((time.perf_counter() - start_wall) / BLOCK)
    finally:
        torch.set_num_threads(threads)
    plain = "plain training step"
    print(f"\nGradientRecorder history, demo CNN, 1 thread, {BLOCK_ROUNDS} shuffled rounds of "
          f"{BLOCK} steps, load average {os.getloadavg()[0]:.1f}")
    ratios = {}
    for clock, seconds in (("thread CPU", cpu), ("wall", wall)):
        best = {name: min(values) for name, values in seconds.items()}
        tenth = {name: float(np.percentile(values, 10)) for name, values in seconds.items()}
        for name in runs:
            print(f"  {clock:<10} {name:<26} {best[name] * 1e3:7.3f} ms  "
                  f"{best[name] / best[plain]:5.3f}x best, {tenth[name] / tenth[plain]:5.3f}x "
                  f"10th percentile")
        ratios[clock] = best["with recorder history"] / best[plain]
    # Loose: the target is 1.10 (docs/benchmarks.md gives the figures and the load).
    assert ratios["thread CPU"] < 2.0
