"""Ring and double ring: each step every rank passes one block to its ring successor.

Blocks are lists of (offset, count) segments, so the same code serves equal chunks (allreduce),
uneven per-rank blocks (allgatherv, reduce-scatterv) and the scattered blocks of a hierarchical level.
Cost (Hockney, n bytes): allreduce 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g; allgather and
reduce-scatter (p-1)a + (p-1)/p n b (+ (p-1)/p n g); broadcast (ring scatter, then allgather)
2(p-1)a + 2(p-1)/p n b. The double ring runs two rings in opposite directions on half of each block.
"""
import numpy as np

from .schedule import Step, StepBuilder, add_segments, chunk_bounds, merge_parallel


def segments_of(bounds, offset=0):
    """Blocks from chunk bounds: block i is [bounds[i], bounds[i+1])."""
    return [[(int(bounds[i]) + offset, int(bounds[i + 1] - bounds[i]))] for i in range(len(bounds) - 1)]


def _single_segment_pass(ranks, blocks, shift: int, reduce: bool):
    """Every step of a ring pass where each block is one segment, built with numpy: in step s rank i
    sends ``blocks[(i - s - shift) % p]`` to its successor (the same rows, in the same order, as the
    loop below writes). None when some block is not exactly one segment."""
    if any(len(b) != 1 for b in blocks):
        return None
    p = len(ranks)
    src = np.asarray(ranks, dtype=np.int64)
    dst = np.roll(src, -1)
    off = np.array([b[0][0] for b in blocks], dtype=np.int64)
    cnt = np.array([b[0][1] for b in blocks], dtype=np.int64)
    bufs, flags = np.zeros(p, dtype=np.int8), np.full(p, reduce)
    steps = []
    for s in range(p - 1):
        which = (np.arange(p) - s - shift) % p
        o = off[which]
        steps.append(Step(src, dst, bufs, o, bufs, o, cnt[which], flags))
    return steps


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
