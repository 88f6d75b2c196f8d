"""threshold of 2^24 float32: exact selection vs one |x|.max() pass vs np.partition.

Target: <= 6x one np.abs(x).max() pass and faster than np.partition.
"""

import numpy as np

import nearzero as nz
from nearzero import reference as ref
from conftest import measure, report


def test_threshold_2_24(benchmark, rng):
    x = rng.standard_normal(1 << 24, dtype=np.float32)
    x[::5] = 0.0
    assert nz.threshold(x, 0.95) == ref.threshold(x, 0.95)
    k = int((x.size - 1) * 0.05)
    timings = measure({
        "nearzero.threshold": lambda: nz.threshold(x, 0.95),
        "np.abs(x).max()": lambda: np.abs(x).max(),
        "np.partition(|x|)": lambda: np.partition(np.abs(x), (k, k + 1)),
    }, repeats=3)
    ratios = report("threshold of 2^24 float32", timings, {
        "threshold / abs-max pass": ("nearzero.threshold", "np.abs(x).max()"),
        "partition / threshold": ("np.partition(|x|)", "nearzero.threshold"),
    }, benchmark)
    benchmark.pedantic(nz.threshold, args=(x, 0.95), rounds=3, iterations=1)
    print(f"  targets: <= 6x abs-max pass: {ratios['threshold / abs-max pass'] <= 6}, "
          f"faster than np.partition: {ratios['partition / threshold'] > 1}")
