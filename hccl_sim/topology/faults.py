"""Faults and degradation in one place: their data (``Faults``, which a Topology holds), what each does to
links, reduce rates and entry times, and their text form: ``TOPOLOGY|FAULT;FAULT;...`` in any topology
spec, ``--faults`` on the command line, or a ``faults:`` list in a topology file.

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

import math
from dataclasses import dataclass

import numpy as np

from .errors import TopologyError
from .units import format_time, parse_time

# Topology (core.py) holds a Faults and applies it; this module never imports core.py: where a fault
# needs the topology's links or levels, the Topology is passed in.


@dataclass(frozen=True)
class Faults:
    """Degradations of a topology. Link ids are the topology's."""
    link_scale: tuple[tuple[int, float], ...] = ()  # (link, bandwidth factor)
    links_down: tuple[int, ...] = ()  # routes detour around these inside mesh levels, else fail
    slow_npus: tuple[tuple[int, float], ...] = ()  # stragglers: own links and reduce rate divided by factor
    late_npus: tuple[tuple[int, float], ...] = ()  # enter every collective this many seconds late
    jitter: float = 0.0  # mean extra latency of each link, seconds, drawn once (exponential, seeded)
    seed: int = 0

    def __bool__(self) -> bool:
        return bool(self.link_scale or self.links_down or self.slow_npus or self.late_npus or self.jitter)

    def validate(self, name: str, num_links: int, num_npus: int) -> None:
        """Raise TopologyError naming the fault whose link, NPU or value does not fit topology ``name``."""
        for link in [link for link, _ in self.link_scale] + list(self.links_down):
            if not 0 <= link < num_links:
                raise TopologyError(f"faults: link {link} is not a link of {name} (0..{num_links - 1})")
        for what, pairs in (("slow", self.link_scale), ("straggler", self.slow_npus)):
            for key, factor in pairs:
                if not (0 < factor and math.isfinite(factor)):
                    raise TopologyError(f"faults: {what} factor for {key} must be positive and finite, got {factor}")
        for npu, _ in self.slow_npus + self.late_npus:
            if not 0 <= npu < num_npus:
                raise TopologyError(f"faults: NPU {npu} is outside {name} (0..{num_npus - 1})")
        for npu, delay in self.late_npus:
            if not (delay >= 0 and math.isfinite(delay)):
                raise TopologyError(f"faults: late delay of NPU {npu} must be finite and >= 0, got {delay}")
        if not (self.jitter >= 0 and math.isfinite(self.jitter)):
            raise TopologyError(f"faults: jitter must be finite and >= 0, got {self.jitter}")

    def degrade_links(self, bandwidth: np.ndarray, latency: np.ndarray, own_links) -> None:
        """Apply slow links, stragglers' own links (``own_links(npu)``: their ids) and latency jitter to
        the per-link ``bandwidth`` (bytes/s) and ``latency`` (s) arrays, in place."""
        for link, scale in self.link_scale:
            bandwidth[link] *= scale
        for npu, factor in self.slow_npus:
            bandwidth[own_links(npu)] /= factor
        if self.jitter:
            latency += np.random.default_rng(self.seed).exponential(self.jitter, len(latency))

    def reduce_rates(self, rate: float, npus: np.ndarray) -> np.ndarray:
        """Bytes/s each NPU of ``npus`` reduces at: ``rate``, divided by a straggler's factor."""
        rates = np.full(len(npus), rate)
        for npu, factor in self.slow_npus:
            rates[np.asarray(npus) == npu] /= factor
        return rates

    def entry_delays(self, npus: np.ndarray) -> np.ndarray:
        """Seconds each NPU of ``npus`` enters a collective late."""
        delays = np.zeros(len(npus))
        for npu, delay in self.late_npus:
            delays[np.asarray(npus) == npu] += delay
        return delays

def _npu(topology: "Topology", text: str, where: str) -> int:
    body = text.strip()
    body = body[3:] if body.lower().startswith("npu") else body
    if not body.isdigit():
        raise TopologyError(f"{where}: {text!r} is not an NPU (npuN or N)")
    npu = int(body)
    if not 0 <= npu < topology.num_npus:
        raise TopologyError(f"{where}: NPU {npu} is outside {topology.name} (0..{topology.num_npus - 1})")
    return npu


def _mesh_links(topology: "Topology", a: int, b: int, both: bool, where: str) -> list[int]:
    differ = [i for i, (ca, cb) in enumerate(zip(*topology.coords([a, b]).tolist())) if ca != cb]
    if len(differ) != 1 or topology.levels[differ[0]].kind != "mesh":
        raise TopologyError(f"{where}: npu{a} and npu{b} are not joined by a mesh link in {topology.name}")
    level = differ[0]
    return [topology.mesh_link(level, a, b)] + ([topology.mesh_link(level, b, a)] if both else [])


def link_ids(topology: "Topology", text: str, where: str = "faults") -> list[int]:
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


def apply_faults(topology: "Topology", spec) -> "Topology":
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
    return topology.with_faults(faults)


def describe_faults(topology: "Topology") -> str:
    """The faults of ``topology`` in words, one clause each (``topology show``)."""
    f, parts = topology.faults, []
    parts += [f"{topology.link_name(link)} at {s:g}x bandwidth" for link, s in f.link_scale]
    parts += [f"{topology.link_name(link)} down" for link in f.links_down]
    parts += [f"npu{n} straggling {s:g}x" for n, s in f.slow_npus]
    parts += [f"npu{n} {format_time(d)} late" for n, d in f.late_npus]
    if f.jitter:
        parts.append(f"latency jitter mean {format_time(f.jitter)} (seed {f.seed})")
    return "; ".join(parts)
