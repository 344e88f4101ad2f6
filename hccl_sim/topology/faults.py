"""Faults and degradation as text: ``TOPOLOGY|FAULT;FAULT;...`` in any topology spec, ``--faults`` on
the command line, or a ``faults:`` list in a topology file.

    slow:LINK=F         the link's bandwidth times F (0.5 halves it)
    down:LINK           the link fails: routes detour through another member of its mesh, else an error
    straggler:NPU=F     the NPU's own links and its reduce rate divided by F
    late:NPU=TIME       the NPU enters every collective TIME late (e.g. 20us)
    jitter=TIME         every link's latency gets an extra delay drawn once from an exponential
    seed=N              distribution of mean TIME, seeded by N (default 0): reproducible

LINK is ``npuA-npuB`` (both directions of a mesh link), ``npuA>npuB`` (one direction),
``LEVEL:UNIT`` (both directions of unit UNIT's port on switch level LEVEL, by name or index),
``LEVEL:UNIT:up`` or ``:down`` (one of them), or ``#ID`` (a link id). NPU is ``npuN`` or ``N``.
"""
from __future__ import annotations

from dataclasses import replace

from .core import Faults, Topology, TopologyError
from .units import format_time, parse_time


def _npu(topology: Topology, text: str, where: str) -> int:
    body = text.strip()
    body = body[3:] if body.lower().startswith("npu") else body
    if not body.isdigit():
        raise TopologyError(f"{where}: {text!r} is not an NPU (npuN or N)")
    npu = int(body)
    if not 0 <= npu < topology.num_npus:
        raise TopologyError(f"{where}: NPU {npu} is outside {topology.name} (0..{topology.num_npus - 1})")
    return npu


def _mesh_links(topology: Topology, a: int, b: int, both: bool, where: str) -> list[int]:
    differ = [i for i, (ca, cb) in enumerate(zip(*topology.coords([a, b]).tolist())) if ca != cb]
    if len(differ) != 1 or topology.levels[differ[0]].kind != "mesh":
        raise TopologyError(f"{where}: npu{a} and npu{b} are not joined by a mesh link in {topology.name}")
    level = differ[0]
    return [topology.mesh_link(level, a, b)] + ([topology.mesh_link(level, b, a)] if both else [])


def link_ids(topology: Topology, text: str, where: str = "faults") -> list[int]:
    """The links a LINK selector names."""
    text = text.strip()
    if text.startswith("#"):
        if not text[1:].isdigit() or not int(text[1:]) < topology.num_links:
            raise TopologyError(f"{where}: {text!r} is not a link id of {topology.name} (#0..#{topology.num_links - 1})")
        return [int(text[1:])]
    for sep, both in ((">", False), ("-", True)):
        if sep in text and text.lower().startswith("npu"):
            a, _, b = text.partition(sep)
            return _mesh_links(topology, _npu(topology, a, where), _npu(topology, b, where), both, where)
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise TopologyError(f"{where}: {text!r} is not a link (npuA-npuB, npuA>npuB, LEVEL:UNIT[:up|down] or #ID)")
    level = topology.level_index(parts[0], where)
    if topology.levels[level].kind != "switch":
        raise TopologyError(f"{where}: level {parts[0]!r} is a mesh; name its links as npuA-npuB")
    units = topology.num_npus // int(topology.strides[level])
    if not parts[1].isdigit() or not int(parts[1]) < units:
        raise TopologyError(f"{where}: unit {parts[1]!r} is not one of level {parts[0]}'s units (0..{units - 1})")
    directions = {"up": (0,), "down": (1,)}.get(parts[2] if len(parts) == 3 else "both", (0, 1))
    if len(parts) == 3 and parts[2] not in ("up", "down"):
        raise TopologyError(f"{where}: {parts[2]!r} is not up or down")
    base = topology._link_bases()[level] + 2 * int(parts[1])
    return [base + d for d in directions]


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TopologyError(f"{where}: {text!r} is not a number") from None


def apply_faults(topology: Topology, spec) -> Topology:
    """``topology`` with the faults of ``spec`` (text with ``;`` between faults, or a list) added."""
    items = spec.split(";") if isinstance(spec, str) else list(spec)
    f = topology.faults
    scale, down = dict(f.link_scale), set(f.links_down)
    slow, late = dict(f.slow_npus), dict(f.late_npus)
    jitter, seed = f.jitter, f.seed
    for item in filter(None, (str(i).strip() for i in items)):
        where = f"faults: {item!r}"
        kind, sep, rest = item.partition(":")
        if not sep:
            kind, sep, rest = item.partition("=")
        kind = kind.strip().lower()
        target, _, value = rest.rpartition("=") if kind in ("slow", "straggler", "late") else (rest, "", "")
        if kind in ("slow", "straggler", "late") and not target:
            raise TopologyError(f"{where}: expected {kind}:{'LINK' if kind == 'slow' else 'NPU'}=VALUE")
        if kind == "slow":
            factor = _number(value, where)
            for link in link_ids(topology, target, where):
                scale[link] = scale.get(link, 1.0) * factor
        elif kind == "down":
            down.update(link_ids(topology, rest, where))
        elif kind == "straggler":
            npu = _npu(topology, target, where)
            slow[npu] = slow.get(npu, 1.0) * _number(value, where)
        elif kind == "late":
            try:
                late[_npu(topology, target, where)] = parse_time(value)
            except ValueError as exc:
                raise TopologyError(f"{where}: {exc}") from None
        elif kind == "jitter":
            try:
                jitter = parse_time(rest)
            except ValueError as exc:
                raise TopologyError(f"{where}: {exc}") from None
        elif kind == "seed":
            if not rest.strip().isdigit():
                raise TopologyError(f"{where}: seed must be a non-negative integer")
            seed = int(rest)
        else:
            raise TopologyError(f"{where}: unknown fault {kind!r} (slow, down, straggler, late, jitter, seed)")
    faults = Faults(tuple(sorted(scale.items())), tuple(sorted(down)), tuple(sorted(slow.items())),
                    tuple(sorted(late.items())), jitter, seed)
    return replace(topology, faults=faults, _cache={})


def describe_faults(topology: Topology) -> str:
    f, parts = topology.faults, []
    parts += [f"{topology.link_name(link)} at {s:g}x bandwidth" for link, s in f.link_scale]
    parts += [f"{topology.link_name(link)} down" for link in f.links_down]
    parts += [f"npu{n} straggling {s:g}x" for n, s in f.slow_npus]
    parts += [f"npu{n} {format_time(d)} late" for n, d in f.late_npus]
    if f.jitter:
        parts.append(f"latency jitter mean {format_time(f.jitter)} (seed {f.seed})")
    return "; ".join(parts)
