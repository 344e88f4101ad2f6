"""A topology is a stack of levels over NPUs; routes and links are derived, never stored per pair.

NPU ``n`` has one coordinate per level (mixed radix, level 0 fastest). Level ``i`` groups the units
of level ``i-1`` (NPUs for level 0) into groups of ``size``:

- ``switch``: every member unit reaches the group's switch through its own up and down link. A unit
  above level 0 is a whole group of NPUs, so its up/down link is shared by all of them.
- ``mesh``: a direct link between every ordered pair of members. Mesh levels sit at the bottom and
  link NPUs with equal other coordinates, so a stack of them is UB-Mesh's nD full mesh.

A route from ``a`` to ``b`` uses the highest level ``L`` where their coordinates differ. Inside the
mesh levels it hops dimension by dimension (lowest first); otherwise it climbs the switch levels to
``L`` and comes down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .units import format_bandwidth, format_time

LEVEL_KINDS = ("switch", "mesh")


class TopologyError(ValueError):
    """A topology or placement that cannot be built, naming the field at fault."""


@dataclass(frozen=True)
class Level:
    name: str
    size: int
    kind: str = "switch"
    bandwidth: float = 392e9  # bytes/s of each member link, per direction
    latency: float = 0.6e-6  # seconds per link
    oversubscription: float = 1.0  # divides the member links' bandwidth

    def validate(self, where: str) -> None:
        if self.kind not in LEVEL_KINDS:
            raise TopologyError(f"{where}.kind: {self.kind!r} is not one of {', '.join(LEVEL_KINDS)}")
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise TopologyError(f"{where}.size: must be a positive integer, got {self.size!r}")
        for attr in ("bandwidth", "oversubscription"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise TopologyError(f"{where}.{attr}: must be a positive finite number, got {value!r}")
        if not isinstance(self.latency, (int, float)) or not math.isfinite(self.latency) or self.latency < 0:
            raise TopologyError(f"{where}.latency: must be a finite number >= 0, got {self.latency!r}")

    @property
    def link_bandwidth(self) -> float:
        return self.bandwidth / self.oversubscription


@dataclass(frozen=True)
class Topology:
    name: str
    levels: tuple[Level, ...]
    reduce_bandwidth: float = math.inf  # bytes/s an NPU reduces at (HCCL's 1/g); inf means free
    description: str = ""
    link_scale: tuple[tuple[int, float], ...] = ()  # (link id, bandwidth factor) for degraded links
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self):
        if not self.levels:
            raise TopologyError("levels: a topology needs at least one level")
        seen_switch = False
        for i, level in enumerate(self.levels):
            level.validate(f"levels[{i}]")
            if level.kind == "mesh" and seen_switch:
                raise TopologyError(f"levels[{i}].kind: mesh levels must lie below every switch level")
            seen_switch |= level.kind == "switch"
        if not (self.reduce_bandwidth > 0):
            raise TopologyError(f"reduce_bandwidth: must be > 0, got {self.reduce_bandwidth!r}")
        for link, scale in self.link_scale:
            if not 0 <= link < self.num_links:
                raise TopologyError(f"link_scale: link {link} is not a link of {self.name} (0..{self.num_links - 1})")
            if not (0 < scale and math.isfinite(scale)):
                raise TopologyError(f"link_scale: factor for link {link} must be positive and finite, got {scale}")

    # ---- sizes and link numbering -------------------------------------------------------------
    @property
    def sizes(self) -> np.ndarray:
        return np.array([lv.size for lv in self.levels], dtype=np.int64)

    @property
    def strides(self) -> np.ndarray:
        """NPUs in one unit of each level (the members it groups)."""
        return np.concatenate([[1], np.cumprod(self.sizes)[:-1]]).astype(np.int64)

    @property
    def num_npus(self) -> int:
        return int(np.prod(self.sizes))

    @property
    def num_mesh_levels(self) -> int:
        return sum(1 for lv in self.levels if lv.kind == "mesh")

    def _link_bases(self) -> list[int]:
        bases, total = [], 0
        for i, lv in enumerate(self.levels):
            bases.append(total)
            if lv.kind == "mesh":
                total += self.num_npus * (lv.size - 1)
            else:
                total += 2 * (self.num_npus // int(self.strides[i]))
        bases.append(total)
        return bases

    @property
    def num_links(self) -> int:
        return self._link_bases()[-1]

    def link_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Bandwidth (bytes/s) and latency (s) of every link, indexed by link id."""
        if "links" not in self._cache:
            bases = self._link_bases()
            bw = np.empty(bases[-1])
            lat = np.empty(bases[-1])
            for i, lv in enumerate(self.levels):
                bw[bases[i]:bases[i + 1]] = lv.link_bandwidth
                lat[bases[i]:bases[i + 1]] = lv.latency
            for link, scale in self.link_scale:
                bw[link] *= scale
            self._cache["links"] = (bw, lat)
        return self._cache["links"]

    def link_name(self, link: int) -> str:
        bases = self._link_bases()
        i = int(np.searchsorted(bases, link, side="right")) - 1
        lv, off = self.levels[i], link - bases[i]
        if lv.kind == "mesh":
            npu, k = divmod(off, lv.size - 1)
            c = (npu // int(self.strides[i])) % lv.size
            peer = npu + ((k if k < c else k + 1) - c) * int(self.strides[i])
            return f"{lv.name}-mesh npu{npu}->npu{peer}"
        unit, direction = divmod(off, 2)
        return f"{lv.name}-{'up' if direction == 0 else 'down'} unit{unit}"

    def with_link_scale(self, scales: dict[int, float]) -> "Topology":
        merged = dict(self.link_scale)
        for link, scale in scales.items():
            merged[link] = merged.get(link, 1.0) * scale
        return replace(self, link_scale=tuple(sorted(merged.items())), _cache={})

    # ---- routes -------------------------------------------------------------------------------
    def coords(self, npus: np.ndarray) -> np.ndarray:
        npus = np.asarray(npus, dtype=np.int64)
        return (npus[:, None] // self.strides[None, :]) % self.sizes[None, :]

    def routes(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Links of each src->dst route as rows of a (T, max_hops) array, padded with -1."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if np.any(src == dst):
            raise TopologyError("routes: a transfer from an NPU to itself has no route")
        nlev = len(self.levels)
        m = self.num_mesh_levels
        strides, sizes, bases = self.strides, self.sizes, self._link_bases()
        cs, cd = self.coords(src), self.coords(dst)
        differ = cs != cd
        top = nlev - 1 - np.argmax(differ[:, ::-1], axis=1)  # highest differing level
        hops = m + 2 * (nlev - m)
        out = np.full((len(src), hops), -1, dtype=np.int64)
        col = 0
        # mesh hops, dimension order, only for routes that stay inside the mesh levels
        cur = src.copy()
        in_mesh = top < m
        for i in range(m):
            hop = in_mesh & differ[:, i]
            k = sizes[i] - 1
            c, target = cs[:, i], cd[:, i]
            idx = bases[i] + cur * k + np.where(target < c, target, target - 1)
            out[:, col] = np.where(hop, idx, -1)
            cur = np.where(hop, cur + (target - c) * strides[i], cur)
            col += 1
        # switch levels: climb from level m to top, then come down
        for i in range(m, nlev):
            used = (~in_mesh) & (top >= i)
            out[:, col] = np.where(used, bases[i] + 2 * (src // strides[i]), -1)
            out[:, col + 1] = np.where(used, bases[i] + 2 * (dst // strides[i]) + 1, -1)
            col += 2
        return out

    def route_latency(self, routes: np.ndarray) -> np.ndarray:
        _, lat = self.link_arrays()
        return np.where(routes >= 0, lat[np.maximum(routes, 0)], 0.0).sum(axis=1)

    # ---- groups -------------------------------------------------------------------------------
    def group_of(self, npus, level: int) -> np.ndarray:
        """Index of the level-``level`` group holding each NPU."""
        return np.asarray(npus, dtype=np.int64) // (int(self.strides[level]) * self.levels[level].size)

    def describe(self) -> str:
        lines = [f"{self.name}: {self.num_npus} NPUs" + (f" - {self.description}" if self.description else "")]
        for i, lv in enumerate(self.levels):
            groups = self.num_npus // (int(self.strides[i]) * lv.size)
            over = f", oversubscription {lv.oversubscription:g}:1" if lv.oversubscription != 1 else ""
            lines.append(
                f"  level{i} {lv.name}: {groups} x {lv.kind} of {lv.size}, "
                f"{format_bandwidth(lv.link_bandwidth)} per link, {format_time(lv.latency)} per hop{over}"
            )
        if math.isfinite(self.reduce_bandwidth):
            lines.append(f"  NPU reduce rate {format_bandwidth(self.reduce_bandwidth)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Placement:
    """Which NPU each rank stands in for."""
    npus: tuple[int, ...]

    @classmethod
    def build(cls, spec: str | list[int] | None, nranks: int, topology: Topology) -> "Placement":
        n = topology.num_npus
        if nranks > n:
            raise TopologyError(f"placement: {nranks} ranks need more NPUs than {topology.name} has ({n})")
        if spec is None or spec == "linear":
            npus = list(range(nranks))
        elif isinstance(spec, (list, tuple)):
            npus = [int(x) for x in spec]
        elif spec.startswith("list:"):
            try:
                npus = [int(x) for x in spec[5:].split(",") if x.strip()]
            except ValueError as exc:
                raise TopologyError(f"placement: {spec!r} is not a comma-separated list of NPU indices") from exc
        elif spec == "spread":  # round-robin over the level-0 groups
            group = topology.levels[0].size
            ngroups = n // group
            npus = [(r % ngroups) * group + r // ngroups for r in range(nranks)]
        elif spec.startswith("per-group:"):
            try:
                k = int(spec.split(":", 1)[1])
            except ValueError as exc:
                raise TopologyError(f"placement: {spec!r} needs an integer, as per-group:4") from exc
            group = topology.levels[0].size
            if not 1 <= k <= group:
                raise TopologyError(f"placement: per-group:{k} needs 1..{group} ranks per level-0 group")
            npus = [(r // k) * group + r % k for r in range(nranks)]
        else:
            raise TopologyError(f"placement: unknown placement {spec!r} (linear, spread, per-group:K, list:0,1,...)")
        if len(npus) != nranks:
            raise TopologyError(f"placement: {len(npus)} NPUs given for {nranks} ranks")
        bad = [p for p in npus if not 0 <= p < n]
        if bad:
            raise TopologyError(f"placement: NPU {bad[0]} is outside {topology.name} (0..{n - 1})")
        if len(set(npus)) != len(npus):
            raise TopologyError("placement: two ranks are placed on the same NPU")
        return cls(tuple(npus))
