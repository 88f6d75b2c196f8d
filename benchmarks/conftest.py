"""Benchmark helpers: the timing harness of `nearzero bench` (interleaved rounds after a
warm-up, ratios as median and min-max spread), and a report that prints and records them.

Run with: python -m pytest benchmarks --benchmark-enable -s
"""

from __future__ import annotations

import pytest

from nearzero._bench_timing import Timings, holding_result, spread_warning, time_interleaved

__all__ = ["holding_result", "measure", "report"]


def measure(functions: dict, repeats: int = 5, sync=None) -> Timings:
    """Times the callables in interleaved rounds (nearzero's bench harness)."""
    return time_interleaved(functions, repeats, sync=sync)


def report(title: str, timings: Timings, ratios: dict, benchmark=None) -> dict:
    """Print median times and the ratios {label: (numerator, denominator)} with their spread,
    attach them to the pytest-benchmark record, and return the ratios' medians by label."""
    lines = [f"\n{title}"]
    lines += [f"  {name:<28} {timings.median(name) * 1e3:10.2f} ms" for name in timings.seconds]
    spreads = {label: timings.ratio(*pair) for label, pair in ratios.items()}
    lines += [f"  {label:<28} {s.format(digits=2):>24}" for label, s in spreads.items()]
    lines += [w for label, s in spreads.items() if (w := spread_warning(label, s))]
    print("\n".join(lines))
    if benchmark is not None:
        benchmark.extra_info.update({f"{k}_ms": timings.median(k) * 1e3 for k in timings.seconds})
        benchmark.extra_info.update({k: s.median for k, s in spreads.items()})
        benchmark.extra_info.update({f"{k} min-max": [s.low, s.high] for k, s in spreads.items()})
    return {label: s.median for label, s in spreads.items()}


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(2024)
