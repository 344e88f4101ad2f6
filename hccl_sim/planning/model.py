"""The network model (the planner) of one communicator: topology, placement, schedules, algorithm choice and timing.

The MPI executor and the predictor both go through this class, so an emulated run and a prediction
of the same case build the same schedule and time it with the same engine.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import Context, algorithms_for, build_schedule, levels, selection, split_algo
from ..algorithms import COMPACT_BUILDERS
from ..algorithms.registry import REGISTRY
from ..algorithms.multipath import split_multipath
from ..timing import TimingModel, TimingResult
from ..topology import Placement, Topology, load_topology


def server_groups(topology: Topology, npus) -> tuple[tuple[int, ...], ...]:
    """Ranks grouped by the level-0 group (server, board) their NPU is in, in rank order."""
    group = topology.group_of(npus, 0)
    order = np.argsort(group, kind="stable")  # numpy: a million ranks in well under a second
    starts = np.flatnonzero(np.diff(group[order], prepend=-1))
    return tuple(map(tuple, np.split(order, starts[1:]))) if len(order) else ()


# Communicators above this size get compact (timing-only, numpy-built) schedules; MPI runs stay far below.
COMPACT_RANKS = 1024
# auto leaves out full-mesh forms (mesh, gmesh, mesh levels of hier) whose steps hold more transfers
# than this: each is a flow the stepwise engine times (524,288 ranks by level: 7.3 M a step, minutes;
# flat mesh above ~1,450 ranks); an explicit ``algo=`` still runs them.
MESH_PHASE_FLOWS = 1 << 21
# Above this size an algorithm with no compact schedule is refused rather than written out transfer by transfer.
FULL_SCHEDULE_RANKS = 1 << 16


def rank_grid(topology: Topology, npus) -> tuple[tuple[int, ...], int]:
    """(radices, mesh levels) of the ranks as a mixed-radix grid over the topology's levels, when the
    placement is linear and the ranks fill whole units below their top level; ((), 0) otherwise."""
    npus = np.asarray(npus)
    if topology.faults or not np.array_equal(npus, np.arange(len(npus))):
        return (), 0
    radices, left = [], len(npus)
    for level in topology.levels:
        if left <= level.size:
            radices.append(left)
            break
        if left % level.size:
            return (), 0
        radices.append(level.size)
        left //= level.size
    return tuple(radices), min(topology.num_mesh_levels, len(radices))


def level_classes(topology: Topology, radices) -> tuple[int, ...]:
    """A class id per grid level: levels with the same radix, kind and links share one."""
    keys = [(r, lv.kind, lv.link_bandwidth, lv.latency) for r, lv in zip(radices, topology.levels)]
    return tuple(keys.index(k) for k in keys)


class NetworkModel:
    def __init__(self, nranks: int, topology=None, placement=None):
        self.nranks = nranks
        self.topology = topology if isinstance(topology, Topology) else load_topology(topology, nranks)
        self.placement = Placement.build(placement, nranks, self.topology)
        compact = nranks > COMPACT_RANKS
        radices, mesh_levels = rank_grid(self.topology, self.placement.npus)
        self.context = Context(nranks, server_groups(self.topology, self.placement.npus), compact, radices,
                               mesh_levels, level_classes(self.topology, radices),
                               tuple((r - 1) * lv.link_bandwidth for r, lv in zip(radices, self.topology.levels)))
        self.timing = TimingModel(self.topology, np.array(self.placement.npus))
        self._auto: dict = {}
        self._multipath: dict = {}

    @property
    def hierarchical(self) -> bool:
        """Two or more servers with the same number (>1) of ranks: hierarchical algorithms apply."""
        sizes = {len(g) for g in self.context.groups}
        return len(sizes) == 1 and len(self.context.groups) > 1 and sizes != {1}

    def applicable(self, collective: str) -> list[str]:
        """Algorithms that can run this collective on this communicator."""
        # mring: on a full mesh the mesh algorithm moves the same bytes over all links in 2 steps, so
        # multi-ring never wins here, and its phi(p) rings make every auto call slower to time
        names = [n for n in algorithms_for(collective, auto=True) if (n != "hier" or self.hierarchical) and n != "mring"]
        names = [n for n in names if self._step_flows_fit(n)]
        if self.context.compact:  # at scale only the algorithms with compact schedules
            names = [n for n in names if n in COMPACT_BUILDERS.get(collective, {})
                     and (n != "hier" or collective == "allreduce")]  # others: hier by level only
        return names + self.level_variants(collective)

    def _step_flows_fit(self, name: str) -> bool:
        """Whether an algorithm whose steps grow as p^2 (registered ``step_flows``) applies here and its
        largest step stays within MESH_PHASE_FLOWS; every other algorithm fits."""
        step_flows = REGISTRY[name].step_flows
        if step_flows is None:
            return True
        flows = step_flows(self.context)
        return flows is not None and flows <= MESH_PHASE_FLOWS

    def level_variants(self, collective: str) -> list[str]:
        """``hier`` with one algorithm per level of the rank grid (algorithms/levels.py): mesh on the
        full-mesh levels, one of ring, rhd, nhr on the others; none where their mesh steps would exceed
        MESH_PHASE_FLOWS, the server-group ``hier`` already is that (two switch levels) or the
        ranks span one level."""
        ctx = self.context
        spanned = levels.grid_levels(ctx.radices)
        if collective not in levels.COLLECTIVES or len(spanned) < 2 or \
                (ctx.compact and "hier" not in COMPACT_BUILDERS.get(collective, {})):
            return []
        mesh = [lvl < ctx.mesh_levels for lvl in spanned]
        if self.nranks * sum(ctx.radices[lvl] - 1 for lvl, m in zip(spanned, mesh) if m) > MESH_PHASE_FLOWS:
            return []
        if all(mesh):
            return ["hier:" + "/".join(["mesh"] * len(spanned))]
        if len(spanned) == 2 and not any(mesh):
            return []
        return ["hier:" + "/".join("mesh" if m else other for m in mesh) for other in ("rhd", "ring", "nhr")]

    def requested(self, collective: str, algo: str | None) -> str:
        """``algo`` with an HCCL_ALGO-style string ("level0:NA;level1:H-D_R", per operator with
        "op=...") turned into this collective's algorithm; None means auto."""
        if not algo:
            return "auto"
        if selection.is_hccl_algo(algo):
            single_server = len(self.context.groups) == 1
            algo = selection.to_algo(collective, algo, self.hierarchical, "hier" in algorithms_for(collective),
                                     "intra" if single_server else "inter")
        name, variant = split_algo(algo)
        if name == "hier" and not self.hierarchical and name in algorithms_for(collective):
            return selection.one_level(collective, variant, [len(g) for g in self.context.groups])
        return algo

    def resolve(self, collective: str, algo: str | None, count: int, itemsize: int, root: int = 0,
                blocks=None, matrix=None) -> str:
        """The algorithm to run: ``auto`` (or None) picks the lowest modeled time among the applicable
        algorithms for this size, root and counts, ties to the first listed (so every rank agrees)."""
        algo = self.requested(collective, algo)
        if algo != "auto":
            return algo
        key = (collective, count, itemsize, root, blocks, matrix)
        if key not in self._auto:
            times = {a: self.time(collective, a, count, itemsize, root=root, blocks=blocks, matrix=matrix).time
                     for a in self.applicable(collective)}
            if not times:
                raise ValueError(f"collective {collective!r} has no algorithm that applies")
            self._auto[key] = min(times, key=times.get)
        return self._auto[key]

    def schedule(self, collective: str, algo: str, count: int, root: int = 0, blocks=None, matrix=None):
        name, _ = split_algo(algo)
        if name == "hier" and not self.hierarchical:
            sizes = [len(g) for g in self.context.groups]
            raise ValueError(f"{collective}: 'hier' needs two or more servers with the same number (>1) of ranks, got {sizes}")
        if self.context.compact and self.nranks > FULL_SCHEDULE_RANKS and \
                name not in COMPACT_BUILDERS.get(collective, {}):
            have = ", ".join(COMPACT_BUILDERS.get(collective, {})) or "none"
            raise ValueError(f"{collective}: {algo!r} has no compact schedule, and its full one is too large at "
                             f"{self.nranks} ranks; at this scale use one of: {have}")
        schedule = build_schedule(collective, algo, self.context, count, root, blocks, matrix)
        if not any(lv.multipath for lv in self.topology.levels):
            return schedule
        found = self._multipath.get(id(schedule))
        if found is None or found[0] is not schedule:  # schedules are cached upstream; so are their splits
            found = self._multipath[id(schedule)] = (schedule, split_multipath(schedule, self.topology,
                                                                               self.placement.npus))
        return found[1]

    def time(self, collective: str, algo: str, count: int, itemsize: int, entry=None, record=False, root: int = 0,
             blocks=None, matrix=None) -> TimingResult:
        return self.timing.run(self.schedule(collective, algo, count, root, blocks, matrix), itemsize, entry, record)
