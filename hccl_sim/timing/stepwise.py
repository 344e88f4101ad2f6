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
from .fairshare import _REL_TOL, segment_filling
from .table import empty_records



# In a step of more than ROUNDED_START_FLOWS flows, flows start at no more than MAX_START_TIMES distinct
# times (each start rounded up to the next of that many spread over the step's sorted start times), and
# finish in batches: those within 1/MAX_FINISH_EVENTS of the spread of times left go with the first.
ROUNDED_START_FLOWS = 1 << 14
MAX_START_TIMES = 8
MAX_FINISH_EVENTS = 4
# ... and where its shared flows make at least ROUTE_UNIT_RATIO solve units per run of one route (starts
# differ along the runs), its solves take each distinct route as one flow weighted by its flows flowing
ROUTE_UNIT_RATIO = 2


class _StepRoutes:
    """What the fluid model needs of one step's routes: each route's latency and tightest capacity
    (``alone``), and, for the flows whose links carry another flow of the step (``shared``; the others run
    at ``alone`` whoever is active and never enter a fair-share solve), their hops as link entries side
    by side in flow order, links renumbered 0..n-1 (int32) with their capacities. ``scratch``: the
    simulator's reusable per-link arrays (renumbering without a sort, nor an array as long as the
    topology's links per step)."""

    def __init__(self, topology: Topology, src_npu: np.ndarray, dst_npu: np.ndarray, via_npu=None, scratch=None):
        routes = topology.routes_via(src_npu, dst_npu, via_npu)
        valid = routes >= 0
        hops = _row_reduce(np.add, valid, np.int64)
        links = routes[valid]  # flow-major: each flow's hops in route order
        self.nflows = n = len(src_npu)
        mark, local = scratch if scratch is not None else _scratch(topology.num_links)
        mark[links] = True
        ids = np.flatnonzero(mark)
        mark[ids] = False
        local[ids] = np.arange(len(ids), dtype=np.int32)
        link = local[links]
        levels = _column_levels(topology, routes.shape[1])
        if levels is None:  # links of one level differ (faults): read them one by one
            capacity, latency = topology.link_arrays()
            self.capacity = capacity[ids]
            flow = np.repeat(np.arange(n, dtype=np.int32), hops)
            # cost-model hook (topology/costs.py): a regime's per-transfer latency rides on the topology. Read
            # through the step's few links, not the topology's millions (cache misses)
            self.latency = np.bincount(flow, weights=latency[ids][link], minlength=n) + topology.step_latency
            # the tightest capacity of each flow's route (0 without links)
            self.alone = np.zeros(n)
            first = np.zeros(n, dtype=np.int64)
            np.cumsum(hops[:-1], out=first[1:])
            linked = hops > 0
            if linked.any():
                self.alone[linked] = np.minimum.reduceat(self.capacity[link], first[linked])
        else:  # every link of a level alike: column by column, the same sums in the same order
            bandwidth = np.array([lv.achieved_bandwidth for lv in topology.levels])
            self.capacity = bandwidth[np.searchsorted(topology._link_bases(), ids, side="right") - 1]
            self.latency = np.zeros(n)
            self.alone = np.full(n, math.inf)
            for column, level in enumerate(levels):
                lv = topology.levels[level]
                on = valid[:, column]
                self.latency += np.where(on, lv.latency, 0.0)
                np.minimum(self.alone, np.where(on, lv.achieved_bandwidth, math.inf), out=self.alone)
            self.latency += topology.step_latency
            self.alone[hops == 0] = 0.0
        users = np.bincount(link, minlength=len(ids))
        crowded = np.zeros(routes.shape, dtype=bool)  # entries on a link another flow of the step uses
        crowded[valid] = users[link] > 1
        self.shared = shared = _row_reduce(np.logical_or, crowded)
        self.unshared = not shared.any()  # a ring's step: no solve at all
        del crowded, valid
        keep = np.repeat(shared, hops)
        self.shared_link = link[keep]  # entries of the shared flows, in flow order
        self.shared_flows = np.flatnonzero(shared)
        self.shared_hops = hops[self.shared_flows].astype(np.int32)
        # consecutive shared flows with the same route (the NPUs of one unit sending to the same unit through
        # the switches above): weighted as one flow in the solves of large steps (``_Units``)
        self.same_route = np.zeros(len(self.shared_flows), dtype=bool)
        if len(self.shared_flows) > ROUNDED_START_FLOWS:
            r = routes if len(self.shared_flows) == n else routes[self.shared_flows]
            self.same_route[1:] = _row_reduce(np.logical_and, r[1:] == r[:-1])
        del routes
        self.nbytes = sum(a.nbytes for a in (self.latency, self.capacity, self.alone, self.shared, self.shared_link,
                                             self.shared_flows, self.shared_hops, self.same_route))


def _row_reduce(ufunc, matrix: np.ndarray, dtype=None) -> np.ndarray:
    """``ufunc.reduce(matrix, axis=1)`` for a few columns, column by column (numpy's reduction along short
    rows is several times slower)."""
    out = matrix[:, 0].astype(dtype or matrix.dtype)
    for column in range(1, matrix.shape[1]):
        ufunc(out, matrix[:, column], out=out)
    return out


def _column_levels(topology: Topology, width: int) -> list[int] | None:
    """The level of each column of ``topology.routes_via``'s rows (the mesh levels' hops, then each switch
    level's up and down link; twice over with two-hop paths), or None when links of one level may differ
    in capacity or latency (faults)."""
    faults = topology.faults
    if faults.link_scale or faults.links_down or faults.slow_npus or faults.jitter:
        return None
    m, nlev = topology.num_mesh_levels, len(topology.levels)
    columns = list(range(m)) + [i for i in range(m, nlev) for _ in (0, 1)]
    return columns * (width // len(columns))


def _entries(hops: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices of the entries of ``rows`` (ascending) among runs of ``hops[i]`` entries each."""
    first = np.zeros(len(hops), dtype=np.int64)
    np.cumsum(hops[:-1], out=first[1:])
    return np.repeat(first[rows] - np.cumsum(np.r_[0, hops[rows][:-1]]), hops[rows]) + np.arange(hops[rows].sum())


def _scratch(nlinks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-link scratch for renumbering a step's links: a mark (kept all False between uses) and a map."""
    return np.zeros(nlinks, dtype=bool), np.zeros(nlinks, dtype=np.int32)


class _Units:
    """The shared flows of one run of a step as solve units: a flow, or in a step of more than
    ``ROUNDED_START_FLOWS`` flows a run of consecutive flows with the same route, start and bytes (they get
    the same rate and finish together; solved as one flow of that weight). Keeps which units flow. Where
    that leaves many units per route (starts differ along a run), a unit is a route instead, weighted in
    each solve by its flows then flowing (identical routes get identical rates; only the order and
    grouping of the sums of rates per link change, by the last bit)."""

    def __init__(self, routes: _StepRoutes, join: np.ndarray, nbytes: np.ndarray, aggregate: bool):
        flows = routes.shared_flows
        self.of = np.full(routes.nflows, -1, dtype=np.int64)  # each flow's unit (-1: not shared)
        self.capacity = routes.capacity
        self.count = None  # per route: its flows flowing (when units are routes)
        if aggregate:
            new = ~routes.same_route
            runs = np.count_nonzero(new)
            new[1:] |= (join[flows[1:]] != join[flows[:-1]]) | (nbytes[flows[1:]] != nbytes[flows[:-1]])
            if runs * ROUTE_UNIT_RATIO <= np.count_nonzero(new):
                self._routes(routes)
                return
        else:
            new = np.ones(len(flows), dtype=bool)
        self.of[flows] = np.cumsum(new) - 1
        self.hops = routes.shared_hops[new]
        self.link = routes.shared_link[np.repeat(new, routes.shared_hops)]  # the first flow's entries
        self.weight = np.bincount(self.of[flows]).astype(np.float64) if aggregate else None
        self.flowing = np.zeros(len(self.hops), dtype=bool)
        self.rate = np.zeros(len(self.hops))

    def _routes(self, routes: _StepRoutes) -> None:
        """Units as the distinct routes of the shared flows, numbered in order of first use."""
        firsts = np.flatnonzero(~routes.same_route)  # each run's first flow, among the shared ones
        hops = routes.shared_hops[firsts]
        width = int(hops.max())
        padded = np.full((len(firsts), width), -1, dtype=np.int32)
        padded[np.arange(width) < hops[:, None]] = routes.shared_link[_entries(routes.shared_hops, firsts)]
        _, first, route = np.unique(padded.view(f"V{4 * width}").ravel(), return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.of[routes.shared_flows] = rank[route.ravel()][np.cumsum(~routes.same_route) - 1]
        first = first[order]
        self.hops = hops[first]
        self.link = padded[first][np.arange(width) < self.hops[:, None]]
        self.count = np.zeros(len(first), dtype=np.int64)

    def change(self, flows: np.ndarray, flowing: bool) -> bool:
        """Mark the units of ``flows`` flowing or not; True when a shared flow was among them."""
        units = self.of[flows]
        units = units[units >= 0]
        if self.count is None:
            self.flowing[units] = flowing
        elif len(units):  # each flow starts once and ends once
            change = np.bincount(units, minlength=len(self.count))
            self.count += change if flowing else -change
        return bool(len(units))

    def solve(self) -> np.ndarray:
        """Max-min rates of the flowing units (every unit's rate, stale for those not flowing)."""
        if self.count is not None:
            on = self.count > 0
            rate = np.zeros(len(self.count))
            rate[on] = segment_filling(self.link[np.repeat(on, self.hops)], self.hops[on], self.capacity,
                                       self.count[on].astype(np.float64))
            return rate
        on = self.flowing
        weight = None if self.weight is None else self.weight[on]
        self.rate[on] = segment_filling(self.link[np.repeat(on, self.hops)], self.hops[on], self.capacity, weight)
        return self.rate


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
    if len(starts) == 1:
        joining = [sending]
    else:  # the flows starting at each start time, in flow order
        which = np.searchsorted(starts, first_start)
        order = np.argsort(which, kind="stable")
        joining = np.split(sending[order], np.cumsum(np.bincount(which, minlength=len(starts)))[:-1])
    units = None
    if not routes.unshared:
        join = np.zeros(routes.nflows)
        join[sending] = first_start
        units = _Units(routes, join, nbytes, batched)
    # the flowing transfers and, aligned with them, bytes left and rate
    active, remaining, rate = np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    stale = False  # the shared flows' rates need solving again
    now, next_start = starts[0], 0
    while len(active) or next_start < len(starts):
        if next_start < len(starts) and starts[next_start] <= now:
            new = joining[next_start]
            active = np.concatenate([active, new])
            remaining = np.concatenate([remaining, nbytes[new].astype(np.float64)])
            rate = np.concatenate([rate, routes.alone[new]])  # the shared ones' rates: at the next solve
            if units is not None and units.change(new, True):
                stale = True
            next_start += 1
            continue
        if not len(active):  # idle until the next flow starts
            now = starts[next_start]
            continue
        if stale:  # once per event that started or ended a shared flow
            solved = units.solve()
            unit = units.of[active]
            on = unit >= 0
            rate[on] = solved[unit[on]]
            stale = False
        left = remaining / rate
        first = left.min()
        until = starts[next_start] if next_start < len(starts) else math.inf
        if now + first <= until:  # the earliest flows finish before anyone else starts
            last = first * (1 + _REL_TOL)
            if batched:  # also those finishing within 1/MAX_FINISH_EVENTS of the spread left, at their own times
                last = max(last, min(first + (left.max() - first) / MAX_FINISH_EVENTS, until - now))
            done = left <= last
            elapsed = left[done].max() if batched else first
            gone = active[done]
            finish[gone] = now + (left[done] if batched else first)
            remaining = remaining - rate * elapsed
            now = now + elapsed
            if units is not None and units.change(gone, False):
                stale = True
            keep = ~done
            active, remaining, rate = active[keep], remaining[keep], rate[keep]
        else:
            remaining = remaining - rate * (until - now)
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
        self._scratch = None

    def routes(self, step: Step) -> _StepRoutes:
        key = (len(step), hash(np.ascontiguousarray(step.src).tobytes()), hash(np.ascontiguousarray(step.dst).tobytes()),
               None if step.via is None else hash(np.ascontiguousarray(step.via).tobytes()))
        found = self._routes.get(key)
        if found is None:
            if self._scratch is None:
                self._scratch = _scratch(self.topology.num_links)
            found = _StepRoutes(self.topology, self.npus[step.src], self.npus[step.dst], step.via, self._scratch)
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
