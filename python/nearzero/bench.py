"""`nearzero bench`: times each fused op against the plain operation and the unfused reference on
the available devices, after checking that fused and reference results agree, and prints a
table of times and ratios (optionally also JSON). What a user runs on a GPU node to see what
the library does there. The cases are in `_bench_cases.py`, the timing harness (shared with
`benchmarks/`) in `_bench_timing.py`, the run over a torch.distributed job in
`_bench_distributed.py`.
"""

from __future__ import annotations

import json
import platform

import numpy as np

from ._backend import build_info
from ._bench_cases import cases
from ._bench_timing import Spread, holding_result, spread_warning, time_interleaved

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
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


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
    fused = case.fused()  # also a first warm-up
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
    functions = {"fused": case.fused}
    if case.plain is not None:
        functions["plain"] = holding_result(case.plain)
    if case.reference is not None:
        functions["reference"] = case.reference
    timings = time_interleaved(functions, repeats, sync=sync)
    record["repeats"] = repeats
    for name in functions:
        record[f"{name}_ms"] = timings.median(name) * 1e3
    for key, (numerator, denominator) in RATIOS.items():
        if numerator in functions and denominator in functions:
            r = timings.ratio(numerator, denominator)
            record[key] = r.median
            record[f"{key}_range"] = [r.low, r.high]
    return record


# Ratios of each case: key -> (numerator, denominator), each taken round by round.
RATIOS = {"fused_vs_plain": ("fused", "plain"), "reference_vs_fused": ("reference", "fused")}


def _ratio_cell(record, key) -> str:
    if key not in record:
        return ""
    low, high = record[f"{key}_range"]
    return f"{record[key]:,.1f}x ({low:,.1f}-{high:,.1f})"


def _format_table(records) -> str:
    def ms(v):
        return "" if v is None else f"{v:,.2f}"

    distributed = any("rank" in r for r in records)
    header = (("rank", "host") if distributed else ()) + (
        "op", "device", "size", "plain ms", "fused ms", "reference ms", "fused/plain",
        "reference/fused", "agree")
    rows = [header] + [(
        ((str(r["rank"]), r["host"]) if distributed else ()) + (
            r["op"], r["device"], r["size"], ms(r.get("plain_ms")), ms(r.get("fused_ms")),
            ms(r.get("reference_ms")), _ratio_cell(r, "fused_vs_plain"),
            _ratio_cell(r, "reference_vs_fused"),
            {True: "yes", False: "NO", None: ""}[r.get("agreement")])) for r in records]
    text_columns = 5 if distributed else 3
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c < text_columns else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _warnings(records) -> list:
    lines = []
    for r in records:
        where = f" on rank {r['rank']} ({r['host']})" if "rank" in r else ""
        for key, label in (("fused_vs_plain", "fused/plain"),
                           ("reference_vs_fused", "reference/fused")):
            if key in r:
                w = spread_warning(f"{label} of {r['op']} on {r['device']}{where}",
                                   Spread(r[key], *r[f"{key}_range"]))
                if w:
                    lines.append(w)
    return lines


def _device_names(devices) -> dict:
    names = {"cpu": platform.processor() or platform.machine()}
    for dev in devices:
        if dev.startswith("cuda"):
            import torch

            names[dev] = torch.cuda.get_device_name(torch.device(dev))
    return names


def _select_devices(device):
    """(devices, None) or (None, message) for `--device`."""
    available = available_devices()
    if device is None:
        return available, None
    if device in available:
        return [device], None
    return None, (f"nearzero bench: device {device!r} is not available here (available: "
                  f"{', '.join(available)}; the CUDA device needs nearzero's CUDA module and a "
                  "CUDA build of torch)")


def _time_cases(devices, quick, repeats, ops, progress, verbose=True) -> list:
    rng = np.random.default_rng(0)
    records = []
    with _Tf32Off():
        for dev in devices:
            for case in cases("cuda" if dev.startswith("cuda") else dev, quick, rng):
                if ops and case.op not in ops:
                    continue
                progress()
                record = _run_case(case, dev, repeats)
                records.append(record)
                if verbose:
                    print(f"  {record['op']} on {dev}: {record['fused_ms']:.2f} ms", flush=True)
    return records


def _report(records, json_path, payload) -> int:
    print()
    print(_format_table(records))
    print("\nmedian over the rounds (min-max); fused/plain: time of the fused op over the plain "
          "operation (numpy/torch; cuBLAS/cuDNN with TF32 off)\nreference/fused: how much "
          "faster the fused op is than the unfused method (9 masked ops for counts + 9 for sums)")
    for line in _warnings(records):
        print(line)
    if json_path:
        payload["results"] = records
        with open(json_path, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"\nwrote {json_path}")
    return 0 if all(r.get("agreement", True) for r in records) else 1


def run_bench(device=None, json_path=None, quick=False, repeats=None, ops=None,
              distributed=False) -> int:
    """Run the benchmark on `device` ("cpu", "cuda" or None for every available one); print
    the table, write JSON to `json_path` if given. `repeats` interleaved rounds (default 3
    with `quick`, else 7); `ops` limits the ops timed (names as in the table).

    With `distributed`, under torchrun (or any launcher that sets up torch.distributed's
    environment), every process times its own device (its local GPU, else the CPU share the
    launcher gives it) and rank 0 prints one table with a row per rank and host and writes the
    JSON. Returns 0, or 1 when a fused result did not agree with the reference, or 2 when the
    device is not available."""
    repeats = repeats or (3 if quick else 7)
    ops = set(ops) if ops else None
    if distributed:
        from ._bench_distributed import run_distributed

        return run_distributed(device, json_path, quick, repeats, ops)
    devices, problem = _select_devices(device)
    if problem:
        print(problem)
        return 2
    records = _time_cases(devices, quick, repeats, ops, lambda: None)
    payload = {"nearzero": build_info(), "quick": bool(quick), "repeats": repeats,
               "devices": _device_names(devices)}
    return _report(records, json_path, payload)
