"""`mpirun -n N hccl-sim bench COLLECTIVE`: nccl-tests-style sweep with modeled and wall time.

Per size: one checked call on fresh data (-c), warmup calls, then timed calls. Before each call the
ranks' clocks are aligned (a free, modeled-only barrier), so every call's modeled time is the same
as `hccl-sim predict` gives for the case. Wall time is the slowest rank's mean.
"""
from __future__ import annotations

import time

import torch
from mpi4py import MPI

from ..collectives import SPECS, rank_data, reference
from ..comm import Communicator
from ..dtypes import check_op, dtype_from_name
from . import sizes_from
from .predict import COLUMNS, result_row
from .report import render

BENCH_COLUMNS = COLUMNS + ["wall_time_us", "wrong"]


def _wrong(collective, comm, op, count, dtype, algo) -> int:
    """Elements that differ from a torch reference on this rank (exact for ints, tolerance for floats)."""
    inputs = [rank_data(r, count, dtype) for r in range(comm.size)]
    tensor = inputs[comm.rank].clone()
    getattr(comm, collective)(tensor, op=op, algo=algo)
    expected = reference(op, inputs)
    if dtype.is_floating_point:
        ok = torch.isclose(tensor.double(), expected.double(), rtol=1e-2 if dtype.itemsize == 2 else 1e-5)
    else:
        ok = tensor == expected
    return int((~ok).sum())


def run(args) -> int:
    if args.collective not in SPECS:
        raise ValueError(f"collective {args.collective!r} is not supported (supported: {', '.join(SPECS)})")
    spec, dtype = SPECS[args.collective], dtype_from_name(args.datatype)
    check_op(args.op, dtype)
    comm = Communicator(MPI.COMM_WORLD, topology=args.topology, placement=args.placement, algo=args.algo)
    call = getattr(comm, args.collective)
    rows = []
    for size in sizes_from(args):
        count = size // dtype.itemsize
        wrong = _wrong(args.collective, comm, args.op, count, dtype, args.algo) if args.check else 0
        tensor = rank_data(comm.rank, count, dtype)
        for _ in range(args.warmup_iters):
            comm.sync_clocks()
            call(tensor, op=args.op)
        comm.mpi.Barrier()
        start = time.perf_counter()
        for _ in range(args.iters):
            comm.sync_clocks()
            record = call(tensor, op=args.op)
        wall = (time.perf_counter() - start) / max(args.iters, 1)
        wall = comm.mpi.allreduce(wall, op=MPI.MAX)
        wrong = comm.mpi.allreduce(wrong, op=MPI.SUM)
        if args.iters == 0:
            comm.sync_clocks()
            record = call(tensor, op=args.op)
        row = result_row(spec, count * dtype.itemsize, count, record.dtype, args.op, record.algo, comm.size,
                         record.time)
        row.update(wall_time_us=wall * 1e6, wrong=wrong)
        rows.append(row)
    if comm.rank == 0:
        print(render(rows, args.format, BENCH_COLUMNS))
        if args.format == "table" and rows:
            print(f"# Avg bus bandwidth (modeled): {sum(r['busbw_GBps'] for r in rows) / len(rows):.3f} GB/s")
    return 0
