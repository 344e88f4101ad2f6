"""The exact event engine: the fluid model of a transfer table, every event of one instant at once.

A participant enters its first step at its entry time and posts that step's sends at its clock. A
transfer's bytes flow over its route at the max-min fair share of every link it crosses, recomputed
whenever the set of flowing transfers changes; it reaches the receiver ``latency`` after its last byte
leaves, and a reduce then costs ``reduce_time``. A transfer is complete for the sender when it arrives
and for the receiver once reduced; a participant finishes a step at the later of its entry into it and
the completion (for it) of every transfer it sends or receives in it, and enters its next step then.

So a step's finish time is a max over known times: only flows need events. The engine keeps one time
line of *instants*: at each, every participant entering a step posts its sends, every flow ending
then completes, and the fair share is solved once, for the flows running until the next instant.
Per-instant work is numpy over the transfers involved. Pure and deterministic.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from .fairshare import _REL_TOL, progressive_filling
from .table import TransferTable, empty_records


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
        self.first = np.full(nparts, -1, dtype=np.int64)
        self.first[self.part[first]] = first
        self.sends = np.argsort(self.send_slot, kind="stable")  # transfers grouped by sending slot
        nsend = np.bincount(self.send_slot, minlength=self.count)
        self.send_ptr = np.concatenate([[0], np.cumsum(nsend)])
        self.single_send = None  # the transfer each slot sends (-1: none), when no slot sends more than one
        if nsend.max(initial=0) <= 1:
            self.single_send = np.full(self.count, -1, dtype=np.int64)
            self.single_send[self.send_slot] = np.arange(n)


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
        capped = np.where(self.route >= 0, self.capacity[self.route], math.inf)
        self.alone_rate = capped.min(axis=1) if capped.shape[1] else np.full(len(table), math.inf)

    def run(self, entry: np.ndarray, record: bool = False):
        """Exit time per participant (the finish of its last step, or its entry), and the per-transfer
        records (``table.empty_records`` fields) when ``record``."""
        return _Run(self, np.asarray(entry, dtype=np.float64), record).result()


class _Run:
    def __init__(self, engine: ExactEngine, entry: np.ndarray, record: bool):
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
        if len(slots) > 1:  # each once (the last of its copies)
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
        np.subtract.at(self.usage, links, 1)
        if (self.usage[links] != 0).any():  # they shared a link: the others' shares change
            self.dirty = True
        self.active = self.active[keep]
        self.rate, self.left, self.remaining = self.rate[keep], self.left[keep], self.remaining[keep]
        return done

    def _rates(self) -> np.ndarray:
        routes = self.route[self.active]
        valid = routes >= 0
        flow, _ = np.nonzero(valid)
        rate = progressive_filling(routes[valid], flow, len(self.active), self.capacity)
        rate[~valid.any(axis=1)] = math.inf  # a route without links (no such topology yet) takes no time
        return rate

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
