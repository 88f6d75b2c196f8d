"""Cost of the one-batch `explain_model` on a ResNet-18 (torchvision's layout, random init;
batch 32, 64x64 inputs, CPU, 2 threads) against one plain training step (forward, backward) of
the same model and batch: the time ratio, interleaved in one run, and the ratio of their extra
peak memory, each measured in a fresh process.

Targets: time <= 10x, extra peak memory <= 2x.
Run: python -m pytest benchmarks/bench_explain.py --benchmark-enable -s
 or: python benchmarks/bench_explain.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BATCH, SIZE, THREADS = 32, 64, 2


def resnet18(torch):
    """torchvision's resnet18, written out: BasicBlocks [2, 2, 2, 2], widths 64..512."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers, inplanes = [], 64
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride),
                                            BasicBlock(planes, planes, 1)))
                inplanes = planes
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def _setup():
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = resnet18(torch)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=generator)
    y = torch.randint(0, 10, (BATCH,), generator=generator)
    return torch, model, x, y


def _step(torch, model, x, y):
    def run():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    return run


def _explain(torch, model, x, y):
    from nearzero import explain_model

    def run():
        return explain_model(model, inputs=x, targets=y,
                             loss_fn=torch.nn.functional.cross_entropy)

    return run


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_extra_memory(which: str) -> int:
    """In this process: peak resident memory above the set-up's during one `which` ("step" or
    "explain"), sampled every millisecond (Linux)."""
    import threading
    import time

    torch, model, x, y = _setup()
    run = (_step if which == "step" else _explain)(torch, model, x, y)
    before = _resident_bytes()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _resident_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], _resident_bytes()) - before


def _memory_in_fresh_process(which: str) -> int:
    code = ("import sys; sys.path.insert(0, %r); import bench_explain, json; "
            "print(json.dumps(bench_explain.peak_extra_memory(%r)))"
            % (os.path.dirname(os.path.abspath(__file__)), which))
    # Large blocks straight from mmap: freed memory leaves the process at once, so resident
    # memory follows the live tensors rather than the heap's high-water mark.
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(repeats: int = 5) -> dict:
    from conftest import interleaved_best

    torch, model, x, y = _setup()
    overview = _explain(torch, model, x, y)()  # agreement first: every conv is analysed
    assert sum(r.to_dict()["status"] == "analysed" for r in overview) == 21
    _step(torch, model, x, y)()
    times = interleaved_best({"training step": _step(torch, model, x, y),
                              "explain_model": _explain(torch, model, x, y)}, repeats=repeats)
    memory = {which: _memory_in_fresh_process(which) for which in ("step", "explain")}
    return {"times": times, "memory": memory,
            "time ratio": times["explain_model"] / times["training step"],
            "memory ratio": memory["explain"] / memory["step"]}


def _print(result: dict, benchmark=None) -> None:
    from conftest import report

    ratios = {"explain / step (time)": result["time ratio"],
              "explain / step (extra peak memory)": result["memory ratio"]}
    report(f"explain_model on ResNet-18, batch {BATCH}, {SIZE}x{SIZE}, CPU, {THREADS} threads",
           result["times"], ratios, benchmark)
    print("  extra peak memory: step %.0f MiB, explain %.0f MiB"
          % (result["memory"]["step"] / 2**20, result["memory"]["explain"] / 2**20))


def test_explain_model_cost(benchmark):
    pytest.importorskip("torch")
    result = measure()
    _print(result, benchmark)
    torch, model, x, y = _setup()
    benchmark.pedantic(_explain(torch, model, x, y), rounds=1, iterations=1)
    assert result["time ratio"] < 15 and result["memory ratio"] < 3  # loose; targets 10x, 2x


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    _print(measure())
