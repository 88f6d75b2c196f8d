"""Bad input gets a clear error naming the problem (SPEC §7), and the size guard (SPEC §5)."""

import threading

import numpy as np
import pytest

import nearzero as nz
from nearzero.backends import cpu_results


def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        nz.matmul_classify(np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        nz.multiply_classify(np.ones((3, 4)), np.ones((5,)))
    with pytest.raises(ValueError, match="batch dimensions"):
        nz.matmul_classify(np.ones((2, 3, 4)), np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="size 4.*size 3"):
        nz.tensordot_classify(np.ones((2, 4)), np.ones((3, 2)), axes=([1], [0]))
    with pytest.raises(ValueError, match="rank >= 1"):
        nz.matmul_classify(np.float32(2.0), np.ones(3))


@pytest.mark.parametrize("thresholds", [-1.0, float("nan"), (0.1, -0.2), (0.1, 0.2, 0.3), (0.1,),
                                        "0.5", (0.1, "x")])
def test_bad_thresholds(thresholds):
    with pytest.raises(ValueError, match="threshold"):
        nz.matmul_classify(np.ones((2, 2)), np.ones((2, 2)), thresholds=thresholds)


def test_bad_single_threshold_and_confidence():
    with pytest.raises(ValueError, match="non-negative"):
        nz.tensor_classify(np.ones(3), threshold=-0.5)
    with pytest.raises(ValueError, match="confidence"):
        nz.multiply_classify(np.ones(3), np.ones(3), confidence=2.0)


def test_complex_is_type_error():
    with pytest.raises(TypeError, match="complex"):
        nz.matmul_classify(np.ones((2, 2), dtype=complex), np.ones((2, 2)))


def test_nan_raise_names_input_and_count():
    y = np.ones((3, 2))
    y[0, 0] = y[2, 1] = np.nan
    with pytest.raises(ValueError, match="y contains 2 NaN values of 6"):
        nz.matmul_classify(np.ones((2, 3)), y, thresholds=0.5)


def test_bad_reduce_and_mask():
    x, y = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(ValueError, match="reduce"):
        nz.matmul_classify(x, y, reduce="rows")
    with pytest.raises(ValueError, match=r"mask has shape \(4, 2\).*\(2, 4\)"):
        nz.matmul_classify(x, y, mask=np.ones((4, 2), dtype=bool))
    with pytest.raises(ValueError, match="bool"):
        nz.matmul_classify(x, y, mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match="at least one axis"):
        nz.matmul_classify(np.ones(3), np.ones(3), reduce="channel")


def test_empty_inputs_give_shaped_results():
    counts, sums = nz.matmul_classify(np.ones((0, 3)), np.ones((3, 4)), thresholds=0.5)
    assert counts.shape == (0, 4, 9) and sums.shape == (0, 4, 9)
    counts, sums = nz.matmul_classify(np.ones((2, 0)), np.ones((0, 4)), thresholds=0.5)
    assert counts.shape == (2, 4, 9) and not counts.any() and not sums.any()
    counts, sums = nz.matmul_classify(np.ones((0, 3)), np.ones((3, 4)), thresholds=0.5,
                                      reduce="all")
    assert counts.shape == (9,) and not counts.any()


def test_size_guard_raises_memory_error(monkeypatch):
    monkeypatch.setattr(cpu_results, "available_memory_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match=r"needs .* GiB.*reduce='all'"):
        nz.matmul_classify(np.ones((20, 3)), np.ones((3, 20)), thresholds=0.5)
    counts, _ = nz.matmul_classify(np.ones((20, 3)), np.ones((3, 20)), thresholds=0.5,
                                   reduce="all")
    assert counts[0] == 20 * 20 * 3


def test_inputs_never_modified_and_outputs_never_alias(rng=np.random.default_rng(3)):
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.standard_normal((6, 5))
    x0, y0 = x.copy(), y.copy()
    counts, sums = nz.matmul_classify(x, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert not np.shares_memory(sums, x) and not np.shares_memory(sums, y)
    c, s = nz.tensor_classify(x)
    assert not np.shares_memory(s, x)


def assert_threads_agree(call, threads):
    """`call()` run at once from `threads` threads gives, in each, what it gives alone."""
    expected = call()
    results = [None] * threads

    def work(i):
        results[i] = call()

    started = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    for counts, sums in results:
        np.testing.assert_array_equal(counts, expected[0])
        np.testing.assert_array_equal(sums, expected[1])


def test_parallel_calls_from_threads_agree():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((120, 200)).astype(np.float32)
    y = rng.standard_normal((200, 90)).astype(np.float32)
    assert_threads_agree(lambda: nz.matmul_classify(x, y), 6)
