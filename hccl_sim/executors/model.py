"""The network model of one communicator: topology, placement, schedules, algorithm choice and timing.

The MPI executor and the predictor both go through this class, so an emulated run and a prediction
of the same case build the same schedule and time it with the same engine.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import Context, algorithms_for, build_schedule, split_algo
from ..timing import TimingModel, TimingResult
from ..topology import Placement, Topology, load_topology


def server_groups(topology: Topology, npus) -> tuple[tuple[int, ...], ...]:
    """Ranks grouped by the level-0 group (server, board) their NPU is in, in rank order."""
    groups: dict[int, list[int]] = {}
    for rank, g in enumerate(topology.group_of(npus, 0).tolist()):
        groups.setdefault(g, []).append(rank)
    return tuple(tuple(groups[g]) for g in sorted(groups))


class NetworkModel:
    def __init__(self, nranks: int, topology=None, placement=None):
        self.nranks = nranks
        self.topology = topology if isinstance(topology, Topology) else load_topology(topology, nranks)
        self.placement = Placement.build(placement, nranks, self.topology)
        self.context = Context(nranks, server_groups(self.topology, self.placement.npus))
        self.timing = TimingModel(self.topology, np.array(self.placement.npus))
        self._auto: dict = {}

    def applicable(self, collective: str) -> list[str]:
        """Algorithms that can run this collective on this communicator."""
        names = algorithms_for(collective)
        sizes = {len(g) for g in self.context.groups}
        if len(sizes) != 1 or len(self.context.groups) < 2 or sizes == {1}:
            names = [n for n in names if n != "hier"]
        return names

    def resolve(self, collective: str, algo: str | None, count: int, itemsize: int) -> str:
        """The algorithm to run: ``auto`` (or None) picks the lowest modeled time, ties to the first listed."""
        if algo not in (None, "auto"):
            return algo
        key = (collective, count, itemsize)
        if key not in self._auto:
            times = {a: self.time(collective, a, count, itemsize).time for a in self.applicable(collective)}
            self._auto[key] = min(times, key=times.get)
        return self._auto[key]

    def schedule(self, collective: str, algo: str, count: int):
        name, _ = split_algo(algo)
        if name == "hier" and "hier" not in self.applicable(collective):
            sizes = [len(g) for g in self.context.groups]
            raise ValueError(f"{collective}: 'hier' needs two or more servers with the same number (>1) of ranks, got {sizes}")
        return build_schedule(collective, algo, self.context, count)

    def time(self, collective: str, algo: str, count: int, itemsize: int, entry=None, record=False) -> TimingResult:
        return self.timing.run(self.schedule(collective, algo, count), itemsize, entry, record)
