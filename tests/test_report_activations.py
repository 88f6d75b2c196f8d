"""S_l is the exact derivative of the activation that follows the layer, at Z_l: activation
modules (in place or not), functions applied in `forward`, custom elementwise modules, and the
fall-backs (assumed ReLU, identity) when no activation can be seen."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nearzero import GradientRecorder, explain_near_zero_gradients  # noqa: E402


class Swish(nn.Module):  # a custom elementwise activation without parameters
    def forward(self, x):
        return x * torch.sigmoid(x)


class Functional(nn.Module):
    def __init__(self, fn, flatten=False):
        super().__init__()
        self.fc1, self.fc2, self.fn, self.flatten = nn.Linear(6, 8), nn.Linear(8, 3), fn, flatten

    def forward(self, x):
        a = self.fn(self.fc1(x))
        return self.fc2(a.reshape(a.shape[0], -1) if self.flatten else a)


def capture_of(model, layer="0", x=None):
    recorder = GradientRecorder(model, layers=[layer], record_every=1)
    x = torch.randn(10, 6) if x is None else x
    with recorder.step(0):
        out = model(x)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    recorder.detach()
    return recorder.capture(layer), recorder


def reference_derivative(fn, z):
    z = z.detach().clone().requires_grad_(True)
    (s,) = torch.autograd.grad(fn(z).sum(), z)
    return s


@pytest.mark.parametrize("activation, fn", [
    (nn.ReLU(), F.relu),
    (nn.ReLU(inplace=True), F.relu),
    (nn.LeakyReLU(0.2), lambda z: F.leaky_relu(z, 0.2)),
    (nn.GELU(), F.gelu),
    (nn.GELU(approximate="tanh"), lambda z: F.gelu(z, approximate="tanh")),
    (nn.SiLU(), F.silu),
    (nn.ELU(alpha=0.7), lambda z: F.elu(z, alpha=0.7)),
    (nn.Tanh(), torch.tanh),
    (nn.Sigmoid(), torch.sigmoid),
    (nn.Softplus(beta=2.0), lambda z: F.softplus(z, beta=2.0)),
    (Swish(), lambda z: z * torch.sigmoid(z)),
])
def test_activation_module_derivative_is_exact(activation, fn):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), activation, nn.Linear(8, 3))
    capture, _ = capture_of(model)
    torch.testing.assert_close(capture.s, reference_derivative(fn, capture.z))
    torch.testing.assert_close(capture.a, fn(capture.z))
    torch.testing.assert_close(capture.d_z, capture.d_a * capture.s)
    assert capture.activation.source == "module"
    assert capture.activation.name == type(activation).__name__


def test_prelu_derivative_uses_its_learned_slope_and_leaves_its_gradient_alone():
    torch.manual_seed(0)
    prelu = nn.PReLU(init=0.3)
    model = nn.Sequential(nn.Linear(6, 8), prelu, nn.Linear(8, 3))
    x = torch.randn(10, 6)
    capture, _ = capture_of(model, x=x)
    expected = torch.where(capture.z > 0, 1.0, 0.3)
    torch.testing.assert_close(capture.s, expected)
    recorded_grad = prelu.weight.grad.clone()
    prelu.weight.grad = None
    out = model(x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    torch.testing.assert_close(recorded_grad, prelu.weight.grad)  # S_l added nothing to it


@pytest.mark.parametrize("fn, name", [
    (F.relu, "relu"),
    (lambda z: F.relu(z, inplace=True), "relu"),
    (F.gelu, "gelu"),
    (torch.tanh, "tanh"),
    (lambda z: F.leaky_relu(z, 0.1), "leakyrelu"),
])
@pytest.mark.parametrize("flatten", [False, True])
def test_functional_activation_read_from_the_graph(fn, name, flatten):
    torch.manual_seed(0)
    model = Functional(fn, flatten)
    capture, recorder = capture_of(model, "fc1")
    assert capture.activation.source == "function"
    assert capture.activation.name == name
    plain = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh,
             "leakyrelu": lambda z: F.leaky_relu(z, 0.1)}[name]
    torch.testing.assert_close(capture.s, reference_derivative(plain, capture.z))
    torch.testing.assert_close(capture.d_z, capture.d_a * capture.s)
    report = explain_near_zero_gradients(recorder, "fc1").to_dict()
    assert "applied as a function" in report["notes"][0]


def test_hidden_relu_is_assumed_with_a_note():
    """A ReLU followed by pooling before the next module cannot be read from the graph."""
    torch.manual_seed(0)

    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 3 * 3, 2)

        def forward(self, x):
            return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))

    model = Hidden()
    recorder = GradientRecorder(model, layers=["conv"], record_every=1)
    with recorder.step(0):
        model(torch.randn(4, 1, 6, 6)).sum().backward()
    report = explain_near_zero_gradients(recorder, "conv").to_dict()
    assert report["activation"]["source"] == "assumed_relu"
    assert "ReLU is assumed" in report["activation"]["note"]
    s = next(sec for sec in report["sections"] if sec["key"] == "S_l")
    assert set(s["breakdown"]["terms"]) == {"P", "Z", "N"}


def test_output_layer_is_identity_with_a_note():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    recorder = GradientRecorder(model, layers=["2"], record_every=1)
    with recorder.step(0):
        F.cross_entropy(model(torch.randn(10, 6)), torch.randint(0, 3, (10,))).backward()
    report = explain_near_zero_gradients(recorder, "2").to_dict()
    assert report["activation"]["source"] == "identity"
    assert "S_l = 1" in report["activation"]["note"]


def test_non_elementwise_consumer_is_not_an_activation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Softmax(dim=-1), nn.Linear(8, 3))
    capture, recorder = capture_of(model)
    assert capture.s is None and capture.consumer == "Softmax"
    report = explain_near_zero_gradients(recorder, "0").to_dict()
    assert "Softmax" in report["activation"]["note"]


def test_training_rng_is_untouched():
    """Recording (which checks custom modules with random vectors) must not shift the user's
    random stream."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), Swish(), nn.Linear(8, 3))
    torch.manual_seed(5)
    capture_of(model, x=torch.ones(10, 6))
    after_recording = torch.rand(1)
    torch.manual_seed(5)
    model(torch.ones(10, 6))
    torch.linspace(-1, 1, 30)
    assert torch.equal(torch.rand(1), after_recording)
