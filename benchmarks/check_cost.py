"""Cost of the cross-rank consistency check: the same allreduce with the check on and off.

    mpirun -n 4 python benchmarks/check_cost.py [--min 1M] [--max 64M]
The clocks are exchanged either way (the timing model needs them); the check adds the comparison of
the call signatures (collective, algorithm, count, dtype, op, root). Target: under 5% from 1 MiB up.
"""
import argparse
import time

import torch
from mpi4py import MPI

from hccl_sim import Communicator
from hccl_sim.topology.units import format_size, parse_size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--min", default="1M")
    parser.add_argument("--max", default="64M")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    world = MPI.COMM_WORLD
    checked, unchecked = Communicator(world, check=True), Communicator(world, check=False)
    if world.rank == 0:
        print(f"# {world.size} ranks, ring allreduce; best of {args.rounds} rounds, alternating")
        print(f"{'size':>6} {'check_on_us':>12} {'check_off_us':>13} {'cost':>7}")
    size = parse_size(args.min)
    while size <= parse_size(args.max):
        tensor = torch.ones(size // 4)
        best = {True: float("inf"), False: float("inf")}
        for _ in range(args.rounds):
            for flag, comm in ((True, checked), (False, unchecked)):
                world.Barrier()
                start = time.perf_counter()
                for _ in range(args.iters):
                    comm.allreduce(tensor, algo="ring")
                elapsed = world.allreduce((time.perf_counter() - start) / args.iters, op=MPI.MAX)
                best[flag] = min(best[flag], elapsed)
        if world.rank == 0:
            cost = best[True] / best[False] - 1
            print(f"{format_size(size):>6} {best[True] * 1e6:12.1f} {best[False] * 1e6:13.1f} {cost:7.1%}")
        size *= 4


if __name__ == "__main__":
    main()
