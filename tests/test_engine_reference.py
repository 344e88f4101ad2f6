"""The exact engine against a plain reference: one event at a time, textbook water filling, pure Python.

Random schedules on random two- and three-level topologies (switch and mesh levels, reduce costs,
oversubscription), random placements and random entry times; several schedules at once too. The
reference is written from the model's rules alone (engine.py's docstring) and shares no code with
the engine but the topology's routes.
"""
import heapq
import math

import numpy as np
import pytest

from hccl_sim.algorithms import Schedule, StepBuilder
from hccl_sim.timing import TimingModel, exact
from hccl_sim.timing.table import TransferTable
from hccl_sim.topology import Level, Topology


def water_filling(routes: dict, capacity) -> dict:
    """Max-min rates: raise every unfrozen flow's rate together until a link fills, freeze its flows."""
    cap = {l: float(capacity[l]) for r in routes.values() for l in r}
    rate, frozen = {f: 0.0 for f in routes}, set()
    while len(frozen) < len(routes):
        users = {l: sum(1 for f, r in routes.items() if f not in frozen and l in r) for l in cap}
        fair = min(cap[l] / n for l, n in users.items() if n)
        for f in routes:
            if f not in frozen:
                rate[f] += fair
        full = set()
        for l, n in users.items():
            cap[l] -= fair * n
            if n and cap[l] <= 1e-12 * capacity[l]:
                full.add(l)
        frozen |= {f for f, r in routes.items() if f not in frozen and full & set(r)}
    return rate


def reference(jobs, topology, itemsize):
    """Exit times of every job's ranks, and (arrive, done) of every transfer in job order.
    ``jobs``: (schedule, npus, entry) triples sharing the topology's links."""
    capacity, link_latency = topology.link_arrays()
    transfers = []  # (job, step, src, dst, bytes, links, latency, reduce_time)
    for j, (sched, npus, _) in enumerate(jobs):
        for s, step in enumerate(sched.steps):
            for a, b, _, _, _, _, count, red in step:
                route = [int(l) for l in topology.routes(np.array([npus[a]]), np.array([npus[b]]))[0] if l >= 0]
                nbytes = count * itemsize
                rtime = nbytes / topology.reduce_rates(np.array([npus[b]]))[0] if red else 0.0
                transfers.append((j, s, a, b, nbytes, route, sum(link_latency[l] for l in route), rtime))
    steps_of, need, sends = {}, {}, {}
    for t, (j, s, a, b, *_) in enumerate(transfers):
        sends.setdefault((j, a, s), []).append(t)
        for r in (a, b):
            steps_of.setdefault((j, r), set()).add(s)
            need[(j, r, s)] = need.get((j, r, s), 0) + 1
    steps_of = {k: sorted(v) for k, v in steps_of.items()}
    exits = [np.array(entry, dtype=float) for _, _, entry in jobs]
    got, pos, inside = {}, {k: 0 for k in steps_of}, set()
    arrive, done = [None] * len(transfers), [None] * len(transfers)
    events, seq = [], 0

    def push(time, kind, data):
        nonlocal seq
        heapq.heappush(events, (time, seq, kind, data))
        seq += 1

    for (j, r) in steps_of:
        push(float(jobs[j][2][r]), "enter", (j, r))
    flows, remaining = {}, {}
    now = min(float(min(e)) for _, _, e in jobs)
    while events or flows:
        rate = water_filling(flows, capacity)
        first = min(flows, key=lambda f: remaining[f] / rate[f], default=None)
        flow_end = now + remaining[first] / rate[first] if flows else math.inf
        if flow_end <= (events[0][0] if events else math.inf):  # one flow ends
            for f in flows:
                remaining[f] -= rate[f] * (flow_end - now)
            now = flow_end
            del flows[first], remaining[first]
            j, s, a, b, _, _, lat, rtime = transfers[first]
            arrive[first], done[first] = now + lat, now + lat + rtime
            push(arrive[first], "complete", (j, a, s))
            push(done[first], "complete", (j, b, s))
            continue
        time, _, kind, (j, r, *rest) = heapq.heappop(events)
        for f in flows:
            remaining[f] -= rate[f] * (time - now)
        now = time
        if kind == "enter":
            s = steps_of[(j, r)][pos[(j, r)]]
            inside.add((j, r))
            for t in sends.get((j, r, s), []):
                if transfers[t][4] > 0:
                    flows[t], remaining[t] = transfers[t][5], transfers[t][4]
                else:
                    lat = transfers[t][6]
                    arrive[t] = done[t] = now + lat
                    push(now + lat, "complete", (j, r, s))
                    push(now + lat, "complete", (j, transfers[t][3], s))
            if got.get((j, r, s), 0) == need[(j, r, s)]:
                push(now, "finish", (j, r))
        elif kind == "complete":
            s = rest[0]
            got[(j, r, s)] = got.get((j, r, s), 0) + 1
            if (j, r) in inside and steps_of[(j, r)][pos[(j, r)]] == s and got[(j, r, s)] == need[(j, r, s)]:
                push(now, "finish", (j, r))
        else:
            exits[j][r] = now
            inside.discard((j, r))
            pos[(j, r)] += 1
            if pos[(j, r)] < len(steps_of[(j, r)]):
                push(now, "enter", (j, r))
    return exits, arrive, done


def random_topology(rng) -> Topology:
    levels = [Level("board", int(rng.integers(2, 4)), str(rng.choice(["switch", "mesh"])),
                    float(rng.choice([100e9, 200e9, 400e9])), float(rng.uniform(0, 1e-6)))]
    levels.append(Level("rack", int(rng.integers(2, 4)), "switch", float(rng.choice([50e9, 100e9])),
                        float(rng.uniform(0, 2e-6)), float(rng.choice([1.0, 2.0]))))
    if rng.random() < 0.5:
        levels.append(Level("top", 2, "switch", float(rng.choice([25e9, 50e9])), 3e-6, float(rng.choice([1.0, 4.0]))))
    reduce = float(rng.choice([math.inf, 400e9, 100e9]))
    return Topology("random", tuple(levels), reduce_bandwidth=reduce)


def random_schedule(rng, p) -> Schedule:
    sched = Schedule("custom", "random", p, 1)
    for _ in range(int(rng.integers(1, 5))):
        step = StepBuilder()
        for _ in range(int(rng.integers(1, 2 * p))):
            a, b = rng.choice(p, size=2, replace=False)
            count = int(rng.choice([0, rng.integers(1, 2000), rng.integers(1, 2000)]))
            step.add(int(a), int(b), 0, 0, count, bool(rng.random() < 0.5))
        sched.append(step)
    return sched


def random_case(seed, njobs):
    rng = np.random.default_rng(seed)
    topo = random_topology(rng)
    jobs = []
    for _ in range(njobs):
        p = int(rng.integers(2, min(topo.num_npus, 7) + 1))
        npus = rng.permutation(topo.num_npus)[:p]
        entry = np.where(rng.random(p) < 0.5, 0.0, rng.uniform(0, 2e-5, p))
        jobs.append((random_schedule(rng, p), npus, entry))
    return topo, jobs


@pytest.fixture(params=["scalar", "numpy"])
def exact_path(request, monkeypatch):
    """The exact engine's two runs over events: on Python scalars (small tables) and in numpy."""
    monkeypatch.setattr(exact, "use_scalar", lambda transfers, entry: request.param == "scalar")
    return request.param


@pytest.mark.parametrize("seed", range(40))
def test_exact_engine_matches_the_reference(seed, exact_path):
    topo, jobs = random_case(seed, 1)
    sched, npus, entry = jobs[0]
    got = TimingModel(topo, npus).run(sched, 4, entry, record=True)
    exits, arrive, done = reference(jobs, topo, 4)
    assert got.engine == "exact"
    assert got.exit == pytest.approx(exits[0], rel=1e-9, abs=1e-18)
    assert got.transfers.arrive == pytest.approx(arrive, rel=1e-9)
    assert got.transfers.done == pytest.approx(done, rel=1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_scalar_and_numpy_runs_are_bit_identical(seed, monkeypatch):
    """The scalar run does the numpy run's float operations in the same order: the same bits."""
    topo, jobs = random_case(3000 + seed, 3)
    table = TransferTable.concat([TimingModel(topo, npus).table(s, 4) for s, npus, _ in jobs])
    entry = np.concatenate([e for *_, e in jobs])
    engine = exact.ExactEngine(table)
    monkeypatch.setattr(exact, "use_scalar", lambda transfers, entry: True)
    scalar_exit, scalar = engine.run(entry, record=True)
    monkeypatch.setattr(exact, "use_scalar", lambda transfers, entry: False)
    numpy_exit, numpy_ = engine.run(entry, record=True)
    assert np.array_equal(scalar_exit, numpy_exit)
    assert all(np.array_equal(scalar[name], numpy_[name]) for name in scalar.dtype.names)


@pytest.mark.parametrize("seed", range(20))
def test_concurrent_schedules_match_the_reference(seed, exact_path):
    topo, jobs = random_case(1000 + seed, 3)
    got = TimingModel(topo, np.arange(topo.num_npus)).run_many([(s, 4, n, e) for s, n, e in jobs], record=True)
    exits, arrive, done = reference(jobs, topo, 4)
    row = 0
    for result, want in zip(got, exits):
        assert result.exit == pytest.approx(want, rel=1e-9, abs=1e-18)
        n = len(result.transfers)
        assert result.transfers.arrive == pytest.approx(arrive[row:row + n], rel=1e-9)
        row += n


@pytest.mark.parametrize("seed", range(12))
def test_rings_take_the_event_free_path_and_match_the_reference(seed):
    """No link of a ring on consecutive NPUs is ever shared, so the engine times it without events (step
    by step, each flow at its route's tightest link): the same as the reference, on random topologies
    and entry times."""
    from hccl_sim.algorithms import Context, build_schedule
    rng = np.random.default_rng(2000 + seed)
    topo = random_topology(rng)
    p = int(rng.integers(2, min(topo.num_npus, 7) + 1))
    npus = np.arange(p) + int(rng.integers(0, topo.num_npus - p + 1))
    collective = str(rng.choice(["allreduce", "allgather", "reduce_scatter"]))
    sched = build_schedule(collective, "ring", Context(p, (tuple(range(p)),)), int(rng.integers(1, 4000)) * p)
    entry = rng.uniform(0, 2e-5, p)
    model = TimingModel(topo, npus)
    assert model.exact(sched, 4).unshared
    got = model.run(sched, 4, entry, record=True)
    exits, arrive, done = reference([(sched, npus, entry)], topo, 4)
    assert got.exit == pytest.approx(exits[0], rel=1e-9)
    assert got.transfers.arrive == pytest.approx(arrive, rel=1e-9)
    assert got.transfers.done == pytest.approx(done, rel=1e-9)
