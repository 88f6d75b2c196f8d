"""Two local processes under torch.distributed (gloo), for the tests that run a model under DDP.

The processes meet through a file store in the test's temporary folder: a TCP port picked as
free can be taken by another program before the first process binds it.
"""

import contextlib
import os
import subprocess
import sys

WORLD = 2


def store_url(out: str) -> str:
    return "file://" + os.path.join(os.path.abspath(out), "store")


@contextlib.contextmanager
def process_group(rank: int, out: str):
    """The gloo process group of one worker for the block. Once the block has run, every
    process waits for the others before the group is torn down: a process that tears its group
    down while the other still talks to it can end in gloo's abort ("terminate called without
    an active exception")."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=store_url(out), rank=rank, world_size=WORLD)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_workers(script: str, out) -> None:
    """Runs `script` once per rank as `python script RANK OUT` and fails with their output
    if any process fails."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, script, str(rank), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for rank in range(WORLD)]
    try:
        outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
