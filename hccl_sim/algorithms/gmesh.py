"""Grouped full-mesh all-to-all (HCCL's direct full-mesh all-to-all on A3, run in rounds of peers).

HCCL sends to a bounded set of peers at a time (``ALLTOALLV_DIRECT_FULLMESH_SDMA_CONCURRENT_SIZE``,
8 or 16 in CANN's hccl sources). Here a round's peers are one group of the rank grid
(``Context.radices``): the full-mesh levels at the bottom, or the level-0 group (server, board) where
there are none, G ranks. Round u (0..p/G-1) has rank i send to every member of the group at the
grid position of i's group plus u, added digit by digit modulo each radix (no carries): round 0 is
the full mesh inside the group, and every pair of ranks meets in exactly one round.

Cost with equal blocks of n/p (n the bytes a rank sends) where each rank's link carries its G
transfers of a round: a0 + (G-1) n/p b inside the group, then p/G - 1 rounds of a + G n/p b; on one
full mesh or one switch (G = p) it is the mesh algorithm, a + (p-1)/p n b.

Every level above the group is a switch level (the mesh levels are in the group), so a round's routes
all climb to the highest level where u has a non-zero digit, whatever its lower digits: rounds with
the same highest digit load the links alike, up to relabeling. The compact form (timing only, any
size) is then one representative round per class (digit 1 at that level) repeated by the class size,
the same argument as pairwise.alltoall_by_digits; exact for the stepwise engine (tests compare both).
"""
from __future__ import annotations

import numpy as np

from . import registry as reg
from .schedule import SEND, array_step, compact_step


def grid(ctx) -> tuple[int, list[int]]:
    """(G, radices above the group): the rank grid (``Context.radices``) split after the mesh levels (at
    least level 0); without a grid, the server groups when they are equal and in rank order, else one
    group of all ranks (the mesh algorithm)."""
    radices = ctx.radices
    if not radices:
        sizes = {len(g) for g in ctx.groups}
        regular = len(sizes) == 1 and all(g == tuple(range(g[0], g[0] + len(g))) for g in ctx.groups)
        radices = (len(ctx.groups[0]), len(ctx.groups)) if regular else (ctx.nranks,)
    g = max(ctx.mesh_levels, 1)
    return int(np.prod(radices[:g])), [int(r) for r in radices[g:]]


def _round_dst(nranks, group, upper, u_digits):
    """Every (src, dst) of the round whose upper offset has digits ``u_digits``, src-major, then dst's
    position in its group; pairs with src == dst left out."""
    ranks = np.arange(nranks, dtype=np.int64)
    top = ranks // group
    dest_top, stride = np.zeros(nranks, dtype=np.int64), 1
    for radix, digit in zip(upper, u_digits):
        dest_top += ((top // stride) % radix + digit) % radix * stride
        stride *= radix
    src = np.repeat(ranks, group)
    dst = (dest_top[:, None] * group + np.arange(group, dtype=np.int64)[None, :]).ravel()
    keep = src != dst
    return src[keep], dst[keep]


def _digits(u, upper):
    out = []
    for radix in upper:
        u, d = divmod(u, radix)
        out.append(d)
    return out


def alltoall(ctx, matrix):
    """The data schedule: ``matrix[i, j]`` elements from rank i to rank j (p x p numpy array), one step a
    round, rounds in order of u."""
    group, upper = grid(ctx)
    p = ctx.nranks
    send_off, recv_off = np.cumsum(matrix, axis=1) - matrix, np.cumsum(matrix, axis=0) - matrix
    steps = []
    for u in range(p // group):
        src, dst = _round_dst(p, group, upper, _digits(u, upper))
        steps.append(array_step(src, dst, send_off[src, dst], recv_off[src, dst], matrix[src, dst], False,
                                src_buf=SEND))
    return steps


def compact_alltoall(ctx, count, _variant=None, _root=0):
    """Timing-only rounds with equal blocks of count // p: round 0, then one round per level above the
    group, repeated by the number of rounds whose highest non-zero digit is that level."""
    group, upper = grid(ctx)
    p, block = ctx.nranks, count // ctx.nranks

    def round_step(digits, repeat):
        src, dst = _round_dst(p, group, upper, digits)
        return compact_step(src.astype(np.int32), dst.astype(np.int32), np.full(len(src), block), False, repeat)

    steps = [round_step([0] * len(upper), 1)] if group > 1 else []
    below = 1
    for level, radix in enumerate(upper):
        if radix > 1:
            steps.append(round_step([int(k == level) for k in range(len(upper))], (radix - 1) * below))
        below *= radix
    return steps


def _step_flows(ctx):
    """p G transfers a round; None where the grid is one group (then gmesh is the mesh algorithm)."""
    group = grid(ctx)[0]
    return ctx.nranks * group if group < ctx.nranks else None


reg.register(reg.Algorithm(
    "gmesh", "grouped full-mesh all-to-all: rounds of the peers of one group of the rank grid",
    step_flows=_step_flows,
    builders={"alltoall": lambda ctx, job, variant: alltoall(ctx, job.alltoall_matrix(ctx.nranks))},
    formulas={"alltoall": "rounds of groups of G (mesh levels, else level 0): a + (G-1) n/p b, then p/G - 1 "
                          "rounds of a + G n/p b"},
    compact={"alltoall": compact_alltoall},
    order=140))
