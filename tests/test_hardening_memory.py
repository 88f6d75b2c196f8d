"""Crash-prone inputs, each in its own process: reads outside a buffer, working memory that grows
with k, allocation failures, geometry that overflows int64, broadcast views that would be
materialised. Peak memory is the process's resident set (getrusage), not tracemalloc, which
cannot see the compiled kernels' allocations."""

import pytest

from hardening_support import run_case

PEAK = """
import resource
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


@pytest.mark.parametrize("op", ["matmul", "tensordot", "multiply", "tensor"])
@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f4", "<f2"])
def test_non_item_strides_are_read_exactly(op, dtype):
    """Byte strides that are not whole items, also negative: no read outside the buffer."""
    run_case(f"""
    import numpy as np, nearzero as nz
    rng = np.random.default_rng(0)
    rec = np.zeros(4 * 9, dtype=[("a", "{dtype}"), ("b", "u1")])
    rec["a"] = rng.standard_normal(rec.shape)
    for x in (rec["a"].reshape(4, 9), rec["a"][::-1].reshape(4, 9), rec["a"].reshape(4, 9)[:, ::-2]):
        y = rng.standard_normal((x.shape[1], 5)).astype(np.float32)
        copy = np.ascontiguousarray(x)
        if "{op}" == "matmul":
            got, want = nz.matmul_classify(x, y, thresholds=0.3), nz.matmul_classify(copy, y, thresholds=0.3)
        elif "{op}" == "tensordot":
            got, want = (nz.tensordot_classify(x, y, 1, thresholds=0.3),
                         nz.tensordot_classify(copy, y, 1, thresholds=0.3))
        elif "{op}" == "multiply":
            got, want = nz.multiply_classify(x, x[:1], thresholds=0.3), nz.multiply_classify(copy, copy[:1], thresholds=0.3)
        else:
            got, want = nz.tensor_classify(x), nz.tensor_classify(copy)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    print("ok")
    """)


def test_bindings_refuse_reads_outside_the_array():
    """The compiled functions check strides and batch offsets against the array they get."""
    run_case("""
    import numpy as np
    from nearzero import _backend
    core = _backend.core
    x = np.ones((4, 6), np.float32); y = np.ones((6, 3), np.float32)
    counts = np.zeros(9, np.int64); sums = np.zeros(9, np.float64)
    zero = np.zeros(1, np.int64)
    def spec(mode, pairs, counts, sums, mask=None):
        return core.ResultSpec(mode=mode, pairs=pairs, counts=counts, sums=sums,
                               counts_int64=counts.dtype == np.int64,
                               cell_stride=pairs if mode == 0 else 0, pair_stride=1, mask=mask,
                               channels=1, channel_inner=1)
    bad = [
        ([1, 4, 6, 3], [6, 1, 3, 1], np.array([10], np.int64), zero),   # offset past the end
        ([1, 4, 6, 3], [6, 1, 3, 1], np.array([-1], np.int64), zero),   # before the start
        ([1, 5, 6, 3], [6, 1, 3, 1], zero, zero),                       # one row too many
        ([1, 4, 6, 3], [7, 1, 3, 1], zero, zero),                       # row stride too long
        ([1, 4, 6, 3], [-6, 1, 3, 1], zero, zero),                      # reads before data
        ([2, 4, 6, 3], [6, 1, 3, 1], zero, zero),                       # offsets per batch
        ([1, 4, 6, 3], [6, 1, 3, 2**62], zero, zero),                   # overflowing stride
    ]
    for dims, strides, xo, yo in bad:
        try:
            core.matmul_classify_f32(x, y, xo, yo, dims, strides, 0.5, 0.5,
                                     spec(1, 9, counts, sums))
        except ValueError as e:
            assert "nearzero" in str(e), e
        else:
            raise AssertionError(f"accepted {dims} {strides}")
    rec = np.zeros(6, dtype=[("a", "<f4"), ("b", "u1")])
    for wrong in (rec["a"], np.ones(6, np.float64)):
        try:
            core.tensor_classify_f32(wrong, [6], 0.5,
                                     spec(1, 3, np.zeros(3, np.int64), np.zeros(3, np.float64)))
        except ValueError:
            pass
        else:
            raise AssertionError("accepted an input the kernel cannot read")
    x6 = np.ones(6, np.float32)
    for counts, sums, mode, mask in [
            (np.zeros((6, 3), np.int32), np.zeros((5, 3), np.float32), 0, None),   # too few sums
            (np.zeros((6, 2), np.int32), np.zeros((6, 2), np.float32), 0, None),   # 2 pairs, not 3
            (np.zeros(9, np.int64), np.zeros(9, np.float64), 1, None),             # 3 slots, not 9
            (np.zeros((6, 3), np.int32), np.zeros((6, 3), np.float32), 0, np.ones(5, bool))]:
        try:
            core.tensor_classify_f32(x6, [6], 0.5, spec(mode, 3, counts, sums, mask))
        except ValueError:
            pass
        else:
            raise AssertionError("accepted result buffers the kernel would write past")
    full = (np.zeros((6, 3), np.int32), np.zeros((6, 3), np.float32))
    for result, problem in [
            (spec(1, 9, np.zeros(9, np.int64), np.zeros(9, np.float64)), "pairs"),  # another op's
            (core.ResultSpec(mode=0, pairs=3, counts=full[0], sums=full[1], counts_int64=True,
                             cell_stride=3, pair_stride=1, mask=None, channels=1,
                             channel_inner=1), "counts")]:  # says int64, holds int32
        try:
            core.tensor_classify_f32(x6, [6], 0.5, result)
        except ValueError as e:
            assert problem in str(e), e
        else:
            raise AssertionError(f"accepted a result spec with the wrong {problem}")
    print("ok")
    """)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_long_k_working_memory_does_not_grow_with_k_or_threads(threads):
    """A dot product of two 64 MB vectors and (8, 2^21) @ (2^21, 8): tens of MB at most (the
    kernels used to take about 384 bytes x k per thread: 6.4 GB and 0.8 GB x threads)."""
    out = run_case(prelude=PEAK, code="""
    import numpy as np, nearzero as nz
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2**24, dtype=np.float32)
    a = rng.standard_normal((8, 2**21), dtype=np.float32); b = rng.standard_normal((2**21, 8), dtype=np.float32)
    base = peak_mb()
    c, s = nz.matmul_classify(x, x, thresholds=0.5, reduce="all")
    assert c.sum() == 2**24
    c2, s2 = nz.matmul_classify(a, b, thresholds=0.5)
    c3, s3 = nz.matmul_classify(a, b, thresholds=0.5, reduce="all")
    grown = peak_mb() - base
    print("grown MB", grown)
    assert grown < 96, grown
    exact = float(np.dot(x.astype(np.float64), x))
    assert abs(float(s.sum()) - exact) <= 1e-5 * exact
    np.testing.assert_array_equal(c2.sum((0, 1)), c3)
    np.testing.assert_allclose(s2.sum((0, 1)), s3, rtol=1e-5, atol=1e-2)
    print("ok")
    """, env={"OMP_NUM_THREADS": str(threads)})
    assert "grown MB" in out


def test_allocation_failure_is_a_memory_error_with_the_size():
    """Under an address-space limit a kernel's allocation fails: MemoryError, not SIGABRT."""
    out = run_case(prelude=PEAK, code="""
    import resource, numpy as np, nearzero as nz
    x = np.ones((1, 2**14, 2**12, 1), np.float32)          # 256 MB; class codes need 64 MB
    nz.conv_classify(x[:, :8, :8], np.ones((1, 1, 1, 1), np.float32), thresholds=0.5)
    rss = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (rss + 40 * 2**20, resource.RLIM_INFINITY))
    try:
        nz.conv_classify(x, np.ones((1, 1, 1, 1), np.float32), thresholds=0.5, reduce="all")
    except MemoryError as e:
        print("MemoryError:", e)
        assert "bytes" in str(e) or "GiB" in str(e), e
    else:
        raise AssertionError("no MemoryError")
    print("ok")
    """, env={"OMP_NUM_THREADS": "1"})
    assert "MemoryError" in out


@pytest.mark.parametrize("op", ["conv_classify", "conv_backprop_filter_classify",
                                "conv_backprop_input_classify"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_geometry_overflow_is_a_value_error_naming_the_argument(op, dims):
    run_case(f"""
    import numpy as np, nearzero as nz
    dims = {dims}
    x = np.ones((1,) + (5,) * dims + (2,), np.float32)
    k = np.ones((3,) * dims + (2, 4), np.float32)
    def call(**kw):
        if "{op}" == "conv_classify":
            return nz.conv_classify(x, k, thresholds=0.1, **kw)
        if "{op}" == "conv_backprop_filter_classify":
            return nz.conv_backprop_filter_classify(x, np.ones((1,) + (3,) * dims + (4,), np.float32),
                                                    k.shape, thresholds=0.1, **kw)
        return nz.conv_backprop_input_classify(np.ones((1,) + (3,) * dims + (4,), np.float32), k,
                                               x.shape, thresholds=0.1, **kw)
    cases = [(dict(dilations=2**61, padding=2**62), "dilations"), (dict(strides=2**63), "strides"),
             (dict(strides=2**40 + 1), "strides"), (dict(padding=2**62), "padding"),
             (dict(dilations=[2**50] * dims), "dilations"), (dict(padding=[(0, 2**63)] * dims), "padding")]
    for kwargs, name in cases:
        try:
            call(**kwargs)
        except ValueError as e:
            assert name in str(e), (kwargs, e)
        else:
            raise AssertionError(f"accepted {{kwargs}}")
    print("ok")
    """)


def test_binding_refuses_overflowing_geometry():
    run_case("""
    import numpy as np
    from nearzero import _backend
    g = [0, 1, 1, 1, 1, 1, 1, 5, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 2**61, 0, 0, 2**62]
    x = np.ones(5, np.float32); k = np.ones(3, np.float32)
    try:
        spec = _backend.core.ResultSpec(mode=1, pairs=9, counts=np.zeros(9, np.int64),
                                        sums=np.zeros(9, np.float64), counts_int64=True,
                                        cell_stride=0, pair_stride=1, mask=None, channels=1,
                                        channel_inner=1)
        _backend.core.conv_classify_f32(x, k, g, 0.1, 0.1, spec)
    except ValueError as e:
        assert "overflow" in str(e), e
    else:
        raise AssertionError("accepted")
    print("ok")
    """)


def test_broadcast_views_are_never_materialised():
    """Checks and thresholds read each distinct element once; a (2^40,) view costs nothing."""
    run_case(prelude=PEAK, code="""
    import numpy as np, nearzero as nz
    row = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    view = np.broadcast_to(row, (65536, 4096))            # 1 GiB if materialised
    base = peak_mb()
    ordered = np.sort(np.abs(row))                        # the view's order statistics:
    idx = (view.size - 1) * np.float64(np.float32(5.0)) / 100  # each value 65536 times
    lo, hi = ordered[int(np.floor(idx)) // 65536], ordered[int(np.ceil(idx)) // 65536]
    assert nz.threshold(view) == float(np.float32(0.5) * (lo + hi))
    counts, _ = nz.tensor_classify(view, reduce="all")
    assert counts.sum() == view.size
    c1, _ = nz.multiply_classify(view[:64], row, reduce="all")
    assert c1.sum() == 64 * 4096
    huge = np.broadcast_to(np.float32(3.0), (2**40,))
    assert nz.threshold(huge) == 3.0
    try:
        nz.tensor_classify(np.broadcast_to(np.float32("nan"), (2**40,)), reduce="all")
    except ValueError as e:
        assert str(2**40) in str(e), e
    else:
        raise AssertionError("NaNs not reported")
    half = np.broadcast_to(np.array([np.nan, 1.0], np.float32), (2**39, 2))
    assert nz.threshold(half, nan_policy="omit") == 1.0
    try:
        nz.tensor_classify(huge)
    except MemoryError as e:
        assert "reduce=" in str(e)
    grown = peak_mb() - base
    assert grown < 64, grown
    print("ok")
    """)
