"""`nearzero demo`: train a small CNN on scikit-learn's bundled handwritten digits with a
learning rate high enough to kill ReLU units as it trains (it still learns the digits), then
explain its near-zero gradients: the model overview, the worst layer's report, and plots.
"""

from __future__ import annotations

import json
import os
import sys
import time

DEFAULT_STEPS = 300
BATCH_SIZE = 64
RECORD_EVERY = 50
LEARNING_RATE = 0.5  # plain SGD: large updates push ReLU units into the dead region


def build_model(torch):
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )
    return model


def load_digits_tensors(torch, device):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    return images.to(device), labels.to(device)


def progress(step: int, total: int, loss: float, stream=None) -> None:
    """A text progress bar on stderr, redrawn in place on a terminal."""
    stream = sys.stderr if stream is None else stream
    width = 30
    done = int(width * step / max(total, 1))
    bar = f"training [{'#' * done}{'.' * (width - done)}] {step}/{total} loss {loss:.3f}"
    if stream.isatty():
        stream.write("\r" + bar + ("\n" if step == total else ""))
    elif step == total or step % max(total // 4, 1) < 10:
        stream.write(bar + "\n")  # a few lines only when stderr is a file
    stream.flush()


def train(torch, model, images, labels, steps, recorder, seed=0):
    """Plain SGD; every step inside `recorder.step`."""
    functional = torch.nn.functional
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    loss_value = float("nan")
    for step in range(steps):
        index = torch.randint(0, images.shape[0], (BATCH_SIZE,), generator=generator)
        index = index.to(images.device)
        optimizer.zero_grad()
        with recorder.step(step) as training_step:
            loss = functional.cross_entropy(model(images[index]), labels[index])
            loss.backward()
            training_step.loss = loss
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            loss_value = float(loss.detach())  # a host read every 10 steps only
            progress(step + 1, steps, loss_value)
    return loss_value


def run_demo(device: str = "cpu", steps: int = None, out: str = "nearzero-report") -> int:
    """Train, explain and plot; returns the process exit code."""
    try:
        import torch
    except ImportError:
        print("nearzero demo needs torch, matplotlib and scikit-learn: "
              "pip install 'nearzero[demo]'", file=sys.stderr)
        return 2
    from .report import GradientRecorder, explain_model

    device = device or "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"device {device!r} is not available (torch sees no CUDA device)", file=sys.stderr)
        return 2
    steps = DEFAULT_STEPS if steps is None else int(steps)
    if steps < 1:
        print("--steps must be at least 1", file=sys.stderr)
        return 2
    started = time.perf_counter()
    torch.manual_seed(0)
    images, labels = load_digits_tensors(torch, device)
    model = build_model(torch).to(device)
    # The last step is always recorded in full, whatever the step count.
    record_every = RECORD_EVERY if (steps - 1) % RECORD_EVERY == 0 else steps - 1 or 1
    recorder = GradientRecorder(model, record_every=record_every)
    loss = train(torch, model, images, labels, steps, recorder)
    with torch.no_grad():
        accuracy = float((model(images).argmax(1) == labels).float().mean())
    recorder.detach()
    print(f"Trained a small CNN on {images.shape[0]} digits for {steps} steps on {device}: "
          f"loss {loss:.3f}, accuracy {accuracy * 100:.1f}%")
    print()
    overview = explain_model(recorder)
    print(overview)
    print()
    worst = overview.worst
    print(worst)
    os.makedirs(out, exist_ok=True)
    layer_file = worst.layer.replace(".", "_")
    written = [
        recorder.plot_history(os.path.join(out, "history.png")),
        recorder.plot_overview(os.path.join(out, "training-overview.png")),
        overview.plot(os.path.join(out, "overview.png")),
        worst.plot(os.path.join(out, f"report-layer-{layer_file}.png")),
    ]
    with open(os.path.join(out, "overview.json"), "w", encoding="utf-8") as f:
        json.dump(overview.to_dict(), f, indent=1)
    written.append(os.path.join(out, "overview.json"))
    print()
    print(f"Wrote {', '.join(written)} ({time.perf_counter() - started:.1f} s in all)")
    return 0
