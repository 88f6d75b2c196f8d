"""`nearzero bench` on the CPU in quick mode: it finishes, agrees with the reference, reports
each ratio as a median with its min-max spread and writes the JSON a GPU node's run would write;
under torchrun (gloo, two CPU processes) rank 0 reports a row per rank. The timing harness that
`benchmarks/` shares is checked on callables of known cost."""

import json
import os
import subprocess
import sys
import time
import weakref

import pytest

from nearzero._bench_timing import Spread, holding_result, spread_warning, time_interleaved
from nearzero.bench import run_bench

QUICK_OPS = ["threshold", "multiply_classify", "matmul_classify"]


def test_quick_cpu_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert run_bench(device="cpu", json_path=str(path), quick=True, repeats=2,
                     ops=QUICK_OPS) == 0
    data = json.loads(path.read_text())
    assert data["quick"] is True and data["repeats"] == 2 and "cpu" in data["devices"]
    assert data["nearzero"]["version"]
    assert {r["op"] for r in data["results"]} == set(QUICK_OPS)
    for record in data["results"]:
        assert record["device"] == "cpu" and record["agreement"] is True
        for key in ("fused_ms", "plain_ms", "reference_ms"):
            assert record[key] > 0
        for key in ("fused_vs_plain", "reference_vs_fused"):
            low, high = record[f"{key}_range"]
            assert 0 < low <= record[key] <= high
    table = capsys.readouterr().out
    assert "fused/plain" in table and "matmul_classify" in table and "min-max" in table


def test_unavailable_device_is_reported(capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is available here")
    assert run_bench(device="cuda", quick=True) == 2
    assert "not available" in capsys.readouterr().out


def test_distributed_needs_a_launcher(capsys, monkeypatch):
    pytest.importorskip("torch")
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert run_bench(device="cpu", quick=True, distributed=True) == 2
    assert "torchrun" in capsys.readouterr().out


@pytest.mark.distributed
def test_distributed_bench_has_a_row_per_rank(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "bench.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "nearzero.cli", "bench", "--distributed",
               "--device", "cpu", "--quick", "--repeats", "2", "--ops", "matmul_classify",
               "--json", str(path)]
    r = subprocess.run(command, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(path.read_text())
    assert data["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert sorted(rec["rank"] for rec in data["results"]) == [0, 1]
    assert all(rec["host"] and rec["agreement"] for rec in data["results"])
    assert r.stdout.count("matmul_classify") >= 2  # one table row per rank, printed once


def test_harness_times_in_turns_and_takes_ratios_round_by_round():
    calls = []

    def sleeper(name, seconds):
        def fn():
            calls.append(name)
            time.sleep(seconds)
        return fn

    t = time_interleaved({"slow": sleeper("slow", 0.03), "fast": sleeper("fast", 0.006)},
                         repeats=3, min_sample_s=0.02)
    # Fast callables are batched up to the sample length (sleep overshoots on a busy machine).
    assert t.calls_per_sample["slow"] == 1 and 2 <= t.calls_per_sample["fast"] <= 4
    assert len(t.seconds["slow"]) == len(t.seconds["fast"]) == 3
    assert calls[:2] == ["slow", "fast"]  # one warm-up call each first
    ratio = t.ratio("slow", "fast")
    assert 1.5 < ratio.median < 6.5 and ratio.low <= ratio.median <= ratio.high
    with pytest.raises(ValueError, match="repeats"):
        time_interleaved({"a": lambda: None}, repeats=0)


def test_spread_warning_above_a_quarter():
    assert spread_warning("x", Spread(4.0, 3.6, 4.4)) is None  # 20%
    warning = spread_warning("fused/plain of matmul", Spread(4.0, 3.0, 5.0))  # 50%
    assert warning.startswith("warning: fused/plain of matmul varies by 50%")


def test_plain_op_result_lives_until_the_next_call_returns():
    """holding_result: the previous result is alive while the next is made, then let go."""
    class Result:
        pass

    made, alive_during = [], []

    def op():
        alive_during.append([ref() is not None for ref in made])
        result = Result()
        made.append(weakref.ref(result))
        return result

    call = holding_result(op)
    assert call() is None  # results are not handed out
    call()
    call()
    assert alive_during == [[], [True], [False, True]]
    assert made[-1]() is not None and made[0]() is None
