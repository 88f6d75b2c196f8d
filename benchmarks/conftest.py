"""Benchmark helpers: interleaved timing of several callables in one run, reported as ratios.

Run with: python -m pytest benchmarks --benchmark-enable -s
"""

from __future__ import annotations

import time

import pytest


def interleaved_best(functions: dict, repeats: int = 5, sync=None) -> dict:
    """Best wall time of each callable, taking turns so machine drift hits all alike."""
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            if sync is not None:
                sync()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(title: str, times: dict, ratios: dict, benchmark=None) -> None:
    """Print the times and ratios and attach them to the pytest-benchmark record."""
    lines = [f"\n{title}"]
    lines += [f"  {name:<28} {t * 1e3:10.2f} ms" for name, t in times.items()]
    lines += [f"  {name:<28} {value:10.2f} x" for name, value in ratios.items()]
    print("\n".join(lines))
    if benchmark is not None:
        benchmark.extra_info.update({f"{k}_ms": v * 1e3 for k, v in times.items()})
        benchmark.extra_info.update(ratios)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(2024)
