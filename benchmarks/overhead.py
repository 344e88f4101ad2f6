"""Wall time of hccl_sim's emulated ring allreduce versus native MPI_Allreduce.

Same ranks, same run, same buffers (the torch tensor and the numpy array share memory):
    mpirun -n 4 python benchmarks/overhead.py [--min 1K] [--max 64M] [--iters 10] [--check 1]
Prints size, native time, emulated time and their ratio (target: <= 1.5x from 1 MiB up, 4 ranks).
``--check 0`` turns the cross-rank consistency check off to measure its cost.

Then (rank 0) the timing work of one emulated call at ``--timing-ranks`` ranks (default 64): every rank of
an emulated call times the whole collective from all ranks' clocks, so this is CPU each rank spends per
call. Measured (CPU time) as ``TimingModel.run`` with fresh entry times each call (skewed clocks, so no cached
result), on two-level:server=8, 64 MiB. Target (issue 15): <= 10 ms per call at 64 ranks.
"""
import argparse
import json
import time

import torch
from mpi4py import MPI

from hccl_sim import Communicator
from hccl_sim.topology.units import format_size, parse_size


def timed(fn, iters, comm):
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    elapsed = (time.perf_counter() - start) / iters
    return comm.allreduce(elapsed, op=MPI.MAX)


def timing_work(nranks: int, calls: int = 20) -> dict[str, float]:
    """CPU seconds of timing work per call of allreduce (ring, rhd, hier) at ``nranks``, entry times skewed."""
    import numpy as np
    from hccl_sim import NetworkModel
    model = NetworkModel(nranks, "two-level:server=8")
    rng = np.random.default_rng(0)
    out = {}
    for algo in ("ring", "rhd", "hier"):
        schedule = model.schedule("allreduce", algo, (64 << 20) // 4)
        model.timing.run(schedule, 4)  # the schedule's table and engine are built once per communicator
        entries = [rng.uniform(0, 1e-6, nranks) for _ in range(calls)]
        start = time.process_time()  # CPU: the host's other work shows less than in wall time
        for entry in entries:
            model.timing.run(schedule, 4, entry)
        out[algo] = (time.process_time() - start) / calls
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--min", default="1K")
    parser.add_argument("--max", default="64M")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--algo", default="ring")
    parser.add_argument("--check", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--timing-ranks", type=int, default=64, help="ranks of the timing-work measurement (0: skip)")
    args = parser.parse_args()
    world = MPI.COMM_WORLD
    comm = Communicator(world, check=bool(args.check))
    rows, size = [], parse_size(args.min)
    while size <= parse_size(args.max):
        tensor = torch.ones(size // 4)
        array = tensor.numpy()  # the same memory
        iters = max(3, args.iters if size < (16 << 20) else args.iters // 2)
        timed(lambda: world.Allreduce(MPI.IN_PLACE, array), 2, world)  # warm up both
        timed(lambda: comm.allreduce(tensor, algo=args.algo), 2, world)
        native = min(timed(lambda: world.Allreduce(MPI.IN_PLACE, array), iters, world) for _ in range(3))
        emulated = min(timed(lambda: comm.allreduce(tensor, algo=args.algo), iters, world) for _ in range(3))
        rows.append({"size": size, "native_us": native * 1e6, "hccl_sim_us": emulated * 1e6,
                     "ratio": emulated / native})
        size *= 4
    if world.rank == 0:
        print(f"# {world.size} ranks, algo {args.algo}, consistency check {'on' if args.check else 'off'}")
        print(f"{'size':>6} {'MPI_Allreduce_us':>17} {'hccl_sim_us':>12} {'ratio':>6}")
        for r in rows:
            print(f"{format_size(r['size']):>6} {r['native_us']:17.1f} {r['hccl_sim_us']:12.1f} {r['ratio']:6.2f}")
        work = timing_work(args.timing_ranks) if args.timing_ranks else {}
        for algo, seconds in work.items():
            print(f"# timing work per emulated call, {args.timing_ranks} ranks, allreduce {algo} 64M on "
                  f"two-level:server=8: {seconds * 1e3:.2f} ms")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"ranks": world.size, "algo": args.algo, "check": args.check, "rows": rows,
                           "timing_work_s": work}, fh, indent=1)


if __name__ == "__main__":
    main()
