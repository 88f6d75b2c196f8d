"""`nearzero demo`: trains, explains and writes its plots (a few steps here)."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from nearzero.cli import main  # noqa: E402
from nearzero.demo import run_demo  # noqa: E402


def test_demo_runs_and_writes_plots(tmp_path, capsys):
    assert run_demo(device="cpu", steps=12, out=str(tmp_path)) == 0
    out = capsys.readouterr()
    assert "most affected layer first" in out.out
    assert "Most likely cause:" in out.out
    assert "training [" in out.err and "12/12" in out.err
    for name in ("history.png", "overview.png", "training-overview.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert len(list(tmp_path.glob("report-layer-*.png"))) == 1
    overview = json.loads((tmp_path / "overview.json").read_text())
    assert overview["step"] == 11  # the last step is recorded whatever the step count
    assert len(overview["layers"]) == 4


def test_demo_from_the_command_line(tmp_path, capsys):
    assert main(["demo", "--steps", "3", "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "history.png").exists()


def test_demo_refuses_a_missing_device(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert run_demo(device="cuda", steps=3, out=str(tmp_path)) == 2
    assert "not available" in capsys.readouterr().err
