"""The timing harness of `nearzero bench` and of `benchmarks/`: callables timed in turns
(interleaved, so drift of the machine hits all alike), after a warm-up, each sample a batch of
calls long enough to time reliably; ratios are taken round by round and reported as the median
with the min-max spread.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

__all__ = ["Spread", "Timings", "holding_result", "time_interleaved", "SPREAD_WARNING",
           "spread_warning"]

# A ratio whose min-max spread is wider than this fraction of its median is flagged.
SPREAD_WARNING = 0.25
# Shortest sample: a faster callable is called several times per sample.
MIN_SAMPLE_S = 0.02
# Pause before each sample: the OpenMP threads of the previous callable (nearzero's, or torch's
# own OpenMP/BLAS runtime) stop spinning and no longer compete with the next one.
PAUSE_S = 0.005


@dataclass(frozen=True)
class Spread:
    """Median and range of one quantity over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values) -> "Spread":
        values = list(values)
        return cls(statistics.median(values), min(values), max(values))

    @property
    def width(self) -> float:
        """(max - min) / median: 0.25 means the rounds differ by a quarter of the median."""
        return (self.high - self.low) / self.median if self.median > 0 else math.inf

    def format(self, unit: str = "x", digits: int = 1) -> str:
        return (f"{self.median:,.{digits}f}{unit} ({self.low:,.{digits}f}-"
                f"{self.high:,.{digits}f})")


@dataclass
class Timings:
    """Seconds per call of each callable, one value per round."""

    seconds: Dict[str, List[float]]
    calls_per_sample: Dict[str, int]

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def spread(self, name: str) -> Spread:
        return Spread.of(self.seconds[name])

    def ratio(self, numerator: str, denominator: str) -> Spread:
        """numerator / denominator round by round (both timed in the same round)."""
        return Spread.of(a / b for a, b in zip(self.seconds[numerator], self.seconds[denominator]))


def holding_result(fn: Callable) -> Callable:
    """`fn` whose last result stays alive until the next call has returned.

    For plain operations (NumPy, torch), which allocate a new result each call: freed at once, a
    result of megabytes can go back to the operating system, and the next call then pays its
    page faults (torch's conv2d on (32,16,64,64): about 18 ms instead of 7 on a 2-core VM,
    depending on what the allocator happened to do). Held, its memory is reused, as the fused
    ops reuse theirs (result_memory), so the ratio compares the computations. Not for the fused
    ops: holding their result would stop that reuse."""
    held = [None]

    def call():
        result = fn()
        held[0] = result

    return call


def _sample(fn: Callable, calls: int, sync: Optional[Callable]) -> float:
    time.sleep(PAUSE_S)
    if sync is not None:
        sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if sync is not None:
        sync()
    return (time.perf_counter() - start) / calls


def time_interleaved(functions: Dict[str, Callable], repeats: int = 5, *, warmup: int = 1,
                     sync: Optional[Callable] = None,
                     min_sample_s: float = MIN_SAMPLE_S) -> Timings:
    """Times each callable `repeats` times, taking turns (in a new order every round).

    `warmup` calls of each come first (caches, allocator, thread pool, lazy initialisation);
    the last one also sets how many calls make a sample of at least `min_sample_s` seconds.
    `sync` (for example torch.cuda.synchronize) is called before and after each sample.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    names = list(functions)
    calls = {}
    for name in names:
        t = math.inf
        for _ in range(max(1, warmup)):
            t = _sample(functions[name], 1, sync)
        calls[name] = max(1, math.ceil(min_sample_s / t)) if t > 0 else 1000
    seconds = {name: [] for name in names}
    shuffle = random.Random(len(names) * 1000 + repeats)
    for _ in range(repeats):
        # A new order every round: no callable always follows the same one (whose threads,
        # caches or freed memory could favour or slow down the next).
        order = shuffle.sample(names, len(names))
        for name in order:
            seconds[name].append(_sample(functions[name], calls[name], sync))
    return Timings(seconds, calls)


def spread_warning(label: str, ratio: Spread) -> Optional[str]:
    """A warning line when `ratio` varies more than SPREAD_WARNING between rounds."""
    if ratio.width <= SPREAD_WARNING:
        return None
    return (f"warning: {label} varies by {ratio.width:.0%} between rounds "
            f"({ratio.format()}); the machine is busy or the problem too small: "
            "rerun, or use more --repeats")
