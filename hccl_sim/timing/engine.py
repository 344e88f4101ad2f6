"""Layer 3: the modeled time of a schedule on a topology, from each rank's entry time.

Fluid model. When a rank has finished every transfer of its previous step it enters its next one and
posts that step's sends at its clock. A transfer's data flows over its route at the max-min fair
share of every link it crosses (recomputed whenever a flow starts or ends, so a flow speeds up when
a competitor finishes); it reaches the receiver the route's latency after its last byte leaves, and
a reduce then costs bytes / the NPU's reduce rate. A transfer is complete for the sender when it
arrives and for the receiver once it is reduced. Pure and deterministic: entry times are taken
relative to the earliest, so equal cases give bit-identical results whatever the host.

Large schedules (more than 1,024 ranks, more than 2^18 transfers, or compact repeated steps) are
timed by stepwise.py instead: the same rules one step at a time in numpy. The choice depends on the
schedule alone, so a case always gets the same mode.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from ..algorithms.schedule import Schedule
from ..topology import Topology
from .fairshare import _REL_TOL, max_min_rates
from .stepwise import StepwiseSimulator, use_stepwise



@dataclass
class TimingResult:
    entry: np.ndarray  # per rank, seconds
    exit: np.ndarray  # per rank, seconds
    time: float  # the collective's span, last exit minus first entry, computed before the shift to
    # absolute time so that it does not depend on where the clocks stand
    # per transfer, in schedule order: step, src, dst, bytes, post, last byte out, arrival, done at dst
    transfers: np.ndarray | None = None


class _Plan:
    """A schedule flattened onto NPUs: routes, latencies and who waits for which transfer."""

    def __init__(self, schedule: Schedule, topology: Topology, npus: np.ndarray, itemsize: int):
        steps = schedule.steps
        self.step = np.concatenate([np.full(len(s), i) for i, s in enumerate(steps)]) if steps else np.zeros(0, int)
        self.src = np.concatenate([s.src for s in steps]) if steps else np.zeros(0, int)
        self.dst = np.concatenate([s.dst for s in steps]) if steps else np.zeros(0, int)
        count = np.concatenate([s.count for s in steps]) if steps else np.zeros(0, int)
        reduce = np.concatenate([s.reduce for s in steps]) if steps else np.zeros(0, bool)
        self.bytes = count.astype(np.float64) * itemsize
        self.routes = topology.routes(npus[self.src], npus[self.dst]) if len(self.src) else np.zeros((0, 1), int)
        self.latency = topology.route_latency(self.routes)
        rates = topology.reduce_rates(npus[self.dst]) if len(self.dst) else np.zeros(0)
        self.reduce_time = np.where(reduce, self.bytes / rates, 0.0)
        self.capacity, _ = topology.link_arrays()
        # each rank's steps in order, the transfers it posts in each, and how many it waits for
        self.rank_steps: list[list[int]] = [[] for _ in range(schedule.nranks)]
        self.sends: dict[tuple[int, int], list[int]] = {}
        self.need: dict[tuple[int, int], int] = {}
        for t, (s, a, b) in enumerate(zip(self.step.tolist(), self.src.tolist(), self.dst.tolist())):
            self.sends.setdefault((a, s), []).append(t)
            for r in (a, b):
                key = (r, s)
                if key not in self.need:
                    self.need[key] = 0
                    self.rank_steps[r].append(s)
                self.need[key] += 1
        for steps_of_rank in self.rank_steps:
            steps_of_rank.sort()


class TimingModel:
    """Modeled times of schedules on one topology with one placement of ranks onto NPUs."""

    def __init__(self, topology: Topology, npus):
        self.topology = topology
        self.npus = np.asarray(npus, dtype=np.int64)
        self._plans: dict = {}
        self._results: dict = {}
        self._stepwise = None
        self._result_ranks = 0

    def plan(self, schedule: Schedule, itemsize: int) -> _Plan:
        key = (id(schedule), itemsize)
        if key not in self._plans:
            if len(self._plans) > 256:
                self._plans.clear()
            self._plans[key] = (_Plan(schedule, self.topology, self.npus[: schedule.nranks], itemsize), schedule)
        return self._plans[key][0]

    def run(self, schedule: Schedule, itemsize: int, entry=None, record: bool = False) -> TimingResult:
        entry = np.zeros(schedule.nranks) if entry is None else np.asarray(entry, dtype=np.float64)
        base = float(entry.min()) if len(entry) else 0.0
        rel = entry - base
        if self.topology.faults.late_npus:  # late stragglers enter later than their clocks say
            rel = rel + self.topology.entry_delays(self.npus[: schedule.nranks])
        key = (id(schedule), itemsize, rel.tobytes(), record)
        cached = self._results.get(key)
        if cached is None or cached[0] is not schedule:
            # bounded by entries and by ranks held (a million-rank result holds megabytes)
            if len(self._results) > 4096 or self._result_ranks + schedule.nranks > (1 << 23):
                self._results.clear()
                self._result_ranks = 0
            self._result_ranks += schedule.nranks
            if use_stepwise(schedule):  # large cases: numpy, one step at a time (see stepwise.py)
                if self._stepwise is None:
                    self._stepwise = StepwiseSimulator(self.topology, self.npus)
                outcome = self._stepwise.run(schedule, itemsize, rel, record)
            else:
                outcome = simulate(self.plan(schedule, itemsize), rel, record)
            cached = (schedule, outcome)
            self._results[key] = cached
        rel_exit, transfers = cached[1]
        result = TimingResult(entry, rel_exit + base, float(rel_exit.max()) if len(rel_exit) else 0.0)
        if transfers is not None:
            transfers = transfers.copy()
            transfers[:, 4:] += base
            result.transfers = transfers
        return result


def simulate(plan: _Plan, entry: np.ndarray, record: bool = False):
    """Event-driven fluid simulation; returns exit times (and per-transfer records when asked)."""
    nranks = len(entry)
    clock = entry.copy()
    pos = [0] * nranks  # index into plan.rank_steps[r] of the step r is in
    inside = [False] * nranks  # r has entered that step and not yet finished it
    got: dict[tuple[int, int], int] = {}
    records = np.zeros((len(plan.step), 8)) if record else None
    # (time, seq, kind, a, b): 0 rank a enters its next step, 1 transfer a done for rank b, 2 rank a finished its step
    events: list = []
    seq = 0
    for r in range(nranks):
        if plan.rank_steps[r]:
            events.append((float(entry[r]), seq, 0, r, 0))
            seq += 1
    heapq.heapify(events)

    active: list[int] = []
    remaining = np.zeros(len(plan.step))
    rate = np.zeros(0)
    dirty = False
    now = float(entry.min()) if nranks else 0.0

    def advance(to: float):
        nonlocal now
        if active and to > now:
            remaining[active] -= rate * (to - now)
        now = to

    while events or active:
        if active and dirty:
            rate = max_min_rates(plan.routes[active], plan.capacity)
            dirty = False
        next_event = events[0][0] if events else math.inf
        if active:
            left = remaining[active] / rate
            finish = now + left.min()
            if finish <= next_event:
                advance(finish)
                ends = now + left <= finish * (1 + _REL_TOL) + 1e-300
                done = [t for t, e in zip(active, ends.tolist()) if e]
                active = [t for t, e in zip(active, ends.tolist()) if not e]
                rate = rate[~ends]
                dirty = True
                for t in done:
                    remaining[t] = 0.0
                    arrive = now + plan.latency[t]
                    if record:
                        records[t, 5:8] = (now, arrive, arrive + plan.reduce_time[t])
                    heapq.heappush(events, (arrive, seq, 1, t, int(plan.src[t])))
                    heapq.heappush(events, (arrive + plan.reduce_time[t], seq + 1, 1, t, int(plan.dst[t])))
                    seq += 2
                continue
        time, _, kind, a, b = heapq.heappop(events)
        advance(time)
        if kind == 0:  # rank a enters step plan.rank_steps[a][pos[a]] and posts its sends
            s = plan.rank_steps[a][pos[a]]
            inside[a] = True
            for t in plan.sends.get((a, s), ()):
                if record:
                    records[t, :5] = (s, a, plan.dst[t], plan.bytes[t], now)
                remaining[t] = plan.bytes[t]
                if plan.bytes[t] > 0:
                    active.append(t)
                    dirty = True
                else:  # nothing to send: only the latency
                    if record:
                        records[t, 5:8] = (now, now + plan.latency[t], now + plan.latency[t])
                    heapq.heappush(events, (now + plan.latency[t], seq, 1, t, a))
                    heapq.heappush(events, (now + plan.latency[t], seq + 1, 1, t, int(plan.dst[t])))
                    seq += 2
            if got.get((a, s), 0) == plan.need[(a, s)]:  # everything it waits for is already in
                heapq.heappush(events, (now, seq, 2, a, 0))
                seq += 1
        elif kind == 1:  # transfer a is complete for rank b
            s = int(plan.step[a])
            got[(b, s)] = got.get((b, s), 0) + 1
            if inside[b] and plan.rank_steps[b][pos[b]] == s and got[(b, s)] == plan.need[(b, s)]:
                heapq.heappush(events, (now, seq, 2, b, 0))
                seq += 1
        else:  # rank a finished its step: its clock moves on and it enters the next one, if any
            clock[a] = max(clock[a], now)
            inside[a] = False
            pos[a] += 1
            if pos[a] < len(plan.rank_steps[a]):
                heapq.heappush(events, (now, seq, 0, a, 0))
                seq += 1
    return clock, records
