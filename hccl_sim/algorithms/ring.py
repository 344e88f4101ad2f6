"""Ring and double ring: each step every rank passes one block to its ring successor.

Blocks are lists of (offset, count) segments, so the same code serves equal chunks (allreduce),
uneven per-rank blocks (allgatherv, reduce-scatterv) and the scattered blocks of a hierarchical level.
Cost (Hockney, n bytes): allreduce 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g; allgather and
reduce-scatter (p-1)a + (p-1)/p n b (+ (p-1)/p n g); broadcast (ring scatter, then allgather)
2(p-1)a + 2(p-1)/p n b. The double ring runs two rings in opposite directions on half of each block.
"""
import numpy as np

from . import registry as reg
from .schedule import (Step, StepBuilder, add_segments, as_columns, chunk_bounds, column_counts, compact_step,
                       flatten_blocks, merge_parallel, reverse_steps)


def segments_of(bounds, offset=0):
    """Blocks from chunk bounds: block i is [bounds[i], bounds[i+1])."""
    return [[(int(bounds[i]) + offset, int(bounds[i + 1] - bounds[i]))] for i in range(len(bounds) - 1)]


def ring_pass(ranks, blocks, shift: int, reduce: bool, timing_only: bool = False) -> list[Step]:
    """A ring reduce-scatter (``reduce``, shift 1) or allgather (copy, shift 0): in step s = 0..q-2 position
    i sends block (i - s - shift) mod q to position i + 1, built with numpy for all positions at once.

    Data: ``ranks`` a list of q ranks, ``blocks[i]`` position i's (offset, count) segments (the same rows,
    in the same order, as one transfer per segment, position by position). Timing-only: ``ranks`` a (q, k)
    grid, k rings at once (one per column), ``blocks`` the elements of each column, cut in q chunks that
    all carry the largest (``schedule.compact_step``), so the q - 1 steps are identical: one step repeated."""
    if timing_only:
        ranks = as_columns(ranks)
        q, k = ranks.shape
        if q < 2:
            return []
        chunk = np.broadcast_to(-(-column_counts(blocks, k) // q), (q, k))
        return [compact_step(ranks.ravel(), np.roll(ranks, -1, axis=0).ravel(), chunk, reduce, repeat=q - 1)]
    q = len(ranks)
    off, cnt, first, sizes = flatten_blocks(blocks)
    src, dst = np.asarray(ranks, dtype=np.int64), np.roll(np.asarray(ranks, dtype=np.int64), -1)
    single = bool((sizes == 1).all())
    steps = []
    for s in range(q - 1):
        which = (np.arange(q) - s - shift) % q
        if single:  # one segment a block (the usual case): no expansion
            seg, a, b = first[which], src, dst
        else:
            per = sizes[which]
            seg = np.repeat(first[which] - np.cumsum(per) + per, per) + np.arange(int(per.sum()))
            a, b = np.repeat(src, per), np.repeat(dst, per)
        bufs = np.zeros(len(seg), dtype=np.int8)
        steps.append(Step(a, b, bufs, off[seg], bufs, off[seg], cnt[seg], np.full(len(seg), reduce)))
    return steps


def compact_pass(ranks, counts, reduce: bool) -> list[Step]:
    """Timing-only ring reduce-scatter (``reduce``) or allgather on every column of the rank grid ``ranks``."""
    return ring_pass(ranks, counts, 1 if reduce else 0, reduce, timing_only=True)


def compact_allreduce(ranks, counts) -> list[Step]:
    return compact_pass(ranks, counts, True) + compact_pass(ranks, counts, False)


def reduce_scatter_blocks(ranks, blocks):
    """Afterwards ``ranks[i]`` holds ``blocks[i]`` reduced over all ranks."""
    return ring_pass(ranks, blocks, 1, True)


def allgather_blocks(ranks, blocks):
    """``ranks[i]`` starts with ``blocks[i]``; afterwards every rank holds all blocks."""
    return ring_pass(ranks, blocks, 0, False)


def reduce_scatter(ranks, count, offset=0):
    return reduce_scatter_blocks(ranks, segments_of(chunk_bounds(count, len(ranks)), offset))


def allgather(ranks, count, offset=0):
    return allgather_blocks(ranks, segments_of(chunk_bounds(count, len(ranks)), offset))


def allreduce(ranks, count, offset=0):
    return reduce_scatter(ranks, count, offset) + allgather(ranks, count, offset)


def scatter_blocks(ranks, blocks, root_pos=0):
    """Root passes blocks down the ring, farthest first: block of position k travels k hops."""
    p = len(ranks)
    order = [ranks[(root_pos + k) % p] for k in range(p)]
    owned = [blocks[(root_pos + k) % p] for k in range(p)]
    steps = []
    for s in range(p - 1):
        step = StepBuilder()
        for j in range(0, s + 1):  # position j forwards what the root sent at step s - j
            target = p - 1 - (s - j)
            if target > j:
                add_segments(step, order[j], order[j + 1], owned[target])
        steps.append(step.build())
    return steps


def broadcast(ranks, count, offset=0, root_pos=0):
    """Ring scatter of p chunks from the root, then ring allgather of them."""
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    return scatter_blocks(ranks, blocks, root_pos) + allgather_blocks(ranks, blocks)


def _halves(blocks):
    first, second = [], []
    for segs in blocks:
        a, b = [], []
        for off, cnt in segs:
            h = (cnt + 1) // 2
            a.append((off, h))
            b.append((off + h, cnt - h))
        first.append(a)
        second.append(b)
    return first, second


def _reversed_ring(ranks, blocks):
    """The same ring turned around, keeping position 0 in place (so rank i still ends with block i)."""
    p = len(ranks)
    idx = [(-i) % p for i in range(p)]
    return [ranks[i] for i in idx], [blocks[i] for i in idx]


def double_reduce_scatter_blocks(ranks, blocks):
    first, second = _halves(blocks)
    return merge_parallel([reduce_scatter_blocks(ranks, first), reduce_scatter_blocks(*_reversed_ring(ranks, second))])


def double_allgather_blocks(ranks, blocks):
    first, second = _halves(blocks)
    return merge_parallel([allgather_blocks(ranks, first), allgather_blocks(*_reversed_ring(ranks, second))])


def double_allreduce(ranks, count, offset=0):
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    return double_reduce_scatter_blocks(ranks, blocks) + double_allgather_blocks(ranks, blocks)


def _reduce(ctx, job, variant):
    """Reduce as a ring reduce-scatter of p chunks, then a binomial gather of them to the root."""
    from . import tree
    blocks = segments_of(chunk_bounds(job.count, ctx.nranks))
    ranks = reg.ranks_of(ctx)
    return reduce_scatter_blocks(ranks, blocks) + tree.gather_blocks(ranks, blocks, job.root)


def _gather_blocks(ranks, blocks, root_pos):
    return reverse_steps(scatter_blocks(ranks, blocks, root_pos), reduce=False)


_BUILDERS, _COMPACT, _LEVEL = reg.pass_forms(allreduce, reduce_scatter_blocks, allgather_blocks, compact_pass,
                                            compact_allreduce, scatter=scatter_blocks, broadcast=broadcast)
reg.register(reg.Algorithm(
    "ring", "every step each rank passes one block to its ring successor (p-1 steps a pass)",
    builders={**_BUILDERS, "broadcast": reg.rooted(broadcast), "reduce": _reduce,
              "scatter": reg.rooted_blocked(scatter_blocks), "gather": reg.rooted_blocked(_gather_blocks)},
    formulas={"allreduce": "2(p-1)a + 2(p-1)/p n b + (p-1)/p n g",
              "allgather": "(p-1)a + (p-1)/p n b",
              "reduce_scatter": "(p-1)a + (p-1)/p n b + (p-1)/p n g",
              "broadcast": "ring scatter + ring allgather: 2(p-1)a + 2(p-1)/p n b",
              "reduce": "ring RS + binomial gather: (p-1+L)a + 2(p-1)/p n b + (p-1)/p n g",
              "scatter": "(p-1)(a + n/p b)",
              "gather": "(p-1)(a + n/p b)"},
    compact=_COMPACT, hccl_names=("ring",), level=_LEVEL, order=10))

reg.register(reg.Algorithm(
    "dring", "double ring: two rings in opposite directions, each on half of every block",
    builders={"allreduce": reg.flat(double_allreduce), "allgather": reg.blocked(double_allgather_blocks),
              "reduce_scatter": reg.blocked(double_reduce_scatter_blocks)},
    formulas={"allreduce": "two opposite rings on n/2 each: 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g on a switch",
              "allgather": "(p-1)a + (p-1)/p n b on a switch; both directions of a ring on a mesh",
              "reduce_scatter": "(p-1)a + (p-1)/p n (b + g) on a switch"},
    hccl_names=("dring", "doublering", "double_ring"),
    level=reg.Level(reduce_scatter=double_reduce_scatter_blocks, allgather=double_allgather_blocks),
    order=70))
