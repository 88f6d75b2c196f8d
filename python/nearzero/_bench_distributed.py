"""`nearzero bench --distributed`: the benchmark over a torch.distributed job (torchrun or any
launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT). Every process times its own
device, its local GPU (LOCAL_RANK) or else the CPU share the launcher gives it (torchrun sets
OMP_NUM_THREADS); all processes run each case at the same time, and rank 0 prints one table with
a row per rank and host, so a slow node or GPU stands out, and writes the JSON.
"""

from __future__ import annotations

import os
import socket

from ._backend import build_info

__all__ = ["run_distributed"]

_LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _device(requested):
    """(device string, None) or (None, message) for this process."""
    from .bench import available_devices

    gpu = "cuda" in available_devices()
    if requested == "cuda" and not gpu:
        return None, ("nearzero bench --distributed: device 'cuda' is not available here (it "
                      "needs nearzero's CUDA module and a CUDA build of torch)")
    if requested not in (None, "cpu", "cuda"):
        return None, f"nearzero bench --distributed: unknown device {requested!r}"
    if gpu and requested != "cpu":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}", None
    return "cpu", None


def run_distributed(device, json_path, quick, repeats, ops) -> int:
    from .bench import _device_names, _report, _time_cases

    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        print("nearzero bench --distributed needs torch (with torch.distributed)")
        return 2
    missing = [v for v in _LAUNCHER_VARIABLES if v not in os.environ]
    if not dist.is_available() or (missing and not dist.is_initialized()):
        print("nearzero bench --distributed: run it under a launcher, for example "
              "`torchrun --nproc-per-node 2 -m nearzero.cli bench --distributed` "
              f"(missing environment: {', '.join(missing)})")
        return 2
    dev, problem = _device(device)
    if problem:
        print(problem)
        return 2
    if dev.startswith("cuda"):
        torch.cuda.set_device(torch.device(dev))
    backend = "nccl" if dev.startswith("cuda") else "gloo"
    started_here = not dist.is_initialized()
    if started_here:
        dist.init_process_group(backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        info = build_info()
        records = _time_cases([dev], quick, repeats, ops, progress=dist.barrier,
                              verbose=rank == 0)
        host = socket.gethostname()
        for r in records:
            r.update(rank=rank, host=host, cpu_threads=info["cpu_threads"])
        own = 0 if all(r.get("agreement", True) for r in records) else 1
        gathered = [None] * world
        dist.all_gather_object(gathered, (records, _device_names([dev]), own))
        code = max(part[2] for part in gathered)
        if rank == 0:
            rows = [r for part in gathered for r in part[0]]
            devices = {f"rank {i}": part[1] for i, part in enumerate(gathered)}
            payload = {"nearzero": info, "quick": bool(quick), "repeats": repeats,
                       "distributed": {"world_size": world, "backend": dist.get_backend()},
                       "devices": devices}
            code = max(code, _report(rows, json_path, payload))
        return code
    finally:
        if started_here:
            dist.destroy_process_group()
