"""Writing a workload: one rank's records in program order (the torch backend's recorder builds on it),
and ``RecordingCommunicator``, a Communicator whose calls are recorded.

    comm = RecordingCommunicator(Communicator(topology="atlas950-superpod"), "run.json", role="dp")
    with comm.step():
        comm.advance(1e-3)            # modeled compute
        comm.allreduce(grads)
    comm.save()                       # run.rank<r>.json on every rank
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager

from ..collectives import SPECS
from .format import ROLES, Group, Workload, rank_path


def stable_group_id(members: list[int]) -> int:
    """A group id every member computes alike: an FNV-style hash of the member list, in 0..2**31."""
    h = 1469598103
    for r in members:
        h = ((h ^ (r + 1)) * 1099511628211) % (1 << 31)
    return h


class WorkloadRecorder:
    """One rank's records: compute spans, operations, waits and steps, in the order they happened."""

    def __init__(self, path: str):
        self.path = path
        self.records: list[dict] = []
        self.groups: dict[int, Group] = {}
        self._ends: list[float] = []  # modeled end of op i on this rank
        self._pending_compute = 0.0
        self._pending_flops = 0.0
        self.topology = None
        self.placement = None

    def add_group(self, members: list[int], role: str, name: str, comm=None) -> int:
        """Register a group (world ranks in group-rank order); ``comm`` of the whole world gives the topology."""
        if role not in ROLES:
            raise ValueError(f"workload recording: role {role!r} of group {name!r} is not one of {', '.join(ROLES)}")
        gid = stable_group_id(members)
        self.groups[gid] = Group(gid, list(members), role, name)
        if comm is not None and self.topology is None:
            self.topology = comm.topology.name
            self.placement = [int(x) for x in comm.model.placement.npus]
        return gid

    def compute(self, seconds: float, flops: float | None = None) -> None:
        self._pending_compute += seconds
        if flops is not None:
            self._pending_flops += flops

    def _flush_compute(self) -> None:
        if self._pending_compute > 0:
            self.records.append({"type": "compute", "seconds": self._pending_compute,
                                 "flops": self._pending_flops or None})
        self._pending_compute = self._pending_flops = 0.0

    def op(self, gid: int, comm, kind: str, args, kwargs, record, issue: float) -> None:
        """``comm`` ran ``kind`` (a Communicator method: ``args``/``kwargs`` as passed, ``record`` its
        CallRecord) on group ``gid``, issued at ``issue`` seconds."""
        self._flush_compute()
        members = self.groups[gid].ranks
        entry = {"id": len(self._ends), "group": gid, "issue": issue, "start": record.start, "end": record.end,
                 "stream": "comm"}
        if kind == "send_recv":
            ops = [[k, members[peer], int(t.numel() * t.element_size()), int(tag)]
                   for k, t, peer, tag in (tuple(o) + (0,) * (4 - len(o)) for o in args[0])]
            entry = {"type": "p2p", **entry, "ops": ops}
        else:
            # the call's arguments by name, however they were passed (a root given positionally included)
            bound = inspect.signature(getattr(comm, kind)).bind(*args, **kwargs)
            bound.apply_defaults()
            named = bound.arguments
            counts = None
            if kind in ("allgatherv", "reduce_scatterv"):
                counts = [int(c) for c in named["counts"]]
            elif kind == "alltoallv":
                counts = [[int(c) for c in named["send_counts"]]]  # this rank's send counts (replay makes the matrix)
            entry = {"type": "collective", **entry, "kind": record.collective, "count": int(record.count),
                     "dtype": record.dtype, "bytes": int(record.nbytes), "algo": named.get("algo") or comm.algo,
                     "resolved": record.algo, "root": int(named.get("root", 0)), "counts": counts}
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

    def step(self, name: str, end: bool, time: float | None = None, clock: float = 0.0,
             stream: float = 0.0) -> None:
        self._flush_compute()
        rec = {"type": "step_end" if end else "step_begin", "name": name}
        if end:
            rec["time"] = time
        else:  # where this rank's clocks stand: a replay of the steps alone starts from here
            rec["clock"], rec["stream"] = clock, stream
        self.records.append(rec)

    def save(self, rank: int, world_size: int, compute_model: dict | None = None) -> str:
        """Write this rank's file (``rank_path``); returns its path."""
        self._flush_compute()
        workload = Workload(world_size, self.groups, [None] * world_size, self.topology, self.placement,
                            compute_model or {})
        workload.ranks[rank] = self.records
        path = rank_path(self.path, rank)
        workload.save(path, ranks=[rank])
        return path


class RecordingCommunicator:
    """A Communicator whose collectives, sends/receives, ``advance`` (compute) and ``step()`` are
    recorded; its ranks are the workload's world, its group has ``role``. Every other attribute is the
    Communicator's. Calls are blocking: each is followed by a wait for it."""

    def __init__(self, comm, path: str, role: str = "world", name: str = "world"):
        self.comm = comm
        self.recorder = WorkloadRecorder(path)
        self.gid = self.recorder.add_group(list(range(comm.size)), role, name, comm)

    def __getattr__(self, name):
        method = getattr(self.comm, name)
        if name in SPECS or name in ("send", "recv", "batch_send_recv"):
            def recorded(*args, **kwargs):
                issue = self.comm.clock
                record = method(*args, **kwargs)
                if name in ("send", "recv"):  # one-op batches, as the Communicator runs them
                    args = ([(name, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("tag", 0))],)
                kind = "send_recv" if name in ("send", "recv", "batch_send_recv") else name
                self.recorder.op(self.gid, self.comm, kind, args, kwargs, record, issue)
                self.recorder.join(record.end)
                return record
            return recorded
        return method

    def advance(self, seconds: float) -> float:
        self.recorder.compute(float(seconds))
        return self.comm.advance(seconds)

    @contextmanager
    def step(self, name: str | None = None):
        """The calls inside are one step of the workload."""
        name = name or f"step{sum(r['type'] == 'step_begin' for r in self.recorder.records)}"
        start = self.comm.clock
        self.recorder.step(name, end=False, clock=start, stream=start)
        yield
        self.recorder.step(name, end=True, time=self.comm.clock - start)

    def save(self) -> str:
        """Write this rank's file; returns its path."""
        return self.recorder.save(self.comm.rank, self.comm.size)
