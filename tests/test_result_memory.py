"""Memory of large CPU results (backends/result_memory.py): aligned, reused only once no array
views it, bounded in what it keeps, and results written into reused memory are right."""

import gc

import numpy as np
import pytest

import nearzero as nz
from nearzero.backends import result_memory as rm
from nearzero import reference_conv as rc
from conftest import assert_sums_close

MB = 1 << 20


def _start(a):
    return a.__array_interface__["data"][0]


def test_large_arrays_start_on_a_huge_page_and_small_ones_on_a_cache_line():
    big = rm.reusable_empty((3, 5 * MB), np.float32)
    small = rm.reusable_empty((7, 33), np.float64)
    assert big.shape == (3, 5 * MB) and big.dtype == np.float32 and big.flags.c_contiguous
    assert _start(big) % rm.HUGE_PAGE == 0
    assert _start(small) % 64 == 0 and small.shape == (7, 33)
    big[...] = 1.5  # the whole extent is writable
    assert float(big[-1, -1]) == 1.5


@pytest.mark.parametrize("keeper", ["view", "memoryview", "torch"])
def test_memory_is_reused_only_when_nothing_made_from_it_is_left(keeper):
    a = rm.reusable_empty((4, 4 * MB), np.int32)
    first = _start(a)
    if keeper == "view":
        held = a[1:, ::7].T
    elif keeper == "memoryview":
        held = memoryview(a.reshape(-1)[5:])
    else:
        torch = pytest.importorskip("torch")
        held = torch.from_numpy(a)[2:]
    del a
    gc.collect()
    b = rm.reusable_empty((4, 4 * MB), np.int32)
    assert _start(b) != first
    b[...] = 3
    del held
    c = rm.reusable_empty((4, 4 * MB), np.int32)
    assert _start(c) == first
    c[...] = 9
    assert int(b.min()) == 3 and int(c.max()) == 9  # two live arrays never share memory


def test_free_memory_kept_is_bounded_by_the_latest_request():
    arrays = [rm.reusable_empty((64 * MB,), np.uint8) for _ in range(6)]
    del arrays
    small = rm.reusable_empty((12 * MB,), np.uint8)
    # 12 MiB in use; free mappings kept up to twice that, so none of the 64 MiB ones.
    assert rm.held_bytes() <= (12 * MB + rm.HUGE_PAGE) + rm.KEEP_FREE * 12 * MB + 8 * MB
    del small


def test_results_in_reused_memory_match_the_reference():
    """Full conv results of one shape (counts and sums of 10 MB each, so pooled), dropped and
    recomputed on other data, stay exact."""
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.standard_normal((2, 48, 48, 16)).astype(np.float32)
        x[x < 0.2] = 0.0
        k = rng.standard_normal((3, 3, 16, 64)).astype(np.float32)
        counts, sums = nz.conv_classify(x, k, thresholds=(0.3, 0.4), padding="SAME")
        assert counts.nbytes >= rm.MIN_POOLED_BYTES
        ref_counts, ref_sums = rc.conv_classify(x, k, 0.3, 0.4, padding="SAME")
        np.testing.assert_array_equal(counts, ref_counts)
        scale = rc.conv_abs_products("conv_classify", x, k, None, padding="SAME")
        assert_sums_close(sums, ref_sums, scale)
        del counts, sums


def test_failed_mapping_is_a_memory_error_with_the_size(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(rm.mmap, "mmap", refuse)
    with pytest.raises(MemoryError, match=str(1 << 40)):
        rm.reusable_empty((1 << 40,), np.uint8)


def test_free_memory_is_released_before_a_result_is_refused(monkeypatch):
    from nearzero.backends import cpu_results

    held = rm.reusable_empty((3, 5 * MB), np.float32)
    del held
    assert any(m.free() for m in rm._mappings)
    monkeypatch.setattr(cpu_results, "available_memory_bytes", lambda: 1000)
    x = np.ones((1, 4, 4, 1), np.float32)
    with pytest.raises(MemoryError, match="reduce="):
        nz.conv_classify(x, np.ones((1, 1, 1, 1), np.float32), thresholds=0.5)
    assert not any(m.free() for m in rm._mappings)


def test_memory_held_only_through_the_raw_export_is_not_reused():
    a = rm.reusable_empty((4, 4 * MB), np.int32)
    first = _start(a)
    export = a.base
    while not isinstance(export, memoryview):  # the chain NumPy keeps: views, then the export
        export = export.base
    del a
    b = rm.reusable_empty((4, 4 * MB), np.int32)
    assert _start(b) != first  # the export still reaches the memory


def test_without_private_mappings_results_come_from_numpy(monkeypatch):
    monkeypatch.setattr(rm, "POOLED", False)
    held = rm.held_bytes()
    a = rm.reusable_empty((3, 5 * MB), np.float32)
    assert rm.held_bytes() == held and a.flags.owndata is False and _start(a) % 64 == 0
    a[...] = 2.0
    assert float(a.sum()) == 2.0 * a.size
