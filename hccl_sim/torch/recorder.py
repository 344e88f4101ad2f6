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

from ..workload.format import ROLES
from ..workload.recorder import WorkloadRecorder

active: "Recorder | None" = None


class Recorder(WorkloadRecorder):
    """This rank's records; groups are torch process groups, their roles from DeviceMesh names or ``roles``."""

    def __init__(self, path: str, roles: dict | None = None):
        super().__init__(path)
        self.roles = dict(roles or {})  # group name, DeviceMesh description or "world" -> role
        self._group_ids: dict[int, int] = {}  # id(process group) -> group id
        self._world_size = 1

    def op(self, pg, kind: str, args, kwargs, record, issue: float) -> None:
        """The backend ran ``kind`` on process group ``pg`` (``args`` as passed to the Communicator)."""
        super().op(self._group(pg), pg.comm, kind, args, kwargs, record, issue)

    def step(self, name: str, end: bool, time: float | None = None) -> None:
        from .timeline import timeline

        super().step(name, end, time, timeline().clock, timeline().stream)

    def _group(self, pg) -> int:
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
            gid = self.add_group(members, role or "world", name, pg.comm if len(members) == world else None)
            self._group_ids[id(pg)] = gid
        return gid


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

    import torch.distributed as dist

    from .timeline import timeline
    tl = timeline()
    tl.join()  # the recording ends when its communication has (not recorded: active is None)
    world = dist.get_world_size() if dist.is_initialized() else rec._world_size
    return rec.save(tl.rank, world, asdict(tl.compute_model))


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
