"""The workload file: what every rank of a training run did, in order, in modeled time (version 1).

A JSON document (``hccl_sim.torch.record`` writes one per rank; ``load`` merges them)::

    {"format": "hccl_sim.workload", "version": 1,
     "world_size": 4,                       # ranks of the recorded run
     "topology": "atlas950-superpod",       # the preset (or name) it ran on, "placement": NPU per rank or null
     "compute_model": {"mode": "host", "factor": 1.0, "flop_rate": 1e12},
     "groups": [{"id": 0, "ranks": [0, 1, 2, 3], "role": "dp", "name": "0"}],
     "ranks": [{"rank": 0, "records": [RECORD, ...]}, ...]}

A group's ``ranks`` are world ranks in group-rank order; its ``role`` is one of ``ROLES``: the DeviceMesh
dimension name when a mesh made the group (``mesh_dp`` -> dp), else given by the user, else ``world``
(the replay infers dp, fsdp or pp for a world group from what it ran, see replay.py). Each rank's
``records`` are in program order; every record has a ``type``:

- ``compute``: ``seconds`` (modeled, >= 0); ``flops`` (or null) when the compute model counted them.
- ``collective``: ``id`` (the op's index on this rank), ``kind`` (allreduce, allgather, reduce_scatter,
  broadcast, reduce, gather, scatter, alltoall, alltoallv, allgatherv, reduce_scatterv, barrier),
  ``group``, ``count`` (elements of the working buffer: allgather's output, reduce-scatter's input),
  ``dtype``, ``bytes``, ``algo`` (as asked; ``auto`` is re-chosen at replay), ``resolved`` (as run),
  ``root``, ``counts`` (v-variants' per-rank counts, or null), ``issue`` (the compute clock when
  issued), ``start``/``end`` (on the stream, seconds), ``stream`` ("comm").
- ``p2p``: one batch of sends and receives posted together: ``id``, ``group``, ``ops`` (list of
  ``[kind, peer, bytes, tag]``, kind "send"/"recv", peer a world rank), ``issue``, ``start``, ``end``, ``stream``.
- ``wait``: the compute clock joins the end of op ``op`` (an ``id``), or of everything issued (``op`` null).
- ``step_begin`` / ``step_end``: ``name``; ``step_begin`` also has ``clock`` and ``stream`` (where this
  rank's compute clock and communication stream stood), ``step_end`` has ``time``, the run's own
  modeled step time.

Checks (``parse``): every field has its type (``field 'seconds' must be a number, got 'x'``) and range:
times, counts and bytes >= 0, ``dtype`` one hccl_sim knows, ``root`` a rank of the group, and ``bytes``
equal to ``count`` x the dtype's itemsize (alltoallv: this rank's send counts). A zero-size collective
(``count`` 0, ``bytes`` 0) is valid -- torch runs them, e.g. for a parameter-less bucket -- when every
member of its group recorded it so; the replay checks that the members agree on kind, count and dtype.
A barrier has ``count`` 0, ``dtype`` "none" and ``bytes`` 0.

Errors: ``WorkloadError`` names the file, the rank, the record index and the field.
"""
from __future__ import annotations

import glob
import json
import math
import os
from dataclasses import dataclass, field

from ..dtypes import UnsupportedError, element_type

FORMAT = "hccl_sim.workload"
VERSION = 1
ROLES = ("dp", "fsdp", "tp", "pp", "ep", "cp", "world")
KINDS = ("allreduce", "allgather", "reduce_scatter", "broadcast", "reduce", "gather", "scatter", "alltoall",
         "alltoallv", "allgatherv", "reduce_scatterv", "barrier")
RECORD_TYPES = ("compute", "collective", "p2p", "wait", "step_begin", "step_end")


class WorkloadError(ValueError):
    """A workload file that cannot be replayed; the message names file, rank, record and field."""


@dataclass
class Group:
    id: int
    ranks: list[int]
    role: str = "world"
    name: str = ""


@dataclass
class Workload:
    world_size: int
    groups: dict[int, Group]
    ranks: list[list[dict]]  # per world rank, its records in program order
    topology: str | None = None
    placement: list[int] | None = None
    compute_model: dict = field(default_factory=dict)
    source: str = ""

    def to_json(self, ranks=None) -> dict:
        """The document (``ranks``: which ranks' records to include, default all)."""
        chosen = range(self.world_size) if ranks is None else ranks
        return {"format": FORMAT, "version": VERSION, "world_size": self.world_size, "topology": self.topology,
                "placement": self.placement, "compute_model": self.compute_model,
                "groups": [{"id": g.id, "ranks": g.ranks, "role": g.role, "name": g.name}
                           for g in sorted(self.groups.values(), key=lambda g: g.id)],
                "ranks": [{"rank": r, "records": self.ranks[r]} for r in chosen]}

    def save(self, path: str, ranks=None) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(ranks), f, indent=None, separators=(",", ":"))
            f.write("\n")

    def steps(self, rank: int = 0) -> list[dict]:
        """The ``step_end`` records of ``rank``."""
        return [r for r in self.ranks[rank] if r["type"] == "step_end"]


def rank_path(path: str, rank: int) -> str:
    """The file of ``rank``: ``{rank}`` in ``path`` replaced, else ``.rank<r>`` before the extension."""
    if "{rank}" in path:
        return path.replace("{rank}", str(rank))
    stem, ext = os.path.splitext(path)
    return f"{stem}.rank{rank}{ext or '.json'}"


def _files(path: str) -> list[str]:
    if os.path.exists(path):
        return [path]
    stem, ext = os.path.splitext(path)
    pattern = path.replace("{rank}", "*") if "{rank}" in path else f"{stem}.rank*{ext or '.json'}"
    found = sorted(glob.glob(pattern))
    if not found:
        raise WorkloadError(f"{path}: no such workload file (nor per-rank files {pattern})")
    return found


def load(*paths: str) -> Workload:
    """One workload from one or more files (a whole run, or one file per rank as ``record`` writes them:
    ``load("run.json")`` also finds ``run.rank0.json``, ``run.rank1.json``, ...). Raises WorkloadError
    naming the file, rank, record index and field of the first problem, and the ranks missing."""
    files = [f for p in paths for f in _files(p)]
    merged: Workload | None = None
    for name in files:
        try:
            with open(name) as f:
                text = f.read()
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{name}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
                                f"the file is truncated or malformed") from None
        except OSError as exc:
            raise WorkloadError(f"{name}: {exc.strerror}") from None
        part = parse(doc, name)
        merged = part if merged is None else _merge(merged, part, name)
    missing = [r for r in range(merged.world_size) if merged.ranks[r] is None]
    if missing:
        raise WorkloadError(f"{', '.join(files)}: no records of rank(s) {missing} of {merged.world_size}")
    merged.source = ", ".join(files)
    return merged


def _merge(a: Workload, b: Workload, name: str) -> Workload:
    if a.world_size != b.world_size:
        raise WorkloadError(f"{name}: world_size {b.world_size} differs from the other files' {a.world_size}")
    for gid, g in b.groups.items():
        if gid in a.groups and a.groups[gid].ranks != g.ranks:
            raise WorkloadError(f"{name}: group {gid} has ranks {g.ranks}, another file says {a.groups[gid].ranks}")
        a.groups.setdefault(gid, g)
    for r, records in enumerate(b.ranks):
        if records is not None:
            if a.ranks[r] is not None:
                raise WorkloadError(f"{name}: rank {r} appears in two files")
            a.ranks[r] = records
    return a


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "true or false"}


def _need(obj: dict, key: str, kind, where: str, optional=False):
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise WorkloadError(f"{where}: field {key!r} is missing")
    value = obj[key]
    ok = (isinstance(value, kind) and not isinstance(value, bool)) if kind is not bool else isinstance(value, bool)
    if not ok:
        wanted = "a number" if kind == (int, float) else _KIND_NAMES.get(kind, getattr(kind, "__name__", kind))
        raise WorkloadError(f"{where}: field {key!r} must be {wanted}, got {value!r}")
    return value


def _number(obj: dict, key: str, where: str, optional=False):
    value = _need(obj, key, (int, float), where, optional)
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise WorkloadError(f"{where}: field {key!r} must be a finite number >= 0, got {value!r}")
    return value


def _count(obj: dict, key: str, where: str, optional=False):
    value = _need(obj, key, int, where, optional)
    if value is not None and value < 0:
        raise WorkloadError(f"{where}: field {key!r} must be >= 0, got {value}")
    return value


def parse(doc, name: str = "<workload>") -> Workload:
    """Check a decoded document; returns a Workload (ranks absent from it are None)."""
    if not isinstance(doc, dict):
        raise WorkloadError(f"{name}: the document must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise WorkloadError(f"{name}: field 'format' must be {FORMAT!r}, got {doc.get('format')!r}")
    version = _need(doc, "version", int, name)
    if version != VERSION:
        raise WorkloadError(f"{name}: version {version} is not supported (this hccl_sim reads version {VERSION})")
    world = _need(doc, "world_size", int, name)
    if world < 1:
        raise WorkloadError(f"{name}: field 'world_size' must be >= 1, got {world}")
    groups: dict[int, Group] = {}
    for i, g in enumerate(_need(doc, "groups", list, name)):
        where = f"{name}: groups[{i}]"
        if not isinstance(g, dict):
            raise WorkloadError(f"{where}: must be an object")
        gid = _need(g, "id", int, where)
        ranks = _need(g, "ranks", list, where)
        if not ranks or any(not isinstance(r, int) or not 0 <= r < world for r in ranks) or len(set(ranks)) < len(ranks):
            raise WorkloadError(f"{where}: field 'ranks' must be distinct world ranks in 0..{world - 1}, got {ranks}")
        role = _need(g, "role", str, where)
        if role not in ROLES:
            raise WorkloadError(f"{where}: field 'role' {role!r} is not one of {', '.join(ROLES)}")
        if gid in groups:
            raise WorkloadError(f"{where}: group id {gid} appears twice")
        groups[gid] = Group(gid, list(ranks), role, str(g.get("name", "")))
    per_rank: list = [None] * world
    for i, entry in enumerate(_need(doc, "ranks", list, name)):
        where = f"{name}: ranks[{i}]"
        if not isinstance(entry, dict):
            raise WorkloadError(f"{where}: must be an object")
        rank = _need(entry, "rank", int, where)
        if not 0 <= rank < world:
            raise WorkloadError(f"{where}: field 'rank' {rank} is not in 0..{world - 1}")
        records = _need(entry, "records", list, where)
        per_rank[rank] = [_check_record(rec, f"{name}: rank {rank} record {j}", groups, world, rank)
                          for j, rec in enumerate(records)]
    placement = doc.get("placement")
    if placement is not None and (not isinstance(placement, list) or len(placement) != world):
        raise WorkloadError(f"{name}: field 'placement' must be null or {world} NPU ids, got {placement!r}")
    return Workload(world, groups, per_rank, doc.get("topology"), placement, doc.get("compute_model") or {}, name)


def _check_record(rec, where: str, groups: dict, world: int, rank: int) -> dict:
    if not isinstance(rec, dict):
        raise WorkloadError(f"{where}: must be an object, got {rec!r}")
    kind = _need(rec, "type", str, where)
    if kind not in RECORD_TYPES:
        raise WorkloadError(f"{where}: field 'type' {kind!r} is not one of {', '.join(RECORD_TYPES)}")
    if kind == "compute":
        _number(rec, "seconds", where)
        _number(rec, "flops", where, optional=True)
    elif kind in ("collective", "p2p"):
        _need(rec, "id", int, where)
        gid = _need(rec, "group", int, where)
        if gid not in groups:
            raise WorkloadError(f"{where}: field 'group' {gid} is not a group of the file (ids {sorted(groups)})")
        if rank not in groups[gid].ranks:
            raise WorkloadError(f"{where}: field 'group': rank {rank} is not a member of group {gid}")
        for key in ("issue", "start", "end"):
            _number(rec, key, where)
        if kind == "collective":
            _check_collective(rec, where, len(groups[gid].ranks))
        else:
            for j, op in enumerate(_need(rec, "ops", list, where)):
                if (not isinstance(op, list) or len(op) != 4 or op[0] not in ("send", "recv")
                        or not all(isinstance(x, int) for x in op[1:]) or not 0 <= op[1] < world or op[2] < 0):
                    raise WorkloadError(f"{where}: field 'ops'[{j}] must be [\"send\"|\"recv\", peer world rank, "
                                        f"bytes, tag], got {op!r}")
    elif kind == "wait":
        _need(rec, "op", int, where, optional=True)
    elif kind == "step_end":
        _need(rec, "name", str, where)
        _number(rec, "time", where, optional=True)
    elif kind == "step_begin":
        _need(rec, "name", str, where)
        _number(rec, "clock", where, optional=True)
        _number(rec, "stream", where, optional=True)
    return rec


def _check_collective(rec: dict, where: str, size: int) -> None:
    """A collective record's fields; ``bytes`` must be what ``count``/``counts`` and ``dtype`` make."""
    op = _need(rec, "kind", str, where)
    if op not in KINDS:
        raise WorkloadError(f"{where}: field 'kind' {op!r} is not one of {', '.join(KINDS)}")
    count = _count(rec, "count", where)
    dtype = _need(rec, "dtype", str, where)
    _need(rec, "algo", str, where)
    _need(rec, "resolved", str, where, optional=True)
    root = _count(rec, "root", where, optional=True)
    if root is not None and root >= size:
        raise WorkloadError(f"{where}: field 'root' {root} is not a rank of the group (0..{size - 1})")
    if op == "barrier":  # moves no data: the Communicator records it as count 0, dtype "none"
        if count or rec.get("bytes"):
            raise WorkloadError(f"{where}: a barrier moves no data: field 'count' and 'bytes' must be 0, "
                                f"got {count} and {rec.get('bytes')!r}")
        return
    try:
        itemsize = element_type(dtype).itemsize
    except UnsupportedError as exc:
        raise WorkloadError(f"{where}: field 'dtype': {exc}") from None
    counts = rec.get("counts")
    elements = count
    if counts is not None:
        rows = counts if op == "alltoallv" else [counts]
        if (not isinstance(counts, list) or not rows
                or not all(isinstance(row, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                         for c in row) for row in rows)):
            shape = "[[send count per peer]]" if op == "alltoallv" else "[count per group rank]"
            raise WorkloadError(f"{where}: field 'counts' must be null or {shape} of integers >= 0, got {counts!r}")
        if op == "alltoallv":
            elements = sum(rows[0])  # this rank's sends
    nbytes = _count(rec, "bytes", where, optional=True)
    if nbytes is not None and nbytes != elements * itemsize:
        raise WorkloadError(f"{where}: field 'bytes' {nbytes} disagrees with {elements} x {itemsize} bytes of "
                            f"{dtype} = {elements * itemsize}")
