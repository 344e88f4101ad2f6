"""Under mpirun (12 ranks): AHC on servers of different sizes moves real data through MPI and gives the
predicted modeled time exactly. The world is 8 + 4 ranks on two-level:server=8; ranks 0-5 also form a
communicator of 4 + 2 on two-level:server=4. Prints one OK line per case from rank 0."""
import sys

import torch
from mpi4py import MPI

import hccl_sim
from hccl_sim import Communicator

world = MPI.COMM_WORLD
if world.size != 12:
    sys.exit("ahc_mpi.py runs on 12 ranks")
first_six = world.Split(0 if world.rank < 6 else 1, world.rank)
shapes = [(world, "two-level:server=8")] + ([(first_six, "two-level:server=4")] if world.rank < 6 else [])
failed = False
for mpi_comm, topology in shapes:
    comm = Communicator(mpi_comm, topology=topology)
    p, r = comm.size, comm.rank
    cases = [("allreduce", "ahc", torch.float32, 1001), ("allreduce", "level0:NA;level1:AHC", torch.int32, 37),
             ("reduce_scatter", "ahc:ring/nhr", torch.float64, 7 * p + 3), ("allgather", "ahc", torch.int64, 5 * p)]
    for coll, algo, dtype, count in cases:
        data = [(torch.arange(count) % 5 + q + 1).to(dtype) for q in range(p)]
        total = torch.stack([d.to(torch.float64) for d in data]).sum(0).to(dtype)
        comm.sync_clocks()  # equal entries, as the prediction assumes
        if coll == "allreduce":
            x = data[r].clone()
            record = comm.allreduce(x, algo=algo)
            correct = torch.equal(x, total)
        elif coll == "reduce_scatter":
            out = torch.empty(count // p, dtype=dtype)
            record = comm.reduce_scatter(out, data[r][:count // p * p].clone(), algo=algo)
            expected = torch.stack([d[:count // p * p].to(torch.float64) for d in data]).sum(0).to(dtype)
            correct = torch.equal(out, expected[r * (count // p):(r + 1) * (count // p)])
        else:
            mine = data[0][r * (count // p):(r + 1) * (count // p)].clone()
            out = torch.empty(count, dtype=dtype)
            record = comm.allgather(out, mine, algo=algo)
            correct = torch.equal(out, data[0])
        predicted = hccl_sim.predict(coll, record.count, p, topology=topology, algo=record.algo, dtype=dtype).time
        ok = correct and record.algo.startswith("ahc") and record.time == predicted
        if not all(mpi_comm.allgather(ok)):
            failed = True
            print(f"FAIL {p} ranks {coll} {algo}: data {correct}, {record.algo}, time {record.time} vs {predicted}, "
                  f"rank {r}", flush=True)
        elif r == 0:
            print(f"OK {p} ranks {topology} {coll} {algo} {record.time!r}", flush=True)
sys.exit(1 if failed else 0)
