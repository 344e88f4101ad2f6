"""Full-mesh algorithms at every scale: the numpy-built mesh schedules, the grouped full-mesh all-to-all
(algorithms/gmesh.py) with its compact form, and auto without a rank cutoff. In-process."""
import dataclasses

import pytest

from hccl_sim.algorithms import Context, build_schedule
from hccl_sim.algorithms.mesh import MESH_MAX_TRANSFERS
from hccl_sim.planning import NetworkModel
from test_collectives import run_case

SMALL = "atlas950-superpod:board=2,boards=2,cabinets=4"  # 2 x 2 full mesh, 4 cabinets on the Clos


def _contexts():
    """Grids with rounds: the reduced Atlas 950 (mesh group of 4), servers of 4 on switches, 3 servers of
    2 (no grid: the server groups), CloudMatrix384's servers of 8."""
    return [NetworkModel(16, SMALL).context, NetworkModel(12, "two-level:server=4").context,
            Context(6, ((0, 1), (2, 3), (4, 5))), NetworkModel(24, "cloudmatrix384").context]


def test_grouped_full_mesh_alltoall_moves_the_right_data():
    failures = []
    for ctx in _contexts():
        for coll in ("alltoall", "alltoallv"):  # alltoallv: an uneven random matrix
            for blk in (0, 1, 3):
                bad = run_case(coll, "gmesh", ctx, blk, 0, seed=ctx.nranks + blk)
                if bad:
                    failures.append((ctx.nranks, coll, blk, bad))
    assert not failures, failures


def test_grouped_full_mesh_rounds_every_pair_meets_once():
    ctx = NetworkModel(16, SMALL).context
    steps = build_schedule("alltoall", "gmesh", ctx, 16 * 5).steps
    assert len(steps) == 4 and [len(s) for s in steps] == [16 * 3] + [16 * 4] * 3
    pairs = {(int(a), int(b)) for s in steps for a, b in zip(s.src, s.dst)}
    assert len(pairs) == 16 * 15


@pytest.mark.parametrize("topology,ranks", [(SMALL, 16), ("atlas950-superpod:board=2,boards=2,cabinets=6", 24),
                                            ("two-level:server=4", 16), ("cloudmatrix384", 64),
                                            ("cloudmatrix384:per_die=1", 64)])
def test_grouped_full_mesh_compact_form_times_exactly_as_the_full_schedule(topology, ranks):
    """One representative round per class, repeated, against every round written out."""
    model = NetworkModel(ranks, topology)
    full = build_schedule("alltoall", "gmesh", model.context, ranks * 1000)
    compact = build_schedule("alltoall", "gmesh", dataclasses.replace(model.context, compact=True), ranks * 1000)
    assert compact.timing_only and len(compact.steps) < len(full.steps)
    assert compact.num_transfers == full.num_transfers
    want = model.timing.run(full, 4).time
    assert model.timing.run(compact, 4).time == pytest.approx(want, rel=1e-12)


def test_grouped_full_mesh_closed_form_on_two_switch_levels():
    """S servers of K on switches: a0 + (K-1) n/p / B0 inside the server, then S - 1 rounds in which the
    server's uplink carries K x K blocks: a1 + K^2 n/p / B1 (a route: 2 hops at each level it climbs)."""
    k, s, li, lo, bi, bo = 4, 5, 0.6e-6, 2e-6, 392e9, 200e9
    model = NetworkModel(k * s, f"two-level:server={k}")
    nbytes = 4 * k * s * 1000
    block = nbytes / (k * s)
    want = 2 * li + (k - 1) * block / bi + (s - 1) * (2 * li + 2 * lo + k * k * block / bo)
    assert model.time("alltoall", "gmesh", nbytes // 4, 4).time == pytest.approx(want, rel=1e-9)
    # one group (one server): the mesh algorithm, a + (p-1)/p n b
    one = NetworkModel(k, f"two-level:server={k}")
    assert one.time("alltoall", "gmesh", 1000 * k, 4).time == pytest.approx(
        2 * li + (k - 1) * 4000 / bi, rel=1e-9)
    assert "gmesh" not in one.applicable("alltoall")  # it is mesh there


@pytest.mark.parametrize("ranks", [128, 256])
def test_auto_runs_the_full_mesh_alltoall_on_cloudmatrix384(ranks):
    """No rank cutoff: Huawei measures a flat all-to-all latency from 8 to 256 ranks; serial pairwise was
    40-80x slower here at these sizes."""
    model = NetworkModel(ranks, "cloudmatrix384")
    count = ranks * 2048
    assert "mesh" in model.applicable("alltoall")
    assert model.resolve("alltoall", "auto", count, 4) == "mesh"
    assert model.time("alltoall", "pairwise", count, 4).time > 20 * model.time("alltoall", "mesh", count, 4).time


def test_mesh_at_scale_compact_form_and_auto():
    # above the 1,024-rank compact threshold mesh has a compact form equal to its data schedule
    model = NetworkModel(1100, "flat")
    assert model.context.compact and "mesh" in model.applicable("allreduce")
    data = NetworkModel(1100, "flat")
    data_ctx = dataclasses.replace(data.context, compact=False)
    for coll in ("allreduce", "allgather", "reduce_scatter", "alltoall"):
        compact = build_schedule(coll, "mesh", model.context, 1100 * 7)
        full = build_schedule(coll, "mesh", data_ctx, 1100 * 7)
        assert compact.timing_only and compact.num_transfers == full.num_transfers
    # where p(p-1) flows exceed the engine's budget auto leaves mesh out; gmesh takes the all-to-all
    big = NetworkModel(8192, "atlas950-superpod")
    assert "mesh" not in big.applicable("alltoall") and "gmesh" in big.applicable("alltoall")
    assert "mesh" not in big.applicable("allreduce")


def test_mesh_too_large_is_refused_with_the_forms_that_scale():
    p = 1 << 12
    assert p * (p - 1) > MESH_MAX_TRANSFERS
    with pytest.raises(ValueError, match="gmesh"):
        NetworkModel(p, "atlas950-superpod").schedule("alltoall", "mesh", p)
