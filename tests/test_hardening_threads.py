"""The ops under hostile process settings, each case in its own process: fork after the ops
ran threaded, a smaller OpenMP team than asked, flush-to-zero mode, Ctrl-C during a long
kernel."""

import os

import pytest

from hardening_support import run_case

TESTS = os.path.dirname(os.path.abspath(__file__))

WORK = """
import numpy as np, nearzero as nz
def work(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((70, 300)).astype(np.float32)
    y = rng.standard_normal((300, 40)).astype(np.float32)
    c, s = nz.matmul_classify(x, y)
    t = nz.threshold(rng.standard_normal(300_000))
    cc, _ = nz.conv_classify(rng.standard_normal((2, 9, 9, 3)), rng.standard_normal((3, 3, 3, 4)),
                             reduce="all")
    cf, _ = nz.conv_backprop_filter_classify(rng.standard_normal((2, 9, 9, 3)),
                                             rng.standard_normal((2, 7, 7, 4)), (3, 3, 3, 4))
    ce, _ = nz.tensor_classify(rng.standard_normal((500, 300)), reduce="all")
    return int(c.sum()), t, int(cc.sum()), int(cf.sum()), int(ce.sum())
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_ops_in_a_multiprocessing_pool_after_the_parent_ran_them(method):
    """libgomp's threads do not survive fork(): a forked child runs the ops on one thread."""
    run_case(prelude=WORK, code=f"""
    import multiprocessing as mp, os
    if __name__ == "__main__":
        mine = [work(seed) for seed in range(3)]             # the parent's team exists now
        with mp.get_context("{method}").Pool(2) as pool:
            theirs = pool.map(work, range(3))
        assert theirs == mine, (theirs, mine)
        pid = os.fork() if "{method}" == "fork" else None
        if pid == 0:                                         # a bare fork, too
            os._exit(0 if work(0) == mine[0] else 3)
        if pid:
            assert os.waitpid(pid, 0)[1] == 0
        print("ok")
    """, timeout=240, env={"OMP_NUM_THREADS": "4"})


@pytest.mark.parametrize("env", [{"OMP_DYNAMIC": "true", "OMP_NUM_THREADS": "4"},
                                 {"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "4"},
                                 {"OMP_DYNAMIC": "true", "OMP_THREAD_LIMIT": "2",
                                  "OMP_NUM_THREADS": "8"}])
def test_threshold_and_classify_suites_with_a_smaller_team(env):
    """The threshold and classify test modules, run under OpenMP settings that give a region
    fewer threads than omp_get_max_threads() says."""
    run_case(f"""
    import sys, pytest
    code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", "-W", "error",
                        "--rootdir", {TESTS!r}, "-k", "not float64",
                        {os.path.join(TESTS, "test_threshold.py")!r},
                        {os.path.join(TESTS, "test_elementwise.py")!r},
                        {os.path.join(TESTS, "test_rule_cases.py")!r},
                        {os.path.join(TESTS, "test_matmul.py")!r} + "::test_matmul_matches_reference",
                        {os.path.join(TESTS, "test_conv_reduce.py")!r}])
    print("ok" if code == 0 else f"pytest exit {{code}}")
    """, timeout=600, env=dict(env, PYTHONPATH=TESTS))


def test_one_class_per_value_in_flush_to_zero_mode():
    """torch.set_flush_denormal(True) sets FTZ/DAZ on the calling thread only; every thread
    classifies subnormals by their sign (P/N unless below the threshold), as without it."""
    run_case("""
    import numpy as np, torch, nearzero as nz
    x = np.full((64, 1000), 1e-40, dtype=np.float32); x[::3] = -1e-40; x[:, ::7] = 3e-39
    k = np.full((3, 3, 1, 2), 2e-39, np.float32)
    x64 = x.astype(np.float64) * 1e-280
    def results():
        return [nz.tensor_classify(x, threshold=0.0, reduce="all")[0],
                nz.tensor_classify(x, threshold=1e-39)[0],
                nz.tensor_classify(x64, threshold=0.0, reduce="channel", channel_axis=0)[0],
                nz.multiply_classify(x, x[:1], thresholds=0.0, reduce="all")[0],
                nz.matmul_classify(x, x.T, thresholds=0.0)[0],
                nz.conv_classify(x.reshape(1, 64, 1000, 1), k, thresholds=0.0, reduce="all")[0],
                np.array([nz.threshold(x), nz.threshold(x64), nz.threshold(x, 0.5)])]
    normal = results()
    assert normal[0][0] > 0 and normal[0][1] == 0        # subnormals are P or N, not Z
    torch.set_flush_denormal(True)
    flushed = results()
    for a, b in zip(normal, flushed):
        np.testing.assert_array_equal(a, b)
    print("ok")
    """, env={"OMP_NUM_THREADS": "4"})


@pytest.mark.parametrize("op", ["conv", "conv_filter", "conv_input", "matmul", "dot",
                                "tensor", "threshold"])
def test_ctrl_c_interrupts_a_long_kernel_within_a_second(op):
    out = run_case(f"""
    import os, signal, threading, time, numpy as np, nearzero as nz
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 8, 8, 1)).astype(np.float32)
    calls = {{
        "conv": lambda: nz.conv_classify(a, np.ones((3, 3, 1, 1), np.float32), padding=20000,
                                         thresholds=0.5, reduce="all"),
        "conv_filter": lambda: nz.conv_backprop_filter_classify(
            a, np.ones((1, 5994, 5994, 1), np.float32), (15, 15, 1, 1), padding=3000,
            thresholds=0.5, reduce="all"),
        "conv_input": lambda: nz.conv_backprop_input_classify(
            np.ones((1, 1000, 1000, 16), np.float32), np.ones((31, 31, 1, 16), np.float32),
            (1, 1030, 1030, 1), thresholds=0.5, reduce="all"),
        "matmul": lambda: nz.matmul_classify(np.ones((6000, 6000), np.float32),
                                             np.ones((6000, 6000), np.float32), thresholds=0.5,
                                             reduce="all"),
        "dot": lambda: [nz.matmul_classify(v, v, thresholds=0.5, reduce="all")
                        for v in [np.ones(2**27, np.float32)] * 50],
        "tensor": lambda: nz.tensor_classify(np.broadcast_to(np.float32(1), (2**36,)),
                                             threshold=0.5, reduce="all"),
        "threshold": lambda: [nz.threshold(v) for v in [np.ones(2**27, np.float32)] * 100],
    }}
    call = calls["{op}"]
    fired = []
    def fire():
        time.sleep(1.0)
        fired.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()
    try:
        call()
        raise AssertionError("finished before the interrupt")
    except KeyboardInterrupt:
        waited = time.perf_counter() - fired[0]
    print("interrupted after", waited)
    assert waited < 1.5, waited
    time.sleep(0.2)
    assert threading.active_count() == 1
    print("ok")
    """, timeout=120, env={"OMP_NUM_THREADS": "2"})
    assert "interrupted after" in out


def test_exceptions_inside_parallel_regions_reach_python():
    """A failure inside an OpenMP region (here: the kernel's allocation under an address-space
    limit, on every thread) is raised in Python; the process lives on and the next call works."""
    run_case("""
    import resource, numpy as np, nearzero as nz
    x = np.ones((3, 2**13, 2**12, 1), np.float32)   # 384 MB: class codes need 96 MB
    k = np.ones((1, 1, 1, 1), np.float32)
    rss = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (rss + 64 * 2**20, resource.RLIM_INFINITY))
    for _ in range(3):
        try:
            nz.conv_classify(x, k, thresholds=0.5, reduce="all")
        except MemoryError:
            pass
        else:
            raise AssertionError("no MemoryError")
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    counts, _ = nz.conv_classify(x[:, :64], k, thresholds=0.5, reduce="all")
    assert counts.sum() == 3 * 64 * 2**12
    print("ok")
    """, env={"OMP_NUM_THREADS": "1"})
