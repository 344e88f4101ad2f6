"""The transfer table: a schedule (or several, sharing one topology) as the timing engines take it.

One row per transfer, as named arrays. Everything an engine needs about a transfer's cost is here:
``bytes`` that flow over the route at the fair share of its links, ``latency`` (s) added after the last
byte leaves, ``reduce_time`` (s) the receiver spends after arrival. Cost terms that act per transfer
(bandwidth efficiency, per-step overhead, protocol regimes) apply by transforming these arrays before
timing (``TransferTable.replace``); dependencies come from ``src``, ``dst`` and ``step``: a participant runs
its steps in order, entering the next when every transfer it sends or receives in the current one is
complete for it.

Participants: a schedule's ranks 0..p-1, or, for several schedules at once, each schedule's ranks
numbered after the previous schedule's, each with its own NPU (two participants may share an NPU: a
rank in a tensor-parallel and in a data-parallel group). Dependencies never cross schedules; links do.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..algorithms.schedule import Schedule, expand_repeats
from ..topology import Topology

# Per-transfer records of a timed run: a numpy record array with these fields (times in seconds).
RECORD_DTYPE = np.dtype([("step", np.int64), ("src", np.int64), ("dst", np.int64), ("bytes", np.float64),
                         ("post", np.float64), ("out", np.float64), ("arrive", np.float64), ("done", np.float64)])


def empty_records(n: int) -> np.recarray:
    """``n`` zeroed transfer records (fields of ``RECORD_DTYPE``: step, src, dst, bytes, post, out, arrive, done)."""
    return np.zeros(n, dtype=RECORD_DTYPE).view(np.recarray)


@dataclass(frozen=True, eq=False)
class TransferTable:
    """Transfers of one or more schedules on one topology, shape (T,) each but ``route`` (T, hops).

    ``src``/``dst`` are participants, ``step`` the transfer's step in its schedule, ``bytes`` in bytes,
    ``latency``/``reduce_time`` in seconds, ``route`` the topology's link ids (padded with -1) and
    ``capacity`` every link's bandwidth (bytes/s), indexed by link id."""
    step: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    bytes: np.ndarray
    latency: np.ndarray
    reduce_time: np.ndarray
    route: np.ndarray
    capacity: np.ndarray
    nparts: int

    def __len__(self) -> int:
        return len(self.step)

    def replace(self, **changes) -> "TransferTable":
        """A copy with some arrays replaced (how per-transfer cost terms are applied)."""
        return replace(self, **changes)

    @classmethod
    def from_schedule(cls, schedule: Schedule, topology: Topology, npus: np.ndarray, itemsize: int) -> "TransferTable":
        """The table of ``schedule`` with rank r on NPU ``npus[r]``; repeated (compact) steps written out.
        Steps with the same (src, dst) pairs (a ring's every step) are routed once."""
        npus = np.asarray(npus, dtype=np.int64)[: schedule.nranks]
        steps = expand_repeats(schedule.steps) if schedule.compact else schedule.steps
        capacity, _ = topology.link_arrays()
        if not steps:
            return cls(*(np.zeros(0, t) for t in (np.int64, np.int64, np.int64, float, float, float)),
                       np.full((0, 1), -1, np.int64), capacity, schedule.nranks)
        patterns: dict = {}  # (src, dst) pairs -> (route, latency) of a step's transfers
        routed = []
        for step in steps:
            key = (len(step), step.src.tobytes(), step.dst.tobytes(), None if step.via is None else step.via.tobytes())
            if key not in patterns:  # Step.via: multi-path detours (algorithms/multipath.py)
                route = topology.routes_via(npus[step.src], npus[step.dst], step.via)
                patterns[key] = (route, topology.route_latency(route))
            routed.append(patterns[key])
        route = np.full((sum(len(s) for s in steps), max(r.shape[1] for r, _ in routed)), -1, dtype=np.int64)
        row = 0
        for r, _ in routed:
            route[row: row + len(r), : r.shape[1]] = r
            row += len(r)
        cat = lambda name: np.concatenate([getattr(s, name) for s in steps])
        src, dst = cat("src").astype(np.int64), cat("dst").astype(np.int64)
        nbytes, reduce = cat("count").astype(np.float64) * itemsize, cat("reduce").astype(bool)
        reduce_time = np.zeros(len(src))
        if reduce.any():
            reduce_time[reduce] = nbytes[reduce] / topology.reduce_rates(npus[dst[reduce]])
        step = np.repeat(np.arange(len(steps), dtype=np.int64), [len(s) for s in steps])
        return cls(step, src, dst, nbytes, np.concatenate([lat for _, lat in routed]), reduce_time, route, capacity,
                   schedule.nranks)

    @classmethod
    def concat(cls, tables: "list[TransferTable]") -> "TransferTable":
        """Several tables on one topology as one: participants numbered one table after another."""
        if len(tables) == 1:
            return tables[0]
        offsets = np.cumsum([0] + [t.nparts for t in tables])
        hops = max(t.route.shape[1] for t in tables)
        pad = lambda r: np.pad(r, ((0, 0), (0, hops - r.shape[1])), constant_values=-1)
        cat = lambda name: np.concatenate([getattr(t, name) for t in tables])
        return cls(cat("step"), np.concatenate([t.src + o for t, o in zip(tables, offsets)]),
                   np.concatenate([t.dst + o for t, o in zip(tables, offsets)]), cat("bytes"), cat("latency"),
                   cat("reduce_time"), np.concatenate([pad(t.route) for t in tables]), tables[0].capacity,
                   int(offsets[-1]))
