"""Prediction at scale: the stepwise engine and compact schedules against the exact engine and closed forms."""
import math

import numpy as np
import pytest
import torch

import hccl_sim
from hccl_sim.algorithms import Context, Schedule, StepBuilder, build_schedule
from hccl_sim.algorithms.ring import compact_pass as ring_pass
from hccl_sim.algorithms.schedule import merge_parallel
from hccl_sim.executors.local import run_local
from hccl_sim.planning import COMPACT_RANKS, NetworkModel, server_groups
from hccl_sim.timing import TimingModel
from hccl_sim.timing import EXACT_TRANSFERS, choose_engine
from hccl_sim.timing.stepwise import StepwiseSimulator
from hccl_sim.topology import Level, Topology, load_topology

BW, LAT, G_BW = 100e9, 0.5e-6, 400e9
A, B, G = 2 * LAT, 1 / BW, 1 / G_BW  # flat: a route is two links


def flat(p, reduce=True):
    return load_topology(f"flat:bw={BW},lat={LAT}s" + (f",reduce_bw={G_BW}" if reduce else ""), p)


def two_level(p, m, reduce=False):
    spec = f"two-level:server={m},intra_bw=400GB/s,intra_lat=0.5us,inter_bw=200GB/s,inter_lat=2us"
    return load_topology(spec + (",reduce_bw=400GB/s" if reduce else ""), p)


def mesh_pod(top=2):
    """Board mesh of 4, rack mesh of 2 boards, pod switch of 4 racks, oversubscribed top switch."""
    return Topology("mesh-pod", (Level("board", 4, "mesh", 400e9, 0.2e-6), Level("rack", 2, "mesh", 300e9, 0.3e-6),
                                 Level("pod", 4, "switch", 200e9, 1e-6), Level("top", top, "switch", 100e9, 2e-6, 2.0)))


def stepwise_time(topo, schedule, itemsize=4):
    exits, _ = StepwiseSimulator(topo, np.arange(schedule.nranks)).run(schedule, itemsize, np.zeros(schedule.nranks))
    return exits.max()


def exact_time(topo, schedule, itemsize=4):
    return TimingModel(topo, np.arange(schedule.nranks)).run(schedule, itemsize).time


# ---- the stepwise engine equals the exact one on lockstep schedules ---------------------------------------
LOCKSTEP = [(flat(16), 16), (flat(64), 64), (two_level(16, 4), 16), (two_level(64, 8), 64),
            (two_level(32, 4, reduce=True), 32), (mesh_pod(), 64)]
CASES = [("allreduce", "ring"), ("allreduce", "rhd"), ("allreduce", "hier:ring/rhd"), ("allreduce", "hier"),
         ("allgather", "ring"), ("allgather", "rhd"), ("reduce_scatter", "ring"), ("reduce_scatter", "rhd"),
         ("allgather", "hier"), ("allgather", "hier:ring/rhd"), ("reduce_scatter", "hier"),
         ("reduce_scatter", "hier:rhd/ring")]


def lockstep_params(cases, exclude_ring_with_reduce_cost=False):
    """(topology, ranks, collective, algo) for every case that applies: hierarchical needs two servers,
    and (optionally) leave out compact ring reductions across servers with reduce costs (ring, hier's
    reduce-scatter), which are the lockstep upper bound (stepwise.py; its own test below)."""
    out = []
    for topo, p in LOCKSTEP:
        several = len(server_groups(topo, np.arange(p))) > 1
        for collective, algo in cases:
            if algo.startswith("hier") and not several:
                continue
            ring_reduce_across_servers = (algo == "ring" and collective != "allgather"
                                          or algo.startswith("hier") and collective == "reduce_scatter")
            if (exclude_ring_with_reduce_cost and topo.reduce_bandwidth != math.inf and ring_reduce_across_servers
                    and several):
                continue
            out.append(pytest.param(topo, p, collective, algo, id=f"{topo.name}-{p}-{collective}-{algo}"))
    return out


@pytest.mark.parametrize("topo,p,collective,algo", lockstep_params(CASES, exclude_ring_with_reduce_cost=True))
def test_stepwise_equals_exact_engine_on_lockstep_cases(topo, p, collective, algo):
    groups = server_groups(topo, np.arange(p))
    count = p * 4096
    full = build_schedule(collective, algo, Context(p, groups), count)
    compact = build_schedule(collective, algo, Context(p, groups, compact=True), count)
    exact = exact_time(topo, full)
    assert stepwise_time(topo, full) == pytest.approx(exact, rel=1e-12)
    assert stepwise_time(topo, compact) == pytest.approx(exact, rel=1e-12)


def test_compact_ring_is_exact_across_servers_without_reduce_cost_and_an_upper_bound_with_it():
    topo, p = two_level(32, 4, reduce=True), 32
    groups = server_groups(topo, np.arange(p))
    full = build_schedule("allreduce", "ring", Context(p, groups), p * 4096)
    compact = build_schedule("allreduce", "ring", Context(p, groups, compact=True), p * 4096)
    exact, approx = exact_time(topo, full), stepwise_time(topo, compact)
    assert exact < approx < exact * 1.05


def test_stepwise_flows_start_at_their_senders_clock():
    # rank 1 enters 1 ms late: its transfer to rank 2 starts then; rank 0's starts at 0
    topo = flat(3, reduce=False)
    sched = Schedule("custom", "custom", 3, 1000)
    sched.append(StepBuilder().add(0, 2, 0, 0, 250_000).add(1, 2, 0, 0, 250_000))
    exits, _ = StepwiseSimulator(topo, np.arange(3)).run(sched, 4, np.array([0.0, 1e-3, 0.0]))
    assert exits[2] == pytest.approx(1e-3 + A + 1e6 * B, rel=1e-12)  # no overlap: each had the link alone
    assert exits[0] == pytest.approx(A + 1e6 * B, rel=1e-12)


# ---- closed forms at scale (through hccl_sim.predict) -------------------------------------------------------
def test_ring_allreduce_at_8192_matches_closed_form():
    p = 8192
    count = p * 100
    n = 4 * count
    expected = 2 * (p - 1) * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G
    assert hccl_sim.predict("allreduce", count, p, topology=flat(p), algo="ring").time == pytest.approx(expected, rel=1e-9)


def test_rhd_allreduce_at_a_million_ranks_matches_closed_form():
    p = 1 << 20
    count = p * 16
    n = 4 * count
    expected = 2 * math.log2(p) * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G
    assert hccl_sim.predict("allreduce", count, p, topology=flat(p), algo="rhd").time == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("reduce", [False, True])
def test_hierarchical_allreduce_at_8192_is_the_sum_of_its_phases(reduce):
    p, m = 8192, 8
    servers = p // m
    topo = two_level(p, m, reduce)
    count = p * 64
    n = 4 * count
    g = 1 / 400e9 if reduce else 0.0
    a0, b0 = 2 * 0.5e-6, 1 / 400e9  # inside a server: NPU up and down
    a1 = 2 * 0.5e-6 + 2 * 2e-6  # across: also the server's uplink and the other's downlink
    b1 = 1 / min(400e9, 200e9 / m)  # the m ranks of a server share its uplink
    shard = n / m
    intra = (m - 1) * (a0 + shard * b0)
    inter = 2 * (servers - 1) * (a1 + shard / servers * b1)
    reduces = (m - 1) * shard * g + (servers - 1) * shard / servers * g
    expected = intra + inter + intra + reduces
    time = hccl_sim.predict("allreduce", count, p, topology=topo, algo="hier:ring/ring").time
    assert time == pytest.approx(expected, rel=1e-9)


def test_alltoall_at_8192_on_two_levels_matches_closed_form():
    p, m = 8192, 8
    topo = two_level(p, m)
    count = p * 250  # elements each rank sends, 250 to every rank
    block = 4 * 250
    a0, b0 = 2 * 0.5e-6, 1 / 400e9
    a1, b1 = 2 * 0.5e-6 + 2 * 2e-6, 1 / min(400e9, 200e9 / m)
    expected = (m - 1) * (a0 + block * b0) + (p - m) * (a1 + block * b1)
    time = hccl_sim.predict("alltoall", count, p, topology=topo, algo="pairwise").time
    assert time == pytest.approx(expected, rel=1e-9)


def _digit_order_pairwise(p, count, radices):
    """The full pairwise schedule in digit order, written out step by step (what pairwise.alltoall_by_digits classifies)."""
    strides = np.concatenate([[1], np.cumprod(radices)[:-1]])
    coords = lambda x: [(x // s) % r for s, r in zip(strides, radices)]
    sched = Schedule("alltoall", "pairwise", p, count)
    for k in range(1, p):
        step = StepBuilder()
        for i in range(p):
            j = sum(((ci + ck) % r) * s for ci, ck, r, s in zip(coords(i), coords(k), radices, strides))
            step.add(i, int(j), 0, 0, count // p)
        sched.append(step)
    return sched


@pytest.mark.parametrize("p", [32, 64])
def test_compact_alltoall_classes_equal_the_full_digit_order_schedule(p):
    topo = mesh_pod()
    model = NetworkModel(p, topo)
    radices = (4, 2, 4, 2)[: {32: 3, 64: 4}[p]]
    ctx = Context(p, model.context.groups, compact=True, radices=radices, mesh_levels=2)
    compact = build_schedule("alltoall", "pairwise", ctx, p * 1000)
    assert sum(s.repeat for s in compact.steps) == p - 1
    assert len(compact.steps) < 8  # three mesh classes and one per switch level
    full = _digit_order_pairwise(p, p * 1000, radices)
    assert stepwise_time(topo, compact) == pytest.approx(exact_time(topo, full), rel=1e-12)


# ---- NHR: compact schedules against the full ones, and HCCL's closed forms at scale -----------------------
NHR_CASES = [("allreduce", "nhr"), ("reduce_scatter", "nhr"), ("allgather", "nhr"), ("allreduce", "hier:ring/nhr")]


def _several_reduces_per_pair(schedule, topo):
    """A step sends one rank several reducing transfers from one peer (slices not adjacent in memory):
    the engine overlaps their reduces, so the full schedule models less reduce time than the compact
    one, whose one transfer per pair and step costs the slices' reduces in a row, as HCCL does."""
    return topo.reduce_bandwidth != math.inf and any(
        s.reduce.any() and len(set(zip(s.src.tolist(), s.dst.tolist()))) < len(s) for s in schedule.steps)


@pytest.mark.parametrize("p", [13, 16, 24, 2048])
@pytest.mark.parametrize("reduce", [False, True])
@pytest.mark.parametrize("collective", ["allreduce", "reduce_scatter", "allgather"])
def test_compact_nhr_equals_the_full_schedule_on_flat(p, reduce, collective):
    """Forced both ways: the full schedule on the exact engine (stepwise above 1,024 ranks), the compact
    one stepwise. 2,048 ranks: the full schedule has 2^21 transfers in its first reduce-scatter step."""
    topo = flat(p, reduce)
    count = p * 1000
    full = build_schedule(collective, "nhr", Context.flat(p), count)
    compact = build_schedule(collective, "nhr", Context(p, (tuple(range(p)),), compact=True), count)
    assert compact.timing_only and not full.timing_only
    assert compact.bytes_sent(4) == full.bytes_sent(4)
    if _several_reduces_per_pair(full, topo):  # reduce-scatter alone, or p not 2^k / 3 * 2^k
        assert exact_time(topo, full) < stepwise_time(topo, compact)
    else:
        assert stepwise_time(topo, compact) == pytest.approx(exact_time(topo, full), rel=1e-12)


@pytest.mark.parametrize("topo,p,collective,algo", lockstep_params(NHR_CASES))
def test_compact_nhr_equals_the_full_schedule_stepwise(topo, p, collective, algo):
    """On every topology the compact NHR schedule times as the full one on the same (stepwise) engine. (The
    exact engine differs where NHR is not lockstep: flat NHR over two levels of 8 ranks a server, say.)"""
    groups = server_groups(topo, np.arange(p))
    count = p * 4096
    full = build_schedule(collective, algo, Context(p, groups), count)
    compact = build_schedule(collective, algo, Context(p, groups, compact=True), count)
    if _several_reduces_per_pair(full, topo):
        assert stepwise_time(topo, full) <= stepwise_time(topo, compact) * (1 + 1e-12)
    else:
        assert stepwise_time(topo, compact) == pytest.approx(stepwise_time(topo, full), rel=1e-12)


@pytest.mark.parametrize("collective", ["allreduce", "reduce_scatter", "allgather"])
def test_nhr_at_100000_ranks_matches_hccls_closed_form(collective):
    p = 100_000  # not a power of two: ceil(log2 p) = 17 steps each way
    count = p * 16
    n, L = 4 * count, 17
    # allreduce 2L a + 2(p-1)/p n b + (p-1)/p n g; reduce-scatter L a + (p-1)/p n (b + g); allgather L a + (p-1)/p n b
    expected = {"allreduce": 2 * L * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G,
                "reduce_scatter": L * A + (p - 1) / p * n * (B + G),
                "allgather": L * A + (p - 1) / p * n * B}[collective]
    time = hccl_sim.predict(collective, count, p, topology=flat(p), algo="nhr").time
    assert time == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("topo,p,root", [(flat(2048), 2048, 5), (two_level(3000, 8), 3000, 1234)])
@pytest.mark.parametrize("collective", ["broadcast", "reduce"])
def test_compact_binomial_tree_equals_the_full_schedule(topo, p, root, collective):
    """The compact tree moves tree.py's transfers in tree.py's steps, and times as it on either engine."""
    groups = server_groups(topo, np.arange(p))
    count = 1 << 16
    full = build_schedule(collective, "tree", Context(p, groups), count, root)
    compact = build_schedule(collective, "tree", Context(p, groups, compact=True), count, root)
    assert compact.timing_only and not full.timing_only and len(compact.steps) == math.ceil(math.log2(p))
    for a, b in zip(full.steps, compact.steps, strict=True):
        assert [a.src.tolist(), a.dst.tolist(), a.count.tolist(), a.reduce.tolist()] == \
               [b.src.tolist(), b.dst.tolist(), b.count.tolist(), b.reduce.tolist()]
    assert stepwise_time(topo, compact) == pytest.approx(exact_time(topo, full), rel=1e-12)


@pytest.mark.parametrize("collective", ["broadcast", "reduce"])
def test_tree_broadcast_and_reduce_at_scale_match_closed_form_and_auto_has_them(collective):
    # 2^17 ranks: 17 lockstep steps of the whole buffer, L(a + n b), reduce + L n g. (Off powers of two the
    # binomial reduce is not lockstep: ranks with fewer children run ahead, and both engines model less.)
    p = 1 << 17
    count = 1 << 20
    n, L = 4 * count, 17
    expected = L * (A + n * B + (n * G if collective == "reduce" else 0))
    prediction = hccl_sim.predict(collective, count, p, topology=flat(p), root=777)
    assert prediction.algo == "tree" and prediction.time == pytest.approx(expected, rel=1e-9)


# ---- the mode is a function of the case; compact schedules stay out of data executors ------------------------
def test_small_cases_use_the_exact_engine_and_large_ones_compact_stepwise():
    small = NetworkModel(64, two_level(64, 8))
    assert not small.context.compact
    assert choose_engine(small.schedule("allreduce", "ring", 1 << 20)) == "exact"
    large = NetworkModel(COMPACT_RANKS + 8, two_level(COMPACT_RANKS + 8, 8))
    assert large.context.compact and large.context.radices == (8, (COMPACT_RANKS + 8) // 8)
    sched = large.schedule("allreduce", "ring", 1 << 20)
    assert choose_engine(sched) == "stepwise" and sched.timing_only
    assert sched.num_transfers > EXACT_TRANSFERS
    assert [s.repeat for s in sched.steps] == [COMPACT_RANKS + 7] * 2
    assert sched.num_transfers == 2 * (COMPACT_RANKS + 8) * (COMPACT_RANKS + 7)


def test_data_executors_refuse_compact_schedules():
    sched = build_schedule("allreduce", "ring", Context(4, ((0, 1, 2, 3),), compact=True), 8)
    buffers = [{0: torch.ones(8)} for _ in range(4)]
    with pytest.raises(ValueError, match="timing-only"):
        run_local(sched, buffers)


def test_merge_parallel_keeps_equal_repeats_and_expands_different_ones():
    a = ring_pass(np.array([0, 1, 2]), 30, True)  # one step x2
    b = ring_pass(np.array([3, 4, 5]), 30, True)
    c = ring_pass(np.array([6, 7, 8, 9]), 40, True)  # one step x3
    assert [s.repeat for s in merge_parallel([a, b])] == [2]
    merged = merge_parallel([a, c])
    assert [s.repeat for s in merged] == [1, 1, 1] and [len(s) for s in merged] == [7, 7, 4]


def test_predict_cli_at_8192(capsys):
    from hccl_sim.cli import main
    assert main(["predict", "allreduce", "--size", "64M", "--ranks", "8192", "--algo", "ring", "--format", "json"]) == 0
    assert '"ranks": 8192' in capsys.readouterr().out


def test_algorithms_without_compact_schedules_are_refused_at_scale_and_auto_picks_among_compact_ones():
    with pytest.raises(ValueError, match="no compact schedule"):
        hccl_sim.predict("allreduce", 1 << 20, 1 << 17, topology=flat(1 << 17), algo="tree")
    assert hccl_sim.predict("allreduce", 1 << 20, 1 << 17, topology=flat(1 << 17), algo="auto").algo in ("ring", "rhd")


def test_large_steps_start_flows_at_a_bounded_number_of_times(monkeypatch):
    """Above ROUNDED_START_FLOWS flows, a step with many distinct start times runs as if each flow started
    at the next of MAX_START_TIMES of them: the same finish times as that rounding done by hand, later
    than (or equal to) the unrounded ones for the rounded flows."""
    from hccl_sim.timing import stepwise
    topo, p = two_level(64, 8), 64
    src = np.arange(p)
    dst = (src + 8) % p  # every flow crosses the top switch: they share links
    routes = stepwise._StepRoutes(topo, src, dst)
    start = np.arange(p) * 1e-7  # 64 distinct start times
    nbytes = np.full(p, 1e6)
    exact = stepwise._fluid(start, nbytes, routes)
    monkeypatch.setattr(stepwise, "ROUNDED_START_FLOWS", 16)
    rounded = stepwise._fluid(start, nbytes, routes)
    edges = np.unique(start)[np.linspace(0, p - 1, stepwise.MAX_START_TIMES).round().astype(int)]
    by_hand_start = edges[np.searchsorted(edges, start)]
    by_hand = stepwise._fluid(by_hand_start, nbytes, routes)  # MAX_START_TIMES starts: none rounded
    assert np.array_equal(rounded, by_hand)
    assert len(np.unique(by_hand_start)) == stepwise.MAX_START_TIMES and not np.array_equal(rounded, exact)


def test_large_steps_finish_flows_in_a_bounded_number_of_events(monkeypatch):
    """Above ROUNDED_START_FLOWS flows, flows finishing within 1/MAX_FINISH_EVENTS of the spread of
    times left finish together with the first: each at its own time at the rates then, the others
    not sped up meanwhile. On links shared equally that is no earlier than exact, and close to it."""
    from hccl_sim.timing import stepwise
    topo, p = two_level(64, 8), 64
    src = np.arange(p)
    routes = stepwise._StepRoutes(topo, src, (src + 8) % p)  # 8 flows share each server's uplink
    start = np.zeros(p)
    nbytes = 1e6 * (1 + np.arange(p) / p)  # 64 distinct sizes: 64 finish events, exactly
    calls = []
    solve = stepwise._Units.solve
    monkeypatch.setattr(stepwise._Units, "solve", lambda self: calls.append(1) or solve(self))
    exact = stepwise._fluid(start, nbytes, routes)
    exact_calls = len(calls)
    monkeypatch.setattr(stepwise, "ROUNDED_START_FLOWS", 16)
    calls.clear()
    batched = stepwise._fluid(start, nbytes, routes)
    assert exact_calls == p and len(calls) <= 16, len(calls)
    assert (batched >= exact * (1 - 1e-12)).all() and not np.array_equal(batched, exact)
    assert np.abs(batched / exact - 1).max() < 0.1  # a flow finishing mid-step: up to ~5% late here
    assert batched.max() / exact.max() - 1 < 0.01  # the step's end, which sets the ranks' clocks



def test_large_steps_solve_identical_flows_as_one(monkeypatch):
    """Above ROUNDED_START_FLOWS flows, consecutive flows with the same route, start and bytes (the NPUs of
    a board sending to one other board through the switches) are solved as one flow of that weight: the
    same finish times as solving them one by one, with fewer units in the solves."""
    from hccl_sim.timing import stepwise
    topo = Topology("boards", (Level("board", 4, "mesh", 400e9, 0.2e-6), Level("sw", 16, "switch", 100e9, 1e-6)))
    p = 64
    src = np.arange(p)
    dst = (src + 4 * (1 + src // 4 % 3)) % p  # board b -> board b+1..b+3: routes repeat four at a time
    start, nbytes = np.zeros(p), np.full(p, 1e6)
    one_by_one = stepwise._fluid(start, nbytes, stepwise._StepRoutes(topo, src, dst))
    monkeypatch.setattr(stepwise, "ROUNDED_START_FLOWS", 8)
    units = []
    init = stepwise._Units.__init__
    monkeypatch.setattr(stepwise._Units, "__init__", lambda self, *a: init(self, *a) or units.append(self))
    weighted = stepwise._fluid(start, nbytes, stepwise._StepRoutes(topo, src, dst))
    assert len(units[0].hops) == p // 4 and units[0].weight.tolist() == [4.0] * (p // 4)
    assert weighted == pytest.approx(one_by_one, rel=1e-12)
    assert len(np.unique(one_by_one)) > 1  # the boards' uplinks and downlinks are shared unevenly


def test_large_steps_solve_each_route_as_one_flow_where_starts_split_its_runs(monkeypatch):
    """Above ROUNDED_START_FLOWS flows, where starts differ along runs of one route (ROUTE_UNIT_RATIO or more
    units per run), each distinct route, repeated or not, is one flow in the solves, weighted by its flows
    then flowing: the same finish times as solving the units."""
    from hccl_sim.timing import stepwise
    topo = Topology("boards", (Level("board", 4, "mesh", 400e9, 0.2e-6), Level("sw", 16, "switch", 100e9, 1e-6)))
    p = 64
    src = np.arange(p)
    dst = (src + 4 * (1 + src // 4 % 3)) % p  # board b -> board b+1..b+3: routes repeat four at a time
    start, nbytes = (src % 2) * 2e-6, 1e6 * (1 + src // 16)  # alternating starts: one unit per flow
    monkeypatch.setattr(stepwise, "ROUNDED_START_FLOWS", 8)
    units = []
    init = stepwise._Units.__init__
    monkeypatch.setattr(stepwise._Units, "__init__", lambda self, *a: init(self, *a) or units.append(self))
    by_route = stepwise._fluid(start, nbytes, stepwise._StepRoutes(topo, src, dst))
    monkeypatch.setattr(stepwise, "ROUTE_UNIT_RATIO", p + 1)
    by_unit = stepwise._fluid(start, nbytes, stepwise._StepRoutes(topo, src, dst))
    assert units[0].count is not None and len(units[0].hops) == p // 4  # a board's four NPUs share a route
    assert units[1].count is None and len(units[1].hops) == p
    assert by_route == pytest.approx(by_unit, rel=1e-12)
    assert len(np.unique(by_unit)) > 2

# ---- the stepwise engine's error, measured; the chooser sends the cases it gets wrong to the exact engine ----
def exact_engine_time(model, schedule, itemsize=4):
    """The exact engine's time whatever the chooser would pick."""
    return float(model.timing.exact(schedule, itemsize).run(np.zeros(schedule.nranks))[0].max())


DRIFT = "two-level:server=8,intra_bw=100GB/s,intra_lat=1us,inter_bw=25GB/s,inter_lat=2us"


def test_rhd_off_a_power_of_two_gives_the_exact_engines_time_whichever_engine_serves_it():
    """Issue 15's case: after RHD's fold the lower group's last-step flows meet the upper servers' downlinks
    while the upper group is still in its earlier steps. Stepwise never lets flows of different steps share
    a link and is 19% fast (11.09 ms); the exact engine and SimGrid replaying the schedule give 13.68 ms."""
    p = 1536
    prediction = hccl_sim.predict("allreduce", (16 << 20) // 4, p, topology=DRIFT, algo="rhd")
    model = NetworkModel(p, DRIFT)
    sched = model.schedule("allreduce", "rhd", (16 << 20) // 4)
    assert choose_engine(sched) == "exact"
    assert prediction.time == pytest.approx(13.68153e-3, rel=1e-6)
    assert prediction.time == exact_engine_time(model, sched)
    assert stepwise_time(model.topology, sched) == pytest.approx(11.0914e-3, rel=1e-5)


@pytest.mark.parametrize("spec", ["two-level:server=8", DRIFT])
@pytest.mark.parametrize("algo", ["rhd", "nhr", "hier"])
def test_the_chooser_gives_the_stepwise_engine_only_cases_it_times_within_one_percent(spec, algo):
    """At 1,536 ranks (compact schedules): where stepwise is off by more than 1% (RHD, NHR: ranks drift),
    the case goes to the exact engine; what it keeps (hierarchical here) is within 1%. The full table,
    rings and 4,096 / 8,192 ranks included: benchmarks/stepwise_error.py, README "Timing"."""
    p = 1536
    model = NetworkModel(p, spec)
    sched = model.schedule("allreduce", algo, (16 << 20) // 4)
    error = stepwise_time(model.topology, sched) / exact_engine_time(model, sched) - 1
    if choose_engine(sched) == "stepwise":
        assert abs(error) < 0.01
    else:
        assert sched.num_transfers <= EXACT_TRANSFERS


def test_the_exact_engine_hands_over_to_stepwise_past_its_work_budget(monkeypatch):
    """Deterministic: the exact engine counts the (route, link) entries its fair-share solves visit and,
    past EXACT_WORK, the stepwise engine times the case (RHD off a power of two drifts into many instants)."""
    from hccl_sim.timing import engine
    model = NetworkModel(1536, DRIFT)
    sched = model.schedule("allreduce", "rhd", (16 << 20) // 4)
    exact = model.timing.exact(sched, 4)
    assert model.timing.run(sched, 4).engine == "exact" and exact.last_work > 1000
    monkeypatch.setattr(engine, "EXACT_WORK", exact.last_work // 2)
    handed = NetworkModel(1536, DRIFT).timing.run(sched, 4)
    assert handed.engine == "stepwise" and handed.time == stepwise_time(model.topology, sched)
