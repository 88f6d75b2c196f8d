"""The report on CUDA tensors: captures stay on the GPU and the report equals the CPU one."""

import pytest

import nearzero

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


def _cuda():
    info = nearzero.build_info()
    if not info["cuda_built"] or info["cuda_devices"] == 0 or not torch.cuda.is_available():
        pytest.skip("needs a CUDA device and nearzero's CUDA module")


def _model(kind):
    torch.manual_seed(0)
    if kind == "linear":
        model = nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 10))
    else:
        model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                              nn.Linear(16 * 8 * 8, 10))
    with torch.no_grad():
        model[0].bias[::2] = -100.0
    generator = torch.Generator().manual_seed(1)
    x = torch.randn((64, 32) if kind == "linear" else (16, 3, 8, 8), generator=generator)
    return model, x, torch.randint(0, 10, (x.shape[0],), generator=generator)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_report_on_cuda_matches_cpu(kind):
    _cuda()
    model, x, y = _model(kind)
    cpu = nearzero.explain_near_zero_gradients(model, "0", inputs=x, targets=y,
                                               loss_fn=F.cross_entropy).to_dict()
    model = model.cuda()
    recorder = nearzero.GradientRecorder(model, record_every=1)
    with recorder.step(0):
        F.cross_entropy(model(x.cuda()), y.cuda()).backward()
    capture = recorder.capture("0")
    for tensor in (capture.a0, capture.z, capture.s, capture.d_a, capture.d_z):
        assert tensor.is_cuda
    gpu = nearzero.explain_near_zero_gradients(recorder, "0").to_dict()
    assert [c["cause"] for c in gpu["causes"]] == [c["cause"] for c in cpu["causes"]]
    assert gpu["near_zero_count"] == cpu["near_zero_count"]
    for a, b in zip(gpu["sections"], cpu["sections"]):
        assert a["near_zero_fraction"] == pytest.approx(b["near_zero_fraction"], abs=1e-3)
    assert len(recorder.history) == 1


@pytest.mark.gpu
def test_demo_on_cuda(tmp_path):
    _cuda()
    pytest.importorskip("sklearn")
    from nearzero.demo import run_demo

    assert run_demo(device="cuda", steps=5, out=str(tmp_path)) == 0
