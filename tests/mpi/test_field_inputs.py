"""Inputs users send to the Communicator (issue 13), under mpirun: counts of any integer type, integer
average, hier on one server, and a rank that fails mid-call making every rank raise its error at once."""
import re
import time

import numpy as np
import pytest
import torch

import hccl_sim.executors.mpi as mpi_executor
from hccl_sim import CollectiveError, Communicator

pytestmark = pytest.mark.mpi


def test_counts_of_any_integer_type_and_clear_errors(world):
    comm = Communicator(world)
    p = world.size
    for counts in (torch.tensor([2] * p), np.full(p, 2, dtype=np.int32), [np.int64(2)] * p, (2,) * p):
        out = torch.empty(2 * p)
        comm.allgatherv(out, torch.full((2,), float(world.rank)), counts=counts)
        assert torch.equal(out, torch.arange(p).repeat_interleave(2).float())
    for bad, message in (([2.0] * p, "counts[0]: needs a non-negative integer, got 2.0"),
                         ([-1] * p, "counts[0]: needs a non-negative integer, got -1"),
                         ([2] * (p + 1), f"counts: needs {p} entries (one per rank), got {p + 1}"),
                         (torch.full((p,), 2.0), "counts: needs integers, got a tensor of torch.float32")):
        with pytest.raises(CollectiveError, match=re.escape(message)):
            comm.allgatherv(torch.empty(2 * p), torch.ones(2), counts=bad)
    comm.free()


def test_integer_average_and_hier_on_one_server(world):
    comm = Communicator(world)  # flat: one server
    t = torch.full((5,), world.rank, dtype=torch.int32)
    record = comm.allreduce(t, op="avg", algo="hier")
    expected = sum(range(world.size)) // world.size
    assert record.algo == "ring" and torch.equal(t, torch.full((5,), expected, dtype=torch.int32))
    comm.free()


def test_a_rank_failing_mid_call_fails_every_rank_at_once(world, monkeypatch):
    if world.size < 2:
        pytest.skip("one rank has no peer to tell")
    comm = Communicator(world, timeout=30.0)
    failing = world.size - 1
    if world.rank == failing:  # a local exception inside its reduction, after the header exchange
        def broken(op):
            def combine(x, y):
                raise RuntimeError("injected fault in the reduction")
            return combine
        monkeypatch.setattr(mpi_executor, "reducer", broken)
    start = time.monotonic()
    with pytest.raises(CollectiveError) as info:
        comm.allreduce(torch.ones(64), algo="ring")
    seconds = time.monotonic() - start
    message = str(info.value)
    assert f"rank {failing} failed" in message and "injected fault in the reduction" in message
    assert len(set(world.allgather(message))) == 1 and seconds < 2.0, (message, seconds)
    with pytest.raises(CollectiveError, match="injected fault"):  # the communicator stays failed
        comm.allreduce(torch.ones(4))
    comm.free()
