"""GPU path behaviour around the kernels: result types and devices, streams, the size guard,
errors, inputs left untouched, concurrent calls. Real-GPU-only checks skip with a reason."""

import threading

import numpy as np
import pytest

import nearzero as nz
from nearzero import _backend
from conftest import sample
from gpu_support import device, real_gpu_reason  # noqa: F401  (fixture)


def test_inputs_are_never_modified_and_results_never_alias(device, rng):
    x, y = sample(rng, (9, 16), "normal"), sample(rng, (16, 5), "relu")
    gx, gy = device.put(x), device.put(y)
    counts, sums = nz.matmul_classify(gx, gy)
    np.testing.assert_array_equal(device.get(gx), x)
    np.testing.assert_array_equal(device.get(gy), y)
    c2, s2 = nz.tensor_classify(gx)
    np.testing.assert_array_equal(device.get(gx), x)
    device.assert_native(c2)


def test_inputs_on_different_devices(device, rng):
    x, y = sample(rng, (3, 4), "normal"), sample(rng, (4, 2), "normal")
    with pytest.raises(ValueError, match="different devices"):
        nz.matmul_classify(device.put(x), y)
    with pytest.raises(ValueError, match="different devices"):
        nz.multiply_classify(x, device.put(x))


def test_size_guard_uses_device_memory(device, rng, monkeypatch):
    from nearzero.backends import cuda_results

    monkeypatch.setattr(cuda_results, "free_device_bytes", lambda arrays: 1000)
    x, y = sample(rng, (30, 8), "normal"), sample(rng, (8, 20), "normal")
    with pytest.raises(MemoryError, match=r"needs .* GiB .* free on cuda:0; pass reduce='all'"):
        nz.matmul_classify(device.put(x), device.put(y))
    counts, _ = nz.matmul_classify(device.put(x), device.put(y), reduce="all")
    assert device.get(counts).sum() == 30 * 8 * 20


def test_missing_cuda_module_is_actionable(device, rng, monkeypatch):
    monkeypatch.setattr(_backend, "_cuda", None)
    with pytest.raises(RuntimeError, match="no CUDA module.*NEARZERO_CUDA=ON"):
        nz.matmul_classify(device.put(np.ones((2, 2), np.float32)),
                           device.put(np.ones((2, 2), np.float32)))


def test_complex_inputs_are_rejected(device):
    with pytest.raises(TypeError, match="complex"):
        nz.tensor_classify(device.put(np.ones(3, np.complex64)))


def _torch_cuda():
    reason = real_gpu_reason()
    if reason:
        pytest.skip(reason)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA support here")
    return torch


@pytest.mark.gpu
def test_kernels_run_on_the_callers_torch_stream():
    torch = _torch_cuda()
    rng = np.random.default_rng(3)
    x_host = sample(rng, (256, 512), "normal")
    y_host = sample(rng, (256, 512), "relu")
    want = nz.multiply_classify(x_host * 2, y_host, thresholds=(0.2, 0.1))
    side = torch.cuda.Stream()
    x = torch.from_numpy(x_host).cuda()
    y = torch.from_numpy(y_host).cuda()
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)  # the stream is busy when the work below is queued
        x.mul_(2)
        # thresholds given and NaNs omitted: nothing waits on the host before the kernel
        counts, sums = nz.multiply_classify(x, y, thresholds=(0.2, 0.1), nan_policy="omit")
    side.synchronize()
    np.testing.assert_array_equal(counts.cpu().numpy(), want[0])
    np.testing.assert_array_equal(sums.cpu().numpy(), want[1])


@pytest.mark.gpu
def test_results_stay_on_the_inputs_device():
    torch = _torch_cuda()
    index = torch.cuda.device_count() - 1
    x = torch.randn(5, 7, device=f"cuda:{index}")
    counts, sums = nz.matmul_classify(x, x.T)
    assert counts.device == x.device and sums.device == x.device
    assert nz.build_info()["cuda_devices"] == torch.cuda.device_count()


@pytest.mark.gpu
def test_cupy_stream_and_generic_cuda_arrays():
    _torch_cuda()
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    import torch

    rng = np.random.default_rng(4)
    x, y = sample(rng, (33, 40), "normal"), sample(rng, (40, 17), "normal")
    want = nz.matmul_classify(x, y, return_thresholds=True)
    with cupy.cuda.Stream(non_blocking=True):
        got = nz.matmul_classify(cupy.asarray(x), cupy.asarray(y), return_thresholds=True)
        assert isinstance(got[0], cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(got[0]), want[0])
    assert got[2] == want[2]

    class Interface:  # only __cuda_array_interface__: results come back as CuPy arrays
        def __init__(self, tensor):
            self.tensor = tensor
            self.__cuda_array_interface__ = tensor.__cuda_array_interface__

    tx = torch.from_numpy(x).cuda()
    counts, _ = nz.tensor_classify(Interface(tx), threshold=0.5)
    assert isinstance(counts, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(counts), nz.tensor_classify(x, threshold=0.5)[0])


@pytest.mark.gpu
def test_concurrent_calls_from_threads():
    torch = _torch_cuda()
    rng = np.random.default_rng(5)
    pairs = [(sample(rng, (64, 96), "normal"), sample(rng, (96, 48), "relu")) for _ in range(4)]
    wants = [nz.matmul_classify(x, y, thresholds=0.1) for x, y in pairs]
    results = [None] * len(pairs)

    def work(i):
        x, y = (torch.from_numpy(a).cuda() for a in pairs[i])
        for _ in range(5):
            results[i] = nz.matmul_classify(x, y, thresholds=0.1)
        torch.cuda.current_stream().synchronize()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (counts, _), (want_counts, _) in zip(results, wants):
        np.testing.assert_array_equal(counts.cpu().numpy(), want_counts)
