"""The exact event engine: the fluid model of a transfer table, every event of one instant at once.

A participant enters its first step at its entry time and posts that step's sends at its clock. A
transfer's bytes flow over its route at the max-min fair share of every link it crosses, recomputed
whenever the set of flowing transfers changes; it reaches the receiver ``latency`` after its last byte
leaves, and a reduce then costs ``reduce_time``. A transfer is complete for the sender when it arrives
and for the receiver once reduced; a participant finishes a step at the later of its entry into it and
the completion (for it) of every transfer it sends or receives in it, and enters its next step then.

So a step's finish time is a max over known times: only flows need events. The engine keeps one time
line of *instants*: at each, every participant entering a step posts its sends, every flow ending
then completes, and the fair share is solved once, for the flows running until the next instant --
and only if a flow that shares a link started or ended (one alone on its links just gets its route's
tightest capacity). Per-instant work is numpy over the transfers involved (``_Run``), or, for small
tables with skewed entries (an instant per event), Python on scalars with the same float operations in
the same order (``_ScalarRun``: same bits, cheaper per event). Where no link can ever carry two flows at
once (``ExactEngine.unshared``: a ring) there are no events at all: step by step, each finish time is a
max of known times. Pure and deterministic; checked against a plain one-event-at-a-time
engine with textbook water filling in tests/test_engine_reference.py.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from .fairshare import _REL_TOL, padded_filling
from .table import TransferTable, empty_records

# Ranks entering at different times (an emulated call) make one instant per event, each touching a few
# transfers: on tables of at most this many transfers Python on scalars (``_ScalarRun``) then costs
# less than numpy calls on tiny arrays (``_Run``). Both give the same bits; measured on two-level:server=8
# (docs/timing.md): 2,048 transfers about even, 4,096 (RHD at 256 ranks) faster in numpy.
SCALAR_TRANSFERS = 1 << 11


def use_scalar(transfers: int, entry: np.ndarray) -> bool:
    """Whether a run of a table of ``transfers`` from ``entry`` (s, per participant) goes on scalars:
    small tables with entries that differ (aligned entries batch many events an instant: numpy)."""
    return transfers <= SCALAR_TRANSFERS and len(entry) > 0 and not (entry == entry[0]).all()


class _Slots:
    """A table's dependency structure: one *slot* per (participant, step) it sends or receives in,
    numbered participant-major in step order, with the transfers each slot sends and the number of
    transfer ends (sends and receives) it waits for."""

    def __init__(self, table: TransferTable):
        n, nparts = len(table), table.nparts
        nsteps = int(table.step.max()) + 1 if n else 1
        keys = np.concatenate([table.src * nsteps + table.step, table.dst * nsteps + table.step])
        if nparts * nsteps <= 8 * len(keys) + 1024:  # dense key space: number the slots without a sort
            mark = np.zeros(nparts * nsteps, dtype=bool)
            mark[keys] = True
            ids = np.flatnonzero(mark)
            number = np.cumsum(mark) - 1
            slot = number[keys]
        else:
            ids, slot = np.unique(keys, return_inverse=True)
        self.count = len(ids)
        self.part = ids // nsteps
        self.send_slot, self.recv_slot = slot[:n], slot[n:]
        self.need = np.bincount(slot, minlength=self.count)
        same = self.part[1:] == self.part[:-1]
        self.next = np.where(np.append(same, False), np.arange(1, self.count + 1), -1)
        first = np.flatnonzero(np.append(True, ~same)) if self.count else np.zeros(0, np.int64)
        self.prev = np.where(np.append(False, same), np.arange(-1, self.count - 1), -1)
        self.step = ids % nsteps
        self.by_step = None  # (slots, transfers) of each step in order, built when needed
        self.first = np.full(nparts, -1, dtype=np.int64)
        self.first[self.part[first]] = first
        nsend = np.bincount(self.send_slot, minlength=self.count)
        if nsend.max(initial=0) <= 1:  # the transfer each slot sends (-1: none)
            self.single_send = np.full(self.count, -1, dtype=np.int64)
            self.single_send[self.send_slot] = np.arange(n)
        else:  # transfers grouped by sending slot
            self.single_send = None
            self.sends = np.argsort(self.send_slot, kind="stable")
            self.send_ptr = np.concatenate([[0], np.cumsum(nsend)])


    def group_by_step(self, table: TransferTable) -> None:
        order_s = np.argsort(self.step, kind="stable")
        order_t = np.argsort(table.step, kind="stable")
        steps = np.unique(self.step)
        cut_s = np.searchsorted(self.step[order_s], steps)[1:]
        cut_t = np.searchsorted(table.step[order_t], steps)[1:]
        self.by_step = list(zip(np.split(order_s, cut_s), np.split(order_t, cut_t)))


class ExactEngine:
    """Times one transfer table from any entry times (see the module docstring)."""

    def __init__(self, table: TransferTable):
        self.table = table
        self.slots = _Slots(table)
        route = table.route
        used = np.zeros(len(table.capacity) + 1, dtype=bool)
        used[route[route >= 0]] = True
        ids = np.flatnonzero(used[:-1])
        local = np.full(len(table.capacity) + 1, -1, dtype=np.int64)  # local[-1] keeps the padding
        local[ids] = np.arange(len(ids))
        self.route = local[route]  # links renumbered 0..L-1 over those the table uses
        self.capacity = np.asarray(table.capacity, dtype=np.float64)[ids]
        # a flow alone on every link of its route gets the tightest of them (inf without links)
        padded = np.append(self.capacity, math.inf)  # the padding (-1) reads inf
        self.alone_rate = padded[self.route].min(axis=1) if self.route.shape[1] else np.full(len(table), math.inf)
        # for the fair-share solves: the padding as one more link, of infinite capacity; routes without links
        self.padded_capacity = padded
        self.padded_route = np.where(self.route >= 0, self.route, len(self.capacity))
        self.linkless = bool((self.route < 0).all(axis=1).any()) if len(table) else False
        ordered = np.sort(self.route, axis=1)  # no route crosses a link twice: one flow's links index once
        self.simple = not ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any()
        self.unshared = self._never_shared()
        self.last_work = 0  # fair-share work of the last run, (route, link) entries visited
        self._scalar = None

    def _never_shared(self) -> bool:
        """True when no two transfers can ever flow on one link at once: every link carries the transfers
        of one sender, at most one a step. (A sender enters a step after its previous step's sends have
        arrived, so its flows of different steps never overlap.) Then every flow runs at its route's
        tightest capacity and the engine needs no events (``_run_unshared``): a ring, on any topology."""
        valid = self.route >= 0
        if not valid.any():
            return True
        row, _ = np.nonzero(valid)
        link = self.route[valid]
        src, step = self.table.src[row], self.table.step[row]
        sender = np.zeros(len(self.capacity), dtype=np.int64)
        sender[link] = src  # one of each link's senders; all of them when it has only one
        if (sender[link] != src).any():
            return False
        if self.slots.single_send is not None:  # one send per step and sender: one per link and step
            return True
        keys = link * (int(step.max()) + 1) + step
        return len(np.unique(keys)) == len(keys)

    def run(self, entry: np.ndarray, record: bool = False, budget: float | None = None):
        """Exit time per participant (the finish of its last step, or its entry), and the per-transfer
        records (``table.empty_records`` fields) when ``record``. Raises OverBudget once the fair-share
        solves have visited more than ``budget`` (route, link) entries in all (None: no limit)."""
        entry = np.asarray(entry, dtype=np.float64)
        if self.unshared:
            return self._run_unshared(entry, record)
        run = (_ScalarRun if use_scalar(len(self.table), entry) else _Run)(self, entry, record, budget)
        self.last_work = run.work
        return run.result()

    def rates(self, active: np.ndarray) -> np.ndarray:
        """Max-min fair rates (bytes/s) of the flowing transfers ``active`` (inf on a route without links)."""
        if not self.linkless:
            return padded_filling(self.padded_route[active], self.padded_capacity)
        linked = (self.route[active] >= 0).any(axis=1)
        rate = np.full(len(active), math.inf)  # a route without links (no such topology yet) takes no time
        rate[linked] = padded_filling(self.padded_route[active[linked]], self.padded_capacity)
        return rate

    def scalar_form(self) -> "_ScalarForm":
        """The table and its dependencies as Python lists, for ``_ScalarRun`` (built once per engine)."""
        if self._scalar is None:
            self._scalar = _ScalarForm(self)
        return self._scalar

    def _run_unshared(self, entry: np.ndarray, record: bool):
        """The same rules when no link is ever shared: every transfer takes bytes / its route's tightest
        capacity, so step by step (a participant's steps come in order) each finish time is a max of
        known times, in numpy over the step's transfers."""
        t, s = self.table, self.slots
        if s.by_step is None:
            s.group_by_step(t)
        duration = np.where(t.bytes > 0, t.bytes / self.alone_rate, 0.0)
        enter = np.zeros(s.count)
        finish = np.zeros(s.count)
        rec = empty_records(len(t)) if record else None
        for slots, transfers in s.by_step:
            prev = s.prev[slots]
            enter[slots] = np.where(prev >= 0, finish[np.maximum(prev, 0)], entry[s.part[slots]])
            finish[slots] = enter[slots]
            post = enter[s.send_slot[transfers]]
            out = post + duration[transfers]
            arrive = out + t.latency[transfers]
            done = arrive + t.reduce_time[transfers]
            np.maximum.at(finish, s.send_slot[transfers], arrive)
            np.maximum.at(finish, s.recv_slot[transfers], done)
            if record:
                rec.post[transfers], rec.out[transfers], rec.arrive[transfers], rec.done[transfers] = \
                    post, out, arrive, done
        exit_ = entry.copy()
        last = s.next < 0
        exit_[s.part[last]] = finish[last]
        if record:
            rec.step, rec.src, rec.dst, rec.bytes = t.step, t.src, t.dst, t.bytes
        return exit_, rec


class OverBudget(RuntimeError):
    """The exact engine stopped: its fair-share work passed the budget it was given."""


class _Run:
    def __init__(self, engine: ExactEngine, entry: np.ndarray, record: bool, budget: float | None = None):
        self.budget = math.inf if budget is None else budget
        self.work = 0  # (route, link) entries the fair-share solves visited
        table, slots = engine.table, engine.slots
        self.t, self.s, self.route, self.capacity = table, slots, engine.route, engine.capacity
        self.exit = entry.copy()
        self.waiting = slots.need.copy()  # transfer ends each slot still waits for
        self.latest = np.full(slots.count, -math.inf)  # latest completion among those in
        self.enter = np.zeros(slots.count)  # when the participant entered the slot
        self.state = np.zeros(slots.count, dtype=np.int8)  # 0 not entered, 1 entered, 2 finished
        self.mark = np.zeros(slots.count, dtype=np.int64)  # scratch, to drop repeated slots without a sort
        self.rec = empty_records(len(table)) if record else None
        if record:
            self.rec.step, self.rec.src, self.rec.dst, self.rec.bytes = table.step, table.src, table.dst, table.bytes
        self.pending: dict[float, list[np.ndarray]] = {}  # instant -> slots entered then
        self.times: list[float] = []
        firsts = slots.first >= 0
        self._schedule(slots.first[firsts], entry[firsts])
        self.engine = engine
        self.active = np.zeros(0, dtype=np.int64)  # flowing transfers, and aligned with them:
        self.remaining = np.zeros(0)  # bytes left,
        self.rate = np.zeros(0)  # fair share (bytes/s),
        self.left = np.zeros(0)  # time left at that rate
        self.usage = np.zeros(len(engine.capacity), dtype=np.int64)  # flows on each link
        self.dirty = False  # the shares need solving again
        self.now = float(entry.min()) if len(entry) else 0.0
        self._loop()

    def result(self):
        return self.exit, self.rec

    def _schedule(self, slots: np.ndarray, at: np.ndarray) -> None:
        """Slots to enter at times ``at``, grouped by instant."""
        if not len(slots):
            return
        if (at == at[0]).all():
            groups = [(float(at[0]), slots)]
        else:
            instants, which = np.unique(at, return_inverse=True)
            order = np.argsort(which, kind="stable")
            cuts = np.cumsum(np.bincount(which, minlength=len(instants)))[:-1]
            groups = zip(instants.tolist(), np.split(slots[order], cuts))
        for time, group in groups:
            if time not in self.pending:
                self.pending[time] = []
                heapq.heappush(self.times, time)
            self.pending[time].append(group)

    def _finish(self, slots: np.ndarray) -> None:
        """Close the slots that are entered and have every transfer end in: their participants move on."""
        slots = slots[(self.waiting[slots] == 0) & (self.state[slots] == 1)]
        if not len(slots):
            return
        if len(slots) > 2 or (len(slots) == 2 and slots[0] == slots[1]):  # each once (the last of its copies)
            self.mark[slots] = np.arange(len(slots))
            slots = slots[self.mark[slots] == np.arange(len(slots))]
        self.state[slots] = 2
        at = np.maximum(self.enter[slots], self.latest[slots])
        self.exit[self.s.part[slots]] = at
        nxt = self.s.next[slots]
        more = nxt >= 0
        self._schedule(nxt[more], at[more])

    def _complete(self, done: np.ndarray, out: float) -> None:
        """Transfers whose last byte left at ``out``: their ends complete at arrival (sender) and after
        the reduce (receiver)."""
        t, s = self.t, self.s
        arrive = out + t.latency[done]
        finish = arrive + t.reduce_time[done]
        if self.rec is not None:
            self.rec.out[done], self.rec.arrive[done], self.rec.done[done] = out, arrive, finish
        ends = np.concatenate([s.send_slot[done], s.recv_slot[done]])
        if len(done) == 1 and ends[0] != ends[1]:  # the common case: two distinct slots, no ufunc.at
            self.latest[ends] = np.maximum(self.latest[ends], np.concatenate([arrive, finish]))
            self.waiting[ends] -= 1
        else:
            np.maximum.at(self.latest, ends, np.concatenate([arrive, finish]))
            np.subtract.at(self.waiting, ends, 1)
        self._finish(ends)

    def _enter(self, slots: np.ndarray) -> None:
        """Participants enter ``slots`` now and post their sends."""
        s, now = self.s, self.now
        self.enter[slots] = now
        self.state[slots] = 1
        if s.single_send is not None:  # at most one send per slot
            posted = s.single_send[slots]
            posted = posted[posted >= 0]
        else:
            lo, hi = s.send_ptr[slots], s.send_ptr[slots + 1]
            counts = hi - lo
            posted = s.sends[np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))]
        if len(posted):
            if self.rec is not None:
                self.rec.post[posted] = now
            nbytes = self.t.bytes[posted]
            flowing = nbytes > 0
            if flowing.all():
                self._add(posted, nbytes)
            else:
                self._add(posted[flowing], nbytes[flowing])
                self._complete(posted[~flowing], now)  # nothing to send: only the latency
        self._finish(slots)

    def _add(self, transfers: np.ndarray, nbytes: np.ndarray) -> None:
        if not len(transfers):
            return
        links = self.route[transfers]
        links = links[links >= 0]
        if len(transfers) == 1 and self.engine.simple:  # one route, each link once: no ufunc.at
            self.usage[links] += 1
        else:
            np.add.at(self.usage, links, 1)
        self.active = np.concatenate([self.active, transfers])
        self.remaining = np.concatenate([self.remaining, nbytes])
        if not self.dirty and (self.usage[links] == 1).all():  # alone on their links: nobody else changes
            rate = self.engine.alone_rate[transfers]
            self.rate = np.concatenate([self.rate, rate])
            self.left = np.concatenate([self.left, nbytes / rate])
        else:
            self.dirty = True

    def _remove(self, ends: np.ndarray) -> np.ndarray:
        """Stop the flows marked in ``ends`` (aligned with ``active``); returns them."""
        done, keep = self.active[ends], ~ends
        links = self.route[done]
        links = links[links >= 0]
        if len(done) == 1 and self.engine.simple:  # one route, each link once: no ufunc.at
            self.usage[links] -= 1
        else:
            np.subtract.at(self.usage, links, 1)
        if (self.usage[links] != 0).any():  # they shared a link: the others' shares change
            self.dirty = True
        self.active = self.active[keep]
        self.rate, self.left, self.remaining = self.rate[keep], self.left[keep], self.remaining[keep]
        return done

    def _rates(self) -> np.ndarray:
        self.work += self.active.size * self.route.shape[1]
        if self.work > self.budget:
            raise OverBudget(f"exact timing: fair-share work passed its budget of {self.budget:.0f}")
        return self.engine.rates(self.active)

    def _loop(self) -> None:
        while True:
            next_instant = self.times[0] if self.times else math.inf
            if next_instant <= self.now:  # participants enter steps at this instant: all of them first
                heapq.heappop(self.times)
                group = self.pending.pop(next_instant)
                self._enter(group[0] if len(group) == 1 else np.concatenate(group))
                continue
            if len(self.active):
                if self.dirty:  # once per instant, for the flows running until the next one
                    self.rate = self._rates()
                    self.left = self.remaining / self.rate
                    self.dirty = False
                first = self.left.min()
                flows_end = self.now + first
            else:
                flows_end = math.inf
            if flows_end == math.inf and next_instant == math.inf:
                return
            step = min(flows_end, next_instant) - self.now
            self.remaining = self.remaining - self.rate * step
            self.left = self.left - step
            if flows_end <= next_instant:
                ends = self.left <= flows_end * _REL_TOL + 1e-300
                self.now = flows_end
                self._complete(self._remove(ends), flows_end)
            else:
                self.now = next_instant


class _ScalarForm:
    """An engine's table and slots as Python lists (what ``_ScalarRun`` reads), built once per engine:
    per slot its participant, next slot (-1: none), transfer ends it waits for and transfers it sends;
    per transfer its slots, bytes, latency, reduce time, links, and rate and time when alone on them."""

    def __init__(self, engine: ExactEngine):
        t, s = engine.table, engine.slots
        self.part, self.next, self.need = s.part.tolist(), s.next.tolist(), s.need.tolist()
        self.first = [(int(p), int(slot)) for p, slot in enumerate(s.first) if slot >= 0]
        if s.single_send is not None:
            self.sends = [[] if x < 0 else [x] for x in s.single_send.tolist()]
        else:
            self.sends = [s.sends[a:b].tolist() for a, b in zip(s.send_ptr[:-1], s.send_ptr[1:])]
        self.send_slot, self.recv_slot = s.send_slot.tolist(), s.recv_slot.tolist()
        self.bytes, self.latency, self.reduce_time = t.bytes.tolist(), t.latency.tolist(), t.reduce_time.tolist()
        self.links = [tuple(link for link in row if link >= 0) for row in engine.route.tolist()]
        self.alone_rate = engine.alone_rate.tolist()
        with np.errstate(divide="ignore", invalid="ignore"):
            self.alone_left = (t.bytes / engine.alone_rate).tolist()  # the same division as _Run's


class _ScalarRun:
    """``_Run``'s rules and float operations, in the same order, on Python scalars and lists: bit-identical
    times. Per event it touches only the transfers and slots involved; the fair share is still solved
    by ``padded_filling`` over the flowing transfers, in the order they started."""

    def __init__(self, engine: ExactEngine, entry: np.ndarray, record: bool, budget: float | None = None):
        f = engine.scalar_form()
        budget = math.inf if budget is None else budget
        self.work = 0
        hops = engine.route.shape[1]
        part, nxt, sends, links = f.part, f.next, f.sends, f.links
        send_slot, recv_slot, nbytes = f.send_slot, f.recv_slot, f.bytes
        latency, reduce_time, alone_rate, alone_left = f.latency, f.reduce_time, f.alone_rate, f.alone_left
        exit_ = entry.tolist()
        count = len(part)
        waiting = list(f.need)  # transfer ends each slot still waits for
        latest = [-math.inf] * count  # latest completion among those in
        enter = [0.0] * count  # when the participant entered the slot
        state = bytearray(count)  # 0 not entered, 1 entered, 2 finished
        n = len(nbytes)
        rec = [[0.0] * n for _ in range(4)] if record else None  # post, out, arrive, done
        usage = [0] * len(engine.capacity)  # flows on each link
        pending: dict[float, list[int]] = {}  # instant -> slots entered then, in order
        times: list[float] = []

        def finish(slots: list) -> None:
            ready = [x for x in slots if waiting[x] == 0 and state[x] == 1]
            if len(ready) > 1:  # each once, where its last copy stands
                last = {x: i for i, x in enumerate(ready)}
                ready = [x for i, x in enumerate(ready) if last[x] == i]
            for x in ready:
                state[x] = 2
                at = enter[x] if enter[x] >= latest[x] else latest[x]
                exit_[part[x]] = at
                slot = nxt[x]
                if slot >= 0:  # enters its next step then
                    group = pending.get(at)
                    if group is None:
                        pending[at] = [slot]
                        heapq.heappush(times, at)
                    else:
                        group.append(slot)

        def complete(done: list, out: float) -> None:
            for x in done:
                arrive = out + latency[x]
                fin = arrive + reduce_time[x]
                if rec is not None:
                    rec[1][x], rec[2][x], rec[3][x] = out, arrive, fin
                a, b = send_slot[x], recv_slot[x]
                if arrive > latest[a]:
                    latest[a] = arrive
                waiting[a] -= 1
                if fin > latest[b]:
                    latest[b] = fin
                waiting[b] -= 1
            if len(done) == 1:  # the common case: its two ends, in that order
                finish([send_slot[done[0]], recv_slot[done[0]]])
            else:
                finish([send_slot[x] for x in done] + [recv_slot[x] for x in done])

        for p, slot in f.first:
            group = pending.get(exit_[p])
            if group is None:
                pending[exit_[p]] = [slot]
                heapq.heappush(times, exit_[p])
            else:
                group.append(slot)
        active: list[int] = []  # flowing transfers, and aligned with them:
        remaining: list[float] = []  # bytes left,
        rate: list[float] = []  # fair share (bytes/s),
        left: list[float] = []  # time left at that rate
        dirty = False  # the shares need solving again
        now = min(exit_) if exit_ else 0.0
        while True:
            next_instant = times[0] if times else math.inf
            if next_instant <= now:  # participants enter steps at this instant: all of them first
                heapq.heappop(times)
                slots = pending.pop(next_instant)
                posted = []
                for x in slots:
                    enter[x] = now
                    state[x] = 1
                    posted += sends[x]
                if posted:
                    if rec is not None:
                        for x in posted:
                            rec[0][x] = now
                    flowing = [x for x in posted if nbytes[x] > 0]
                    if flowing:
                        for x in flowing:
                            for link in links[x]:
                                usage[link] += 1
                        active += flowing
                        remaining += [nbytes[x] for x in flowing]
                        if not dirty and all(usage[link] == 1 for x in flowing for link in links[x]):
                            rate += [alone_rate[x] for x in flowing]  # alone on their links
                            left += [alone_left[x] for x in flowing]
                        else:
                            dirty = True
                    if len(flowing) < len(posted):  # nothing to send: only the latency
                        complete([x for x in posted if not nbytes[x] > 0], now)
                finish(slots)
                continue
            if active:
                if dirty:  # once per instant, for the flows running until the next one
                    self.work += len(active) * hops
                    if self.work > budget:
                        raise OverBudget(f"exact timing: fair-share work passed its budget of {budget:.0f}")
                    solved = engine.rates(np.array(active, dtype=np.int64))
                    left = (np.array(remaining) / solved).tolist()  # as _Run divides
                    rate = solved.tolist()
                    dirty = False
                flows_end = now + min(left)
            else:
                flows_end = math.inf
            if flows_end == math.inf and next_instant == math.inf:
                break
            step = min(flows_end, next_instant) - now
            remaining = [r - q * step for r, q in zip(remaining, rate)]
            left = [t - step for t in left]
            if flows_end <= next_instant:
                now = flows_end
                tol = flows_end * _REL_TOL + 1e-300
                ends = [i for i, t in enumerate(left) if t <= tol]
                done = [active[i] for i in ends]
                for i in reversed(ends):  # the others keep their order
                    del active[i], remaining[i], rate[i], left[i]
                for x in done:
                    for link in links[x]:
                        usage[link] -= 1
                if not dirty:  # they shared a link: the others' shares change
                    dirty = any(usage[link] for x in done for link in links[x])
                complete(done, flows_end)
            else:
                now = next_instant
        self.exit = np.array(exit_, dtype=np.float64)
        self.rec = None
        if record:
            t = engine.table
            self.rec = empty_records(n)
            self.rec.step, self.rec.src, self.rec.dst, self.rec.bytes = t.step, t.src, t.dst, t.bytes
            self.rec.post, self.rec.out, self.rec.arrive, self.rec.done = rec

    def result(self):
        return self.exit, self.rec
