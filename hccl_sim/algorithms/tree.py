"""Binomial tree: ceil(log2 p) steps, rooted anywhere (positions are taken relative to the root).

Cost: broadcast and reduce ceil(log2 p)(a + n b) (+ ceil(log2 p) n g for reduce); allreduce their
sum; scatter and gather ceil(log2 p) a + (p-1)/p n b; barrier 2 ceil(log2 p) a.
"""
from .schedule import StepBuilder, add_segments, coalesce, reverse_steps


def _levels(p):
    return max(p - 1, 0).bit_length()


def _rotate(ranks, root_pos):
    return [ranks[(root_pos + i) % len(ranks)] for i in range(len(ranks))]


def broadcast(ranks, count, offset=0, root_pos=0):
    ranks = _rotate(list(ranks), root_pos)
    p, steps = len(ranks), []
    for k in reversed(range(_levels(p))):
        step, d = StepBuilder(), 1 << k
        for i in range(0, p - d, 2 * d):
            step.add(ranks[i], ranks[i + d], offset, offset, count)
        steps.append(step.build())
    return steps


def reduce(ranks, count, offset=0, root_pos=0):
    ranks = _rotate(list(ranks), root_pos)
    p, steps = len(ranks), []
    for k in range(_levels(p)):
        step, d = StepBuilder(), 1 << k
        for i in range(d, p, 2 * d):
            step.add(ranks[i], ranks[i - d], offset, offset, count, reduce=True)
        steps.append(step.build())
    return steps


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
