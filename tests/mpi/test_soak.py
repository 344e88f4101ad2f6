"""Thousands of mixed collectives in one run: results all correct, memory and file handles stable."""
import os
import resource

import pytest
from mpi4py import MPI

from hccl_sim import Communicator
from hccl_sim.algorithms import BUILDERS
from hccl_sim.collectives import SPECS
from conftest import DTYPES
from test_collectives import FLOAT_OPS, INT_OPS, _call, _same

pytestmark = pytest.mark.mpi

CALLS = 2000
SIZES = (0, 1, 3, 17, 64, 255)


def _open_files():
    return len(os.listdir("/proc/self/fd"))


def test_soak(world):
    """Every collective in rotation, each with its algorithms (and auto), dtypes, ops, roots and sizes."""
    comm = Communicator(world, topology="two-level:server=2")
    plan = [(coll, algo) for coll, table in BUILDERS.items()
            for algo in [a for a in table if a in comm.model.applicable(coll)] + ["auto"]]
    wrong, rss_after_warmup, fds_after_warmup = [], None, None
    for i in range(CALLS):
        coll, algo = plan[i % len(plan)]
        dtype = DTYPES[(i // len(plan)) % len(DTYPES)]
        ops = FLOAT_OPS if dtype.is_floating_point else INT_OPS
        op = ops[i % len(ops)] if SPECS[coll].reduces else "sum"
        root = i % world.size if SPECS[coll].rooted else 0
        expected, out, kept = _call(comm, coll, algo, dtype, op, SIZES[i % len(SIZES)], root, seed=i)
        if not (_same(expected, out, op) and kept):
            wrong.append((i, coll, algo, str(dtype), op))
        if i == CALLS // 4:
            rss_after_warmup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            fds_after_warmup = _open_files()
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_after_warmup
    fds = _open_files()
    total_wrong = world.allreduce(len(wrong), op=MPI.SUM)
    assert not wrong, wrong[:5]
    assert total_wrong == 0
    assert fds == fds_after_warmup
    assert rss_growth_kib < 64 * 1024  # caches are bounded: no growth with the number of calls
