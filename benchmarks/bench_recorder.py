"""Cost of GradientRecorder's per-step history on a training step of the demo CNN (batch 64):
the ratio of a step with the recorder attached (history only, no full capture: norms and
near-zero, non-finite and dead-unit shares of W_l, dJ/dW_l, A_l and dJ/dA_l, and the loss) to a
plain step.

Target: <= 1.10 (the history adds at most 10% to a training step). Also timed: the history
without A_l and dJ/dA_l (``history_outputs=False``). On a CPU a second test times the same
steps in thread CPU time on one torch thread, best of interleaved rounds, which other work on
a shared machine disturbs much less than wall time.
"""

import contextlib
import time

import numpy as np
import pytest

from conftest import measure, report

STEPS = 20  # training steps per timed block
ROUNDS = 30  # interleaved rounds of the thread CPU time test


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
    # Loose: shared machines are noisy. Target 1.10, not reached on a 2-core CPU (the demo's
    # activations are large for its compute; docs/integrations.md gives the figures).
    assert ratios["recorder / plain"] < 2.0


def test_recorder_history_cpu_time():
    """Thread CPU time, one torch thread: the best of ROUNDS interleaved rounds of STEPS steps."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from nearzero import GradientRecorder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for name, options in (("plain training step", None), ("with recorder history", {}),
                              ("history without outputs", {"history_outputs": False})):
            model, images, labels, batches = _setup(torch, "cpu")
            recorder = None if options is None else GradientRecorder(model, record_every=None,
                                                                     **options)
            runs[name] = _trainer(torch, model, images, labels, batches, recorder)
        for run in list(runs.values()) * 2:  # warm-up; the first step finds the activations
            run()
        seconds = {name: [] for name in runs}
        for _ in range(ROUNDS):
            for name, run in runs.items():
                start = time.thread_time()
                run()
                seconds[name].append((time.thread_time() - start) / STEPS)
    finally:
        torch.set_num_threads(threads)
    best = {name: min(values) for name, values in seconds.items()}
    plain = best["plain training step"]
    print(f"\nGradientRecorder history, {STEPS} demo CNN steps, thread CPU time, 1 thread, "
          f"best of {ROUNDS} rounds")
    for name, value in best.items():
        print(f"  {name:<28} {value * 1e3:8.3f} ms  {value / plain:5.3f}x")
    # Loose: the target is 1.10 (docs/benchmarks.md gives the figures).
    assert best["with recorder history"] / plain < 2.0

