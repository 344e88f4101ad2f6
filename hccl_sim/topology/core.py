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

from .costs import Costs
from .errors import TopologyError
from .faults import Faults, describe_faults
from .units import format_bandwidth, format_time

LEVEL_KINDS = ("switch", "mesh")


@dataclass(frozen=True)
class Level:
    name: str
    size: int
    kind: str = "switch"
    bandwidth: float = 392e9  # bytes/s of each member link, per direction
    latency: float = 0.6e-6  # seconds per link
    oversubscription: float = 1.0  # divides the member links' bandwidth
    multipath: bool = False  # mesh only: transfers split over the direct link and every two-hop path
    efficiency: float = 1.0  # achieved fraction of line rate on these links (costs.py); 1 = line rate
    overhead: float = 0.0  # seconds more per call whose ranks span up to this level (costs.py)

    def validate(self, where: str) -> None:
        if self.kind not in LEVEL_KINDS:
            raise TopologyError(f"{where}.kind: {self.kind!r} is not one of {', '.join(LEVEL_KINDS)}")
        if self.multipath and self.kind != "mesh":
            raise TopologyError(f"{where}.multipath: only a mesh level has two-hop paths (this one is a {self.kind})")
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise TopologyError(f"{where}.size: must be a positive integer, got {self.size!r}")
        if not (isinstance(self.overhead, (int, float)) and math.isfinite(self.overhead) and self.overhead >= 0):
            raise TopologyError(f"{where}.overhead: must be finite and >= 0 seconds, got {self.overhead!r}")
        if not (isinstance(self.efficiency, (int, float)) and 0 < self.efficiency <= 1):
            raise TopologyError(f"{where}.efficiency: must be in (0, 1], got {self.efficiency!r}")
        for attr in ("bandwidth", "oversubscription"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise TopologyError(f"{where}.{attr}: must be a positive finite number, got {value!r}")
        if not isinstance(self.latency, (int, float)) or not math.isfinite(self.latency) or self.latency < 0:
            raise TopologyError(f"{where}.latency: must be a finite number >= 0, got {self.latency!r}")

    @property
    def link_bandwidth(self) -> float:
        """Line rate of one member link, bytes/s (oversubscription included, efficiency not)."""
        return self.bandwidth / self.oversubscription

    @property
    def achieved_bandwidth(self) -> float:
        """Bytes/s the timing model runs a member link at: line rate times ``efficiency``."""
        return self.link_bandwidth * self.efficiency


@dataclass(frozen=True)
class Topology:
    name: str
    levels: tuple[Level, ...]
    reduce_bandwidth: float = math.inf  # bytes/s an NPU reduces at (HCCL's 1/g); inf means free
    description: str = ""
    faults: Faults = Faults()
    placement: "str | tuple[int, ...] | None" = None  # default placement of ranks (files may set one)
    npu_flops: float | None = None  # FLOP/s of one NPU (dense, its training precision); HCCL_SIM_COMPUTE=flops
    costs: Costs = Costs()  # per-call overhead and protocol regimes (costs.py)
    step_latency: float = 0.0  # seconds each transfer pays beyond its links' latencies (its regime's)
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
        if self.npu_flops is not None and not (0 < self.npu_flops < math.inf):
            raise TopologyError(f"npu_flops: must be a positive FLOP/s rate, got {self.npu_flops!r}")
        try:
            self.costs.validate()
        except ValueError as exc:
            raise TopologyError(str(exc)) from None
        if not (math.isfinite(self.step_latency) and self.step_latency >= 0):
            raise TopologyError(f"step_latency: must be finite and >= 0, got {self.step_latency!r}")
        if not (self.reduce_bandwidth > 0):
            raise TopologyError(f"reduce_bandwidth: must be > 0, got {self.reduce_bandwidth!r}")
        self.faults.validate(self.name, self.num_links, self.num_npus)

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
                bw[bases[i]:bases[i + 1]] = lv.achieved_bandwidth
                lat[bases[i]:bases[i + 1]] = lv.latency
            self.faults.degrade_links(bw, lat, self.own_links)
            self._cache["links"] = (bw, lat)
        return self._cache["links"]

    def own_links(self, npu: int) -> list[int]:
        """The links that end at ``npu`` itself: its mesh links out and in, and its up and down
        link when level 0 is a switch (above that, a port serves a whole group)."""
        bases, links = self._link_bases(), []
        for i, lv in enumerate(self.levels):
            if lv.kind == "mesh":
                stride, c = int(self.strides[i]), (npu // int(self.strides[i])) % lv.size
                for k in range(lv.size):
                    if k != c:
                        peer = npu + (k - c) * stride
                        links += [self.mesh_link(i, npu, peer), self.mesh_link(i, peer, npu)]
            else:
                if i == 0:
                    links += [bases[0] + 2 * npu, bases[0] + 2 * npu + 1]
                break
        return links

    def mesh_link(self, level: int, a: int, b: int) -> int:
        """Id of the level-``level`` mesh link from NPU ``a`` to NPU ``b`` (coordinates differ only there)."""
        lv, stride = self.levels[level], int(self.strides[level])
        ca, cb = (a // stride) % lv.size, (b // stride) % lv.size
        return self._link_bases()[level] + a * (lv.size - 1) + (cb if cb < ca else cb - 1)

    def link_ends(self, link: int) -> tuple[int, str, int, int]:
        """(level, kind, a, b): a mesh link from NPU a to NPU b, or a switch link of unit a going
        up (b = 0) or down (b = 1)."""
        bases = self._link_bases()
        i = int(np.searchsorted(bases, link, side="right")) - 1
        lv, off = self.levels[i], link - bases[i]
        if lv.kind == "mesh":
            npu, k = divmod(off, lv.size - 1)
            c = (npu // int(self.strides[i])) % lv.size
            return i, "mesh", npu, npu + ((k if k < c else k + 1) - c) * int(self.strides[i])
        unit, direction = divmod(off, 2)
        return i, "switch", unit, direction

    def reduce_rates(self, npus: np.ndarray) -> np.ndarray:
        """Bytes/s each NPU reduces at (stragglers slower)."""
        return self.faults.reduce_rates(self.reduce_bandwidth, npus)

    def entry_delays(self, npus: np.ndarray) -> np.ndarray:
        """Seconds each NPU enters a collective late (late stragglers)."""
        return self.faults.entry_delays(npus)

    def link_name(self, link: int) -> str:
        i, kind, a, b = self.link_ends(link)
        if kind == "mesh":
            return f"{self.levels[i].name} mesh link npu{a}>npu{b}"
        return f"{self.levels[i].name} {'up' if b == 0 else 'down'}link of unit {a}"

    def with_faults(self, faults: Faults) -> "Topology":
        return replace(self, faults=faults, _cache={})

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
        hops = m + 2 * (nlev - m)
        out = np.empty((len(src), hops), dtype=np.int64)
        # src and dst differ at level i or above exactly when their level-i units (npu // stride) differ:
        # no per-level coordinates needed for the switch levels
        in_mesh = src // strides[m] == dst // strides[m] if m < nlev else np.ones(len(src), dtype=bool)
        # mesh hops, dimension order, only for routes that stay inside the mesh levels
        cur = src.copy()
        for i in range(m):
            c, target = (src // strides[i]) % sizes[i], (dst // strides[i]) % sizes[i]
            hop = in_mesh & (c != target)
            idx = bases[i] + cur * (sizes[i] - 1) + np.where(target < c, target, target - 1)
            out[:, i] = np.where(hop, idx, -1)
            cur = np.where(hop, cur + (target - c) * strides[i], cur)
        # switch levels: climb from level m to the highest differing one, then come down
        for col, i in zip(range(m, hops, 2), range(m, nlev)):
            up, down = src // strides[i], dst // strides[i]
            used = up != down
            out[:, col] = np.where(used, bases[i] + 2 * up, -1)
            out[:, col + 1] = np.where(used, bases[i] + 2 * down + 1, -1)
        if self.faults.links_down:
            out = self._detour(out, src, dst)
        return out

    def routes_via(self, src: np.ndarray, dst: np.ndarray, via: np.ndarray | None) -> np.ndarray:
        """Routes as ``routes``, except that a transfer with ``via[i] >= 0`` goes src -> via -> dst
        (multi-path routing inside a full-mesh level; see algorithms/multipath.py)."""
        if via is None or not np.any(np.asarray(via) >= 0):
            return self.routes(src, dst)
        src, dst, via = (np.asarray(x, dtype=np.int64) for x in (src, dst, via))
        two = via >= 0
        direct = self.routes(src[~two], dst[~two])
        first, second = self.routes(src[two], via[two]), self.routes(via[two], dst[two])
        out = np.full((len(src), 2 * direct.shape[1]), -1, dtype=np.int64)
        out[~two, :direct.shape[1]] = direct
        out[two, :first.shape[1]] = first
        out[two, first.shape[1]:first.shape[1] + second.shape[1]] = second
        return out

    def _detour(self, routes: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Routes that cross a down link: a mesh hop u>v goes u>c>v through the first other member c
        of the same mesh whose two links are up; a switch link has no alternative."""
        down = np.array(self.faults.links_down)
        hit = np.flatnonzero(np.isin(routes, down).any(axis=1))
        if not len(hit):
            return routes
        down_set = set(down.tolist())
        routes = np.concatenate([routes, np.full((len(routes), self.num_mesh_levels), -1, np.int64)], axis=1)
        for row in hit.tolist():
            extra = routes.shape[1] - self.num_mesh_levels
            for col in np.flatnonzero(np.isin(routes[row], down)).tolist():
                link = int(routes[row, col])
                level, kind, u, v = self.link_ends(link)
                way = None
                if kind == "mesh":
                    lv, stride = self.levels[level], int(self.strides[level])
                    base = u - ((u // stride) % lv.size) * stride
                    for c in (base + k * stride for k in range(lv.size)):
                        if c not in (u, v) and self.mesh_link(level, u, c) not in down_set \
                                and self.mesh_link(level, c, v) not in down_set:
                            way = (self.mesh_link(level, u, c), self.mesh_link(level, c, v))
                            break
                if way is None:
                    raise TopologyError(f"faults: the {self.link_name(link)} is down and {self.name} offers no "
                                        f"other path from npu{src[row]} to npu{dst[row]}")
                routes[row, col] = way[0]
                routes[row, extra + level] = way[1]
        return routes

    def route_latency(self, routes: np.ndarray) -> np.ndarray:
        _, lat = self.link_arrays()
        return np.where(routes >= 0, lat[np.maximum(routes, 0)], 0.0).sum(axis=1) + self.step_latency

    def span_level(self, npus) -> int:
        """The highest level at which ``npus`` differ (-1 for fewer than two NPUs)."""
        npus = np.asarray(npus, dtype=np.int64)
        if len(npus) < 2:
            return -1
        coords = self.coords(npus)
        differ = np.flatnonzero((coords != coords[0]).any(axis=0))
        return int(differ[-1]) if len(differ) else -1

    def level_index(self, name: str, where: str) -> int:
        """A level given by name or index."""
        for i, lv in enumerate(self.levels):
            if name in (lv.name, str(i), f"level{i}"):
                return i
        raise TopologyError(f"{where}: {self.name} has no level {name!r} (levels: {', '.join(lv.name for lv in self.levels)})")

    # ---- groups -------------------------------------------------------------------------------
    def group_of(self, npus, level: int) -> np.ndarray:
        """Index of the level-``level`` group holding each NPU."""
        return np.asarray(npus, dtype=np.int64) // (int(self.strides[level]) * self.levels[level].size)

    def injection_bandwidth(self) -> float:
        """Bytes/s one NPU can send at once, per direction: its mesh links and its share of the first
        switch level's port."""
        total = 0.0
        for i, lv in enumerate(self.levels):
            if lv.kind == "mesh":
                total += (lv.size - 1) * lv.link_bandwidth
            else:
                return total + lv.link_bandwidth / int(self.strides[i])
        return total

    def bisection_bandwidth(self) -> float:
        """Bytes/s, one direction, across a cut between two halves of the highest level with two or
        more members (odd sizes split as evenly as they can)."""
        for i in reversed(range(len(self.levels))):
            lv = self.levels[i]
            if lv.size < 2:
                continue
            half, other = lv.size // 2, lv.size - lv.size // 2
            if lv.kind == "switch":
                return half * lv.link_bandwidth * (self.num_npus // (int(self.strides[i]) * lv.size))
            return (self.num_npus // lv.size) * half * other * lv.link_bandwidth
        return 0.0

    def describe(self) -> str:
        lines = [f"{self.name}: {self.num_npus} NPUs" + (f" - {self.description}" if self.description else "")]
        for i, lv in enumerate(self.levels):
            groups = self.num_npus // (int(self.strides[i]) * lv.size)
            over = f", oversubscription {lv.oversubscription:g}:1" if lv.oversubscription != 1 else ""
            over += f", {lv.efficiency:.4g} of it achieved" if lv.efficiency != 1 else ""
            over += f", {format_time(lv.overhead)} more per call spanning it" if lv.overhead else ""
            lines.append(
                f"  level{i} {lv.name}: {groups} x {lv.kind} of {lv.size}, "
                f"{format_bandwidth(lv.link_bandwidth)} per link, {format_time(lv.latency)} per hop{over}"
            )
        lines.append(f"  per NPU {format_bandwidth(self.injection_bandwidth())} per direction; bisection "
                     f"{format_bandwidth(self.bisection_bandwidth())} per direction")
        if math.isfinite(self.reduce_bandwidth):
            lines.append(f"  NPU reduce rate {format_bandwidth(self.reduce_bandwidth)}")
        if not self.costs.neutral or self.costs.source:
            lines.append(f"  costs: {self.costs.describe()}")
        if self.faults:
            lines.append(f"  faults: {describe_faults(self)}")
        return "\n".join(lines)

