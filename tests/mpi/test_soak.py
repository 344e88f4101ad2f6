"""Thousands of mixed collectives in one run: results all correct, memory and file handles stable."""
import os
import resource

import pytest
import torch
from mpi4py import MPI

from hccl_sim import Communicator
from conftest import DTYPES, inputs_for, torch_reference

pytestmark = pytest.mark.mpi

CALLS = 1200


def _open_files():
    return len(os.listdir("/proc/self/fd"))


def test_soak(world):
    comm = Communicator(world, topology="two-level:server=2")
    algos = ["ring", "tree", "rhd", "auto"] + (["hier"] if "hier" in comm.model.applicable("allreduce") else [])
    ops = ["sum", "max", "min", "prod"]
    wrong, rss_after_warmup, fds_after_warmup = 0, None, None
    for i in range(CALLS):
        dtype = DTYPES[i % len(DTYPES)]
        op = ops[(i // len(DTYPES)) % len(ops)]
        count = (i * 7919) % 5000
        xs = inputs_for(world.size, count, dtype, op, seed=i)
        tensor = xs[world.rank].clone()
        comm.allreduce(tensor, op=op, algo=algos[i % len(algos)])
        wrong += int(not torch.equal(tensor, torch_reference(op, xs)))
        if i == CALLS // 4:
            rss_after_warmup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            fds_after_warmup = _open_files()
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_after_warmup
    fds = _open_files()
    total_wrong = world.allreduce(wrong, op=MPI.SUM)
    assert total_wrong == 0
    assert fds == fds_after_warmup
    assert rss_growth_kib < 64 * 1024  # caches are bounded: no growth with the number of calls
