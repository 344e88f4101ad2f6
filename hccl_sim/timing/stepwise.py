"""Stepwise timing: the fluid model of engine.py one step at a time, in numpy, for very large schedules.

Every transfer of step s starts at its sender's clock (when the sender finished its previous step).
The step's flows then share the links max-min fairly, with rates recomputed whenever a flow starts
or finishes; a transfer arrives the route's latency after its last byte and a reduce then costs
bytes / the NPU's reduce rate: the same rules as the exact engine. Afterwards each rank's clock is
the max of its clock and the completion of its transfers in the step.

What differs from the exact engine: flows of different steps never share a link here. That is exact
for lockstep schedules entered at equal times (every rank finishes step s before anyone's step s+1
flows meet its links: rings and power-of-two RHD on uniform topologies, say). Where ranks drift
apart (an RHD fold, uneven chunks), a fast rank's next-step flows would overlap a slow rank's
current ones in the exact engine; here they do not.

Ranks that drifted apart (RHD's fold or NHR off powers of two, at scale) make a step's flows start and
finish at many distinct times, each a rate recomputation. In a step of more than 16,384 flows, two
approximations bound them: a step whose senders start at more than 8 distinct times starts each flow at
the next of 8 of those times (sorted, evenly spread, the last included), flows starting up to one such
interval late; and when the first active flows finish, so do those finishing within a quarter of the
spread of finish times left, each at its own time at the rates then, the others not sped up meanwhile
(RHD at 1,006,720 ranks: 272 s -> 24 s; at 100,000 ranks its modeled time is the unbatched one to
1e-15, and tests/test_scale.py shows a worst case).

Repeated steps (``Step.repeat = k``, compact schedules) run in lockstep: the first repetition starts
from the ranks' clocks; every further one starts all the step's ranks together when the last of
them finished the previous one, and adds the step's duration from a common start, computed once.
When the step's outcome is uniform (all its ranks end together: a ring on a flat or symmetric
topology) this is exact. Otherwise it is exact for the last rank out when no link carries two
flows of the step and reduces are free (the slowest sender's own chain sets the pace), and an upper
bound in general (ranks far from the slowest link could run ahead).
"""
from __future__ import annotations

import math

import numpy as np

from ..algorithms.schedule import Schedule, Step
from ..topology import Topology
from .fairshare import _REL_TOL, progressive_filling
from .table import empty_records



# In a step of more than ROUNDED_START_FLOWS flows, flows start at no more than MAX_START_TIMES distinct
# times (each start rounded up to the next of that many spread over the step's sorted start times), and
# finish in batches: those within 1/MAX_FINISH_EVENTS of the spread of times left go with the first.
ROUNDED_START_FLOWS = 1 << 14
MAX_START_TIMES = 8
MAX_FINISH_EVENTS = 4


class _StepRoutes:
    """One step's routes as (link, flow) entries with links renumbered 0..n-1 (int32), the links'
    capacities, and each route's latency."""

    def __init__(self, topology: Topology, src_npu: np.ndarray, dst_npu: np.ndarray, via_npu=None):
        capacity, latency = topology.link_arrays()
        routes = topology.routes_via(src_npu, dst_npu, via_npu)
        valid = routes >= 0
        links = routes[valid]  # flow-major: each flow's hops in route order
        flow = np.repeat(np.arange(len(routes), dtype=np.int32), valid.sum(axis=1))
        del routes, valid
        self.nflows = len(src_npu)
        # cost-model hook (topology/costs.py): a regime's per-transfer latency rides on the topology
        self.latency = np.bincount(flow, weights=latency[links], minlength=self.nflows) + topology.step_latency
        # renumber the links this step uses, without a sort
        mark = np.zeros(len(capacity), dtype=bool)
        mark[links] = True
        ids = np.flatnonzero(mark)
        local = np.zeros(len(capacity), dtype=np.int32)
        local[ids] = np.arange(len(ids), dtype=np.int32)
        self.link = local[links]
        self.flow = flow
        self.capacity = capacity[ids]
        # no link carries two of this step's flows (a ring's step): the max-min rates are each flow's
        # tightest capacity whoever is active (what progressive filling gives in its one round; 0 without links)
        self.unshared = bool(len(self.link) == 0 or np.bincount(self.link).max() <= 1)
        self.alone = None
        if self.unshared:
            self.alone = np.full(self.nflows, math.inf)
            np.minimum.at(self.alone, self.flow, self.capacity[self.link])
            self.alone[np.bincount(self.flow, minlength=self.nflows) == 0] = 0.0
        self.nbytes = self.link.nbytes + self.flow.nbytes + self.latency.nbytes + self.capacity.nbytes

    def hops(self, flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (link, flow) entries of the flows marked in the boolean mask ``flows``."""
        keep = flows[self.flow]
        return self.link[keep], self.flow[keep]

    def rates(self, link: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Max-min rates of the flows whose hops are given, indexed by flow (zero for the others)."""
        return progressive_filling(link, flow, self.nflows, self.capacity)


def _fluid(start: np.ndarray, nbytes: np.ndarray, routes: _StepRoutes) -> np.ndarray:
    """Time each flow's last byte leaves, flows starting at ``start`` and sharing links max-min fairly."""
    finish = start.copy()  # empty transfers: only the latency
    sending = np.flatnonzero(nbytes > 0)
    if not len(sending):
        return finish
    first_start = start[sending]
    starts = first_start[:1] if (first_start == first_start[0]).all() else np.unique(first_start)
    batched = len(sending) > ROUNDED_START_FLOWS
    if batched and len(starts) > MAX_START_TIMES:
        # bound the rate recomputations: each flow starts at the next of MAX_START_TIMES start times
        starts = starts[np.linspace(0, len(starts) - 1, MAX_START_TIMES).round().astype(np.int64)]
        first_start = starts[np.searchsorted(starts, first_start)]
    remaining = nbytes.astype(np.float64)
    active = np.zeros(0, dtype=np.int64)
    is_active = np.zeros(routes.nflows, dtype=bool)
    hop_link, hop_flow = routes.hops(is_active)  # the active flows' hops
    now, next_start = starts[0], 0
    while len(active) or next_start < len(starts):
        if next_start < len(starts) and starts[next_start] <= now:
            joining = sending if len(starts) == 1 else sending[first_start == starts[next_start]]
            active = np.concatenate([active, joining])
            is_active[joining] = True
            if not routes.unshared:
                hop_link, hop_flow = routes.hops(is_active)
            next_start += 1
            continue
        if not len(active):  # idle until the next flow starts
            now = starts[next_start]
            continue
        rate = routes.alone[active] if routes.unshared else routes.rates(hop_link, hop_flow)[active]
        left = remaining[active] / rate
        first = left.min()
        until = starts[next_start] if next_start < len(starts) else math.inf
        if now + first <= until:  # the earliest flows finish before anyone else starts
            last = first * (1 + _REL_TOL)
            if batched:  # also those finishing within 1/MAX_FINISH_EVENTS of the spread left, at their own times
                last = max(last, min(first + (left.max() - first) / MAX_FINISH_EVENTS, until - now))
            done = left <= last
            elapsed = left[done].max() if batched else first
            finish[active[done]] = now + (left[done] if batched else first)
            remaining[active] -= rate * elapsed
            now = now + elapsed
            is_active[active[done]] = False
            if not routes.unshared:
                kept = is_active[hop_flow]
                hop_link, hop_flow = hop_link[kept], hop_flow[kept]
            active = active[~done]
        else:
            remaining[active] -= rate * (until - now)
            now = until
    return finish


class StepwiseSimulator:
    """Times a schedule step by step; routes of identical (src, dst) pairs and outcomes of identical
    steps from a common start are computed once."""

    ROUTE_CACHE_BYTES = 1 << 30

    def __init__(self, topology: Topology, npus: np.ndarray):
        self.topology = topology
        self.npus = np.asarray(npus, dtype=np.int64)
        self._routes: dict = {}
        self._route_bytes = 0

    def routes(self, step: Step) -> _StepRoutes:
        key = (len(step), hash(np.ascontiguousarray(step.src).tobytes()), hash(np.ascontiguousarray(step.dst).tobytes()),
               None if step.via is None else hash(np.ascontiguousarray(step.via).tobytes()))
        found = self._routes.get(key)
        if found is None:
            found = _StepRoutes(self.topology, self.npus[step.src], self.npus[step.dst], step.via)
            while self._routes and self._route_bytes + found.nbytes > self.ROUTE_CACHE_BYTES:
                self._route_bytes -= self._routes.pop(next(iter(self._routes))).nbytes  # least recent
            self._route_bytes += found.nbytes
        else:
            del self._routes[key]
        self._routes[key] = found  # most recent last
        return found

    def _once(self, step: Step, clock: np.ndarray, itemsize: int):
        """One run of ``step`` from ``clock``: (post, last byte out, arrival, done at dst) per transfer."""
        routes = self.routes(step)
        nbytes = np.asarray(step.count, dtype=np.float64) * itemsize
        post = clock[step.src]
        out = _fluid(post, nbytes, routes)
        arrive = out + routes.latency
        reduce_time = nbytes / (self.topology.reduce_rates(self.npus[step.dst]) if self.topology.faults.slow_npus
                                else self.topology.reduce_bandwidth)
        done = arrive + np.where(step.reduce, reduce_time, 0.0)
        return post, out, arrive, done

    @staticmethod
    def _finish(clock, step, arrive, done):
        new = clock.copy()
        np.maximum.at(new, step.src, arrive)
        np.maximum.at(new, step.dst, done)
        return new

    def run(self, schedule: Schedule, itemsize: int, entry: np.ndarray, record: bool = False):
        clock = np.asarray(entry, dtype=np.float64).copy()
        if record and schedule.compact:
            raise ValueError("stepwise timing: per-transfer records of a compact (repeated-step) schedule "
                             "would be one per repetition; record a smaller case")
        records = []
        for index, step in enumerate(schedule.steps):
            if not len(step):
                continue
            post, out, arrive, done = self._once(step, clock, itemsize)
            new = self._finish(clock, step, arrive, done)
            if record:
                rec = empty_records(len(step))
                rec.step, rec.src, rec.dst = index, step.src, step.dst
                rec.bytes = np.asarray(step.count, np.float64) * itemsize
                rec.post, rec.out, rec.arrive, rec.done = post, out, arrive, done
                records.append(rec)
            if step.repeat > 1:
                new = self._repeat(step, clock, new, itemsize)
            clock = new
        transfers = (np.concatenate(records).view(np.recarray) if records else empty_records(0)) if record else None
        return clock, transfers

    def _repeat(self, step: Step, before: np.ndarray, after_first: np.ndarray, itemsize: int) -> np.ndarray:
        """Clocks after ``step.repeat`` runs in lockstep (see the module docstring)."""
        mark = np.zeros(len(before), dtype=bool)
        mark[step.src] = True
        mark[step.dst] = True
        ranks = np.flatnonzero(mark)
        end, start = after_first[ranks], before[ranks]
        if (start == start[0]).all():  # the first run was already from a common start
            duration = end.max() - start[0]
            end = np.full(len(ranks), end.max())
        else:
            common = np.zeros_like(before)  # one run from a common start at 0
            _, _, arrive, done = self._once(step, common, itemsize)
            duration = self._finish(common, step, arrive, done)[ranks].max()
            end = np.full(len(ranks), end.max())
        out = after_first.copy()
        out[ranks] = end + (step.repeat - 1) * duration
        return out
