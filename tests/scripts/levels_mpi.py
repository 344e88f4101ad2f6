"""Under mpirun (16 ranks): the 3-level schedules and the grouped full-mesh all-to-all on a reduced Atlas 950
SuperPoD move real data through MPI and give the predicted modeled time exactly. Prints one OK line per case
from rank 0."""
import sys

import torch
from mpi4py import MPI

import hccl_sim
from hccl_sim import Communicator

TOPOLOGY = "atlas950-superpod:board=2,boards=2,cabinets=4"
comm = Communicator(MPI.COMM_WORLD, topology=TOPOLOGY)
p, r = comm.size, comm.rank


def check(correct, record, predicted, label):
    """Every rank's data right and its modeled time equal to the prediction, or the script fails."""
    if not all(MPI.COMM_WORLD.allgather(correct and record.time == predicted)):
        print(f"FAIL {label} {record.time} {predicted} rank {r}", flush=True)
        sys.exit(1)
    if r == 0:
        print(f"OK {label} {record.time!r}", flush=True)


for algo, dtype, op, count in [("hier:mesh/mesh/rhd", torch.float32, "sum", 1001),
                               ("level0:fullmesh;level1:fullmesh;level2:ring", torch.bfloat16, "max", 37),
                               ("hier:mesh/mesh/nhr", torch.int32, "prod", 5), ("auto", torch.float64, "sum", 1 << 16)]:
    x = (torch.arange(count) % 3 + r % 2 + 1).to(dtype)
    everyone = [(torch.arange(count) % 3 + q % 2 + 1).to(torch.float64) for q in range(p)]
    reduce = {"sum": lambda t: t.sum(0), "max": lambda t: t.amax(0), "prod": lambda t: t.prod(0)}[op]
    expected = reduce(torch.stack(everyone)).to(dtype)
    comm.sync_clocks()  # equal entries, as the prediction assumes
    record = comm.allreduce(x, op=op, algo=algo)
    predicted = hccl_sim.predict("allreduce", count, p, topology=TOPOLOGY, algo=record.algo, dtype=dtype).time
    check(torch.equal(x, expected), record, predicted, f"{algo} {record.algo}")

# grouped full-mesh all-to-all: 4 rounds of the 2 x 2 mesh group; block j of rank i is 1000 i + j (3 elements)
x = torch.tensor([1000 * r + j for j in range(p) for _ in range(3)], dtype=torch.int64)
out = torch.empty_like(x)
comm.sync_clocks()
record = comm.alltoall(out, x, algo="gmesh")
expected = torch.tensor([1000 * i + r for i in range(p) for _ in range(3)], dtype=torch.int64)
predicted = hccl_sim.predict("alltoall", record.count, p, topology=TOPOLOGY, algo="gmesh", dtype=torch.int64).time
check(torch.equal(out, expected), record, predicted, "gmesh")

# broadcast and reduce by level: scatter down / allgather up, reduce-scatter down / gather up
for coll, algo, root in (("broadcast", "hier:mesh/mesh/rhd", 5), ("reduce", "hier:mesh/mesh/ring", 14)):
    x = (torch.arange(101) % 7 + r).to(torch.float64)
    expected = (torch.arange(101) % 7 + root).to(torch.float64) if coll == "broadcast" else \
        sum((torch.arange(101) % 7 + q).to(torch.float64) for q in range(p))
    comm.sync_clocks()
    record = (comm.broadcast(x, root=root, algo=algo) if coll == "broadcast"
              else comm.reduce(x, root=root, op="sum", algo=algo))
    predicted = hccl_sim.predict(coll, 101, p, topology=TOPOLOGY, algo=algo, dtype=torch.float64, root=root).time
    check(r != root and coll == "reduce" or torch.equal(x, expected), record, predicted, f"{coll} {algo}")
