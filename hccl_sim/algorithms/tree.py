"""Binomial tree: ceil(log2 p) steps, rooted anywhere (positions are taken relative to the root).

Cost: broadcast and reduce ceil(log2 p)(a + n b) (+ ceil(log2 p) n g for reduce); allreduce their
sum; scatter and gather ceil(log2 p) a + (p-1)/p n b; barrier 2 ceil(log2 p) a.
"""
import numpy as np

from . import registry as reg
from .schedule import (RANK, StepBuilder, add_segments, array_step, broadcast_array, coalesce, compact_step,
                       reverse_steps)


def _levels(p):
    return max(p - 1, 0).bit_length()


def _rotate(ranks, root_pos):
    return [ranks[(root_pos + i) % len(ranks)] for i in range(len(ranks))]


def _binomial(ranks, count, offset, root_pos, reduce, timing_only=False):
    """Binomial broadcast from ``ranks[root_pos]`` (or, with ``reduce``, its time-reversal: the binomial
    reduce to it): ceil(log2 p) steps, in each the positions i = 0, 2d, 4d, .. below p - d (relative to
    the root) exchange with i + d, d = 2^(L-1) .. 1 (broadcast) or 1 .. 2^(L-1) (reduce); numpy-built.
    ``timing_only``: compact steps (``schedule.compact_step``), for any size."""
    p = len(ranks)
    pos = np.arange(p, dtype=np.int64)
    order = np.asarray(ranks)[(pos + root_pos) % p]
    steps = []
    for k in reversed(range(_levels(p))):
        d = 1 << k
        senders = pos[0:p - d:2 * d]
        src, dst = order[senders], order[senders + d]
        if reduce:
            src, dst = dst, src
        n = len(src)
        steps.append(compact_step(src, dst, broadcast_array(count, n, np.int64), reduce) if timing_only
                     else array_step(src, dst, np.full(n, offset), np.full(n, offset), np.full(n, count), reduce))
    return steps[::-1] if reduce else steps


def broadcast(ranks, count, offset=0, root_pos=0):
    return _binomial(ranks, count, offset, root_pos, False)


def reduce(ranks, count, offset=0, root_pos=0):
    return _binomial(ranks, count, offset, root_pos, True)


def compact_rooted(reduce: bool):
    """The compact broadcast (or reduce) builder(ctx, count, variant, root)."""
    return lambda ctx, count, _, root: _binomial(np.arange(ctx.nranks, dtype=RANK), count, 0, root, reduce, True)


def allreduce(ranks, count, offset=0):
    return reduce(ranks, count, offset) + broadcast(ranks, count, offset)


def scatter_blocks(ranks, blocks, root_pos=0):
    """Each step halves the distance: position i passes on the blocks of positions [i+d, i+2d)."""
    p = len(ranks)
    order = _rotate(list(ranks), root_pos)
    owned = _rotate(list(blocks), root_pos)
    steps = []
    for k in reversed(range(_levels(p))):
        step, d = StepBuilder(), 1 << k
        for i in range(0, p - d, 2 * d):
            segs = coalesce(seg for j in range(i + d, min(i + 2 * d, p)) for seg in owned[j])
            add_segments(step, order[i], order[i + d], segs)
        steps.append(step.build())
    return steps


def gather_blocks(ranks, blocks, root_pos=0):
    return reverse_steps(scatter_blocks(ranks, blocks, root_pos), reduce=False)


def barrier(ranks):
    """Zero-byte binomial gather to the first rank, then a zero-byte binomial broadcast."""
    return reduce(ranks, 0) + broadcast(ranks, 0)


reg.register(reg.Algorithm(
    "tree", "binomial tree rooted anywhere: ceil(log2 p) steps",
    builders={"allreduce": reg.flat(allreduce), "broadcast": reg.rooted(broadcast), "reduce": reg.rooted(reduce),
              "scatter": reg.rooted_blocked(scatter_blocks), "gather": reg.rooted_blocked(gather_blocks),
              "barrier": lambda ctx, job, variant: barrier(reg.ranks_of(ctx))},
    formulas={"allreduce": "2L(a + n b) + L n g", "broadcast": "L(a + n b)", "reduce": "L(a + n b + n g)",
              "scatter": "L a + (p-1)/p n b", "gather": "L a + (p-1)/p n b", "barrier": "2L a"},
    compact={"broadcast": compact_rooted(False), "reduce": compact_rooted(True)},
    hccl_names=("tree",),
    level=reg.Level(allreduce=allreduce, scatter=scatter_blocks, broadcast=broadcast),
    order=20, order_in={"broadcast": 5, "reduce": 5, "scatter": 5, "gather": 5}))
