"""Fixtures for tests that run inside every rank of an mpirun job."""
import hashlib

import pytest
import torch
from mpi4py import MPI

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int32, torch.int64,
          torch.uint8]
SIZES = [0, 1, 2, 7, 13, 1001, 4099]  # odd, not divisible by the rank counts, 0 and 1


@pytest.fixture(scope="session")
def world():
    return MPI.COMM_WORLD


def inputs_for(nranks, count, dtype, op, seed=0):
    """Every rank's input, identical on every rank (so each can compute the reference itself)."""
    g = torch.Generator().manual_seed(seed * 7919 + count)
    if op == "prod":  # keep products exact and in range: values 1..2, at most a few 2s
        xs = [torch.ones(count, dtype=torch.int64) for _ in range(nranks)]
        for r in range(min(nranks, 3)):
            xs[r] = torch.randint(1, 3, (count,), generator=g)
    else:
        lo = 0 if dtype == torch.uint8 else -4
        xs = [torch.randint(lo, 5, (count,), generator=g) for _ in range(nranks)]
    return [x.to(dtype) for x in xs]


def torch_reference(op, xs):
    stacked = torch.stack([x.to(torch.float64 if x.dtype.is_floating_point else torch.int64) for x in xs])
    out = {"sum": lambda: stacked.sum(0), "avg": lambda: stacked.sum(0) / len(xs), "prod": lambda: stacked.prod(0),
           "max": lambda: stacked.max(0).values, "min": lambda: stacked.min(0).values}[op]()
    return out.to(xs[0].dtype)


def same_bits_everywhere(comm, tensor):
    digest = hashlib.sha1(tensor.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
    return len(set(comm.allgather(digest))) == 1
