"""torch CPU tensors in, torch tensors out: dtypes, autograd tensors, devices (SPEC §3, §4)."""

import numpy as np
import pytest

import nearzero as nz
from nearzero import reference as ref

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int32", "bool"])
def test_torch_in_torch_out(dtype):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(7, 11, generator=g) * 3).to(getattr(torch, dtype))
    y = (torch.randn(11, 5, generator=g) * 3).to(getattr(torch, dtype))
    counts, sums, (tx, ty) = nz.matmul_classify(x, y, 0.9, return_thresholds=True)
    assert isinstance(counts, torch.Tensor) and isinstance(sums, torch.Tensor)
    assert counts.dtype == torch.int32
    assert sums.dtype == (torch.float64 if dtype == "float64" else torch.float32)
    xf, yf = x.double().numpy(), y.double().numpy()
    rc, rs = ref.matmul_classify(xf, yf, tx, ty)
    np.testing.assert_array_equal(counts.numpy(), rc)
    np.testing.assert_allclose(sums.numpy(), rs, rtol=1e-5, atol=1e-5)


def test_requires_grad_inputs_are_fine_and_untouched():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.randn(3, 2)
    counts, sums = nz.matmul_classify(x, y)
    assert not sums.requires_grad
    torch.testing.assert_close(sums.sum(-1), (x @ y).detach())


def test_mixed_numpy_and_torch_follow_first_input():
    x = torch.randn(4, 3)
    counts, sums = nz.multiply_classify(x, np.ones(3, dtype=np.float32))
    assert isinstance(counts, torch.Tensor)
    counts, _ = nz.tensor_classify(torch.randn(5), reduce="all")
    assert isinstance(counts, torch.Tensor) and counts.shape == (3,)


def test_meta_device_is_rejected():
    with pytest.raises(ValueError, match="device"):
        nz.tensor_classify(torch.empty(3, device="meta"))
