"""Replaying a recorded workload on any topology and scale, in modeled time.

Every rank keeps a compute clock and a communication stream, as the torch backend does
(``hccl_sim/torch/timeline.py``): an operation starts on the stream at the later of the compute clock at
its issue and the stream's free time; ``wait`` joins the compute clock to an operation's end; compute
spans move the clock. A collective's exits come from the timing engine with every member's entry time,
so replaying a run at the scale and topology it was recorded on gives the run's own modeled times.

Scale (``scale={"dp": 1024, ...}``): the recorded groups of each role form one dimension of a rank
mesh (a DeviceMesh dimension; a ``world`` group counts as fsdp if it all-gathered or reduce-scattered,
as pp if it sent or received, else as dp). Rules:

- a data-parallel (dp, ep) group grows to the new size; its collectives keep their sizes (the same
  gradient buckets over more ranks);
- a sharded (fsdp) group grows; all-gather and reduce-scatter keep the full (unsharded) size, each
  rank's shard becomes full / new size (rounded up to whole elements, as FSDP pads);
- tensor-, pipeline- and context-parallel groups (tp, pp, cp) keep their size; ``dp`` for a recording
  without dp groups (a pipeline run) replicates the whole recording that many times (no other role can
  be added).

Each new rank runs the program of the recorded rank at the same mesh coordinates (modulo the recorded
sizes); ranks are numbered row-major over the mesh (the recording's innermost dimension innermost),
and placed on NPUs by ``placement``. v-variants (allgatherv, reduce_scatterv, alltoallv) keep their
per-rank counts only when their group keeps its size; otherwise they run as the even variant of the
same total.

Timing: the collectives every member is ready for are timed together, one engine run for all their
group instances (``TimingModel.run_many``: flows of different groups share links max-min fairly). Above
the exact engine's limit (``MANY_TRANSFERS`` transfers at once), each collective is timed alone -- by
the stepwise engine when it is one large group; with replicated groups, the first instance is timed and
the others shifted to their own entry (they then do not share links); the result says when. A batch of
sends is timed from its sender's clock with its sender's links to itself, as the Communicator does.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..algorithms import Schedule, StepBuilder
from ..dtypes import element_type
from ..planning import NetworkModel
from ..timing.engine import MANY_TRANSFERS, TimingModel
from ..topology import load_topology
from .format import Workload, WorkloadError, load

KEPT_ROLES = ("tp", "pp", "cp")  # keep their size when scaled
TRACKS = ("compute", "comm")  # a rank's trace rows: its compute clock and its communication stream
BLOCKED = ("allgather", "reduce_scatter", "alltoall")
EVEN = {"allgatherv": "allgather", "reduce_scatterv": "reduce_scatter", "alltoallv": "alltoall"}


class ScaleError(ValueError):
    """A scale the workload or the topology cannot take (names the scale and the topology)."""


# ---- the mesh of recorded ranks and its scaled copy ---------------------------------------------
def group_roles(workload: Workload) -> dict[int, str]:
    """Each group's role, ``world`` groups inferred from what they ran (see the module docstring)."""
    kinds: dict[int, set] = {g: set() for g in workload.groups}
    stepped = any(rec["type"] == "step_begin" for records in workload.ranks for rec in records)
    for records in workload.ranks:
        inside = not stepped  # with steps, what the steps ran (not set-up such as DDP's first broadcast)
        for rec in records:
            if rec["type"] in ("step_begin", "step_end"):
                inside = rec["type"] == "step_begin"
            elif inside and rec["type"] == "collective":
                kinds[rec["group"]].add(rec["kind"])
            elif inside and rec["type"] == "p2p":
                kinds[rec["group"]].add("p2p")
    roles = {}
    for gid, g in workload.groups.items():
        role = g.role
        if role == "world":
            seen = kinds[gid]
            role = ("fsdp" if seen & {"allgather", "reduce_scatter", "allgatherv", "reduce_scatterv"} else
                    "pp" if "p2p" in seen else "dp")
        roles[gid] = role
    return roles


class Layout:
    """Scaled ranks, the recorded rank each one replays, and the instances of every recorded group."""

    def __init__(self, workload: Workload, scale: dict[str, int] | None):
        self.workload = workload
        self.roles = group_roles(workload)
        self._instances: dict[int, np.ndarray] = {}
        try:
            self._mesh(scale)
        except ScaleError:
            if scale and any(v != self._recorded_size(k) for k, v in scale.items()):
                raise
            self._as_recorded()  # groups that make no mesh replay as they are, unscaled

    def _recorded_size(self, role):
        return next((len(g.ranks) for gid, g in self.workload.groups.items() if self.roles[gid] == role), None)

    def _as_recorded(self) -> None:
        world = self.workload.world_size
        self.dims, self.sizes, self.recorded, self.nranks = ["rank"], [world], {}, world
        self.template = np.arange(world, dtype=np.int64)
        self.replicas = [np.array([t], dtype=np.int64) for t in range(world)]
        self._instances = {gid: np.array([g.ranks], dtype=np.int64) for gid, g in self.workload.groups.items()}
        self._sizes_of = {gid: len(g.ranks) for gid, g in self.workload.groups.items()}
        self._coord_of = None

    def _mesh(self, scale) -> None:
        workload = self.workload
        world = workload.world_size
        self._sizes_of = None
        used = {g for records in workload.ranks for rec in records if rec["type"] in ("collective", "p2p")
                for g in [rec["group"]]}
        dims: dict[str, dict] = {}  # role -> {rank: (coordinate, group id)}
        for gid in sorted(used):
            g = workload.groups[gid]
            coords = dims.setdefault(self.roles[gid], {})
            for i, r in enumerate(g.ranks):
                if r in coords and coords[r][1] != gid:
                    raise ScaleError(f"rank {r} is in two {self.roles[gid]} groups ({coords[r][1]} and {gid}); "
                                     f"groups of one role must not overlap to be scaled")
                coords[r] = (i, gid)
        sizes = {}
        for role, coords in dims.items():
            if len(coords) != world:
                missing = sorted(set(range(world)) - set(coords))
                raise ScaleError(f"the {role} groups leave out rank(s) {missing}; groups of one role must cover "
                                 f"every rank to be scaled")
            sizes[role] = len(self.workload.groups[next(iter(coords.values()))[1]].ranks)
        if math.prod(sizes.values()) != world:
            raise ScaleError(f"the groups' roles {sizes} do not make a mesh of the {world} recorded ranks")

        def stride(role):
            g = self.workload.groups[next(iter(dims[role].values()))[1]]
            return g.ranks[1] - g.ranks[0] if len(g.ranks) > 1 else 0
        recorded = sorted(dims, key=stride, reverse=True)  # outermost first
        scale = dict(scale or {})
        for role, n in scale.items():
            if not isinstance(n, int) or n < 1:
                raise ScaleError(f"scale {role}={n!r}: must be a positive integer")
            if role in KEPT_ROLES and role in sizes and n != sizes[role]:
                raise ScaleError(f"scale {role}={n}: {role} groups keep their recorded size {sizes[role]} "
                                 f"(grow dp, fsdp or ep instead, or add a replica dimension)")
            if role in sizes and n < sizes[role]:  # recorded ranks would have no replica to replay them
                raise ScaleError(f"scale {role}={n}: smaller than the recorded {role} groups ({sizes[role]}); "
                                 f"a replay grows groups, it does not shrink them")
        new = [r for r in scale if r not in sizes]
        for role in new:
            if role != "dp":
                raise ScaleError(f"scale {role}={scale[role]}: the recording has no {role} groups (it has "
                                 f"{', '.join(sizes) or 'none'}); only dp can be added, as replicas of the whole run")
        self.dims = new + recorded  # outermost first
        self.recorded = {r: sizes[r] for r in recorded}
        self.sizes = [scale.get(r, sizes.get(r, 1)) for r in self.dims]
        self.nranks = math.prod(self.sizes)
        coord_of = {r: [dims[role][r][0] for role in recorded] for r in range(world)}
        rank_at = np.zeros([sizes[role] for role in recorded] or [1], dtype=np.int64)
        for r, c in coord_of.items():
            rank_at[tuple(c) if c else (0,)] = r
        self._rank_at, self._coord_of = rank_at, coord_of
        self.coords = np.unravel_index(np.arange(self.nranks, dtype=np.int64), self.sizes)  # per dim
        if recorded:
            self.template = rank_at[tuple(self.coords[self.dims.index(role)] % sizes[role] for role in recorded)]
        else:
            self.template = np.zeros(self.nranks, dtype=np.int64)
        self.replicas = [np.flatnonzero(self.template == t) for t in range(world)]
        self.strides = {d: math.prod(self.sizes[i + 1:]) for i, d in enumerate(self.dims)}

    def group_size(self, gid: int) -> int:
        if self._sizes_of is not None:
            return self._sizes_of[gid]
        return self.sizes[self.dims.index(self.roles[gid])]

    def instances(self, gid: int) -> np.ndarray:
        """(instances, group size) scaled ranks: every copy of recorded group ``gid``, in group-rank order."""
        found = self._instances.get(gid)
        if found is None:
            role = self.roles[gid]
            g = self.workload.groups[gid]
            axis = self.dims.index(role)
            fixed = self._coord_of[g.ranks[0]]
            mask = np.ones(self.nranks, dtype=bool)
            for i, other in enumerate(self.recorded):
                if other != role:
                    d = self.dims.index(other)
                    mask &= self.coords[d] % self.recorded[other] == fixed[i]
            chosen = np.flatnonzero(mask)
            key = np.zeros(len(chosen), dtype=np.int64)
            for d in range(len(self.dims)):
                if d != axis:
                    key = key * self.sizes[d] + self.coords[d][chosen]
            chosen = chosen[np.argsort(key, kind="stable")]
            found = self._instances[gid] = chosen.reshape(-1, self.sizes[axis])
        return found

    def peer(self, ranks: np.ndarray, template: int, peer: int) -> np.ndarray:
        """The scaled ranks that ``ranks`` (replicas of ``template``) reach for recorded rank ``peer``."""
        if self._coord_of is None:
            return ranks - template + peer
        shift = 0
        for i, role in enumerate(self.recorded):
            shift += (self._coord_of[peer][i] - self._coord_of[template][i]) * self.strides[role]
        return ranks + shift


def parse_scale(text: str | None) -> dict[str, int]:
    """``dp=1024,tp=8`` -> {"dp": 1024, "tp": 8}; ``dp=all``: as many as the topology holds. Raises
    ScaleError naming the bad item."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = "all" if value.strip() == "all" else int(value)
        except ValueError:
            raise ScaleError(f"--scale: {item!r} is not ROLE=SIZE or ROLE=all (e.g. dp=1024,tp=8)") from None
    return out


# ---- results ------------------------------------------------------------------------------------
@dataclass
class StepResult:
    name: str
    time: float  # seconds, the slowest rank's step
    compute: float  # of that rank
    comm: float  # seconds on its communication stream
    exposed: float  # seconds its compute clock waited for communication
    exposed_by_role: dict[str, float]
    comm_by_role: dict[str, float]
    rank_times: np.ndarray  # per recorded rank: the slowest of its replicas


@dataclass
class ReplayResult:
    topology: str
    nranks: int
    scale: dict[str, int]
    steps: list[StepResult]
    notes: list[str] = field(default_factory=list)
    trace: dict | None = None

    @property
    def step_time(self) -> float:
        """Mean of the replayed steps (seconds)."""
        return sum(s.time for s in self.steps) / max(len(self.steps), 1)

    def mean(self, attr: str) -> float:
        return sum(getattr(s, attr) for s in self.steps) / max(len(self.steps), 1)

    def mean_by_role(self, attr: str) -> dict[str, float]:
        roles = sorted({r for s in self.steps for r in getattr(s, attr)})
        return {r: sum(getattr(s, attr).get(r, 0.0) for s in self.steps) / max(len(self.steps), 1) for r in roles}


# ---- the replay ---------------------------------------------------------------------------------
class _Replayer:
    def __init__(self, workload, layout: Layout, topology, placement, flop_rate, trace, steps_only=True,
                 from_step=0, algo=None):
        self.algo = algo
        self.w, self.layout = workload, layout
        self.roles = layout.roles
        self.world = NetworkModel(layout.nranks, topology, placement)
        self.npus = np.asarray(self.world.placement.npus, dtype=np.int64)
        self.flop_rate = flop_rate
        n = layout.nranks
        self.clock, self.stream = np.zeros(n), np.zeros(n)
        self.compute, self.comm, self.exposed = np.zeros(n), np.zeros(n), np.zeros(n)
        self.by_role: dict[tuple[str, str], np.ndarray] = {}
        self.ends: list[dict[int, np.ndarray]] = [{} for _ in range(workload.world_size)]
        self.op_role: list[dict[int, str]] = [{} for _ in range(workload.world_size)]
        self.last_role = [None] * workload.world_size
        self.pos = [0] * workload.world_size
        self.step_marks: list[dict] = [{} for _ in range(workload.world_size)]
        self.step_results: list[list] = [[] for _ in range(workload.world_size)]
        self.messages: dict[tuple, list] = {}
        self.sent: dict[int, tuple] = {}
        self.models: dict = {}
        self.notes: list[str] = []
        self.events = [] if trace else None
        if steps_only:  # from each rank's first step, its clocks where they stood then (set-up not replayed)
            firsts = [next(iter([i for i, rec in enumerate(records) if rec["type"] == "step_begin"][from_step:]), None)
                      for records in workload.ranks]
            if all(i is not None for i in firsts):
                starts = [workload.ranks[t][i] for t, i in enumerate(firsts)]
                base = min(rec.get("clock", 0.0) for rec in starts)
                for t, (i, rec) in enumerate(zip(firsts, starts)):
                    self.pos[t] = i
                    idx = layout.replicas[t]
                    self.clock[idx] = rec.get("clock", base) - base
                    self.stream[idx] = max(rec.get("stream", base) - base, self.clock[idx[0]])

    def _role_array(self, what: str, role: str) -> np.ndarray:
        return self.by_role.setdefault((what, role), np.zeros(self.layout.nranks))

    def _event(self, t, name, cat, start, end, args=None):
        if self.events is not None and len(self.events) < 200_000 and end > start:
            rank = int(self.layout.replicas[t][0])
            self.events.append({"name": name, "cat": cat, "ph": "X", "pid": rank, "tid": TRACKS.index(cat),
                                "ts": start * 1e6, "dur": (end - start) * 1e6, "args": args or {}})

    # -- one rank's records up to the next one that needs others ----------------------------------
    def advance(self, t: int) -> None:
        records, idx = self.w.ranks[t], self.layout.replicas[t]
        while self.pos[t] < len(records):
            rec = records[self.pos[t]]
            kind = rec["type"]
            if kind == "compute":
                seconds = rec["seconds"]
                if self.flop_rate and rec.get("flops"):
                    seconds = rec["flops"] / self.flop_rate
                before = float(self.clock[idx[0]])
                self.clock[idx] += seconds
                self.compute[idx] += seconds
                self._event(t, "compute", "compute", before, before + seconds)
            elif kind == "wait":
                if rec["op"] is None:
                    end, role = self.stream[idx], self.last_role[t]
                else:
                    if rec["op"] not in self.ends[t]:
                        raise WorkloadError(f"rank {t} record {self.pos[t]}: field 'op' {rec['op']} names no "
                                            f"earlier operation of this rank")
                    end, role = self.ends[t][rec["op"]], self.op_role[t][rec["op"]]
                gap = np.maximum(end - self.clock[idx], 0.0)
                self.exposed[idx] += gap
                if role is not None:
                    self._role_array("exposed", role)[idx] += gap
                self.clock[idx] += gap
            elif kind == "step_begin":
                self.step_marks[t] = {"name": rec["name"], "clock": self.clock[idx].copy(),
                                      "compute": self.compute[idx].copy(), "comm": self.comm[idx].copy(),
                                      "exposed": self.exposed[idx].copy(),
                                      "roles": {k: v[idx].copy() for k, v in self.by_role.items()}}
            elif kind == "step_end":
                self._end_step(t, rec)
            elif kind == "p2p":
                if self.pos[t] not in self.sent.get(t, ()):
                    self._post_sends(t, rec)
                if not self._finish_p2p(t, rec):
                    return
            else:  # a collective waits for its group
                return
            self.pos[t] += 1

    def _end_step(self, t, rec):
        idx = self.layout.replicas[t]
        mark = self.step_marks[t]
        if not mark:
            raise WorkloadError(f"rank {t} record {self.pos[t]}: step_end without a step_begin")
        times = self.clock[idx] - mark["clock"]
        i = int(np.argmax(times))
        roles = {k: float(v[idx][i] - mark["roles"].get(k, np.zeros(len(idx)))[i]) for k, v in self.by_role.items()}
        self.step_results[t].append(dict(
            name=mark["name"], time=float(times[i]), compute=float(self.compute[idx][i] - mark["compute"][i]),
            comm=float(self.comm[idx][i] - mark["comm"][i]), exposed=float(self.exposed[idx][i] - mark["exposed"][i]),
            exposed_by_role={r: v for (what, r), v in roles.items() if what == "exposed"},
            comm_by_role={r: v for (what, r), v in roles.items() if what == "comm"}))
        self.step_marks[t] = {}

    # -- point to point ---------------------------------------------------------------------------
    def _post_sends(self, t, rec):
        idx = self.layout.replicas[t]
        begin = np.maximum(self.clock[idx], self.stream[idx])
        sends = [(peer, nbytes, tag) for kind, peer, nbytes, tag in rec["ops"] if kind == "send"]
        offsets = self._send_offsets(int(idx[0]), [(int(self.layout.peer(idx[:1], t, p)[0]), b) for p, b, _ in sends])
        own = begin.copy()
        for (peer, nbytes, tag), offset in zip(sends, offsets):
            arrive = begin + offset
            own = np.maximum(own, arrive)
            self.messages.setdefault((t, peer, tag), []).append(arrive)
        self.sent.setdefault(t, {})[self.pos[t]] = (begin, own)

    def _send_offsets(self, rank, sends):
        """Arrival of each concurrent send of ``rank`` after its post, seconds (``Communicator._send_arrivals``)."""
        key = (int(self.npus[rank]), tuple((int(self.npus[p]), b) for p, b in sends))
        if key not in self.models:
            ranks = [rank] + [p for p, _ in sends if p != rank]
            local = {r: i for i, r in enumerate(dict.fromkeys(ranks))}
            step = StepBuilder()
            for peer, nbytes in sends:
                if peer != rank:
                    step.add(0, local[peer], 0, 0, nbytes)
            schedule = Schedule("send", "p2p", len(local), max([b for _, b in sends], default=0))
            schedule.append(step)
            timing = TimingModel(self.world.topology, self.npus[list(local)])
            result = timing.run(schedule, 1, np.zeros(len(local)), record=True)
            arrive = iter(result.transfers.arrive.tolist() if result.transfers is not None else [])
            self.models[key] = [0.0 if p == rank else next(arrive) for p, _ in sends]
        return self.models[key]

    def _finish_p2p(self, t, rec) -> bool:
        recvs = [(peer, tag) for kind, peer, _, tag in rec["ops"] if kind == "recv"]
        counts: dict = {}
        for peer, tag in recvs:
            counts[(peer, tag)] = counts.get((peer, tag), 0) + 1
        if any(len(self.messages.get((peer, t, tag), [])) < n for (peer, tag), n in counts.items()):
            return False
        idx = self.layout.replicas[t]
        begin, end = self.sent[t].pop(self.pos[t])
        for peer, tag in recvs:
            end = np.maximum(end, self.messages[(peer, t, tag)].pop(0))
        self._finish_op(t, rec, idx, begin, end, "p2p")
        return True

    def _finish_op(self, t, rec, idx, begin, end, name):
        role = self.roles[rec["group"]]
        self.stream[idx] = np.maximum(self.stream[idx], end)
        span = np.maximum(end - begin, 0.0)
        self.comm[idx] += span
        self._role_array("comm", role)[idx] += span
        self.ends[t][rec["id"]] = end
        self.op_role[t][rec["id"]] = role
        self.last_role[t] = role
        self._event(t, f"{name} ({role})", "comm", float(begin[0]), float(end[0]),
                    {"group": rec["group"], "role": role, "bytes": rec.get("bytes")})

    # -- collectives ------------------------------------------------------------------------------
    def ready_collectives(self) -> list[int]:
        """Groups every member of which is at a collective on that group."""
        ready, seen = [], set()
        for t, records in enumerate(self.w.ranks):
            if self.pos[t] < len(records) and records[self.pos[t]]["type"] == "collective":
                gid = records[self.pos[t]]["group"]
                if gid in seen:
                    continue
                seen.add(gid)
                members = self.w.groups[gid].ranks
                if all(self.pos[m] < len(self.w.ranks[m]) and self.w.ranks[m][self.pos[m]]["type"] == "collective"
                       and self.w.ranks[m][self.pos[m]]["group"] == gid for m in members):
                    ready.append(gid)
        return ready

    def _call(self, gid: int):
        """(schedule, itemsize, group model, instances) of the collective group ``gid`` is at."""
        members = self.w.groups[gid].ranks
        recs = [self.w.ranks[m][self.pos[m]] for m in members]
        first = recs[0]
        for m, rec in zip(members, recs):
            if rec["kind"] != first["kind"] or rec["count"] != first["count"] or rec["dtype"] != first["dtype"]:
                raise WorkloadError(f"group {gid}: rank {members[0]} record {self.pos[members[0]]} is {first['kind']} "
                                    f"of {first['count']} {first['dtype']}, rank {m} record {self.pos[m]} is "
                                    f"{rec['kind']} of {rec['count']} {rec['dtype']}")
        size = self.layout.group_size(gid)
        kind, count = first["kind"], first["count"]
        blocks = matrix = None
        if kind in EVEN and size == len(members) and first.get("counts"):
            if kind == "alltoallv":
                matrix = tuple(tuple(rec["counts"][0]) for rec in recs)
                count = sum(map(sum, matrix))
            else:
                blocks = tuple(first["counts"])
                count = sum(blocks)
        elif kind in EVEN:
            kind = EVEN[kind]
        if kind in BLOCKED and count % size:
            count += size - count % size  # sharded over the new group: whole elements, as FSDP pads
        try:
            itemsize = element_type(first["dtype"]).itemsize
        except Exception:
            itemsize = max(first.get("bytes", 0) // max(first["count"], 1), 1)
        instances = self.layout.instances(gid)
        key = (gid, kind, count, itemsize, first["algo"], blocks, matrix, first.get("root") or 0)
        found = self.models.get(key)
        if found is None:
            model = NetworkModel(size, self.world.topology, self.npus[instances[0]].tolist())
            root = (first.get("root") or 0) % size
            try:
                asked = self.algo if self.algo and first["algo"] == "auto" else first["algo"]
                algo = model.resolve(kind, asked, count, itemsize, root=root, blocks=blocks, matrix=matrix)
            except ValueError:  # nothing applies at this scale under auto: the algorithm the run used
                algo = first.get("resolved") or first["algo"]
            try:
                schedule = model.schedule(kind, algo, count, root=root, blocks=blocks, matrix=matrix)
            except ValueError as exc:
                raise ScaleError(f"rank {members[0]} record {self.pos[members[0]]} ({kind} on {size:,} ranks): "
                                 f"{exc}; replay from a later step (from_step / --from-step) to leave it out") from None
            found = self.models[key] = (schedule, itemsize, model)
        return found + (instances, first, kind)

    def run_collectives(self, gids: list[int]) -> None:
        calls = [self._call(g) for g in gids]
        entries = [np.maximum(self.clock[inst], self.stream[inst]) for *_, inst, _, _ in calls]
        total = sum(s.num_transfers * len(inst) for (s, _, _, inst, _, _) in calls)
        jobs = sum(len(inst) for (*_, inst, _, _) in calls)
        exits = []
        if jobs > 1 and total <= MANY_TRANSFERS:
            flat = [(s, itemsize, self.npus[row], e) for (s, itemsize, _, inst, _, _), entry in zip(calls, entries)
                    for row, e in zip(inst, entry)]
            results = iter(self.world.timing.run_many(flat))
            for (*_, inst, _, _) in calls:
                exits.append(np.stack([next(results).exit for _ in range(len(inst))]))
        else:
            for (schedule, itemsize, model, inst, _, _), entry in zip(calls, entries):
                first = model.timing.run(schedule, itemsize, entry[0]).exit
                if len(inst) > 1:
                    note = (f"{schedule.collective} on {len(inst)} replicated groups of {inst.shape[1]}: "
                            f"{total} transfers at once exceed the exact engine's {MANY_TRANSFERS}; the first "
                            f"group timed, the others shifted to their own entry (not sharing links)")
                    if note not in self.notes:
                        self.notes.append(note)
                    exits.append(first - entry[0].min() + entry.min(axis=1, keepdims=True))
                else:
                    exits.append(first[None, :])
        for gid, (schedule, *_, inst, first, kind), entry, exit_ in zip(gids, calls, entries, exits):
            members = self.w.groups[gid].ranks
            for j, t in enumerate(members):
                # the scaled group ranks that replay recorded group rank j
                cols = np.arange(j, inst.shape[1], len(members))
                ranks = inst[:, cols].ravel()
                order = np.argsort(ranks)  # sorted, they are this recorded rank's replicas in order
                rec = self.w.ranks[t][self.pos[t]]
                self._finish_op(t, rec, self.layout.replicas[t], entry[:, cols].ravel()[order],
                                exit_[:, cols].ravel()[order], f"{kind}/{schedule.algo}")
                self.pos[t] += 1

    def run(self) -> None:
        world = self.w.world_size
        while True:
            moved = True
            while moved:  # a receive may wait for a send of a rank advanced after it
                before = list(self.pos)
                for t in range(world):
                    self.advance(t)
                moved = self.pos != before
            if all(self.pos[t] >= len(self.w.ranks[t]) for t in range(world)):
                return
            ready = self.ready_collectives()
            if not ready:
                stuck = [f"rank {t} record {self.pos[t]} ({self.w.ranks[t][self.pos[t]]['type']}"
                         f"{' ' + self.w.ranks[t][self.pos[t]].get('kind', '') if 'kind' in self.w.ranks[t][self.pos[t]] else ''}"
                         f" on group {self.w.ranks[t][self.pos[t]].get('group')})"
                         for t in range(world) if self.pos[t] < len(self.w.ranks[t])]
                raise WorkloadError(f"{self.w.source}: the ranks wait for each other and none can go on: "
                                    + "; ".join(stuck))
            self.run_collectives(ready)


def replay(workload: Workload | str | os.PathLike, topology=None, scale: dict[str, int] | str | None = None, placement=None,
           flop_rate: float | None = None, trace: bool = False, setup: bool = False,
           from_step: int = 0, algo: str | None = None) -> ReplayResult:
    """Replay ``workload`` (a Workload, or a workload file's path: loaded with ``load``) on ``topology`` (a preset name, a Topology, or None for the recorded one) at
    ``scale`` (role -> group size, e.g. {"dp": 8192}, "all" for as many as fit; None: as recorded).
    ``flop_rate``: FLOP/s per NPU for compute spans with known FLOPs (else the recorded seconds).
    ``setup``: also replay what ran before each rank's first step (by default the replay starts there,
    each rank's clocks where they stood); ``from_step``: start at that step instead. ``algo``: the
    algorithm of collectives recorded as ``auto`` (default: auto again, which times every applicable
    algorithm at the new scale -- most of the cost at 524,288 ranks).
    Raises ScaleError when the scale does not make a mesh of the recording or does not fit the topology
    (naming both; ``ROLE="all"`` takes the preset's default size, and on a topology whose default holds
    fewer NPUs than the recording, such as flat, which is sized to fit, it asks for a number),
    WorkloadError for records that do not replay (naming rank, record and field) and for a ``from_step``
    outside the recorded steps (naming the valid range), TypeError for a workload of another type."""
    if isinstance(workload, (str, os.PathLike)):
        workload = load(os.fspath(workload))
    elif not isinstance(workload, Workload):
        raise TypeError(f"replay: workload must be a Workload (hccl_sim.workload.load) or the path of a workload "
                        f"file (str or os.PathLike), got {type(workload).__name__}")
    check_from_step(workload, from_step)
    if isinstance(scale, str):
        scale = parse_scale(scale)
    name = topology if topology is not None else workload.topology
    fill = [k for k, v in (scale or {}).items() if v == "all"]
    if fill:  # the one role given as "all" takes every NPU the other dimensions leave
        if len(fill) > 1:
            raise ScaleError(f"scale: only one role can be 'all', got {', '.join(fill)}")
        topo = name if not isinstance(name, str) and name is not None else load_topology(name)
        probe = Layout(workload, {k: v for k, v in scale.items() if v != "all"})
        others = math.prod(n for d, n in zip(probe.dims, probe.sizes) if d != fill[0])
        if topo.num_npus < probe.nranks:  # flat and other presets sized to fit the ranks asked for
            raise ScaleError(f"scale {fill[0]}=all on topology {topo.name}: its default size holds "
                             f"{topo.num_npus:,} NPU(s), fewer than the {probe.nranks:,} recorded ranks (the "
                             f"topology is sized to fit the ranks asked for); give {fill[0]} a number, "
                             f"e.g. {fill[0]}=1024")
        scale = {**scale, fill[0]: topo.num_npus // others}
    layout = Layout(workload, scale)
    shown = ",".join(f"{d}={n}" for d, n in zip(layout.dims, layout.sizes))
    try:
        topo = name if not isinstance(name, str) and name is not None else load_topology(name, layout.nranks)
    except ValueError as exc:
        raise ScaleError(f"scale {shown} ({layout.nranks:,} NPUs) on topology {name}: {exc}") from None
    if layout.nranks > topo.num_npus:
        raise ScaleError(f"scale {shown} needs {layout.nranks:,} NPUs; topology {topo.name} has {topo.num_npus:,}")
    if placement is None and topology is None and workload.placement is not None and not scale:
        placement = workload.placement
    r = _Replayer(workload, layout, topo, placement, flop_rate, trace, steps_only=not setup, from_step=from_step,
                  algo=algo)
    r.run()
    nsteps = min(len(s) for s in r.step_results)
    steps = []
    for k in range(nsteps):
        per_rank = [s[k] for s in r.step_results]
        worst = max(per_rank, key=lambda s: s["time"])
        steps.append(StepResult(worst["name"], worst["time"], worst["compute"], worst["comm"], worst["exposed"],
                                worst["exposed_by_role"], worst["comm_by_role"],
                                np.array([s["time"] for s in per_rank])))
    shown = dict(zip(layout.dims, layout.sizes))
    trace_doc = None
    if trace:
        meta = []
        for t in range(workload.world_size):
            pid = int(layout.replicas[t][0])
            meta.append({"name": "process_name", "ph": "M", "pid": pid,
                         "args": {"name": f"rank {pid} (replays recorded rank {t})"}})
            meta += [{"name": "thread_name", "ph": "M", "pid": pid, "tid": i, "args": {"name": track}}
                     for i, track in enumerate(TRACKS)]
        trace_doc = {"traceEvents": meta + r.events, "displayTimeUnit": "ns",
                     "otherData": {"topology": topo.name, "scale": shown, "nranks": layout.nranks}}
    return ReplayResult(topo.name, layout.nranks, shown, steps, r.notes, trace_doc)


def check_from_step(workload: Workload, from_step: int) -> None:
    """Raises WorkloadError unless ``from_step`` is a step every rank recorded (naming the valid range)."""
    if not isinstance(from_step, int) or isinstance(from_step, bool):
        raise TypeError(f"from_step must be an integer, got {from_step!r}")
    counts = [sum(rec["type"] == "step_begin" for rec in records) for records in workload.ranks]
    fewest = min(counts)
    if from_step == 0 and fewest == 0:
        return  # no steps at all: the whole recording replays (and no step times come out)
    if not 0 <= from_step < fewest:
        which = f"every rank recorded {fewest}" if fewest == max(counts) else \
            f"rank {counts.index(fewest)} recorded {fewest}"
        valid = f"0..{fewest - 1}" if fewest else "none (no rank recorded a step)"
        raise WorkloadError(f"{workload.source}: from_step {from_step}: {which} step(s); valid steps are {valid}")


def write_trace(result: ReplayResult, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result.trace, f)
