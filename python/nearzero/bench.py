"""`nearzero bench`: times each fused op against the plain operation and the unfused reference on
the available devices, after checking that fused and reference results agree, and prints a
table of times and ratios (optionally also JSON). What a user runs on a GPU node to see what
the library does there. The cases are in `_bench_cases.py`.
"""

from __future__ import annotations

import json
import math
import platform
import time

import numpy as np

from ._backend import build_info
from ._bench_cases import cases

__all__ = ["run_bench", "available_devices"]


def available_devices() -> list:
    devices = ["cpu"]
    if build_info()["cuda_devices"] > 0:
        try:
            import torch
        except ImportError:
            return devices
        if torch.cuda.is_available():
            devices.append("cuda")
    return devices


def _synchronizer(device):
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def _best_time(fn, sync, repeats: int) -> float:
    """Best wall time of `fn` in seconds, the device synchronised inside the timed region."""
    best = math.inf
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


class _Tf32Off:
    """cuBLAS/cuDNN in full float32 while timing, as the fused kernels are."""

    def __enter__(self):
        try:
            import torch
        except ImportError:
            self.saved = None
            return self
        self.torch = torch
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            (self.torch.backends.cuda.matmul.allow_tf32,
             self.torch.backends.cudnn.allow_tf32) = self.saved


def _run_case(case, device, repeats) -> dict:
    sync = _synchronizer(device)
    record = {"op": case.op, "device": device, "size": case.size}
    fused = case.fused()  # also the warm-up
    sync()
    if case.reference is not None:
        ref = case.reference()
        sync()
        try:
            case.agree(fused, ref)
            record["agreement"] = True
        except AssertionError as error:
            record["agreement"] = False
            record["disagreement"] = str(error).strip().splitlines()[0][:200]
        del ref
    del fused
    record["fused_ms"] = _best_time(case.fused, sync, repeats) * 1e3
    if case.plain is not None:
        case.plain()
        record["plain_ms"] = _best_time(case.plain, sync, repeats) * 1e3
        record["fused_vs_plain"] = record["fused_ms"] / record["plain_ms"]
    if case.reference is not None:
        record["reference_ms"] = _best_time(case.reference, sync, max(1, repeats // 2)) * 1e3
        record["reference_vs_fused"] = record["reference_ms"] / record["fused_ms"]
    return record


def _format_table(records) -> str:
    def ms(v):
        return "" if v is None else f"{v:,.2f}"

    def ratio(v):
        return "" if v is None else f"{v:,.1f}x"

    header = ("op", "device", "size", "plain ms", "fused ms", "reference ms", "fused/plain",
              "reference/fused", "agree")
    rows = [header] + [(
        r["op"], r["device"], r["size"], ms(r.get("plain_ms")), ms(r.get("fused_ms")),
        ms(r.get("reference_ms")), ratio(r.get("fused_vs_plain")),
        ratio(r.get("reference_vs_fused")),
        {True: "yes", False: "NO", None: ""}[r.get("agreement")]) for r in records]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c < 3 else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _device_names(devices) -> dict:
    names = {"cpu": platform.processor() or platform.machine()}
    if "cuda" in devices:
        import torch

        names["cuda"] = torch.cuda.get_device_name()
    return names


def run_bench(device=None, json_path=None, quick=False) -> int:
    """Run the benchmark on `device` ("cpu", "cuda" or None for every available one); print
    the table, write JSON to `json_path` if given. Returns 0, or 1 when a fused result did not
    agree with the reference, or 2 when the device is not available."""
    available = available_devices()
    if device is None:
        devices = available
    elif device in available:
        devices = [device]
    else:
        print(f"nearzero bench: device {device!r} is not available here (available: "
              f"{', '.join(available)}; the CUDA device needs nearzero's CUDA module and a "
              "CUDA build of torch)")
        return 2
    repeats = 2 if quick else 5
    rng = np.random.default_rng(0)
    records = []
    with _Tf32Off():
        for dev in devices:
            for case in cases(dev, quick, rng):
                record = _run_case(case, dev, repeats)
                records.append(record)
                print(f"  {record['op']} on {dev}: {record['fused_ms']:.2f} ms", flush=True)
    print()
    print(_format_table(records))
    print("\nfused/plain: time of the fused op over the plain operation (numpy/torch; cuBLAS/"
          "cuDNN with TF32 off)\nreference/fused: how much faster the fused op is than the "
          "unfused method (9 masked ops for counts + 9 for sums)")
    if json_path:
        info = build_info()
        payload = {"nearzero": info, "quick": bool(quick), "devices": _device_names(devices),
                   "results": records}
        with open(json_path, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"\nwrote {json_path}")
    return 0 if all(r.get("agreement", True) for r in records) else 1
