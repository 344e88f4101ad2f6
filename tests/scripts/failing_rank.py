"""A job in which the last rank fails mid-run; every other rank must time out naming it.

    mpirun -n N python failing_rank.py MODE OUTDIR
MODE ``absent``: the last rank never calls the collective; ``stop``: it freezes (SIGSTOP), as a hung
process; ``kill``: it SIGKILLs itself. Each surviving rank writes the error it got to OUTDIR/rank<r>.txt
(mpirun's output forwarding can lose lines when a job is torn down), waits briefly for the other
survivors' files, then lets the error go uncaught, which aborts the job: no orphans.
"""
import os
import signal
import sys
import time

import torch

from hccl_sim import CollectiveTimeout, Communicator, abort_on_uncaught_timeout

mode, outdir = sys.argv[1], sys.argv[2]
abort_on_uncaught_timeout()
comm = Communicator(timeout=3.0)
last = comm.size - 1
for _ in range(3):  # a few good calls first
    comm.allreduce(torch.ones(1000))
if comm.rank == last:
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(120)  # absent: busy elsewhere; ended by the others' abort
    sys.exit(0)
start = time.monotonic()
try:
    comm.allreduce(torch.ones(1000), algo="ring")
except CollectiveTimeout as exc:
    with open(os.path.join(outdir, f"rank{comm.rank}.txt"), "w") as fh:
        fh.write(f"{exc} | missing={exc.missing} | after={time.monotonic() - start:.2f}")
    wait_until = time.monotonic() + 10
    while len(os.listdir(outdir)) < last and time.monotonic() < wait_until:
        time.sleep(0.05)  # host time: let the other survivors record their error before the abort
    raise
