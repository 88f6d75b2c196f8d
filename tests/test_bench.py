"""`nearzero bench` on the CPU in quick mode: it finishes, agrees with the reference and writes
the JSON a GPU node's run would write."""

import json

import pytest

from nearzero.bench import run_bench


def test_quick_cpu_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert run_bench(device="cpu", json_path=str(path), quick=True) == 0
    data = json.loads(path.read_text())
    assert data["quick"] is True and "cpu" in data["devices"]
    assert data["nearzero"]["version"]
    ops = {r["op"] for r in data["results"]}
    assert {"threshold", "multiply_classify", "matmul_classify"} <= ops
    for record in data["results"]:
        assert record["device"] == "cpu" and record["agreement"] is True
        for key in ("fused_ms", "plain_ms", "reference_ms"):
            assert record[key] > 0
        assert record["fused_vs_plain"] == pytest.approx(record["fused_ms"] / record["plain_ms"])
    table = capsys.readouterr().out
    assert "fused/plain" in table and "matmul_classify" in table


def test_unavailable_device_is_reported(capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is available here")
    assert run_bench(device="cuda", quick=True) == 2
    assert "not available" in capsys.readouterr().out
