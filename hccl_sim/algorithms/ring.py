"""Ring and double ring: each step every rank passes one block to its ring successor.

Blocks are lists of (offset, count) segments, so the same code serves equal chunks (allreduce),
uneven per-rank blocks (allgatherv, reduce-scatterv) and the scattered blocks of a hierarchical level.
Cost (Hockney, n bytes): allreduce 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g; allgather and
reduce-scatter (p-1)a + (p-1)/p n b (+ (p-1)/p n g); broadcast (ring scatter, then allgather)
2(p-1)a + 2(p-1)/p n b. The double ring runs two rings in opposite directions on half of each block.
"""
import numpy as np

from . import registry as reg
from .schedule import (Step, StepBuilder, add_segments, as_columns, chunk_bounds, compact_step, merge_parallel,
                       reverse_steps)


def segments_of(bounds, offset=0):
    """Blocks from chunk bounds: block i is [bounds[i], bounds[i+1])."""
    return [[(int(bounds[i]) + offset, int(bounds[i + 1] - bounds[i]))] for i in range(len(bounds) - 1)]


def equal_chunks(counts, q: int, timing_only: bool = False):
    """(offsets, counts) of q near-equal chunks of each column's ``counts`` elements, shape (q, k), as
    ``chunk_bounds`` cuts them; timing-only: offsets zero and every chunk the largest (no memory)."""
    counts = np.atleast_1d(np.asarray(counts, dtype=np.int64))
    if timing_only:
        shape = (q, len(counts))
        return np.broadcast_to(np.int64(0), shape), np.broadcast_to(-(-counts // q), shape)
    i = np.arange(q + 1, dtype=np.int64)[:, None]
    bounds = i * (counts // q)[None, :] + np.minimum(i, (counts % q)[None, :])
    return bounds[:-1], np.diff(bounds, axis=0)


def ring_pass(ranks, off, cnt, shift: int, reduce: bool, timing_only: bool = False) -> list[Step]:
    """A ring reduce-scatter (``reduce``, shift 1) or allgather (copy, shift 0) on every column of the
    rank grid ``ranks`` (q, k) at once: in step s position i sends block (i - s - shift) mod q of its
    column (``off``/``cnt``, shape (q, k)) to position i + 1. Timing-only (``equal_chunks``): the q - 1
    steps are identical, so they are one step repeated q - 1 times."""
    ranks = as_columns(ranks) if timing_only else np.asarray(ranks, dtype=np.int64).reshape(len(ranks), -1)
    q, k = ranks.shape
    if q < 2:
        return []
    src, dst = ranks.ravel(), np.roll(ranks, -1, axis=0).ravel()
    if timing_only:
        return [compact_step(src, dst, np.broadcast_to(cnt.max(axis=0), (q, k)), reduce, repeat=q - 1)]
    bufs, flags = np.zeros(q * k, dtype=np.int8), np.full(q * k, reduce)
    steps = []
    for s in range(q - 1):
        which = (np.arange(q) - s - shift) % q
        o = off[which].ravel()
        steps.append(Step(src, dst, bufs, o, bufs, o, cnt[which].ravel(), flags))
    return steps


def _single_segment_pass(ranks, blocks, shift: int, reduce: bool):
    """``ring_pass`` over one ring whose blocks are one segment each (the usual case); None otherwise."""
    if any(len(b) != 1 for b in blocks):
        return None
    off = np.array([b[0][0] for b in blocks], dtype=np.int64)[:, None]
    cnt = np.array([b[0][1] for b in blocks], dtype=np.int64)[:, None]
    return ring_pass(ranks, off, cnt, shift, reduce)


def compact_pass(ranks, counts, reduce: bool) -> list[Step]:
    """Timing-only ring reduce-scatter (``reduce``) or allgather on every column of ``ranks``."""
    q = as_columns(ranks).shape[0]
    return ring_pass(ranks, *equal_chunks(counts, q, True), 1 if reduce else 0, reduce, timing_only=True)


def compact_allreduce(ranks, counts) -> list[Step]:
    return compact_pass(ranks, counts, True) + compact_pass(ranks, counts, False)


def reduce_scatter_blocks(ranks, blocks):
    """Afterwards ``ranks[i]`` holds ``blocks[i]`` reduced over all ranks."""
    fast = _single_segment_pass(ranks, blocks, 1, True)
    if fast is not None:
        return fast
    p, steps = len(ranks), []
    for s in range(p - 1):
        step = StepBuilder()
        for i in range(p):
            add_segments(step, ranks[i], ranks[(i + 1) % p], blocks[(i - s - 1) % p], reduce=True)
        steps.append(step.build())
    return steps


def allgather_blocks(ranks, blocks):
    """``ranks[i]`` starts with ``blocks[i]``; afterwards every rank holds all blocks."""
    fast = _single_segment_pass(ranks, blocks, 0, False)
    if fast is not None:
        return fast
    p, steps = len(ranks), []
    for s in range(p - 1):
        step = StepBuilder()
        for i in range(p):
            add_segments(step, ranks[i], ranks[(i + 1) % p], blocks[(i - s) % p])
        steps.append(step.build())
    return steps


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
