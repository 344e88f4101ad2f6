"""Every collective x algorithm in-process (1..16 ranks) against a torch reference, closed-form modeled
times on flat and full-mesh topologies, auto selection, crossovers and HCCL_ALGO parsing. No MPI."""
import math

import numpy as np
import pytest
import torch

from hccl_sim.algorithms import BUILDERS, Context, build_schedule, selection
from hccl_sim.collectives import SPECS
from hccl_sim.executors.local import run_local
from hccl_sim.planning import NetworkModel
from hccl_sim.topology import Level, Topology, load_topology

def uneven(equal, blk):
    """A v-variant's counts in the shape of its equal ones (blocks, or an all-to-all matrix), uneven with
    zeros included; None for the others."""
    if equal is None:
        return None
    if np.ndim(equal) == 1:
        return [(r * 3 + blk) % 5 for r in range(len(equal))]
    return [[(i + 2 * j + blk) % 4 for j in range(len(equal))] for i in range(len(equal))]


def _case(coll, p, blk, root, seed):
    """Every rank's input and output tensors (sized by the collective's descriptor: blocks of ``blk``,
    one element more in place, uneven counts for v-variants), the call's Job and its v-counts."""
    spec = SPECS[coll]
    g = torch.Generator().manual_seed(seed)
    counts = uneven(spec.equal_counts(p, blk), blk)
    job = spec.job(blk * p + spec.in_place, root, counts)
    sizes = [spec.sizes(p, r, job.count, *spec.rank_args(r, job)) for r in range(p)]
    ins = [torch.randint(-3, 4, (n_in,), generator=g) for n_in, _ in sizes]
    if spec.in_place:
        return ins, [x.clone() for x in ins], job, counts
    outs = [torch.zeros(n_out, dtype=torch.int64) if spec.holds(r, root)[1] else None
            for r, (_, n_out) in enumerate(sizes)]
    return ins, outs, job, counts


def run_case(coll, algo, ctx, blk, root, op="sum", seed=0):
    """Run ``coll`` in-process on every rank; the ranks whose output or input is wrong."""
    p, spec = ctx.nranks, SPECS[coll]
    ins, outs, job, counts = _case(coll, p, blk, root, seed)
    orig = [x.clone() for x in ins]
    schedule = build_schedule(coll, algo, ctx, job.count, root, job.blocks, job.matrix)
    bufs = [spec.working_buffers(r, p, job, outs[r], outs[r] if spec.in_place else ins[r]) for r in range(p)]
    run_local(schedule, bufs, op)
    bad = []
    for r in range(p):
        if outs[r] is not None:
            spec.finish(r, p, job, bufs[r], outs[r], op)
        expected = spec.expected_output(r, orig, op, root, counts)
        if expected is not None and not torch.equal(outs[r], expected):
            bad.append(r)
        if not spec.in_place and not torch.equal(ins[r], orig[r]):
            bad.append(f"input of {r} changed")
    return bad


@pytest.mark.parametrize("coll", list(BUILDERS))
def test_every_algorithm_matches_torch_for_1_to_16_ranks(coll):
    failures = []
    for algo in BUILDERS[coll]:
        if algo == "hier":
            continue
        for p in range(1, 17):
            roots = range(p) if SPECS[coll].rooted and p <= 8 else sorted({0, p // 2, p - 1})
            for blk in (0, 1, 3):
                for root in roots:
                    bad = run_case(coll, algo, Context.flat(p), blk, root, seed=p * 100 + blk)
                    if bad:
                        failures.append((algo, p, blk, root, bad))
    assert not failures, failures[:10]


@pytest.mark.parametrize("coll,variants", [
    ("allreduce", ["ring/ring", "ring/rhd", "ring/nb", "ring/mesh", "nhr/nhr"]),
    ("allgather", ["ring/ring", "mesh/rhd", "nb/nb", "dring/ring", "ring/mesh", "nhr/nhr"]),
    ("reduce_scatter", ["ring/ring", "mesh/rhd", "nb/nb", "rhd/dring", "nhr/nhr"]),
    ("broadcast", ["ring/tree", "star/pipeline", "mesh/ring", "tree/star", "ring/mesh"]),
])
def test_hierarchical_compositions(coll, variants):
    failures = []
    for servers, per in [(2, 2), (3, 2), (2, 3), (3, 4)]:
        p = servers * per
        ctx = Context(p, tuple(tuple(range(s * per, (s + 1) * per)) for s in range(servers)))
        for v in variants:
            for blk in (0, 1, 5):
                for root in (range(p) if coll == "broadcast" else [0]):
                    if run_case(coll, "hier:" + v, ctx, blk, root, seed=blk):
                        failures.append((v, servers, per, blk, root))
    assert not failures, failures[:10]


def test_other_ops_on_reducing_collectives():
    failures = []
    for coll in ("allreduce", "reduce", "reduce_scatter", "reduce_scatterv"):
        for algo in BUILDERS[coll]:
            if algo == "hier":
                continue
            for op in ("max", "min", "prod"):
                for p in (3, 4, 6):
                    if run_case(coll, algo, Context.flat(p), 2, p - 1, op=op, seed=p):
                        failures.append((coll, algo, op, p))
    assert not failures, failures


# ---- closed forms --------------------------------------------------------------------------------------
BW, LAT, G_BW = 100e9, 0.5e-6, 400e9


def flat(p, reduce_bw=G_BW):
    return NetworkModel(p, load_topology(f"flat:bw={BW},lat={LAT}s,reduce_bw={reduce_bw}", p))


def full_mesh(p, reduce_bw=math.inf):
    return NetworkModel(p, Topology("mesh", (Level("board", p, "mesh", BW, LAT),), reduce_bandwidth=reduce_bw))


A_FLAT, A_MESH, B, G = 2 * LAT, LAT, 1 / BW, 1 / G_BW  # a flat route is two links, a mesh route one


def _time(model, coll, algo, nbytes, **shape):
    return model.time(coll, algo, nbytes // 4, 4, **shape).time


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7, 8, 12, 16])
def test_closed_forms_any_p(p):
    n = 4 * p * 1000  # bytes, p equal fp32 chunks
    L = math.ceil(math.log2(p))
    m = flat(p)
    # ring allgather / reduce-scatter: (p-1)a + (p-1)/p n b (+ (p-1)/p n g)
    assert _time(m, "allgather", "ring", n) == pytest.approx((p - 1) * A_FLAT + (p - 1) / p * n * B, rel=1e-9)
    assert _time(m, "reduce_scatter", "ring", n) == pytest.approx(
        (p - 1) * A_FLAT + (p - 1) / p * n * (B + G), rel=1e-9)
    # NB allgather: ceil(log2 p) a + (p-1)/p n b
    assert _time(m, "allgather", "nb", n) == pytest.approx(L * A_FLAT + (p - 1) / p * n * B, rel=1e-9)
    # NB allreduce (g = 0): 2 ceil(log2 p) a + 2(p-1)/p n b
    m0 = flat(p, "inf")
    assert _time(m0, "allreduce", "nb", n) == pytest.approx(2 * L * A_FLAT + 2 * (p - 1) / p * n * B, rel=1e-9)
    # pairwise all-to-all, n bytes sent per rank: (p-1)(a + n/p b)
    assert _time(m, "alltoall", "pairwise", n) == pytest.approx((p - 1) * (A_FLAT + n / p * B), rel=1e-9)
    # full mesh (own link per pair, g = 0): allreduce 2a + 2/p n b; allgather and all-to-all a + n/p b
    fm = full_mesh(p)
    assert _time(fm, "allreduce", "mesh", n) == pytest.approx(2 * A_MESH + 2 / p * n * B, rel=1e-9)
    assert _time(fm, "allgather", "mesh", n) == pytest.approx(A_MESH + n / p * B, rel=1e-9)
    assert _time(fm, "alltoall", "mesh", n) == pytest.approx(A_MESH + n / p * B, rel=1e-9)
    # ring on the full mesh uses one direct link per hop: 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g
    fmg = full_mesh(p, G_BW)
    assert _time(fmg, "allreduce", "ring", n) == pytest.approx(
        2 * (p - 1) * A_MESH + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G, rel=1e-9)
    # binomial broadcast: ceil(log2 p)(a + n b)
    assert _time(m, "broadcast", "tree", n, root=p - 1) == pytest.approx(L * (A_FLAT + n * B), rel=1e-9)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_rhd_closed_forms_power_of_two(p):
    n = 4 * p * 1000
    m = flat(p)
    k = math.log2(p)
    # H-D_R allgather log2(p) a + (p-1)/p n b; reduce-scatter + (p-1)/p n g
    assert _time(m, "allgather", "rhd", n) == pytest.approx(k * A_FLAT + (p - 1) / p * n * B, rel=1e-9)
    assert _time(m, "reduce_scatter", "rhd", n) == pytest.approx(k * A_FLAT + (p - 1) / p * n * (B + G), rel=1e-9)


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7, 8, 9, 12, 16])
def test_nhr_closed_forms(p):
    """HCCL's published NHR costs, L = ceil(log2 p) steps for any p (n bytes, p equal chunks)."""
    n = 4 * p * 1000
    L = math.ceil(math.log2(p))
    m, m0 = flat(p), flat(p, "inf")
    # allgather: ceil(log2 p) a + (p-1)/p n b
    assert _time(m, "allgather", "nhr", n) == pytest.approx(L * A_FLAT + (p - 1) / p * n * B, rel=1e-9)
    assert _time(m, "allgatherv", "nhr", n, blocks=(n // 4 // p,) * p) == pytest.approx(
        L * A_FLAT + (p - 1) / p * n * B, rel=1e-9)
    # reduce-scatter (g = 0): ceil(log2 p) a + (p-1)/p n b
    assert _time(m0, "reduce_scatter", "nhr", n) == pytest.approx(L * A_FLAT + (p - 1) / p * n * B, rel=1e-9)
    # allreduce (g = 0): 2 ceil(log2 p) a + 2(p-1)/p n b
    assert _time(m0, "allreduce", "nhr", n) == pytest.approx(2 * L * A_FLAT + 2 * (p - 1) / p * n * B, rel=1e-9)
    # With g, where every step is one transfer per rank (the allreduce's slice map merges a step's slices
    # for p = 2^k and 3 * 2^k; reduce-scatter alone sends one slice a step for p <= 3):
    # allreduce 2 ceil(log2 p) a + 2(p-1)/p n b + (p-1)/p n g; reduce-scatter ceil(log2 p) a + (p-1)/p n (b + g).
    # (Otherwise a step is several transfers to one peer, whose reduces the engine overlaps: it models less
    # than HCCL, which reduces them one by one; the compact schedules, test_scale.py, give the formula.)
    if p & (p - 1) == 0 or p in (3, 6, 12):
        assert _time(m, "allreduce", "nhr", n) == pytest.approx(
            2 * L * A_FLAT + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G, rel=1e-9)
    if p <= 3:
        assert _time(m, "reduce_scatter", "nhr", n) == pytest.approx(
            L * A_FLAT + (p - 1) / p * n * (B + G), rel=1e-9)


# ---- auto ---------------------------------------------------------------------------------------------
SWEEP = [1 << k for k in range(2, 27, 2)]  # elements, 16 B .. 256 MB of fp32


def test_auto_never_loses_and_crosses_over():
    """auto's choice costs no more than any applicable algorithm; small sizes pick a latency-optimal
    algorithm (few steps), large sizes a bandwidth-optimal one, on flat and two-level topologies."""
    for model in (flat(8), NetworkModel(8, load_topology("two-level:server=4", 8))):
        for coll in ("allreduce", "allgather", "reduce_scatter", "broadcast", "reduce", "alltoall", "scatter"):
            chosen = []
            for count in SWEEP:
                algo = model.resolve(coll, "auto", count, 4)
                times = {a: model.time(coll, a, count, 4).time for a in model.applicable(coll)}
                assert model.time(coll, algo, count, 4).time == min(times.values()), (coll, count, algo, times)
                chosen.append(algo)
            if coll == "broadcast" or model.hierarchical and coll in ("allreduce", "allgather", "reduce_scatter"):
                assert chosen[0] != chosen[-1], (coll, chosen)  # a crossover exists


def test_crossover_sweep_table():
    """The crossover points of allreduce on two servers of 4, as a table of (size, choice). (On one
    non-blocking switch the direct mesh algorithm is never beaten: the model has no per-message cost.)"""
    m = NetworkModel(8, load_topology("two-level:server=4", 8))
    table = [(4 * c, m.resolve("allreduce", "auto", c, 4)) for c in SWEEP]
    switches = [(table[i][0], table[i - 1][1], table[i][1]) for i in range(1, len(table)) if table[i][1] != table[i - 1][1]]
    print("\nallreduce crossovers (bytes, from, to):", switches)
    assert switches, table
    # small messages: fewest steps wins; the choice at the largest size moves the least data
    first, last = table[0][1], table[-1][1]
    steps = {a: len(m.schedule("allreduce", a, 8).steps) for a in m.applicable("allreduce")}
    assert steps[first] == min(steps.values())
    assert m.time("allreduce", last, SWEEP[-1], 4).time <= m.time("allreduce", "tree", SWEEP[-1], 4).time / 2


# ---- HCCL_ALGO ----------------------------------------------------------------------------------------
def test_hccl_algo_strings():
    two = NetworkModel(8, load_topology("two-level:server=4", 8))
    one = flat(8)
    assert two.requested("allreduce", "level0:NA;level1:H-D_R") == "hier:ring/rhd"
    assert one.requested("allreduce", "level0:NA;level1:H-D_R") == "rhd"
    assert one.requested("allreduce", "level0:NA;level1:NA") == "auto"
    per_op = "allreduce=level0:NA;level1:ring/allgather=level0:NA;level1:H-D_R"
    assert one.requested("allreduce", per_op) == "ring"
    assert one.requested("allgatherv", per_op) == "rhd"
    assert one.requested("broadcast", per_op) == "auto"
    assert two.requested("allgather", per_op) == "hier:ring/rhd"
    assert two.requested("alltoall", "level0:fullmesh;level1:pairwise") == "pairwise"
    assert selection.parse("others=level1:NB")["others"] == {1: "nb"}
    with pytest.raises(ValueError, match="level1 algorithm 'bogus'"):
        one.requested("allreduce", "level0:NA;level1:bogus")
    with pytest.raises(ValueError, match="operator 'allfoo'"):
        one.requested("allreduce", "allfoo=level0:NA")
    # and it runs: the resolved hier schedule exists and is timed
    assert two.time("allreduce", two.resolve("allreduce", "level0:NA;level1:H-D_R", 1000, 4), 1000, 4).time > 0


def test_hccl_algo_selects_nhr():
    one = flat(8)
    two = NetworkModel(8, load_topology("two-level:server=4", 8))
    assert one.requested("allreduce", "level0:NHR") == "nhr"
    assert one.requested("reduce_scatterv", "level0:NA;level1:NHR") == "nhr"
    assert one.requested("allgather", "allgather=level0:nhr/others=level0:ring") == "nhr"
    assert one.requested("broadcast", "allgather=level0:nhr/others=level0:ring") == "ring"
    assert two.requested("allreduce", "level0:NA;level1:NHR") == "hier:ring/nhr"
    assert two.requested("reduce_scatter", "level0:NHR;level1:NHR") == "hier:nhr/nhr"
    # it runs, and is timed as NHR by name is
    for coll in ("allreduce", "allgather", "reduce_scatter"):
        algo = one.resolve(coll, "level0:NHR", 8000, 4)
        assert one.time(coll, algo, 8000, 4).time == one.time(coll, "nhr", 8000, 4).time > 0
        assert two.time(coll, two.resolve(coll, "level0:NA;level1:NHR", 8000, 4), 8000, 4).time > 0


def test_bad_root_and_counts_are_named():
    with pytest.raises(ValueError, match="root 5"):
        build_schedule("broadcast", "tree", Context.flat(4), 10, 5)
    with pytest.raises(ValueError, match="counts has 3 entries"):
        build_schedule("allgatherv", "ring", Context.flat(4), 10, 0, (1, 2, 3))


# ---- the registry of collective descriptors ----------------------------------------------------
def test_each_descriptor_reads_back_its_own_count():
    """nccl-tests' count has one meaning per collective: the tensors ``sizes`` gives for a count
    (a multiple of p) give that count back, on every rank, and pass the argument check."""
    p = 4
    for name, spec in SPECS.items():
        job = spec.job(spec.work_count(12, p), 1, spec.equal_counts(p, 3))
        for r in range(p):
            args = spec.rank_args(r, job)
            n_in, n_out = spec.sizes(p, r, job.count, *args)
            has_in, has_out = spec.holds(r, 1)
            x = torch.zeros(n_in) if has_in else None
            out = x if spec.in_place else torch.zeros(n_out) if has_out else None
            error, count, _ = spec.check(r, p, out, x, "sum", 1 if spec.rooted else -1, args)
            assert error == "" and count == (0 if args else job.count), (name, r, error, count)
        wrong = spec.check(0, p, torch.zeros(5), torch.zeros(7), "sum", 0, spec.checked_counts(p, ([2] * p,) * 2)[0])[0]
        assert ("elements, needs" in wrong) == (name != "barrier"), (name, wrong)  # a barrier has no tensors


def test_registry_lookup_and_duplicates():
    from hccl_sim.collectives import lookup, register
    assert lookup("gather") is SPECS["gather"]
    with pytest.raises(ValueError, match="'allfoo' is not supported .*allreduce"):
        lookup("allfoo")
    with pytest.raises(ValueError, match="registered twice"):
        register(SPECS["allreduce"])


def test_config_from_env_and_shared_clock():
    from hccl_sim.comm import Clock, CommConfig
    env = {"HCCL_SIM_TOPOLOGY": "flat", "HCCL_SIM_PLACEMENT": "spread", "HCCL_SIM_TIMEOUT": "7"}
    config = CommConfig.from_env(placement="linear", environ=env)
    assert (config.topology, config.placement, config.timeout) == ("flat", "linear", 7.0)
    with pytest.raises(ValueError, match="timeout: must be > 0"):
        CommConfig.from_env(timeout=0, environ=env)
    from hccl_sim.torch.timeline import ComputeModel, Timeline
    timeline = Timeline(compute=ComputeModel.parse("none"))
    timeline.clock, timeline.stream = 2.0, 1.0
    assert timeline.enter() == timeline.comm_clock.now == 2.0  # an operation issued now starts here
    assert timeline.enter(3.0) == timeline.comm_clock.now == 3.0
    assert isinstance(timeline.comm_clock, Clock) and Clock(1.0).advance(0.5) == 1.5
