"""The timing engine against closed forms and hand calculations (no MPI)."""
import math

import numpy as np
import pytest

from hccl_sim.algorithms import Context, StepBuilder, Schedule, build_schedule
from hccl_sim.planning import NetworkModel
from hccl_sim.timing import TimingModel, max_min_rates
from hccl_sim.topology import Level, Topology, load_topology

BW, LAT, G_BW = 100e9, 0.5e-6, 400e9  # per-link bandwidth, per-link latency, NPU reduce rate
A, B, G = 2 * LAT, 1 / BW, 1 / G_BW  # flat: a route is two links


def flat(p):
    return load_topology(f"flat:bw={BW},lat={LAT}s,reduce_bw={G_BW}", p)


def modeled(algo, p, nbytes, topo=None):
    model = NetworkModel(p, topo or flat(p))
    return model.time("allreduce", algo, nbytes // 4, 4).time


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7, 8, 12, 16])
def test_ring_closed_form(p):
    n = 4 * p * 1000  # bytes, divisible into p equal chunks of fp32
    expected = 2 * (p - 1) * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G
    assert modeled("ring", p, n) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_rhd_closed_form_power_of_two(p):
    n = 4 * p * 1000
    expected = 2 * math.log2(p) * A + 2 * (p - 1) / p * n * B + (p - 1) / p * n * G
    assert modeled("rhd", p, n) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_tree_closed_form_power_of_two(p):
    # binomial reduce then broadcast: 2 log2(p) steps of the whole buffer, log2(p) reductions of it
    n = 4 * 1000
    expected = 2 * math.log2(p) * (A + n * B) + math.log2(p) * n * G
    assert modeled("tree", p, n) == pytest.approx(expected, rel=1e-9)


def test_rhd_three_ranks_by_hand():
    # ranks 0,1,2; rank 0 folds into 1 (n bytes) while rank 2 already sends its half (n/2) to rank 1:
    # both share rank 1's downlink at BW/2 until t = n/BW, then the fold gets BW for its last n/2.
    n = 4 * 3000
    g = 0.0
    topo = load_topology(f"flat:bw={BW},lat={LAT}s", 3)
    fold_end = 1.5 * n * B + A  # fold arrives at rank 1
    # rank 1 then exchanges halves with rank 2 (reduce), doubling (copy), and returns the result to rank 0
    expected = fold_end + (A + n / 2 * B) + (A + n / 2 * B) + (A + n * B)
    assert modeled("rhd", 3, n, topo) == pytest.approx(expected + g, rel=1e-9)


def _one_step(topo, pairs, nbytes):
    step = StepBuilder()
    for s, d in pairs:
        step.add(s, d, 0, 0, nbytes // 4)
    sched = Schedule("custom", "custom", topo.num_npus, nbytes // 4)
    sched.append(step)
    return TimingModel(topo, range(topo.num_npus)).run(sched, 4)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_k_flows_share_a_server_uplink(k):
    # two servers of 4; k NPUs of server 0 each send to server 1 at once: each gets 1/k of the uplink
    topo = load_topology("two-level:server=4,servers=2,intra_bw=400GB/s,inter_bw=100GB/s,intra_lat=1us,inter_lat=2us")
    n = 1 << 20
    result = _one_step(topo, [(i, 4 + i) for i in range(k)], n)
    latency = 2 * 1e-6 + 2 * 2e-6
    assert result.time == pytest.approx(latency + n / (100e9 / k), rel=1e-12)


def test_ring_across_servers_slows_by_sharing():
    # spread placement: every ring hop leaves its server, so each uplink carries `per` flows at once
    servers, per = 2, 4
    p = servers * per
    topo = load_topology(f"two-level:server={per},servers={servers},intra_bw=400GB/s,inter_bw=100GB/s,"
                         "intra_lat=1us,inter_lat=2us")
    model = NetworkModel(p, topo, "spread")
    n = 4 * p * 1000
    a = 2 * 1e-6 + 2 * 2e-6
    expected = 2 * (p - 1) * (a + n / p * per / 100e9)
    assert model.time("allreduce", "ring", n // 4, 4).time == pytest.approx(expected, rel=1e-9)


def test_max_min_hand_calculation():
    # link0 cap 10 carries flows A and B; link1 cap 4 carries B and C: B and C get 2, A gets the other 8
    routes = np.array([[0, -1], [0, 1], [1, -1]])
    assert max_min_rates(routes, np.array([10.0, 4.0])).tolist() == [8.0, 2.0, 2.0]


def _water_filling(routes, capacity):
    """Textbook max-min: raise every unfrozen flow's rate together until a link fills, freeze its flows."""
    cap, rate, frozen = capacity.astype(float), np.zeros(len(routes)), np.zeros(len(routes), bool)
    while not frozen.all():
        users = np.array([sum(1 for f, r in enumerate(routes) if not frozen[f] and l in r) for l in range(len(cap))])
        share = np.where(users > 0, cap / np.maximum(users, 1), np.inf)
        fair = share.min()
        rate[~frozen] += fair
        cap = cap - fair * users
        for f, r in enumerate(routes):
            if not frozen[f] and any(cap[l] <= 1e-9 * capacity[l] for l in r if l >= 0):
                frozen[f] = True
    return rate


@pytest.mark.parametrize("seed", range(20))
def test_max_min_matches_textbook_water_filling(seed):
    """The fair-share routine freezes every locally tightest link in one round: the same rates as
    raising all rates together one bottleneck at a time, on random routes and capacities."""
    rng = np.random.default_rng(seed)
    nlinks, nflows = int(rng.integers(2, 12)), int(rng.integers(1, 30))
    capacity = rng.choice([1.0, 2.0, 3.0, 5.0, 10.0], size=nlinks) * rng.uniform(0.5, 2.0, nlinks)
    routes = np.full((nflows, 4), -1)
    for f in range(nflows):
        hops = rng.choice(nlinks, size=int(rng.integers(1, min(4, nlinks) + 1)), replace=False)
        routes[f, :len(hops)] = hops
    got = max_min_rates(routes, capacity)
    assert got == pytest.approx(_water_filling(routes, capacity), rel=1e-9)



@pytest.mark.parametrize("seed", range(10))
def test_weighted_flows_get_the_rates_of_their_copies(seed):
    """``segment_filling`` with weights (the stepwise engine's aggregated flows): a flow of weight k gets
    the rate of each of k identical flows solved one by one, on random routes and capacities."""
    from hccl_sim.timing.fairshare import segment_filling
    rng = np.random.default_rng(seed)
    nlinks, nflows = int(rng.integers(2, 12)), int(rng.integers(1, 20))
    capacity = rng.uniform(1.0, 10.0, nlinks)
    routes = [rng.choice(nlinks, size=int(rng.integers(1, min(4, nlinks) + 1)), replace=False) for _ in range(nflows)]
    weight = rng.integers(1, 6, nflows)
    hops = np.array([len(r) for r in routes])
    weighted = segment_filling(np.concatenate(routes), hops, capacity, weight)
    copies = np.repeat(np.arange(nflows), weight)
    one_by_one = segment_filling(np.concatenate([routes[f] for f in copies]), hops[copies], capacity)
    assert weighted[copies] == pytest.approx(one_by_one, rel=1e-12)
    assert weighted[copies] == pytest.approx(_water_filling(_padded([routes[f] for f in copies]), capacity), rel=1e-9)


def _padded(routes) -> np.ndarray:
    out = np.full((len(routes), 4), -1)
    for f, r in enumerate(routes):
        out[f, :len(r)] = r
    return out

def test_flow_speeds_up_when_competitor_finishes():
    # one NPU sends 1 MB and 3 MB at once over its uplink: both at BW/2 until the first ends at 2 MB/BW,
    # then the second has the whole link for its last 1 MB.
    topo = Topology("t", (Level("sw", 3, "switch", BW, LAT),))
    step = StepBuilder().add(0, 1, 0, 0, 250_000).add(0, 2, 0, 0, 750_000)
    sched = Schedule("custom", "custom", 3, 750_000)
    sched.append(step)
    result = TimingModel(topo, [0, 1, 2]).run(sched, 4, record=True)
    arrivals = sorted(result.transfers.arrive)
    assert arrivals[0] == pytest.approx(2 * LAT + 2e6 / BW, rel=1e-12)
    assert arrivals[1] == pytest.approx(2 * LAT + 3e6 / BW + 1e6 / BW, rel=1e-12)


def test_skewed_entry_delays_only_what_depends_on_it():
    topo = flat(2)
    model = NetworkModel(2, topo)
    sched = model.schedule("allreduce", "ring", 1000)
    base = model.timing.run(sched, 4, [0.0, 0.0])
    late = model.timing.run(sched, 4, [0.0, 1e-3])
    assert late.exit.min() == pytest.approx(1e-3 + base.time, rel=1e-9)


def test_modeled_times_are_bit_identical_across_runs():
    times = []
    for _ in range(3):
        model = NetworkModel(8, load_topology("two-level:server=4", 8))
        times.append([model.time("allreduce", a, 123457, 4).time for a in ("ring", "tree", "rhd", "hier")])
    assert times[0] == times[1] == times[2]


def test_hier_is_faster_than_flat_ring_on_slow_uplinks():
    topo = load_topology("two-level:server=4,servers=4,inter_bw=50GB/s", 16)
    model = NetworkModel(16, topo)
    assert model.time("allreduce", "hier", 1 << 22, 4).time < model.time("allreduce", "ring", 1 << 22, 4).time


def test_auto_never_loses():
    model = NetworkModel(8, load_topology("two-level:server=4", 8))
    for count in (1, 100, 10_000, 1_000_000, 10_000_000):
        chosen = model.resolve("allreduce", "auto", count, 4)
        best = min(model.time("allreduce", a, count, 4).time for a in model.applicable("allreduce"))
        assert model.time("allreduce", chosen, count, 4).time == best


def test_zero_count_costs_nothing():
    assert modeled("ring", 4, 0) == 0.0
