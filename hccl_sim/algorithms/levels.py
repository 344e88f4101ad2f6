"""HCCL's level structure as deep as the topology: ``hier:A0/A1/.../Ak``, one algorithm per level of
the rank grid (level0 board, level1 cabinet or server, level2 SuperPoD, ...; HCCL_ALGO
``level0:..;level1:..;level2:..``).

The ranks form a mixed-radix grid over the topology's levels (``Context.radices``, level 0 fastest;
the network model sets it when the placement is linear and the ranks fill whole units). Allreduce
reduce-scatters down the levels (each level splits the segment it holds among the members of its
group), allreduces the last segment across the top level, and allgathers back up. Reduce-scatter is
the first half with a reduce-scatter at the top, allgather the second with an allgather there.
Broadcast scatters the root's chunks down the levels then allgathers up; reduce reduce-scatters down
then gathers up to the root (HCCL's scatter + allgather and reduce-scatter + gather, by level).

Full-mesh levels at the bottom that all run ``mesh`` go at once, so every link of an nD full mesh
carries data together (UB-Mesh's concurrent dimensions): the buffer is split into parts, and each
part visits the mesh dimensions in its own order, rotated within each class of identical dimensions
(same size and link bandwidth, ``Context.level_classes``). On an 8 x 8 2D full mesh half the buffer
goes board-then-cabinet and half cabinet-then-board, so both dimensions' links carry a half at every
step. Cost there (n bytes, s members a dimension, b per link): reduce-scatter
``D a + n/2 (s-1)/s (1 + 1/s) b / (s-1)``, i.e. the whole mesh's n (p-1)/p over the NPU's 2(s-1) links.

A mesh step of dimension d sends from every rank one chunk to each of the s-1 other members of its
group (a reduce in the reduce-scatter, a copy in the allgather): transfers are built with numpy for
all ranks at once, with real offsets, so the same schedule serves data executors and the timing
engine at any size. Other levels use the per-group algorithms of hierarchical.py (full schedules) or
their compact forms (timing-only, ``Context.compact``): each algorithm's registered ``Level``.
"""
from __future__ import annotations

from math import lcm

import numpy as np

from .registry import level_forms
from .ring import segments_of
from .schedule import Step, array_step, chunk_bounds, merge_parallel, reverse_steps
# the collectives with an N-level form here (broadcast and reduce: full schedules only, not at compact scale)
COLLECTIVES = ("allreduce", "reduce_scatter", "allgather", "broadcast", "reduce")


def grid_levels(radices) -> list[int]:
    """The grid levels the communicator spans (radix > 1)."""
    return [i for i, r in enumerate(radices) if r > 1]


def applies(ctx, names) -> bool:
    """``hier:`` with one name per spanned grid level selects this composition."""
    return bool(ctx.radices) and len(names) == len(grid_levels(ctx.radices)) and len(names) >= 1


def check_names(ctx, names, collective):
    if not ctx.radices:
        raise ValueError(f"{collective}: hier with {len(names)} levels needs the ranks to fill whole units of the "
                         "topology's levels in order (linear placement, no faults)")
    levels = grid_levels(ctx.radices)
    if len(names) != len(levels):
        raise ValueError(f"{collective}: hier with {len(names)} levels ({'/'.join(names)}), but the ranks span "
                         f"{len(levels)} levels of sizes {[ctx.radices[i] for i in levels]}")
    reduce_scatter = level_forms("reduce_scatter")
    table = level_forms("allreduce") if collective == "allreduce" else reduce_scatter
    for i, name in enumerate(names):
        ok = name in (table if i == len(names) - 1 else reduce_scatter)
        if not ok:
            raise ValueError(f"hier: level{i} algorithm {name!r} is not one of "
                             f"{', '.join(table if i == len(names) - 1 else reduce_scatter)}")


class _Grid:
    def __init__(self, radices):
        self.radices = [int(r) for r in radices]
        self.strides = np.concatenate([[1], np.cumprod(self.radices)[:-1]]).astype(np.int64)
        self.n = int(np.prod(self.radices))
        self.ranks = np.arange(self.n, dtype=np.int64)

    def coord(self, d):
        return (self.ranks // self.strides[d]) % self.radices[d]

    def columns(self, d):
        """Ranks as an (s_d, n / s_d) array: each column one level-d group, rows its members in order."""
        s, stride = self.radices[d], int(self.strides[d])
        others = self.ranks[self.coord(d) == 0]
        return others[None, :] + (np.arange(s, dtype=np.int64) * stride)[:, None]


def _mesh_step(grid: _Grid, d: int, lo: np.ndarray, hi: np.ndarray):
    """Reduce-scatter over dimension d of the segment [lo, hi) each rank holds: every rank sends chunk
    j to the member with coordinate j. Returns (src, dst, off, count) and the kept chunk."""
    s, stride = grid.radices[d], int(grid.strides[d])
    c = grid.coord(d)
    j = np.arange(s, dtype=np.int64)[None, :]
    length = (hi - lo)[:, None]
    start = lo[:, None] + (length * j) // s
    end = lo[:, None] + (length * (j + 1)) // s
    keep = j != c[:, None]
    src = np.broadcast_to(grid.ranks[:, None], keep.shape)[keep]
    dst = (grid.ranks[:, None] + (j - c[:, None]) * stride)[keep]
    off, cnt = start[keep], (end - start)[keep]
    mine = np.arange(grid.n)
    return (src, dst, off, cnt), start[mine, c], end[mine, c]


def _step(parts, reduce: bool) -> Step:
    src, dst, off, cnt = (np.concatenate(x) for x in zip(*parts))
    nz = cnt > 0
    src, dst, off, cnt = src[nz], dst[nz], off[nz], cnt[nz]
    z8 = np.zeros(len(src), np.int8)
    return Step(src, dst, z8, off, z8.copy(), off.copy(), cnt, np.full(len(src), reduce))


def _orders(dims, classes, bandwidth=(), radices=()):
    """(order, weight) per part: every part visits the mesh dimensions ``dims`` in its own order, each
    class of identical dimensions rotated (level order), so a class's dimensions carry parts at once.
    With the per-NPU bandwidth of each level known, parts also start at every class, weighted by what
    a first step there moves per second (dimension of r members, links of b: r b), so slow dimensions
    work while fast ones carry the bulk; otherwise every part starts at the first class, equal weights."""
    groups = {}
    for d in dims:
        groups.setdefault(classes[d] if classes else d, []).append(d)
    groups = list(groups.values())
    if not groups:
        return [[]], [1.0]
    rotations = lcm(*(len(g) for g in groups))
    starts = range(len(groups)) if bandwidth else [0]
    orders, weights = [], []
    for c in starts:
        d = groups[c][0]
        rate = bandwidth[d] * radices[d] / (radices[d] - 1) if bandwidth else 1.0
        for k in range(rotations):
            orders.append([d for g in groups[c:] + groups[:c] for d in (g[k % len(g):] + g[:k % len(g)])])
            weights.append(rate)
    return orders, weights


def _cuts(lo, hi, weights):
    """Part boundaries of [lo, hi) (arrays) in proportion to ``weights``; exact ends."""
    total = float(sum(weights))
    frac = np.cumsum([0.0] + list(weights)) / total
    cuts = [lo + np.floor((hi - lo) * f).astype(np.int64) for f in frac[:-1]] + [np.asarray(hi, np.int64)]
    if len(set(weights)) == 1:  # equal parts: integer arithmetic, as chunk_bounds
        cuts = [lo + ((hi - lo) * k) // len(weights) for k in range(len(weights))] + [np.asarray(hi, np.int64)]
    return cuts


def _mesh_reduce_scatter(grid, dims, classes, lo0, hi0, bandwidth=()):
    """Concurrent reduce-scatter over the mesh dimensions ``dims``, the buffer [lo0, hi0) of every rank
    split in parts with rotated orders. Returns steps and each part's final (lo, hi) per rank."""
    orders, weights = _orders(dims, classes, bandwidth, grid.radices)
    bounds = _cuts(np.int64(lo0), np.int64(hi0), weights)
    state = [(np.full(grid.n, bounds[k], np.int64), np.full(grid.n, bounds[k + 1], np.int64))
             for k in range(len(orders))]
    steps = []
    for t in range(len(dims)):
        parts = []
        for k, order in enumerate(orders):
            transfers, lo, hi = _mesh_step(grid, order[t], *state[k])
            parts.append(transfers)
            state[k] = (lo, hi)
        steps.append(_step(parts, True))
    return steps, state


def _bottom_mesh(ctx, names, spanned):
    """The spanned levels from the bottom that are full-mesh and named ``mesh``."""
    out = []
    for lvl, name in zip(spanned, names):
        if lvl < ctx.mesh_levels and name == "mesh":
            out.append(lvl)
        else:
            break
    return out


def _upper(ctx, grid, levels, names, state, top: str):
    """Levels above the mesh phase for every part, in order: reduce-scatter down, then ``top`` at the
    last level ("allreduce", "reduce_scatter" or none), then allgather up. Returns (down, top, up) steps."""
    down, up = [], []
    if not levels:
        return down, [], up
    segs = state
    *middle, last = list(zip(levels, names))
    for lvl, name in middle:
        rs, ag, segs = _level_pass(ctx, grid, lvl, name, segs)
        down += rs
        up = ag + up
    lvl, name = last
    if top == "allreduce":
        return down, _top_allreduce(ctx, grid.columns(lvl), name, segs), up
    rs, ag, _ = _level_pass(ctx, grid, lvl, name, segs)
    return down + (rs if top == "reduce_scatter" else []), [], (ag if top == "allgather" else []) + up


def _merged_counts(cols, segs):
    """Elements per column over all parts (all members of a column hold the same segments): at scale
    the parts' segments of one column travel as one transfer, timing only (the fluid model gives two
    equal flows on one route the time of one flow of both)."""
    return sum(hi[cols[0]] - lo[cols[0]] for lo, hi in segs)


def _level_pass(ctx, grid, lvl, name, segs):
    """Reduce-scatter (and the matching allgather) at level ``lvl`` over every group and part."""
    cols = grid.columns(lvl)
    s, ncol = cols.shape
    new = []
    compact_rs, compact_ag = level_forms("compact_reduce_scatter"), level_forms("compact_allgather")
    if ctx.compact and name in compact_rs and name != "mesh":
        rs_fn, ag_fn = compact_rs[name], compact_ag[name]
        counts = _merged_counts(cols, segs)
        rs, ag = rs_fn(cols, counts), ag_fn(cols, counts)
        new = [(lo, lo + -(-(hi - lo) // s)) for lo, hi in segs]  # compact passes move largest chunks
        return rs, ag, new
    if name == "mesh":
        rs_parts, new = [], []
        for lo, hi in segs:
            transfers, nlo, nhi = _mesh_step(grid, lvl, lo, hi)
            rs_parts.append(transfers)
            new.append((nlo, nhi))
        rs = [_step(rs_parts, True)]
        return rs, reverse_steps(rs, reduce=False), new
    if ctx.compact:
        raise ValueError(f"hier: level algorithm {name!r} has no compact form (compact: mesh, {', '.join(compact_rs)})")
    rs_fn, ag_fn = level_forms("reduce_scatter")[name], level_forms("allgather")[name]
    rs_lists, ag_lists = [], []
    for lo, hi in segs:
        nlo, nhi = lo.copy(), hi.copy()
        for col in range(ncol):
            members = cols[:, col]
            a, b = int(lo[members[0]]), int(hi[members[0]])
            bounds = a + chunk_bounds(b - a, s)
            blocks = segments_of(bounds)
            rs_lists.append(rs_fn([int(m) for m in members], blocks))
            ag_lists.append(ag_fn([int(m) for m in members], blocks))
            nlo[members], nhi[members] = bounds[:-1], bounds[1:]
        new.append((nlo, nhi))
    return merge_parallel(rs_lists), merge_parallel(ag_lists), new


def _top_allreduce(ctx, cols, name, segs):
    if name == "mesh" or not ctx.compact:
        inter = level_forms("allreduce")
        if name not in inter:
            raise ValueError(f"hier: top-level algorithm {name!r} is not one of {', '.join(inter)}")
        lists = []
        for lo, hi in segs:
            for col in range(cols.shape[1]):
                members = cols[:, col]
                a, b = int(lo[members[0]]), int(hi[members[0]])
                lists.append(inter[name]([int(m) for m in members], b - a, a))
        return merge_parallel(lists)
    compact = level_forms("compact_allreduce")
    if name not in compact:
        raise ValueError(f"hier: top-level algorithm {name!r} has no compact form (compact: mesh, "
                         f"{', '.join(compact)})")
    return compact[name](cols, _merged_counts(cols, segs))


def _plan(ctx, names, count):
    grid = _Grid(ctx.radices)
    spanned = grid_levels(ctx.radices)
    mesh_dims = _bottom_mesh(ctx, names, spanned)
    if len(mesh_dims) == len(spanned) and mesh_dims:  # all levels mesh: no top level left over
        return grid, mesh_dims, [], [], count
    rest = spanned[len(mesh_dims):]
    return grid, mesh_dims, rest, names[len(mesh_dims):], count


def _down(ctx, names, count, top):
    grid, mesh_dims, rest, rest_names, _ = _plan(ctx, names, count)
    if mesh_dims:
        rs, state = _mesh_reduce_scatter(grid, mesh_dims, ctx.level_classes, 0, count, ctx.level_bandwidth)
    else:
        rs, state = [], [(np.zeros(grid.n, np.int64), np.full(grid.n, count, np.int64))]
    down, middle, up = _upper(ctx, grid, rest, rest_names, state, top)
    return rs, down, middle, up


def allreduce(ctx, count, names):
    """Steps of the N-level allreduce over ``count`` elements (see the module docstring)."""
    check_names(ctx, names, "allreduce")
    rs, down, middle, up = _down(ctx, names, count, "allreduce")
    return rs + down + middle + up + reverse_steps(rs, reduce=False)


def compact_blocks(ctx, count, names, collective):
    """Equal blocks at scale (timing-only): the allreduce's passes with a reduce-scatter or allgather
    at the top move the same bytes per transfer as the block schedules."""
    check_names(ctx, names, collective)
    rs, down, _, up = _down(ctx, names, count, collective)
    return rs + down if collective == "reduce_scatter" else up + reverse_steps(rs, reduce=False)


def _block_steps(grid, held, level, off, cnt):
    """Reduce-scatter at ``level`` of what each rank holds: rank r sends to the member with coordinate j
    its held blocks whose level coordinate is j. ``held``: (rank, block) booleans; ``off``/``cnt``: the
    piece of each block this pass moves."""
    c = grid.coord(level)
    r, b = np.nonzero(held & (c[None, :] != c[:, None]))
    return r, r + (c[b] - c[r]) * int(grid.strides[level]), off[b], cnt[b]


def reduce_scatter_blocks(ctx, blocks, names):
    """N-level reduce-scatter of per-rank blocks (``blocks[r]``: rank r's one (offset, count) segment):
    concurrent mesh dimensions with every block split in parts, then each remaining level's algorithm
    over the blocks its members keep. Afterwards rank r holds block r reduced over all ranks."""
    check_names(ctx, names, "reduce_scatter")
    if any(len(blk) != 1 for blk in blocks):
        raise ValueError("hier by level: needs one segment per rank's block")
    grid = _Grid(ctx.radices)
    spanned = grid_levels(ctx.radices)
    mesh_dims = _bottom_mesh(ctx, names, spanned)
    orders, weights = _orders(mesh_dims, ctx.level_classes, ctx.level_bandwidth, ctx.radices)
    start = np.array([blk[0][0] for blk in blocks], np.int64)
    length = np.array([blk[0][1] for blk in blocks], np.int64)
    cuts = _cuts(start, start + length, weights)
    pieces = [(cuts[k], cuts[k + 1] - cuts[k]) for k in range(len(orders))]  # part k of every block
    coords = [grid.coord(d) for d in range(len(grid.radices))]
    same = [coords[d][None, :] == coords[d][:, None] for d in range(len(coords))]
    steps, held = [], [np.ones((grid.n, grid.n), bool) for _ in orders]
    for t in range(len(mesh_dims)):
        parts = []
        for k, order in enumerate(orders):
            parts.append(_block_steps(grid, held[k], order[t], *pieces[k]))
            held[k] &= same[order[t]]
        steps.append(_step(parts, True))
    held = held[0]  # every part has now been through the same levels
    for level, name in zip(spanned[len(mesh_dims):], names[len(mesh_dims):]):
        if name == "mesh":
            steps.append(_step([_block_steps(grid, held, level, *piece) for piece in pieces], True))
        else:
            cols, lists = grid.columns(level), []
            for col in range(cols.shape[1]):
                members = [int(m) for m in cols[:, col]]
                mine = held[members[0]]
                member_blocks = [[(int(o[b]), int(n[b])) for b in np.flatnonzero(mine & (coords[level] == j))
                                  for o, n in pieces] for j in range(len(members))]
                lists.append(level_forms("reduce_scatter")[name](members, member_blocks))
            steps += merge_parallel(lists)
        held &= same[level]
    return steps


def allgather_blocks(ctx, blocks, names):
    """The reduce-scatter's transfers reversed, as copies: rank r's block r goes back down every
    reduction tree, so each rank ends with every block."""
    return reverse_steps(reduce_scatter_blocks(ctx, blocks, names), reduce=False)


def _scatter_down(ctx, bounds, root):
    """The root's blocks down the spanned levels, top level first (HCCL's scatter before an allgather):
    at level d each rank holding its subtree's blocks sends every other member of its level-d group the
    blocks of that member's subtree (the ranks sharing its coordinates from level d up: a contiguous
    range of blocks, one transfer). One step per level; afterwards rank r holds block r."""
    grid = _Grid(ctx.radices)
    holders, steps = np.array([root], np.int64), []
    for d in reversed(grid_levels(ctx.radices)):
        s, stride = grid.radices[d], int(grid.strides[d])
        c = (holders // stride) % s
        dst = (holders[:, None] + (np.arange(s, dtype=np.int64)[None, :] - c[:, None]) * stride).ravel()
        src = np.repeat(holders, s)
        base = dst - dst % stride
        off, cnt = bounds[base], bounds[base + stride] - bounds[base]
        keep = (dst != src) & (cnt > 0)
        steps.append(array_step(src[keep], dst[keep], off[keep], off[keep], cnt[keep], False))
        holders = dst
    return [step for step in steps if len(step)]


def broadcast(ctx, count, root, names):
    """Scatter down the levels from the root, then the N-level allgather up (``names`` its level
    algorithms): HCCL's broadcast as scatter + allgather, by level."""
    bounds = chunk_bounds(count, ctx.nranks)
    return _scatter_down(ctx, bounds, root) + allgather_blocks(ctx, segments_of(bounds), names)


def reduce(ctx, count, root, names):
    """The N-level reduce-scatter (``names`` its level algorithms), then the scatter's transfers reversed:
    a gather up the levels to the root."""
    bounds = chunk_bounds(count, ctx.nranks)
    return (reduce_scatter_blocks(ctx, segments_of(bounds), names)
            + reverse_steps(_scatter_down(ctx, bounds, root), reduce=False))
