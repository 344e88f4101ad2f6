"""Every collective x algorithm x dtype x op on real tensors under mpirun, on every rank, against a torch
reference (tests/test_collectives.py checks the same schedules in-process for 1..16 ranks)."""
import numpy as np
import pytest
import torch

from hccl_sim import CollectiveError, Communicator
from hccl_sim.algorithms import BUILDERS
from hccl_sim.collectives import SPECS
from conftest import DTYPES, inputs_for

pytestmark = pytest.mark.mpi

FLOAT_OPS = ["sum", "prod", "max", "min", "avg"]
INT_OPS = ["sum", "prod", "max", "min"]


def _uneven(equal, blk):
    """A v-variant's counts in the shape of its equal ones (blocks or a matrix), uneven, zeros included."""
    if equal is None:
        return None
    if np.ndim(equal) == 1:
        return [(i * 3 + blk) % 5 for i in range(len(equal))]
    return [[(i + 2 * j + blk) % 4 for j in range(len(equal))] for i in range(len(equal))]


def _call(comm, coll, algo, dtype, op, blk, root, seed):
    """Run one collective on this rank; (expected, actual) outputs, or None where undefined. Tensor sizes
    come from the collective's descriptor: blocks of ``blk``, one element more in place."""
    p, r, spec = comm.size, comm.rank, SPECS[coll]
    counts = _uneven(spec.equal_counts(p, blk), blk)
    job = spec.job(blk * p + spec.in_place, root, counts)
    sizes = [spec.sizes(p, i, job.count, *spec.rank_args(i, job)) for i in range(p)]
    xs = [x[:n] for x, (n, _) in zip(inputs_for(p, max(n for n, _ in sizes), dtype, op, seed), sizes)]
    x = xs[r].clone()
    has_in, has_out = spec.holds(r, root)
    out = x if spec.in_place else torch.full((sizes[r][1],), 99, dtype=dtype) if has_out else None
    spec.call(comm, out, x if has_in else None, op, root, algo, *spec.rank_args(r, job))
    input_kept = spec.in_place or torch.equal(x, xs[r])
    return spec.expected_output(r, xs, op, root, counts), out, input_kept


def _same(expected, out, op):
    if expected is None:
        return True
    if op == "avg":
        return torch.allclose(out.double(), expected.double(), rtol=1e-2, atol=1e-2)
    return torch.equal(out, expected)


# every algorithm name of BUILDERS (new ones join automatically), one test each: ``-k nhr`` runs NHR's
ALGORITHMS = list(dict.fromkeys(a for table in BUILDERS.values() for a in table if a != "hier")) + ["auto"]


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_collective_and_algorithm(world, algo):
    """Each collective x algorithm, every root, sizes 0 / 1 / uneven, dtypes and ops in rotation."""
    comm = Communicator(world)
    failures, case = [], 7 * ALGORITHMS.index(algo)  # algorithms start the rotation at different points
    for coll, table in BUILDERS.items():
        roots = range(world.size) if SPECS[coll].rooted else [0]
        if algo != "auto" and algo not in table:
            continue
        for root in roots:
            # sizes 0, 1 and uneven; rooted collectives take one per root, in rotation
            for blk in ((0, 1, 3) if len(roots) == 1 else ((0, 1, 3)[(root + case) % 3],)):
                dtype = DTYPES[case % len(DTYPES)]
                ops = FLOAT_OPS if dtype.is_floating_point else INT_OPS
                op = ops[case % len(ops)] if SPECS[coll].reduces else "sum"
                case += 1
                expected, out, kept = _call(comm, coll, algo, dtype, op, blk, root, case)
                if not (_same(expected, out, op) and kept):
                    failures.append((coll, algo, str(dtype), op, root, blk))
    assert not failures, failures[:10]


def test_every_dtype_and_op_on_reducing_collectives(world):
    """Every dtype x op on each reducing collective (the algorithm in rotation)."""
    comm = Communicator(world)
    failures, case = [], 0
    for dtype in DTYPES:
        for op in (FLOAT_OPS if dtype.is_floating_point else INT_OPS):
            for coll in ("allreduce", "reduce", "reduce_scatter", "reduce_scatterv"):
                algos = [a for a in BUILDERS[coll] if a != "hier"]
                algo = algos[case % len(algos)]
                case += 1
                expected, out, kept = _call(comm, coll, algo, dtype, op, 7, world.size - 1, 3)
                if not (_same(expected, out, op) and kept):
                    failures.append((coll, algo, str(dtype), op))
    assert not failures, failures[:10]


def test_hierarchical_algorithms(world):
    per = next((k for k in range(2, world.size) if world.size % k == 0), None)
    if per is None:
        pytest.skip(f"{world.size} ranks cannot form two or more equal servers of 2 or more")
    comm = Communicator(world, topology=f"two-level:server={per}")
    failures = []
    for coll in ("allreduce", "allgather", "allgatherv", "reduce_scatter", "reduce_scatterv", "broadcast"):
        for root in (range(world.size) if coll == "broadcast" else [0]):
            algos = (("hier", "hier:ring/pipeline", "hier:mesh/star", "level0:NA;level1:ring") if coll == "broadcast"
                     else ("hier", "hier:ring/rhd", "hier:mesh/nb", "level0:NA;level1:H-D_R", "level0:NHR;level1:NHR"))
            for algo in algos:
                expected, out, kept = _call(comm, coll, algo, torch.int32, "sum", 5, root, 1)
                if not (_same(expected, out, "sum") and kept):
                    failures.append((coll, algo, root))
    assert not failures, failures


def test_modeled_times_equal_predictions(world):
    import hccl_sim
    comm = Communicator(world, topology="two-level:server=2")
    got = []
    for coll, algo, root in (("broadcast", "pipeline", world.size - 1), ("allgather", "nb", 0),
                             ("alltoall", "pairwise", 0), ("reduce", "tree", world.size // 2)):
        comm.sync_clocks()
        blk = 1000
        _, _, _ = _call(comm, coll, algo, torch.float32, "sum", blk, root, 0)
        count = comm.last.count
        predicted = hccl_sim.predict(coll, count, world.size, topology="two-level:server=2", algo=algo, root=root)
        got.append((coll, comm.last.time, predicted.time))
    assert all(a == b for _, a, b in got), got


def test_send_recv_with_skewed_clocks(world):
    """The receiver's clock becomes max(own clock, sender's clock + route latency + bytes / bandwidth)."""
    if world.size < 2:
        pytest.skip("needs two ranks")
    comm = Communicator(world, topology="flat:bw=100GB/s,lat=0.5us")
    n, transfer = 1000, 2 * 0.5e-6 + 4000 / 100e9
    results = []
    for sender_clock, receiver_clock in ((5e-3, 1e-3), (1e-3, 5e-3)):
        comm.clock = {0: sender_clock, 1: receiver_clock}.get(world.rank, 0.0)
        t = torch.arange(n, dtype=torch.float32) if world.rank == 0 else torch.zeros(n)
        if world.rank == 0:
            comm.send(t, 1, tag=3)
        elif world.rank == 1:
            comm.recv(t, 0, tag=3)
            results.append((comm.clock, max(receiver_clock, sender_clock + transfer),
                            torch.equal(t, torch.arange(n, dtype=torch.float32))))
        world.Barrier()
    # batched: every rank sends to the next and receives from the previous, all posted then waited
    p, r = world.size, world.rank
    comm.clock = 1e-3 * r
    out, got = torch.full((8,), float(r)), torch.zeros(8)
    comm.batch_send_recv([("send", out, (r + 1) % p), ("recv", got, (r - 1) % p)])
    prev = (r - 1) % p
    assert torch.equal(got, torch.full((8,), float(prev)))
    hop = 2 * 0.5e-6 + 32 / 100e9  # the sender's clock also moves on to its message's arrival
    assert comm.clock == pytest.approx(max(1e-3 * r, 1e-3 * prev) + hop, rel=1e-12)
    for clock, expected, data_ok in results:
        assert data_ok
        assert clock == pytest.approx(expected, rel=1e-12)


def test_bad_input_is_named_on_every_rank(world):
    comm = Communicator(world)
    errors = []
    for call in (lambda: comm.broadcast(torch.ones(4), root=world.size),
                 lambda: comm.allgather(torch.ones(3), torch.ones(1)),
                 lambda: comm.allgatherv(torch.ones(world.size), torch.ones(1), [1] * world.size if world.rank
                                         else [2] + [1] * (world.size - 1))):
        try:
            call()
            errors.append(None)
        except (CollectiveError, ValueError) as exc:
            errors.append(str(exc))
    assert errors[0] and "root" in errors[0]
    if world.size != 3:
        assert errors[1] and "output" in errors[1]
    assert errors[2] and ("counts" in errors[2] or "input" in errors[2])


def test_hccl_algo_environment_variable(world, monkeypatch):
    """HCCL's own HCCL_ALGO picks the algorithm when nothing else does: on one server, level1 names it
    when level0 is NA; an operator it does not name keeps auto."""
    monkeypatch.setenv("HCCL_ALGO", "allreduce=level0:NA;level1:H-D_R")
    monkeypatch.delenv("HCCL_SIM_ALGO", raising=False)
    comm = Communicator(world)
    t = torch.ones(10)
    got = comm.allreduce(t).algo
    out = torch.empty(3 * world.size)
    comm.allgather(out, torch.ones(3))  # not governed: auto
    assert got == "rhd" and torch.equal(t, torch.full((10,), float(world.size)))
    assert torch.equal(out, torch.ones(3 * world.size))
