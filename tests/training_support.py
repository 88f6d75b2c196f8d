"""A small classifier trained for a few SGD steps under a GradientRecorder, for the tests of
what the recorder writes (figures, TensorBoard events)."""

import torch

nn = torch.nn


def train(recorder, model, steps, first=0, width=4):
    """`steps` recorded steps numbered from `first` on random (16, `width`) batches of 3
    classes; the batch generator is seeded with `first`, the labels come from torch's global
    generator."""
    generator = torch.Generator().manual_seed(first)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(first, first + steps):
        x, y = torch.randn(16, width, generator=generator), torch.randint(0, 3, (16,))
        optimizer.zero_grad()
        with recorder.step(step) as training_step:
            training_step.loss = nn.functional.cross_entropy(model(x), y)
            training_step.loss.backward()
        optimizer.step()
