"""Allreduce on real tensors under mpirun, on every rank, against a torch reference."""
import os

import pytest
import torch

import hccl_sim
from hccl_sim import CollectiveError, Communicator
from hccl_sim.planning import NetworkModel
from conftest import DTYPES, SIZES, inputs_for, same_bits_everywhere, torch_reference

pytestmark = pytest.mark.mpi


def _hier_topology(p):
    per = next((k for k in range(2, p) if p % k == 0), None)
    return f"two-level:server={per}" if per else None


ALGOS = ["ring", "tree", "rhd", "hier", "auto"]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_allreduce_matches_torch(world, algo, dtype):
    topology = _hier_topology(world.size) if algo == "hier" else None
    if algo == "hier" and topology is None:  # one server: HCCL runs the level-0 algorithm alone
        comm = Communicator(world)
        tensor = torch.ones(4, dtype=dtype)
        assert comm.allreduce(tensor, algo="hier").algo == "ring"
        assert torch.equal(tensor, torch.full((4,), world.size, dtype=dtype))
        return
    comm = Communicator(world, topology=topology)
    ops = ["sum", "prod", "max", "min"] + (["avg"] if dtype.is_floating_point else [])
    failures = []
    for op in ops:
        for count in SIZES:
            xs = inputs_for(world.size, count, dtype, op)
            tensor = xs[world.rank].clone()
            record = comm.allreduce(tensor, op=op, algo=algo)
            expected = torch_reference(op, xs)
            if dtype.is_floating_point and op == "avg":
                ok = torch.allclose(tensor.double(), expected.double(), rtol=1e-2, atol=1e-2)
            else:  # small integers: exact in every dtype, whatever the order of reduction
                ok = torch.equal(tensor, expected)
            if not ok or not same_bits_everywhere(world, tensor):
                failures.append((op, count))
            assert record.count == count and record.dtype == hccl_sim.comm.DTYPE_NAMES[dtype]
    assert not failures, failures


def test_non_contiguous_tensor_is_reduced_in_place(world):
    comm = Communicator(world)
    base = torch.arange(40, dtype=torch.float32).reshape(5, 8) + world.rank
    view = base[:, ::2]  # non-contiguous
    comm.allreduce(view, algo="ring")
    expected = sum(torch.arange(40, dtype=torch.float32).reshape(5, 8)[:, ::2] + r for r in range(world.size))
    assert torch.equal(view, expected)
    assert torch.equal(base[:, 1::2], (torch.arange(40, dtype=torch.float32).reshape(5, 8) + world.rank)[:, 1::2])


@pytest.mark.parametrize("algo", ["ring", "tree", "rhd"])
def test_modeled_time_equals_prediction(world, algo):
    comm = Communicator(world, topology="two-level:server=2")
    for count in (1, 1000, 262_144):
        comm.sync_clocks()
        record = comm.allreduce(torch.ones(count), algo=algo)
        predicted = hccl_sim.predict("allreduce", count, world.size, topology="two-level:server=2", algo=algo)
        assert record.time == predicted.time  # exactly: same schedule, same engine
        assert record.end == comm.clock


@pytest.mark.parametrize("topology, placement", [
    ("atlas950-superpod", "per-group:2"),  # two NPUs on each of several boards of the UB mesh
    ("cloudmatrix384", "spread"),
    ("ubmesh-pod", "per-group:4@rack"),
    ("nvl144", None),
    (os.path.join(os.path.dirname(__file__), "..", "data", "costs-two-level.yaml"), "spread"),  # every cost term
    ("atlas950-superpod|down:npu0-npu1;straggler:npu4=2;late:npu2=3us;jitter=0.1us;seed=3", "per-group:3"),
])
def test_preset_modeled_times_equal_predictions(world, topology, placement):
    comm = Communicator(world, topology=topology, placement=placement)
    got = []
    for algo in ("ring", "rhd", "auto"):
        comm.sync_clocks()
        record = comm.allreduce(torch.ones(100_000), algo=algo)
        predicted = hccl_sim.predict("allreduce", 100_000, world.size, topology=topology, placement=placement,
                                     algo=algo)
        got.append((algo, record.time, predicted.time))
    assert all(a == b for _, a, b in got), got


def test_clock_advances_and_skew_is_modeled(world):
    comm = Communicator(world)
    comm.advance(1e-3 * world.rank)  # rank r arrives r ms late
    record = comm.allreduce(torch.ones(1000), algo="ring")
    model = NetworkModel(world.size)
    entry = [1e-3 * r for r in range(world.size)]
    expected = model.timing.run(model.schedule("allreduce", "ring", 1000), 4, entry)
    assert record.start == entry[world.rank]
    assert comm.clock == expected.exit[world.rank]
    if world.size > 1:
        assert comm.clock >= 1e-3 * (world.size - 1)


def test_unsupported_dtype_fails_on_every_rank(world):
    comm = Communicator(world)
    bad = torch.ones(3, dtype=torch.complex64) if world.rank == world.size - 1 else torch.ones(3)
    with pytest.raises(CollectiveError, match=f"rank {world.size - 1}: dtype"):
        comm.allreduce(bad)


def test_mismatched_dtype_is_named(world):
    if world.size < 2:
        pytest.skip("needs two ranks to disagree")
    comm = Communicator(world)
    t = torch.ones(5, dtype=torch.float64 if world.rank == 0 else torch.float32)
    with pytest.raises(CollectiveError, match="disagree on dtype"):
        comm.allreduce(t)


def test_mismatched_count_is_named(world):
    if world.size < 2:
        pytest.skip("needs two ranks to disagree")
    comm = Communicator(world)
    with pytest.raises(CollectiveError, match="disagree on count"):
        comm.allreduce(torch.ones(5 + world.rank))


def test_a_reduction_torch_cannot_compute_is_refused_naming_the_dtype(world):
    comm = Communicator(world)
    with pytest.raises(CollectiveError, match="'sum' on uint32: torch cannot compute it on CPU"):
        comm.allreduce(torch.ones(3, dtype=torch.uint32), op="sum")


FAULTED = "atlas950-superpod|slow:npu0-npu1=0.25;down:npu2-npu3;straggler:npu1=3;late:npu0=5us;jitter=0.2us;seed=9"


def test_faults_end_to_end_keep_results_right_and_cost_time(world):
    """Degraded and failed (detoured) links, a straggler, a late NPU and jitter: every collective still
    gives the torch reference on every rank; the modeled time equals the prediction and exceeds the
    healthy network's."""
    healthy = Communicator(world, topology="atlas950-superpod")
    faulted = Communicator(world, topology=FAULTED)
    p, r = world.size, world.rank
    bad = []
    for algo in ("ring", "rhd", "mesh", "auto"):
        x = torch.arange(1000 * p, dtype=torch.float64) * (r + 1)
        for comm in (healthy, faulted):
            comm.sync_clocks()
        a, b = x.clone(), x.clone()
        t_healthy = healthy.allreduce(a, algo=algo).time
        t_faulted = faulted.allreduce(b, algo=algo).time
        want = torch.arange(1000 * p, dtype=torch.float64) * (p * (p + 1) // 2)
        if not (torch.equal(a, want) and torch.equal(b, want)):
            bad.append(f"allreduce {algo}: wrong result")
        predicted = hccl_sim.predict("allreduce", x.numel(), p, topology=FAULTED, algo=algo, dtype=torch.float64).time
        if t_faulted != predicted or (p > 1 and not t_faulted > t_healthy):
            bad.append(f"allreduce {algo}: faulted {t_faulted} healthy {t_healthy} predicted {predicted}")
    out = torch.empty(3 * p)
    faulted.allgather(out, torch.full((3,), float(r)))
    if not torch.equal(out, torch.arange(p).repeat_interleave(3).float()):
        bad.append("allgather: wrong result")
    assert not bad, bad


def test_down_link_without_detour_fails_on_every_rank(world):
    """A server's only uplink down: a collective that must cross it raises the same TopologyError on
    every rank, naming the link, instead of hanging or delivering late data."""
    comm = Communicator(world, topology="two-level:server=2|down:server:0:up")
    if world.size == 1:  # nothing crosses the link
        comm.allreduce(torch.ones(4))
        return
    with pytest.raises(ValueError, match="the server uplink of unit 0 is down and two-level offers no other path"):
        comm.allreduce(torch.ones(4), algo="ring")
    t = torch.ones(4)
    Communicator(world, topology="two-level:server=2").allreduce(t)  # the job goes on
    assert torch.equal(t, torch.full((4,), float(world.size)))
