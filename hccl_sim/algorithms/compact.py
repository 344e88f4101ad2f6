"""Compact, timing-only schedules for very large communicators, built with numpy.

At 10^6 ranks a Python loop over ranks per step is too slow, and a ring's 2(p-1) steps of p
transfers (2 x 10^12) cannot be written out. These builders describe the same algorithms as the
data schedules, for the timing engine only:

- every builder works on a 2-D array of ranks, shape (q, k): ``k`` independent instances of the
  algorithm over ``q`` positions each (one ring per column), so a hierarchical phase over 131,072
  servers is one array operation and one step, not 131,072 schedules merged;
- a ring's reduce-scatter (or allgather) is one step of q*k transfers repeated q-1 times
  (``Step.repeat``). With uneven chunks every transfer carries the largest chunk: at most one
  element more than the data schedule moves per transfer;
- offsets and buffer ids are zero (broadcast arrays, no memory): the engine times bytes over routes
  and never reads them, and data executors refuse these schedules (``Schedule.timing_only``).
- RHD with p not a power of two folds the first 2r ranks into the core as the data schedule does;
  its reduce-scatter and allgather then split the buffer over the power-of-two core (blocks of
  n/p' where the data schedule moves the fold partners' n/p blocks separately).
- NHR: one transfer per rank and step carrying the m(d) slices the data schedule sends then (see
  ``nhr_pass``); ceil(log2 q) steps, no repeats.
- All-to-all ``pairwise`` over a level structure (``Context.radices``) pairs ranks digit by digit:
  in step k rank i sends to the rank whose mixed-radix digits are i's plus k's, each digit modulo
  its radix (no carries). Every step is a permutation and every pair meets once, as in the
  shift-order pairwise, but all routes of a step now cross the same levels, so steps fall into a
  few classes of identical load pattern; each class is one step repeated. See ``alltoall_pairwise``.
"""
from __future__ import annotations

import numpy as np

from . import mesh
from .ring import segments_of
from .schedule import Step, chunk_bounds

_RANK = np.int32  # rank ids in compact steps: half the memory of int64 at 10^6 ranks


def _broadcast(value, n, dtype):
    return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))


def _counts(values: np.ndarray) -> np.ndarray:
    """Per-transfer counts; a uniform column becomes a zero-memory broadcast."""
    values = np.asarray(values, dtype=np.int64).ravel()
    if len(values) and (values == values[0]).all():
        return _broadcast(values[0], len(values), np.int64)
    return values


def compact_step(src, dst, count, reduce: bool, repeat: int = 1) -> Step:
    n = len(src)
    zero64, zero8 = _broadcast(0, n, np.int64), _broadcast(0, n, np.int8)
    return Step(src, dst, zero8, zero64, zero8, zero64, _counts(count), _broadcast(reduce, n, bool), repeat)


def _as_columns(ranks) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=_RANK)
    return ranks[:, None] if ranks.ndim == 1 else ranks


# ---- ring ------------------------------------------------------------------------------------
def ring_pass(ranks, counts, reduce: bool) -> list[Step]:
    """One ring reduce-scatter (reduce) or allgather (copy) per column of ``ranks`` over ``counts[col]``."""
    ranks = _as_columns(ranks)
    q, k = ranks.shape
    if q < 2:
        return []
    chunk = -(-np.broadcast_to(np.asarray(counts, dtype=np.int64), (k,)) // q)  # largest chunk
    src = ranks.ravel()
    dst = np.roll(ranks, -1, axis=0).ravel()
    return [compact_step(src, dst, np.broadcast_to(chunk, (q, k)), reduce, repeat=q - 1)]


def ring_allreduce(ranks, counts) -> list[Step]:
    return ring_pass(ranks, counts, True) + ring_pass(ranks, counts, False)


# ---- recursive halving-doubling ----------------------------------------------------------------
def _fold(ranks):
    """(core rows, folded-in even rows, their odd partners) for q not a power of two."""
    q = ranks.shape[0]
    core = 1 << (q.bit_length() - 1)
    r = q - core
    odd, even = ranks[1:2 * r:2], ranks[0:2 * r:2]
    return np.concatenate([odd, ranks[2 * r:]]), even, odd


def _partners(q: int, d: int) -> np.ndarray:
    return np.arange(q) ^ d


_PARTNER_RANKS: dict = {}


def _partner_ranks(core: np.ndarray, d: int) -> np.ndarray:
    """``core`` rows exchanged at distance d, flattened; shared by halving and doubling and by every
    size of the same communicator (a million-rank array each; schedules of many sizes are cached)."""
    key = (core.shape, hash(core.tobytes()), d)
    found = _PARTNER_RANKS.get(key)
    if found is None:
        if len(_PARTNER_RANKS) > 256:
            _PARTNER_RANKS.clear()
        found = _PARTNER_RANKS[key] = core[_partners(core.shape[0], d)].ravel()
    return found


def _halving(core, counts, reduce=True):
    """Halving steps over the rows of ``core``; returns steps and each row's (lo, hi) per column."""
    q, k = core.shape
    lo = np.zeros((q, k), dtype=np.int64)
    hi = np.broadcast_to(np.asarray(counts, dtype=np.int64), (k,)).repeat(q).reshape(k, q).T.copy()
    steps, src, d = [], core.ravel(), q // 2
    while d >= 1:
        partner = _partners(q, d)
        mid = lo + (hi - lo + 1) // 2
        lower = (np.arange(q) < partner)[:, None]
        give = np.where(lower, hi - mid, mid - lo)
        steps.append(compact_step(src, _partner_ranks(core, d), give, reduce))
        lo, hi = np.where(lower, lo, mid), np.where(lower, mid, hi)
        d //= 2
    return steps, lo, hi


def _doubling(core, lo, hi):
    q, _ = core.shape
    steps, src, d = [], core.ravel(), 1
    while d < q:
        partner = _partners(q, d)
        steps.append(compact_step(src, _partner_ranks(core, d), hi - lo, False))
        lo, hi = np.minimum(lo, lo[partner]), np.maximum(hi, hi[partner])
        d *= 2
    return steps


def _fold_step(src, dst, counts, reduce):
    k = src.shape[1]
    return [compact_step(src.ravel(), dst.ravel(), np.broadcast_to(np.asarray(counts, np.int64), (k,))
                         .repeat(src.shape[0]).reshape(k, -1).T, reduce)] if len(src) else []


def rhd_allreduce(ranks, counts) -> list[Step]:
    ranks = _as_columns(ranks)
    core, even, odd = _fold(ranks)
    halving, lo, hi = _halving(core, counts)
    return (_fold_step(even, odd, counts, True) + halving + _doubling(core, lo, hi)
            + _fold_step(odd, even, counts, False))


def rhd_reduce_scatter(ranks, counts) -> list[Step]:
    ranks = _as_columns(ranks)
    q = ranks.shape[0]
    core, even, odd = _fold(ranks)
    halving, _, _ = _halving(core, counts)
    block = -(-np.asarray(counts, dtype=np.int64) // q)
    return _fold_step(even, odd, counts, True) + halving + _fold_step(odd, even, block, False)


def rhd_allgather(ranks, counts) -> list[Step]:
    ranks = _as_columns(ranks)
    q = ranks.shape[0]
    core, even, odd = _fold(ranks)
    c = core.shape[0]
    k = ranks.shape[1]
    total = np.broadcast_to(np.asarray(counts, dtype=np.int64), (k,))
    bounds = (np.arange(c + 1)[:, None] * total[None, :]) // c  # the core's blocks after a halving
    block = -(-total // q)
    return (_fold_step(even, odd, block, False) + _doubling(core, bounds[:-1], bounds[1:])
            + _fold_step(odd, even, counts, False))


# ---- NHR (nonuniform hierarchical ring, see nhr.py) -----------------------------------------------
def nhr_pass(ranks, counts, reduce: bool) -> list[Step]:
    """NHR reduce-scatter (reduce) or allgather (copy) per column of ``ranks`` over ``counts[col]``.

    Step at distance d: row i sends m(d) = floor((q-1+d)/2d) slices to row i-d (reduce-scatter,
    d = 1, 2, 4, ...) or i+d (allgather, d the other way round), as one transfer of m(d) largest chunks:
    the data schedule's m(d) slices, merged (as HCCL's allreduce slice map makes them for q = 2^k or
    3 * 2^k) or not (several transfers of the same pair, whose reduces the engine overlaps)."""
    ranks = _as_columns(ranks)
    q, k = ranks.shape
    if q < 2:
        return []
    chunk = -(-np.broadcast_to(np.asarray(counts, dtype=np.int64), (k,)) // q)  # largest chunk
    src = ranks.ravel()
    ds = [1 << s for s in range((q - 1).bit_length())]
    steps = []
    for d in (ds if reduce else ds[::-1]):
        m = (q - 1 + d) // (2 * d)
        dst = np.roll(ranks, d if reduce else -d, axis=0).ravel()  # row i -> row i-d (i+d)
        steps.append(compact_step(src, dst, np.broadcast_to(m * chunk, (q, k)), reduce))
    return steps


def nhr_allreduce(ranks, counts) -> list[Step]:
    return nhr_pass(ranks, counts, True) + nhr_pass(ranks, counts, False)


# ---- binomial tree (tree.py) ---------------------------------------------------------------------
def tree_broadcast(nranks: int, count: int, root: int = 0, reduce: bool = False) -> list[Step]:
    """Binomial broadcast from ``root`` (or, with ``reduce``, its time-reversal: the binomial reduce to
    ``root``): ceil(log2 p) steps, the same transfers as tree.py's, in the same order; numpy-built."""
    pos = np.arange(nranks, dtype=np.int64)
    ranks = ((pos + root) % nranks).astype(_RANK)  # positions relative to the root, as tree.py
    steps = []
    for k in reversed(range(max(nranks - 1, 0).bit_length())):
        d = 1 << k
        senders = pos[0:nranks - d:2 * d]
        src, dst = ranks[senders], ranks[senders + d]
        steps.append(compact_step(dst, src, _broadcast(count, len(src), np.int64), True) if reduce
                     else compact_step(src, dst, _broadcast(count, len(src), np.int64), False))
    return steps[::-1] if reduce else steps


# ---- hierarchical ------------------------------------------------------------------------------
INTER_ALLREDUCE = {"ring": ring_allreduce, "rhd": rhd_allreduce, "nhr": nhr_allreduce}


def hier_allreduce(groups: np.ndarray, count: int, inter: str = "ring") -> list[Step]:
    """Ring reduce-scatter inside every server at once, the inter-server allreduce of shard j among
    the ranks with local index j (all j at once), ring allgather inside every server."""
    if inter not in INTER_ALLREDUCE:
        raise ValueError(f"hier: inter-server algorithm {inter!r} has no compact form (compact: {', '.join(INTER_ALLREDUCE)})")
    groups = np.asarray(groups, dtype=_RANK)  # (servers, m)
    m = groups.shape[1]
    shard = np.diff((np.arange(m + 1) * count) // m)  # per local index, near-equal
    intra = groups.T  # columns are servers
    return (ring_pass(intra, count, True) + INTER_ALLREDUCE[inter](groups, shard)
            + ring_pass(intra, count, False))


# ---- all-to-all --------------------------------------------------------------------------------
def alltoall_pairwise(nranks: int, count: int, radices: tuple[int, ...], mesh_levels: int = 0) -> list[Step]:
    """Pairwise all-to-all in digit order over the mixed-radix rank grid ``radices`` (level 0 first,
    the first ``mesh_levels`` of them full-mesh dimensions); ``count`` elements a rank, equal blocks.

    Step k (1..p-1) sends rank i's block for rank j = i (+) k, adding digit by digit modulo each radix
    (no carries). Two steps use the same number of flows on every link, up to relabeling of the
    links, when their highest non-zero digit is the same switch level (a route climbs every switch
    level up to its highest differing one, whatever the lower digits), or when they have no non-zero
    switch digit and the same set of non-zero mesh digits (one mesh hop per such digit). So on a
    topology whose levels are ``radices`` (linear placement, no per-link degradation: the network
    model sets ``radices`` only then) such steps take the same time from a common start, and each
    class is one representative step (digit 1 where the class has non-zero digits) repeated by the
    class size. Exact for the stepwise engine; the shift-order data schedule differs in which pairs
    meet when, not in what is sent.
    """
    radices = tuple(int(r) for r in radices)
    if nranks < 2:
        return []
    if int(np.prod(radices)) != nranks:
        raise ValueError(f"alltoall: radices {radices} do not multiply to {nranks} ranks")
    block = count // nranks
    digits = np.arange(nranks, dtype=np.int64)
    strides = np.concatenate([[1], np.cumprod(radices)[:-1]]).astype(np.int64)
    coords = [(digits // strides[i]) % radices[i] for i in range(len(radices))]
    src = digits.astype(_RANK)

    def step_for(levels, repeat):
        dst = digits.copy()
        for i in levels:  # digit i of the partner is i's plus one, modulo the radix
            dst += (((coords[i] + 1) % radices[i]) - coords[i]) * strides[i]
        return compact_step(src, dst.astype(_RANK), _broadcast(block, nranks, np.int64), False, repeat)

    steps = []
    mesh = [i for i in range(min(mesh_levels, len(radices))) if radices[i] > 1]
    for subset in range(1, 1 << len(mesh)):  # no switch digit: classes by the set of mesh digits
        levels = [mesh[b] for b in range(len(mesh)) if subset >> b & 1]
        steps.append(step_for(levels, int(np.prod([radices[i] - 1 for i in levels]))))
    for top in range(mesh_levels, len(radices)):  # highest non-zero digit at switch level ``top``
        if radices[top] > 1:
            steps.append(step_for([top], (radices[top] - 1) * int(strides[top])))
    return steps


# ---- registry: collective -> algorithm -> builder(ctx, count, variant), used when ctx.compact ---
def _ranks(ctx):
    return np.arange(ctx.nranks, dtype=_RANK)


def _hier(ctx, count, variant):
    from . import levels  # levels builds on this module's passes
    names = variant.split("/") if variant else []
    if levels.applies(ctx, names) and (len(names) > 2 or ctx.mesh_levels):
        return levels.allreduce(ctx, count, names)
    if len(names) > 2:
        levels.check_names(ctx, names, "hier")
    intra, _, inter = (variant or "ring/ring").partition("/")
    if (intra or "ring") != "ring":
        span = ""
        if ctx.radices:  # two names on ranks that span more levels: say how to name one per level
            sizes = [ctx.radices[i] for i in levels.grid_levels(ctx.radices)]
            span = (f"; these ranks span {len(sizes)} levels of sizes {sizes}: name one algorithm per level "
                    f"(hier:A0/.../A{len(sizes) - 1}, HCCL_ALGO level0:..;level{len(sizes) - 1}:..)")
        raise ValueError(f"hier: intra-server algorithm {intra!r} has no compact form (compact: ring){span}")
    return hier_allreduce(np.array(ctx.groups, dtype=_RANK), count, inter or "ring")


def _hier_blocks(collective):
    def build(ctx, count, variant):
        from . import levels
        return levels.compact_blocks(ctx, count, variant.split("/") if variant else [], collective)
    return build


def _alltoall(ctx, count, _):
    if not ctx.radices:
        raise ValueError("alltoall: the compact pairwise schedule needs the rank grid of a regular topology "
                         "with linear placement (Context.radices)")
    return alltoall_pairwise(ctx.nranks, count, ctx.radices, ctx.mesh_levels)


# a mesh step holds p(p-1) transfers: above this many the full-mesh schedule is refused (memory: ~50
# bytes a transfer), naming the forms that scale
MESH_MAX_TRANSFERS = 1 << 23


def _mesh(build):
    """The full-mesh schedule (numpy-built, equal chunks) as a compact builder, refused above
    MESH_MAX_TRANSFERS transfers a step."""
    def compact(ctx, count, _):
        p = ctx.nranks
        if p * (p - 1) > MESH_MAX_TRANSFERS:
            raise ValueError(f"mesh: {p} ranks make {p * (p - 1)} transfers a step (at most {MESH_MAX_TRANSFERS}); "
                             "at this scale use mesh by level (hier:mesh/...) or, for all-to-all, gmesh")
        return build(list(range(p)), count)
    return compact


def _gmesh(ctx, count, variant):
    from . import gmesh  # gmesh builds on this module's compact_step
    return gmesh.compact_alltoall(ctx, count, variant)


def _equal_blocks(count, p):
    return segments_of(chunk_bounds(count, p))


COMPACT_BUILDERS = {
    "allreduce": {
        "ring": lambda ctx, count, _: ring_allreduce(_ranks(ctx), count),
        "rhd": lambda ctx, count, _: rhd_allreduce(_ranks(ctx), count),
        "nhr": lambda ctx, count, _: nhr_allreduce(_ranks(ctx), count),
        "hier": _hier,
        "mesh": _mesh(lambda ranks, count: mesh.allreduce(ranks, count)),
    },
    "reduce_scatter": {
        "ring": lambda ctx, count, _: ring_pass(_ranks(ctx), count, True),
        "rhd": lambda ctx, count, _: rhd_reduce_scatter(_ranks(ctx), count),
        "nhr": lambda ctx, count, _: nhr_pass(_ranks(ctx), count, True),
        "hier": _hier_blocks("reduce_scatter"),  # one algorithm per level only (levels.py)
        "mesh": _mesh(lambda ranks, count: mesh.reduce_scatter_blocks(ranks, _equal_blocks(count, len(ranks)))),
    },
    "allgather": {
        "ring": lambda ctx, count, _: ring_pass(_ranks(ctx), count, False),
        "rhd": lambda ctx, count, _: rhd_allgather(_ranks(ctx), count),
        "nhr": lambda ctx, count, _: nhr_pass(_ranks(ctx), count, False),
        "hier": _hier_blocks("allgather"),
        "mesh": _mesh(lambda ranks, count: mesh.allgather_blocks(ranks, _equal_blocks(count, len(ranks)))),
    },
    # rooted: builder(ctx, count, variant, root), see ROOTED
    "broadcast": {"tree": lambda ctx, count, _, root: tree_broadcast(ctx.nranks, count, root)},
    "reduce": {"tree": lambda ctx, count, _, root: tree_broadcast(ctx.nranks, count, root, reduce=True)},
    "alltoall": {
        "pairwise": _alltoall,
        "mesh": _mesh(lambda ranks, count: mesh.alltoall(ranks, np.full((len(ranks),) * 2, count // len(ranks)))),
        "gmesh": _gmesh,
    },
}
# collectives whose compact builders also take the root rank
ROOTED = {"broadcast", "reduce"}
