"""`mpirun -n N hccl-sim bench COLLECTIVE`: nccl-tests-style sweep with modeled and wall time.

Per size and algorithm: -c checked calls on fresh data, -w warmup calls, then -n timed calls. Before
each call the ranks' clocks are aligned (a free, modeled-only barrier), so every call's modeled time is
the same as `hccl-sim predict` gives for the case. Wall time is the slowest rank's mean.
"""
from __future__ import annotations

import sys
import time

import torch
from mpi4py import MPI

from ..algorithms.selection import algo_source
from ..collectives import BenchCall, lookup
from ..comm import Communicator
from ..dtypes import check_reducible
from ..topology.placement import host_placement
from ..topology.units import parse_size
from . import algos_from, combinations, sizes_from
from .cases import Case, case_row, failed_row, figures, notes_of, rooted, run_algo
from .report import (FILE_COLUMNS, VERSION_COLUMNS, hccl_test_table, nccl_tests_table, not_ok, render, versions,
                     write_results)

# --format csv: the columns of --output files, in their order (versions are in the table's header)
BENCH_COLUMNS = [c for c in FILE_COLUMNS if c not in VERSION_COLUMNS]


def measured_row(comm: Communicator, case: Case, iters: int, warmup: int, checks: int) -> dict:
    """Run one case on the emulator: its figures, wrong elements summed over ranks, slowest rank's wall time.

    Every rank must call this with the same case. A case the model cannot run (an algorithm that does not
    apply to this communicator) comes back as a row whose status says why, on every rank alike.
    """
    spec, dtype = case.spec, case.torch_dtype
    bench = BenchCall(case.collective, comm.rank, comm.size, case.count, dtype, case.root if rooted(spec) else 0)
    count, root = bench.work_count, bench.root
    try:
        if spec.reduces:
            check_reducible(case.op, dtype)  # e.g. a sweep's uint32 sum: the row says torch cannot
        requested, note = run_algo(case, comm.model)
        algo = comm.model.resolve(case.collective, requested, count, dtype.itemsize, root=root)
        comm.model.schedule(case.collective, algo, count, root=root)
    except ValueError as exc:  # decided by the model alone, so identically on every rank
        return failed_row(case, str(exc))
    wrong = 0
    for _ in range(checks):  # fresh data each time, compared with the torch reference
        _, output = bench.run(comm, case.op, requested)
        wrong += bench.wrong(output, case.op)
    call = bench.invoker(comm, case.op, requested)
    for _ in range(warmup):
        comm.sync_clocks()
        call()
    comm.mpi.Barrier()
    start = time.perf_counter()
    for _ in range(iters):
        comm.sync_clocks()
        record = call()
    wall = (time.perf_counter() - start) / max(iters, 1)
    wall = comm.mpi.allreduce(wall, op=MPI.MAX)
    wrong = comm.mpi.allreduce(wrong, op=MPI.SUM)
    if iters == 0:
        comm.sync_clocks()
        record = call()
    row = figures(spec, count * dtype.itemsize, count, record.algo, comm.size, record.time)
    row.update(wall_time_us=wall * 1e6 if iters else "", wrong=wrong if checks else "", note=note)
    return row


def mpi_placement(spec, world, topology):
    """A placement for Communicator: ``hosts`` resolved from the MPI hosts' names, anything else as is."""
    if spec != "hosts":
        return spec
    return host_placement(spec, world.allgather(MPI.Get_processor_name()), topology)


def run(args) -> int:
    combos = combinations(args, lookup(args.collective).reduces, emulated=True)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    topology, placement = args.topology or "flat", args.placement or "linear"
    cases = [Case(args.collective, size, name, op, args.root, algo, topology, placement, MPI.COMM_WORLD.size,
                  algo_source(args.algo)) for name, op in combos for size in sizes_from(args) for algo in algos_from(args)]
    for case in cases:
        case.validate()
    comm = Communicator(MPI.COMM_WORLD, topology=args.topology,
                        placement=mpi_placement(args.placement, MPI.COMM_WORLD, args.topology))
    rows = []
    for case in cases:
        row = case_row(case, "emulated", args.iters, args.warmup_iters, args.check, args.seed)
        row.update(measured_row(comm, case, args.iters, args.warmup_iters, args.check))
        rows.append(row)
    ran = [case for case, row in zip(cases, rows) if not not_ok(row)]
    if args.trace and ran:
        _write_trace(comm, ran[-1], args.trace)
    if comm.rank == 0:
        meta = versions()
        for row in rows:
            row.update(meta)
        if args.output:
            write_results(args.output, rows, _config(args, comm, meta))
        print(_render(args, comm, rows, meta))
    # as nccl-tests: a failed check (or here a case that could not run) is a failed run
    failed = any(not_ok(r) or (r.get("wrong") not in ("", None) and int(r["wrong"]) > 0) for r in rows)
    return 1 if failed else 0


def _render(args, comm, rows, meta) -> str:
    if args.format == "table":
        header = (f"hccl-sim bench {args.collective}: {comm.size} ranks, topology {args.topology or 'flat'} "
                  f"({comm.topology.name}), placement {args.placement or 'linear'}, minBytes {parse_size(args.minbytes)} "
                  f"maxBytes {parse_size(args.maxbytes)} step: "
                  + (f"{args.stepfactor:g}(factor)" if args.stepfactor else f"{args.stepbytes}(bytes)")
                  + f" warmup iters: {args.warmup_iters} iters: {args.iters} validation: {args.check}"
                  + f"\n# hccl_sim {meta['hccl_sim_version']}, torch {meta['torch_version']}, "
                  f"mpi4py {meta['mpi4py_version']}, {meta['mpi_library']}"
                  + "\n# time, algbw and busbw are modeled; wall is the host's time per call (slowest rank)"
                  + "".join(f"\n# note: {n}" for n in notes_of(rows)))
        return nccl_tests_table(rows, header)
    if args.format == "hccl_test":
        return hccl_test_table(rows, parse_size(args.minbytes), parse_size(args.maxbytes), args.iters,
                               args.warmup_iters)
    for note in notes_of(rows):  # csv and json have no header: the note goes to stderr
        print(f"# note: {note}", file=sys.stderr)
    columns = BENCH_COLUMNS if args.format != "json" else FILE_COLUMNS
    return render(rows, args.format, columns)


def _config(args, comm, meta) -> dict:
    """What a results file records beyond its rows: the command line and the topology it ran on."""
    return {"command": sys.argv, "ranks": comm.size, "topology": args.topology or "flat",
            "topology_description": comm.topology.describe(), "placement": args.placement or "linear",
            "npus": list(comm.model.placement.npus), **meta}


def _write_trace(comm: Communicator, case: Case, path: str) -> None:
    """The modeled timeline of one call of ``case`` (the last case that ran), written by rank 0."""
    from ..trace import write_trace
    if comm.rank == 0:
        dtype = case.torch_dtype
        algo = comm.model.resolve(case.collective, run_algo(case, comm.model)[0], case.count, dtype.itemsize)
        write_trace(path, comm.model, case.collective, algo, case.count, dtype.itemsize)
