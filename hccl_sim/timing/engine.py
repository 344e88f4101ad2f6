"""Layer 3: the modeled time of schedules on a topology, from each rank's entry time.

Fluid model. When a rank has finished every transfer of its previous step it enters its next one and
posts that step's sends at its clock. A transfer's data flows over its route at the max-min fair
share of every link it crosses (recomputed whenever a flow starts or ends, so a flow speeds up when
a competitor finishes); it reaches the receiver the route's latency after its last byte leaves, and
a reduce then costs bytes / the NPU's reduce rate. A transfer is complete for the sender when it
arrives and for the receiver once it is reduced. Pure and deterministic: entry times are taken
relative to the earliest, so equal cases give bit-identical results whatever the host.

Two engines implement these rules behind one protocol (``run(entry, record) -> (exit, records)``):
the exact event engine (exact.py) on the schedule's transfer table (table.py), and the stepwise engine
(stepwise.py) for schedules too large to write out. ``choose_engine`` picks with one threshold on the
number of transfers, a function of the schedule alone; the exact engine hands a case over to the
stepwise one when its fair-share work passes ``EXACT_WORK`` (ranks drifting into very many instants).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..algorithms.schedule import Schedule
from ..topology import Topology
from . import costs
from .exact import ExactEngine, OverBudget
from .stepwise import StepwiseSimulator
from .table import TransferTable

# The exact engine times every schedule of at most this many transfers (repeated steps written out);
# larger ones go step by step. About 1 s of exact timing on a 2-core host (README, "Timing").
EXACT_TRANSFERS = 1 << 19
# ... and gives up, for the stepwise engine, once its fair-share solves have visited this many (route, link)
# entries (about 1.5 s here): RHD off powers of two on the Atlas 960 SuperPoD drifts into ~17,000 distinct
# instants (15,488 ranks: 100 s exact, 6 s stepwise). Deterministic: a function of the schedule and the
# entry times.
EXACT_WORK = 1 << 24
# Several schedules at once (``run_many``) always go to the exact engine, up to this many transfers in all.
MANY_TRANSFERS = 1 << 22


def choose_engine(schedule: Schedule) -> str:
    """"exact" or "stepwise": a function of the schedule alone (see ``EXACT_TRANSFERS``)."""
    return "exact" if schedule.num_transfers <= EXACT_TRANSFERS else "stepwise"


class Engine(Protocol):
    """A timing engine bound to one schedule (or transfer table): exit time (s) of each participant from
    their entry times (s, shape (participants,)), and per-transfer records (``RECORD_DTYPE``) when
    ``record``."""

    def run(self, entry: np.ndarray, record: bool = False) -> tuple[np.ndarray, np.recarray | None]: ...


@dataclass
class StepwiseEngine:
    """The stepwise engine (stepwise.py) bound to a schedule."""
    simulator: StepwiseSimulator
    schedule: Schedule
    itemsize: int

    def run(self, entry: np.ndarray, record: bool = False):
        return self.simulator.run(self.schedule, self.itemsize, entry, record)


@dataclass
class TimingResult:
    entry: np.ndarray  # per rank, seconds
    exit: np.ndarray  # per rank, seconds
    time: float  # the collective's span, last exit minus first entry, computed before the shift to
    # absolute time so that it does not depend on where the clocks stand
    # per transfer, in schedule order, when recorded: a record array with fields step, src, dst, bytes,
    # post, out (last byte out), arrive, done (at the receiver, after the reduce); times in seconds
    transfers: np.recarray | None = None
    engine: str = "exact"


class TimingModel:
    """Modeled times of schedules on one topology with one placement of ranks onto NPUs."""

    def __init__(self, topology: Topology, npus):
        self.topology = topology
        self.npus = np.asarray(npus, dtype=np.int64)
        self._engines: dict = {}
        self._results: dict = {}
        self._stepwise = None
        self._result_ranks = 0
        # TransferTable -> TransferTable functions applied to every table the exact engine times (per-call
        # overhead, bandwidth efficiency, ...); the stepwise engine does not read tables
        self.table_transforms: list = []

    def table(self, schedule: Schedule, itemsize: int, npus=None) -> TransferTable:
        """The transfer table of ``schedule`` (ranks on ``npus``, default this model's placement), with
        every function of ``table_transforms`` applied in order (cost terms acting per transfer)."""
        npus = self.npus[: schedule.nranks] if npus is None else np.asarray(npus, dtype=np.int64)
        table = TransferTable.from_schedule(schedule, self.topology, npus, itemsize)
        for transform in self.table_transforms:
            table = transform(table)
        return table

    def exact(self, schedule: Schedule, itemsize: int) -> ExactEngine:
        """The exact engine of ``schedule`` (built once per schedule and itemsize, bounded cache)."""
        key = (id(schedule), itemsize)
        found = self._engines.get(key)
        if found is None or found[0] is not schedule:
            if len(self._engines) > 256:
                self._engines.clear()
            found = self._engines[key] = (schedule, ExactEngine(self.table(schedule, itemsize)))
        return found[1]

    def engine(self, schedule: Schedule, itemsize: int, name: str | None = None) -> Engine:
        """The engine ``name`` ("exact", "stepwise"; default ``choose_engine``'s) bound to ``schedule``."""
        name = name or choose_engine(schedule)
        if name == "exact":
            return self.exact(schedule, itemsize)
        if self._stepwise is None:
            self._stepwise = StepwiseSimulator(self.topology, self.npus)
        return StepwiseEngine(self._stepwise, schedule, itemsize)

    def _relative(self, entry, nranks: int, npus) -> tuple[np.ndarray, float]:
        entry = np.zeros(nranks) if entry is None else np.asarray(entry, dtype=np.float64)
        if entry.shape != (nranks,):
            raise ValueError(f"timing: entry times must be one per rank ({nranks}), got shape {entry.shape}")
        base = float(entry.min()) if len(entry) else 0.0
        rel = entry - base
        if self.topology.faults.late_npus:  # late stragglers enter later than their clocks say
            rel = rel + self.topology.entry_delays(npus)
        return rel, base

    def run(self, schedule: Schedule, itemsize: int, entry=None, record: bool = False) -> TimingResult:
        # cost-model hooks (timing/costs.py): protocol regime, per-call overhead, slicing
        variant = costs.regime_model(self, schedule, itemsize)
        if variant is not self:
            return variant.run(schedule, itemsize, entry, record)
        entry = np.zeros(schedule.nranks) if entry is None else np.asarray(entry, dtype=np.float64)
        rel, base = self._relative(entry, schedule.nranks, self.npus[: schedule.nranks])
        rel = rel + costs.call_overhead(self.topology, schedule.collective, self.npus[: schedule.nranks])
        schedule = costs.sliced_schedule(self, schedule, itemsize)
        key = (id(schedule), itemsize, rel.tobytes(), record)
        cached = self._results.get(key)
        if cached is None or cached[0] is not schedule:
            # bounded by entries and by ranks held (a million-rank result holds megabytes)
            if len(self._results) > 4096 or self._result_ranks + schedule.nranks > (1 << 23):
                self._results.clear()
                self._result_ranks = 0
            self._result_ranks += schedule.nranks
            engine = choose_engine(schedule)
            if engine == "exact":
                try:
                    outcome = self.exact(schedule, itemsize).run(rel, record, budget=EXACT_WORK)
                except OverBudget:  # ranks drift into very many distinct instants: step by step instead
                    engine = "stepwise"
            if engine == "stepwise":
                outcome = self.engine(schedule, itemsize, engine).run(rel, record)
            cached = (schedule, outcome, engine)
            self._results[key] = cached
        (rel_exit, transfers), engine = cached[1], cached[2]
        return _result(entry, rel_exit, base, transfers, engine)

    def run_many(self, jobs, record: bool = False) -> list[TimingResult]:
        """Several schedules at once on this topology, their flows sharing links; dependencies stay
        within each schedule. ``jobs``: (schedule, itemsize, npus, entry) -- ``npus`` the NPU of each of
        the schedule's ranks (None: this model's placement), ``entry`` each rank's entry time in seconds
        (None: all at 0). Always the exact engine; raises ValueError above ``MANY_TRANSFERS`` transfers in
        all. One result per job, its ``time`` the span from its own first entry to its last exit."""
        jobs = list(jobs)
        total = sum(schedule.num_transfers for schedule, *_ in jobs)
        if total > MANY_TRANSFERS:
            raise ValueError(f"run_many: {total} transfers in all is more than the exact engine times at once "
                             f"({MANY_TRANSFERS}); use fewer or smaller groups")
        tables, entries, npus_of = [], [], []
        for schedule, itemsize, npus, entry in jobs:
            name = f"run_many: {schedule.collective}/{schedule.algo}"
            npus = self.npus[: schedule.nranks] if npus is None else np.asarray(npus, dtype=np.int64)
            if len(npus) != schedule.nranks:
                raise ValueError(f"{name} has {schedule.nranks} ranks but {len(npus)} NPUs were given")
            if len(npus) and (npus.min() < 0 or npus.max() >= self.topology.num_npus):
                raise ValueError(f"{name}: NPU ids must be in 0..{self.topology.num_npus - 1}, got {npus.tolist()}")
            entry = np.zeros(schedule.nranks) if entry is None else np.broadcast_to(
                np.asarray(entry, dtype=np.float64), (schedule.nranks,))
            tables.append(self.table(schedule, itemsize, npus))
            entries.append(entry)
            npus_of.append(npus)
        if not jobs:
            return []
        entry = np.concatenate(entries)
        rel, base = self._relative(entry, len(entry), np.concatenate(npus_of))
        exit_, transfers = ExactEngine(TransferTable.concat(tables)).run(rel, record)
        results, first, row = [], 0, 0
        for table, job_entry in zip(tables, entries):
            last = first + table.nparts
            own = None
            if transfers is not None:
                own = transfers[row: row + len(table)].copy()
                own.src -= first
                own.dst -= first
            result = _result(job_entry, exit_[first:last], base, own, "exact")
            if table.nparts:  # the span from this job's own first entry
                result.time = float(exit_[first:last].max() - (job_entry.min() - base))
            results.append(result)
            first, row = last, row + len(table)
        return results


def _result(entry, rel_exit, base, transfers, engine) -> TimingResult:
    result = TimingResult(entry, rel_exit + base, float(rel_exit.max()) if len(rel_exit) else 0.0, engine=engine)
    if transfers is not None:
        transfers = transfers.copy()
        for name in ("post", "out", "arrive", "done"):
            transfers[name] += base
        result.transfers = transfers
    return result

