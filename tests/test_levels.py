"""HCCL's levels as deep as the topology (algorithms/levels.py), the Clos twin (topology/clos.py) and what
they give on the UB presets. In-process: data through the local executor against torch, closed forms."""
import os
import subprocess
import sys

import pytest
import torch

import hccl_sim
from hccl_sim.algorithms import build_schedule
from hccl_sim.executors.local import run_local
from hccl_sim.planning import NetworkModel
from hccl_sim.topology import load_topology

# a reduced Atlas 950 SuperPoD: 2 x 2 board/cabinet full mesh, 4 cabinets on the Clos (16 NPUs)
SMALL = "atlas950-superpod:board=2,boards=2,cabinets=4"
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int32, torch.int64,
          torch.uint8]
REDUCE = {"sum": lambda xs: torch.stack(xs).sum(0), "prod": lambda xs: torch.stack(xs).prod(0),
          "max": lambda xs: torch.stack(xs).amax(0), "min": lambda xs: torch.stack(xs).amin(0)}


def _allreduce(model, algo, count, dtype, op, seed):
    g = torch.Generator().manual_seed(seed)
    low, high = (1, 3) if op == "prod" else (0, 5)  # products of 16 values stay exact in every dtype
    ins = [torch.randint(low, high, (count,), generator=g).to(dtype) for _ in range(model.nranks)]
    if op == "prod":
        ins = [torch.where(x == 2, x, torch.ones_like(x)) if r % 4 else x for r, x in enumerate(ins)]
    expected = REDUCE[op]([x.to(torch.float64) for x in ins]).to(dtype)
    bufs = [{0: x.clone()} for x in ins]
    run_local(build_schedule("allreduce", algo, model.context, count), bufs, op)
    return [r for r in range(model.nranks) if not torch.equal(bufs[r][0], expected)]


@pytest.mark.parametrize("algo", ["hier:mesh/mesh/rhd", "hier:mesh/mesh/ring", "hier:mesh/mesh/nhr",
                                  "hier:mesh/mesh/mesh", "hier:ring/mesh/rhd", "hier:rhd/nhr/ring"])
def test_three_level_allreduce_moves_the_right_data_for_every_dtype_and_op(algo):
    model = NetworkModel(16, SMALL)
    assert model.context.radices == (2, 2, 4)
    failures = []
    for dtype in DTYPES:
        for op in REDUCE:
            for count in (1, 7, 61):  # fewer elements than ranks, and uneven chunks everywhere
                bad = _allreduce(model, algo, count, dtype, op, seed=count)
                if bad:
                    failures.append((dtype, op, count, bad))
    assert not failures, failures[:5]


def test_four_mesh_levels_at_once_on_a_reduced_ubmesh_pod():
    model = NetworkModel(16, "ubmesh-pod")  # 8 x 2 of the board and rack meshes
    assert _allreduce(NetworkModel(64, "ubmesh-pod"), "hier:mesh/mesh", 99, torch.int32, "sum", 1) == []
    assert _allreduce(model, "hier:mesh/mesh", 13, torch.float32, "max", 2) == []


def test_2d_full_mesh_allreduce_closed_form():
    """8 x 8 full mesh, n bytes: half the buffer goes board-then-cabinet, half cabinet-then-board, one flow a
    link: reduce-scatter (a + n/16 b) + (a + n/128 b), allgather the same."""
    n_elems = 1 << 22
    n, a, b = 4 * n_elems, 0.2e-6, 1 / 64e9
    time = hccl_sim.predict("allreduce", n_elems, 64, topology="atlas950-superpod:cabinets=1",
                            algo="hier:mesh/mesh").time
    assert time == pytest.approx(2 * ((a + n / 16 * b) + (a + n / 128 * b)), rel=1e-9)


def test_three_level_allreduce_closed_form():
    """2 x 2 mesh then 4 cabinets: mesh reduce-scatter (a + n/4 b) + (a + n/8 b); 8 rings (4 columns x 2
    parts) of n/8 over the 4 cabinets share each 512 GB/s cabinet uplink at 64 GB/s a flow: 2 x 3 steps of
    2 switch hops + n/32 over 64 GB/s; then the allgather mirrors the reduce-scatter."""
    n_elems = 1 << 20
    n, a, b, hop = 4 * n_elems, 0.2e-6, 1 / 64e9, 0.5e-6
    time = hccl_sim.predict("allreduce", n_elems, 16, topology=SMALL, algo="hier:mesh/mesh/ring").time
    mesh = (a + n / 4 * b) + (a + n / 8 * b)
    assert time == pytest.approx(2 * mesh + 6 * (2 * hop + n / 32 * b), rel=1e-9)


def test_hccl_algo_three_levels():
    model = NetworkModel(16, SMALL)
    assert model.requested("allreduce", "level0:fullmesh;level1:fullmesh;level2:H-D_R") == "hier:mesh/mesh/rhd"
    with pytest.raises(ValueError, match="span 3 levels"):
        model.schedule("allreduce", "hier:mesh/mesh/ring/ring", 64)


def test_clos_twin_keeps_each_levels_per_npu_bandwidth():
    mesh, twin = load_topology("atlas950-superpod"), load_topology("atlas950-superpod:clos_twin=1")
    assert [lv.kind for lv in twin.levels] == ["switch", "switch", "switch"]
    assert twin.levels[0].link_bandwidth == 14 * 64e9  # the NPU's 7 + 7 mesh links
    assert twin.levels[1].link_bandwidth == 8 * 7 * 64e9  # a board's 8 NPUs x their 7 cabinet links
    assert twin.levels[2] == mesh.levels[2]
    with pytest.raises(ValueError, match="clos_twin"):
        load_topology("atlas950-superpod:clos_twin=maybe")


@pytest.mark.parametrize("topology,ranks", [("atlas950-superpod", 64), ("atlas950-superpod", 8192)])
def test_auto_on_the_mesh_reaches_90_percent_of_its_clos_twin(topology, ranks):
    """The headline: for 256 MiB, auto on the mesh preset against the best of the twin's algorithms."""
    count = 64 << 20
    mesh = NetworkModel(ranks, topology)
    twin = NetworkModel(ranks, topology + ":clos_twin=1")
    best_mesh = mesh.time("allreduce", mesh.resolve("allreduce", "auto", count, 4), count, 4).time
    best_twin = min(twin.time("allreduce", a, count, 4).time for a in twin.applicable("allreduce"))
    assert best_twin / best_mesh >= 0.9
    assert mesh.resolve("allreduce", "auto", count, 4).startswith("hier:mesh/mesh")


def test_three_level_schedules_under_mpirun_16_ranks():
    """Real data through MPI on 16 ranks, every modeled time equal to the prediction (tests/scripts/levels_mpi.py):
    3-level allreduce, the grouped full-mesh all-to-all, broadcast and reduce by level."""
    script = os.path.join(os.path.dirname(__file__), "scripts", "levels_mpi.py")
    proc = subprocess.run(["mpirun", "-n", "16", sys.executable, script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK ") == 7, proc.stdout


@pytest.mark.parametrize("coll", ["reduce_scatter", "allgather"])
def test_three_level_block_collectives_match_torch(coll):
    from test_collectives import run_case
    ctx = NetworkModel(16, SMALL).context
    failures = []
    for algo in ("hier:mesh/mesh/rhd", "hier:mesh/mesh/ring", "hier:mesh/mesh/mesh", "hier:ring/nhr/rhd"):
        for blk in (0, 1, 5):
            for op in (("sum", "max", "prod") if coll == "reduce_scatter" else ("sum",)):
                if run_case(coll, algo, ctx, blk, 0, op=op, seed=blk):
                    failures.append((algo, blk, op))
                if run_case(coll + "v", algo, ctx, blk, 0, op=op, seed=blk):
                    failures.append((coll + "v", algo, blk, op))
    # unequal mesh dimensions (8 x 2 of a UB-Mesh rack): parts weighted by bandwidth, uneven blocks
    uneven = NetworkModel(16, "ubmesh-pod").context
    for blk in (1, 5):
        if run_case(coll + "v", "hier:mesh/mesh", uneven, blk, 0, seed=blk):
            failures.append(("ubmesh", coll + "v", blk))
    assert not failures, failures


def test_multi_ring_on_a_full_mesh_closed_form_and_as_a_level():
    """p = 7 (prime): 6 rings, one per shift, each on its own directed links: 2(p-1)(a + n/(6p) b)."""
    from hccl_sim.topology import Level, Topology
    mesh7 = Topology("mesh7", (Level("board", 7, "mesh", 64e9, 0.2e-6),))
    n_elems = 7 * 6 * 1000
    n, a, b = 4 * n_elems, 0.2e-6, 1 / 64e9
    time = hccl_sim.predict("allreduce", n_elems, 7, topology=mesh7, algo="mring").time
    assert time == pytest.approx(2 * 6 * (a + n / (6 * 7) * b), rel=1e-9)
    ring = hccl_sim.predict("allreduce", n_elems, 7, topology=mesh7, algo="ring").time
    assert ring == pytest.approx(2 * 6 * (a + n / 7 * b), rel=1e-9)
    model = NetworkModel(16, SMALL)
    assert _allreduce(model, "hier:mring/mesh/mring", 45, torch.float32, "sum", 3) == []
    assert model.requested("allreduce", "level0:multiring;level1:fullmesh;level2:ring") == "hier:mring/mesh/ring"


def test_multipath_splits_a_lone_transfer_over_every_path_of_the_mesh():
    """Two members of an 8-member board mesh: each transfer goes 1/7 direct, 1/7 through each of the 6 others;
    RHD on 2 ranks is two exchanges, each 2a + (n/2)/7 b (the two-hop pieces arrive last)."""
    n_elems = 7 * 2 * 1000
    n, a, b = 4 * n_elems, 0.2e-6, 1 / 64e9
    time = hccl_sim.predict("allreduce", n_elems, 2, topology="atlas950-superpod:cabinets=1,multipath=1",
                            algo="rhd").time
    assert time == pytest.approx(2 * (2 * a + n / 2 / 7 * b), rel=1e-9)
    direct = hccl_sim.predict("allreduce", n_elems, 2, topology="atlas950-superpod:cabinets=1", algo="rhd").time
    assert direct == pytest.approx(2 * (a + n / 2 * b), rel=1e-9)
    # the pieces still carry the right data, uneven counts included
    model = NetworkModel(8, "atlas950-superpod:cabinets=1,multipath=1")
    for count in (5, 6, 101):
        g = torch.Generator().manual_seed(count)
        ins = [torch.randint(0, 9, (count,), generator=g) for _ in range(8)]
        bufs = [{0: x.clone()} for x in ins]
        schedule = model.schedule("allreduce", "rhd", count)
        assert any(s.via is not None and (s.via >= 0).any() for s in schedule.steps) or count < 7
        run_local(schedule, bufs)
        assert all(torch.equal(buf[0], sum(ins)) for buf in bufs)
    with pytest.raises(ValueError, match="multipath"):
        load_topology("flat:multipath=maybe")


def test_by_level_errors_name_the_problem():
    model = NetworkModel(16, SMALL)
    with pytest.raises(ValueError, match="level2 algorithm 'tree'"):  # broadcast allgathers up the levels
        model.schedule("broadcast", "hier:ring/ring/tree", 64)
    spread = NetworkModel(16, SMALL, placement="spread")
    with pytest.raises(ValueError, match="linear placement"):
        spread.schedule("allreduce", "hier:mesh/mesh/rhd", 64)
    with pytest.raises(ValueError, match="level2 algorithm 'star'"):
        model.schedule("allreduce", "hier:mesh/mesh/star", 64)


@pytest.mark.parametrize("coll", ["broadcast", "reduce"])
def test_broadcast_and_reduce_by_level_match_torch(coll):
    """Scatter down / allgather up (broadcast) and reduce-scatter down / gather up (reduce), every root
    position kind, uneven chunks, reduce ops; 3 levels, unequal mesh dimensions and two switch levels."""
    from test_collectives import run_case
    failures = []
    for topology, p, algos in [(SMALL, 16, ["hier:mesh/mesh/rhd", "hier:mesh/mesh/mesh", "hier:ring/nhr/ring"]),
                               ("ubmesh-pod", 16, ["hier:mesh/mesh"]), ("two-level:server=4", 12, ["hier"])]:
        ctx = NetworkModel(p, topology).context
        for algo in algos:
            for blk in (0, 1, 5):
                for root in (0, 5, p - 1):
                    for op in (("sum", "max", "prod") if coll == "reduce" else ("sum",)):
                        if run_case(coll, algo, ctx, blk, root, op=op, seed=blk + root):
                            failures.append((topology, algo, blk, root, op))
    assert not failures, failures


def test_auto_broadcast_and_reduce_by_level_on_one_cabinet():
    """On the 8 x 8 cabinet the by-level forms beat the flat mesh (64 MiB: 222 against 263 us)."""
    model = NetworkModel(64, "atlas950-superpod")
    for coll in ("broadcast", "reduce"):
        assert model.resolve(coll, "auto", 1 << 24, 4) == "hier:mesh/mesh"
        assert model.time(coll, "hier:mesh/mesh", 1 << 24, 4).time < model.time(coll, "mesh", 1 << 24, 4).time


def test_two_names_on_three_levels_at_scale_say_how_to_name_each_level():
    from hccl_sim import NetworkModel
    with pytest.raises(ValueError, match=r"span 3 levels of sizes \[8, 8, 128\]: name one algorithm per level"):
        NetworkModel(8192, "atlas950-superpod").schedule("allreduce", "hier:mesh/mesh", 1 << 20)
