"""Fit a topology's cost terms (topology/costs.py) to measured collective times.

Each measured call is first decomposed with the timing engine on the topology at neutral costs:

    T = level overhead + overhead + s * L + k * step_latency[r] + W / bandwidth_factor[r]

where the level overhead is the starting topology's for the highest level the call spans (kept),
``s`` scales every link's latency, ``L`` is its time with latencies only (links' bandwidth x 1e12), ``k`` how many transfer latencies
lie on its critical path (L's growth per second of extra per-transfer latency) and ``W`` its time with
bandwidth only (all latencies zero); ``r`` is the protocol regime of its size. This is exact when the
critical path does not change with the terms (every synchronous schedule on an uncontended topology,
and the alpha-beta closed forms); the printed modeled times are the engine's own with the fitted
terms, never this decomposition.

The fit minimises squared log-time residuals (scipy.optimize.least_squares), started from a weighted
linear least-squares solution. Regime bounds are chosen among the gaps between measured sizes, the
number of regimes (unless given) by BIC. Terms the data cannot determine (their column is a linear
combination of the others, e.g. overhead and per-step latency with a single rank count and regime) are
held at their defaults and reported as held.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..collectives import SPECS
from ..topology import Topology
from ..topology.costs import Costs, Regime
from .parsers import Measurement

TERMS = ("overhead", "bandwidth", "latency")  # what --fit may name: overhead; bandwidth factors; link and step latency
_BIG = 1e12  # bandwidth scale for the latency-only view
_DELTA = 1e-6  # seconds of probe latency per transfer
MIN_SIZES_PER_REGIME = 3
SIZE_STEP = 1.5  # sizes closer than this ratio are one size for regime bounds (derived sizes scatter)  # a regime is a line through its sizes: at least one more than its two terms


class FitError(ValueError):
    """A fit the data cannot support, saying why."""


@dataclass
class Point:
    m: Measurement
    ranks: int
    collective: str
    algo: str
    itemsize: int
    count: int  # elements of the call's buffer
    L: float = 0.0
    k: float = 0.0
    W: float = 0.0
    fixed: float = 0.0  # seconds of the starting topology's per-level overhead (kept, not fitted)


@dataclass
class FitResult:
    topology: Topology  # the calibrated topology
    points: list[Point]
    modeled: np.ndarray  # seconds, the engine's times with the fitted terms
    before: np.ndarray  # seconds, the engine's times with the starting topology
    fitted: list[str]  # names of the terms the data determined
    held: list[str]  # names of the terms held at their defaults
    notes: list[str] = field(default_factory=list)


def errors(modeled, measured) -> np.ndarray:
    """|modeled - measured| / measured per point."""
    modeled, measured = np.asarray(modeled, float), np.asarray(measured, float)
    return np.abs(modeled - measured) / measured


def summary(err: np.ndarray) -> tuple[float, float, float]:
    """(geometric mean, mean, max) of relative errors; the geometric mean floors errors at 1e-9."""
    err = np.asarray(err, float)
    return float(np.exp(np.mean(np.log(np.maximum(err, 1e-9))))), float(err.mean()), float(err.max())


def _scaled(topology: Topology, bandwidth: float = 1.0, latency: float = 1.0, step: float = 0.0) -> Topology:
    """``topology`` with no overheads or regimes (slicing kept), links and latencies scaled."""
    levels = tuple(replace(lv, bandwidth=lv.bandwidth * bandwidth, latency=lv.latency * latency, overhead=0.0)
                   for lv in topology.levels)
    costs = Costs(slice_bytes=topology.costs.slice_bytes, max_slices=topology.costs.max_slices)
    return replace(topology, levels=levels, costs=costs, step_latency=step, _cache={})


def _itemsize(size: int) -> int:
    return 4 if size % 4 == 0 else 1


def _model(ranks, topology, placement):
    from ..planning import NetworkModel
    return NetworkModel(ranks, topology, placement)


def prepare(measurements: list[Measurement], topology: Topology, algo: str | None = None,
            placement=None) -> list[Point]:
    """Points with each call's algorithm (``algo``, or what auto picks on ``topology``) and its
    decomposition L, k, W (see the module docstring)."""
    views = {"full": topology, "lat": _scaled(topology, bandwidth=_BIG),
             "probe": _scaled(topology, bandwidth=_BIG, step=_DELTA), "bw": _scaled(topology, latency=0.0)}
    models: dict = {}
    points = []
    for m in measurements:
        if not m.ranks or not m.collective:
            raise FitError(f"{m.where}: the rank count and collective are not known (pass --ranks and --collective)")

        def model(view):
            key = (view, m.ranks)
            if key not in models:
                models[key] = _model(m.ranks, views[view], placement)
            return models[key]

        itemsize = _itemsize(m.size)
        count = m.size // itemsize
        if m.collective in SPECS:
            count = SPECS[m.collective].work_count(count, m.ranks)  # nccl-tests: block collectives move p whole blocks
        chosen = model("full").resolve(m.collective, algo, count, itemsize)
        p = Point(m, m.ranks, m.collective, chosen, itemsize, count)
        p.L = model("lat").time(m.collective, chosen, count, itemsize).time
        p.k = (model("probe").time(m.collective, chosen, count, itemsize).time - p.L) / _DELTA
        p.W = model("bw").time(m.collective, chosen, count, itemsize).time
        top = topology.span_level(model("full").placement.npus)
        p.fixed = topology.levels[top].overhead if top >= 0 else 0.0
        points.append(p)
    return points


def engine_times(points: list[Point], topology: Topology, placement=None) -> np.ndarray:
    """Seconds per point from the timing engine on ``topology`` (each point's algorithm)."""
    models: dict = {}
    out = []
    for p in points:
        if p.ranks not in models:
            models[p.ranks] = _model(p.ranks, topology, placement)
        out.append(models[p.ranks].time(p.collective, p.algo, p.count, p.itemsize).time)
    return np.array(out)


class _Design:
    """The decomposition laid out for one choice of regime bounds: T = X x with unknowns
    x = [overhead, link latency scale, g_1..g_R (1/bandwidth_factor), a_1..a_R (step_latency)]."""

    def __init__(self, points, cuts, defaults: Costs, terms, latency_scale: float, latency_first: bool = False,
                 min_g: float = 1e-12):
        self.min_g = min_g  # 1 / the largest bandwidth factor: links never beyond line rate
        sizes = np.array([p.m.size for p in points], float)
        self.T = np.array([p.m.time for p in points])
        L = np.array([p.L for p in points])
        k = np.array([p.k for p in points])
        W = np.array([p.W for p in points])
        self.fixed = np.array([p.fixed for p in points])
        self.bounds = list(cuts) + [math.inf]
        self.regime = np.searchsorted(np.array(cuts, float), sizes, side="right")
        R = self.R = len(self.bounds)
        # defaults: the starting overhead, the links' own latency, and the starting regime at each
        # new regime's smallest size
        start = [defaults.regime(sizes[self.regime == r].min()) if np.any(self.regime == r) else Regime()
                 for r in range(R)]
        self.default = np.array([defaults.overhead, 1.0] + [1.0 / s.bandwidth_factor for s in start]
                                + [s.step_latency for s in start])
        X = np.zeros((len(points), 2 + 2 * R))
        X[:, 0], X[:, 1] = 1.0, L
        for r in range(R):
            X[self.regime == r, 2 + r] = W[self.regime == r]
            X[self.regime == r, 2 + R + r] = k[self.regime == r]
        self.X = X
        self.names = ["overhead", "link_latency_scale"] + [f"regimes[{r}].bandwidth_factor" for r in range(R)] + \
                     [f"regimes[{r}].step_latency" for r in range(R)]
        kinds = ["overhead", "latency"] + ["bandwidth"] * R + ["latency"] * R
        # a term is determined when, at a plausible value (overhead: the smallest measured time; scales
        # and 1/bandwidth factors: 1; step latency: the topology's largest link latency), it moves some
        # modeled time by 1% or more, and its column adds rank to those kept before it: overhead first,
        # then the latency scale (or the other way round: when the data cannot tell them apart the fit
        # tries both), bandwidth factors, and step latencies from the largest regime down (the smallest
        # regime's step latency is what overhead and the latency scale absorb)
        plausible = np.array([self.T.min(), 1.0] + [1.0] * R + [latency_scale] * R)
        order = ([1, 0] if latency_first else [0, 1]) + list(range(2, 2 + R)) + list(range(1 + 2 * R, 1 + R, -1))
        Xw = X / self.T[:, None]
        effect = np.abs(Xw).max(axis=0) * plausible
        norms = np.linalg.norm(Xw, axis=0)
        kept: list[int] = []
        for j in order:
            if kinds[j] not in terms or effect[j] < 0.01:
                continue
            cols = Xw[:, kept + [j]] / norms[kept + [j]]
            if np.linalg.matrix_rank(cols, tol=1e-6) == len(kept) + 1:
                kept.append(j)
        self.free = sorted(kept)
        self.held = [j for j in range(len(self.names)) if j not in self.free]
        self.is_g = np.array([2 <= j < 2 + R for j in self.free], dtype=bool)

    def times(self, x: np.ndarray) -> np.ndarray:
        return self.fixed + self.X @ x

    def full(self, free_values: np.ndarray) -> np.ndarray:
        x = self.default.copy()
        x[self.free] = free_values
        return x

    def linear(self) -> np.ndarray:
        """Weighted (relative) linear least squares for the free terms, all >= 0 (g > 0)."""
        from scipy.optimize import lsq_linear
        held_part = self.X[:, self.held] @ self.default[self.held]
        A = self.X[:, self.free] / self.T[:, None]
        b = (self.T - self.fixed - held_part) / self.T
        lower = np.where(self.is_g, self.min_g, 0.0)
        sol = lsq_linear(A, b, bounds=(lower, np.inf), method="bvls", tol=1e-14)
        return sol.x

    def refine(self, x0: np.ndarray) -> tuple[np.ndarray, float]:
        """Least squares on log time from x0; (free values, sum of squared log residuals)."""
        from scipy.optimize import least_squares
        is_g = self.is_g
        # g in log space keeps it positive; overhead and latencies bounded below by zero
        scale = np.array([1.0 if g else max(abs(v), 1e-6) for g, v in zip(is_g, x0)])

        def unpack(z):
            return np.where(is_g, np.exp(z), z * scale)

        def residual(z):
            t = self.times(self.full(unpack(z)))
            return np.log(np.maximum(t, 1e-300)) - np.log(self.T)

        z0 = np.where(is_g, np.log(np.maximum(x0, 1e-12)), x0 / scale)
        lower = np.where(is_g, math.log(self.min_g), 0.0)
        z0 = np.maximum(z0, lower)
        if not len(z0):
            r = residual(z0)
            return x0, float(r @ r)
        sol = least_squares(residual, z0, bounds=(lower, np.inf), method="trf", x_scale="jac",
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000)
        return unpack(sol.x), 2 * float(sol.cost)


def fit_points(points: list[Point], defaults: Costs, regimes: int | None = None, terms=TERMS,
               max_regimes: int = 3, latency_scale: float = 1e-6, max_factor: float = math.inf,
               ) -> tuple[Costs, float, list[str], list[str], list[str]]:
    """(costs, link latency scale, fitted term names, held term names, notes) for the points;
    ``regimes`` None chooses 1..``max_regimes`` by BIC; ``latency_scale`` (seconds) is a plausible step
    latency; ``max_factor`` bounds the bandwidth factors. Raises FitError when there are fewer distinct
    sizes than free terms."""
    sizes = []  # the smallest size of each group of sizes closer than SIZE_STEP
    for size in sorted({p.m.size for p in points}):
        if not sizes or size >= sizes[-1] * SIZE_STEP:
            sizes.append(size)
    tops = [max(p.m.size for p in points if p.m.size < nxt) for nxt in sizes[1:]]  # each group's largest
    distinct = len({(p.m.size, p.ranks, p.collective) for p in points})
    per_regime = sum(t in terms for t in ("bandwidth", "latency"))
    base_terms = int("overhead" in terms) + int("latency" in terms)

    def needed(R):
        return base_terms + per_regime * R

    fits = [R for R in range(1, max_regimes + 1)
            if needed(R) <= distinct and (R == 1 or R * MIN_SIZES_PER_REGIME <= len(sizes))]
    counts = [regimes] if regimes else fits
    if regimes and needed(regimes) > distinct or not counts:
        R = regimes or 1
        raise FitError(f"{distinct} distinct sizes cannot determine {needed(R)} free terms ({base_terms} overhead/link "
                       f"latency and {per_regime} per regime x {R} regime(s)): measure more sizes, or fit fewer "
                       f"terms (--regimes, --fit)")
    if regimes and regimes > 1 and regimes * MIN_SIZES_PER_REGIME > len(sizes):
        raise FitError(f"{regimes} regimes need at least {regimes * MIN_SIZES_PER_REGIME} distinct sizes "
                       f"({MIN_SIZES_PER_REGIME} each), the data has {len(sizes)}")
    n = len(points)
    best = None
    for R in counts:
        gaps = [math.sqrt(a * b) for a, b in zip(tops, sizes[1:])]
        candidates = []
        for cuts in itertools.combinations(gaps, R - 1):
            held = np.searchsorted(np.array(cuts, float), np.array(sizes, float), side="right")
            if R > 1 and np.bincount(held, minlength=R).min() < MIN_SIZES_PER_REGIME:
                continue
            for latency_first in (False, True):
                design = _Design(points, cuts, defaults, terms, latency_scale, latency_first, 1.0 / max_factor)
                x0 = design.linear()
                t = design.times(design.full(x0))
                r = np.log(np.maximum(t, 1e-300)) - np.log(design.T)
                candidates.append((float(r @ r), cuts, design, x0))
        candidates.sort(key=lambda c: c[0])
        for _, cuts, design, x0 in candidates[:20]:  # refine the best few linear fits on log time
            x, rss = design.refine(x0)
            bic = n * math.log(rss / n + 1e-24) + (len(design.free) + R - 1) * math.log(n)
            if best is None or bic < best[0] - 1e-9:
                best = (bic, design, x)
    _, design, x = best
    values = design.full(x)
    R = design.R
    costs = replace(defaults, overhead=float(values[0]), regimes=tuple(
        Regime(float(design.bounds[r]), float(values[2 + R + r]), float(1.0 / values[2 + r])) for r in range(R)))
    notes = [f"{design.names[2 + r]} at its bound: the links at line rate" for r in range(R)
             if 2 + r in design.free and values[2 + r] <= design.min_g * (1 + 1e-6)]
    if len(counts) > 1:
        notes.append(f"{R} regime(s) chosen by BIC among {counts[0]}..{counts[-1]}")
    return costs, float(values[1]), [design.names[j] for j in design.free], [design.names[j] for j in design.held], notes


def calibrate(measurements: list[Measurement], topology: Topology, algo: str | None = None, placement=None,
              regimes: int | None = None, terms=TERMS, source: str = "") -> FitResult:
    """Fit ``topology``'s cost terms to ``measurements``; the result holds the calibrated topology and
    the engine's times before and after."""
    points = prepare(measurements, topology, algo, placement)
    # a bandwidth factor may bring links up to their line rate, not beyond
    costs, scale, fitted, held, notes = fit_points(points, topology.costs, regimes, terms,
                                                   latency_scale=max(lv.latency for lv in topology.levels) or 1e-6,
                                                   max_factor=1.0 / max(lv.efficiency for lv in topology.levels))
    if source:
        costs = replace(costs, source=source)
    levels = tuple(replace(lv, latency=lv.latency * scale) for lv in topology.levels)
    calibrated = replace(topology, levels=levels, costs=costs, step_latency=0.0, _cache={})
    before = engine_times(points, topology, placement)
    modeled = engine_times(points, calibrated, placement)
    decomposed = np.array([p.fixed + costs.call_overhead(p.collective) + scale * p.L
                           + p.k * costs.regime(p.count * p.itemsize).step_latency
                           + p.W / costs.regime(p.count * p.itemsize).bandwidth_factor for p in points])
    gap = float(np.max(np.abs(decomposed - modeled) / modeled)) if len(points) else 0.0
    if gap > 1e-3:
        notes.append(f"the fit's decomposition is up to {gap:.1%} off the engine's times with the fitted terms "
                     "(contention or a critical path that moves); the table shows the engine's")
    if not algo or algo == "auto":
        notes.append("algorithm per size: what auto picks on the starting topology (--algo fixes one)")
    return FitResult(calibrated, points, modeled, before, fitted, held, notes)
