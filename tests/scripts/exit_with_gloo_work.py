"""A gloo operation finishing while the interpreter exits: rank 0's process must end cleanly.

    mpirun -n 2 python exit_with_gloo_work.py DIR [--without-teardown]

The examples' ``--check`` pattern made wide and deterministic: a gloo group that only a reference cycle
holds after ``destroy_process_group()`` (as an FSDP or DDP model holds its group), an all-gather on it
that completes while rank 0 is already in its exit, and rank 0 holding the GIL in C code through its last
exit handler (so its gloo worker, which needs the GIL to release the operation's tensors, cannot get it
before finalization begins). hccl_sim.torch's exit handler destroys the group before any of that, so its
destructor waits for the operation. ``--without-teardown`` unregisters that handler: the process aborts
("terminate called without an active exception"), which shows the case still reproduces the failure.
Rank 0's first exit handler writes a file in DIR; rank 1 all-gathers 0.5 s after it appears, when rank 0
is in that C code (or in hccl_sim.torch's handler, waiting for the all-gather).
"""
import atexit
import os
import sys
import time

directory = sys.argv[1]
marker = os.path.join(directory, "rank0-exiting")
atexit.register(sum, range(10 ** 8))  # runs last: C code holding the GIL for a second or more

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import hccl_sim.torch  # noqa: E402,F401
from hccl_sim.torch import teardown  # noqa: E402

if "--without-teardown" in sys.argv:
    atexit.unregister(teardown.destroy_at_exit)


class Holder:
    """Keeps a process group in a reference cycle, as FSDP and DDP modules do."""

    def __init__(self, group):
        self.group, self.me = group, self


def main() -> None:
    dist.init_process_group("hccl_sim")
    rank = dist.get_rank()
    if rank == 0:
        atexit.register(lambda: open(marker, "w").close())  # runs first
    holder = Holder(dist.new_group(backend="gloo"))
    out = torch.empty(2000)
    if rank == 1:
        deadline = time.monotonic() + 120
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
    work = dist.all_gather_single(out, torch.full((1000,), float(rank)), group=holder.group, async_op=True)
    if rank == 1:
        work.wait()
        assert out[:1000].eq(0).all() and out[1000:].eq(1).all(), out
    print(f"rank {rank}: issued", flush=True)
    dist.destroy_process_group()


main()
