"""Recording a run under the torch backend as a workload file (``hccl_sim/workload/format.py``).

``HCCL_SIM_RECORD=FILE`` records the whole run; ``with hccl_sim.torch.record(FILE):`` records a part.
Each rank writes its own file, ``FILE`` with ``{rank}`` replaced or ``.rank<r>`` put before the extension
(``run.json`` -> ``run.rank0.json``, ...), when the recording ends (the block's exit, or process exit for
the variable); ``hccl_sim.workload.load("run.json")`` merges them. No communication at the end, so a
rank that fails still leaves the files of the others.

The timeline (compute spans, joins, steps) and the backend (each operation) call the hooks below when
``active`` is set; they cost nothing otherwise.
"""
from __future__ import annotations

import atexit
import os
from contextlib import contextmanager

from ..workload.format import ROLES, Group, Workload, rank_path

active: "Recorder | None" = None


class Recorder:
    """This rank's records, in program order."""

    def __init__(self, path: str, roles: dict | None = None):
        self.path = path
        self.roles = dict(roles or {})  # group name or "world" -> role
        self.records: list[dict] = []
        self.groups: dict[int, Group] = {}
        self._group_ids: dict[int, int] = {}  # id(process group) -> group id
        self._ends: list[float] = []  # modeled end of op i on this rank
        self._pending_compute = 0.0
        self._pending_flops = 0.0
        self._world_size = 1
        self._topology = None
        self._placement = None

    # ---- hooks --------------------------------------------------------------------------------
    def compute(self, seconds: float, flops: float | None = None) -> None:
        self._pending_compute += seconds
        if flops is not None:
            self._pending_flops += flops

    def _flush_compute(self) -> None:
        if self._pending_compute > 0:
            self.records.append({"type": "compute", "seconds": self._pending_compute,
                                 "flops": self._pending_flops or None})
        self._pending_compute = self._pending_flops = 0.0

    def op(self, pg, kind: str, args, kwargs, record, issue: float) -> None:
        """The backend ran ``kind`` on process group ``pg`` (``args`` as passed to the Communicator)."""
        self._flush_compute()
        gid, members = self._group(pg)
        entry = {"id": len(self._ends), "group": gid, "issue": issue, "start": record.start, "end": record.end,
                 "stream": "comm"}
        if kind == "send_recv":
            ops = [[k, members[peer], int(t.numel() * t.element_size()), int(tag)] for k, t, peer, tag in args[0]]
            entry = {"type": "p2p", **entry, "ops": ops}
        else:
            name = {"allgatherv": "allgatherv", "reduce_scatterv": "reduce_scatterv"}.get(kind, record.collective)
            entry = {"type": "collective", **entry, "kind": name, "count": int(record.count), "dtype": record.dtype,
                     "bytes": int(record.nbytes), "algo": pg.comm.algo, "resolved": record.algo,
                     "root": int(kwargs.get("root", 0)), "counts": self._counts(kind, args)}
        self.records.append(entry)
        self._ends.append(record.end)

    def join(self, end: float | None) -> None:
        """The compute clock joins communication ending at ``end`` (None: everything issued)."""
        self._flush_compute()
        target = None
        if end is not None:  # the latest op ending there (a Work's end is its op's end)
            for i in range(len(self._ends) - 1, -1, -1):
                if self._ends[i] == end:
                    target = i
                    break
        if self.records and self.records[-1]["type"] == "wait" and self.records[-1]["op"] == target:
            return  # a repeated join changes nothing
        self.records.append({"type": "wait", "op": target})

    def step(self, name: str, end: bool, time: float | None = None) -> None:
        self._flush_compute()
        rec = {"type": "step_end" if end else "step_begin", "name": name}
        if end:
            rec["time"] = time
        else:  # where this rank's clocks stand: a replay of the steps alone starts from here
            from .timeline import timeline
            rec["clock"], rec["stream"] = timeline().clock, timeline().stream
        self.records.append(rec)

    # ---- groups -------------------------------------------------------------------------------
    def _group(self, pg) -> tuple[int, list[int]]:
        import torch.distributed as dist

        gid = self._group_ids.get(id(pg))
        if gid is None:
            try:
                members = list(dist.get_process_group_ranks(pg))
            except Exception:  # a group torch does not know (used directly): the world
                members = list(range(pg.size()))
            world = dist.get_world_size() if dist.is_initialized() else len(members)
            self._world_size = max(self._world_size, world)
            desc = getattr(pg, "group_desc", "") or ""
            name = getattr(pg, "group_name", "") or str(len(self.groups))
            role = self.roles.get(name) or self.roles.get(desc)
            if role is None and desc.startswith("mesh_") and desc[5:] in ROLES:
                role = desc[5:]
            if role is None and len(members) == world:
                role = self.roles.get("world", "world")
            role = role or "world"
            if role not in ROLES:
                raise ValueError(f"hccl_sim.torch.record: role {role!r} of group {name!r} is not one of {ROLES}")
            # the same group id on every rank: the smallest member rank and the sorted members identify it
            gid = _stable_id(members)
            self.groups[gid] = Group(gid, members, role, name)
            self._group_ids[id(pg)] = gid
            if len(members) == world and self._topology is None:
                self._topology = pg.comm.topology.name
                self._placement = [int(x) for x in pg.comm.model.placement.npus]
        return gid, self.groups[gid].ranks

    @staticmethod
    def _counts(kind, args):
        if kind in ("allgatherv", "reduce_scatterv"):
            return [int(c) for c in args[2]]
        if kind == "alltoallv":
            return [[int(c) for c in args[2]]]  # this rank's send counts (the replay makes the matrix)
        return None

    # ---- output -------------------------------------------------------------------------------
    def save(self, rank: int, compute_model: dict) -> str:
        self._flush_compute()
        import torch.distributed as dist

        world = dist.get_world_size() if dist.is_initialized() else self._world_size
        workload = Workload(world, self.groups, [None] * world, self._topology, self._placement, compute_model)
        workload.ranks[rank] = self.records
        path = rank_path(self.path, rank)
        workload.save(path, ranks=[rank])
        return path


def _stable_id(members: list[int]) -> int:
    """A group id every member computes alike: a hash of the member list, in 0..2**31."""
    h = 1469598103
    for r in members:
        h = ((h ^ (r + 1)) * 1099511628211) % (1 << 31)
    return h


def start(path: str, roles: dict | None = None) -> Recorder:
    global active
    if active is not None:
        raise RuntimeError(f"hccl_sim.torch.record: already recording to {active.path}")
    active = Recorder(path, roles)
    return active


def stop() -> str | None:
    """End the recording; this rank's file is written (returns its path)."""
    global active
    rec, active = active, None
    if rec is None:
        return None
    from dataclasses import asdict

    from .timeline import timeline
    tl = timeline()
    tl.join()  # the recording ends when its communication has (not recorded: active is None)
    return rec.save(tl.rank, asdict(tl.compute_model))


@contextmanager
def record(path: str, roles: dict | None = None):
    """Record the operations and compute of the block into ``path`` (one file per rank, see above).
    ``roles``: group name, DeviceMesh description or "world" -> role (dp, fsdp, tp, pp, ep, cp)."""
    rec = start(path, roles)
    try:
        yield rec
    finally:
        stop()


def record_from_environment() -> None:
    """``HCCL_SIM_RECORD=FILE`` (and ``HCCL_SIM_RECORD_ROLES=world=fsdp,...``): record the whole run."""
    path = os.environ.get("HCCL_SIM_RECORD")
    if not path:
        return
    roles = dict(item.split("=", 1) for item in os.environ.get("HCCL_SIM_RECORD_ROLES", "").split(",") if "=" in item)
    start(path, roles)
    atexit.register(stop)
