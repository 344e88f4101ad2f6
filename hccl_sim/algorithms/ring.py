"""Ring: p-1 steps of reduce-scatter, then p-1 of allgather, each moving one chunk to the next rank.

Cost (Hockney): allreduce 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g.
"""
from .schedule import StepBuilder, chunk_bounds


def reduce_scatter(ranks, count, offset=0):
    """Afterwards ``ranks[i]`` holds chunk ``i`` of the region, reduced over all ranks."""
    p, bounds = len(ranks), chunk_bounds(count, len(ranks)) + offset
    steps = []
    for s in range(p - 1):
        step = StepBuilder()
        for i in range(p):
            c = (i - s - 1) % p
            step.add(ranks[i], ranks[(i + 1) % p], bounds[c], bounds[c], bounds[c + 1] - bounds[c], reduce=True)
        steps.append(step.build())
    return steps


def allgather(ranks, count, offset=0):
    """``ranks[i]`` starts with chunk ``i`` of the region; afterwards every rank holds all of it."""
    p, bounds = len(ranks), chunk_bounds(count, len(ranks)) + offset
    steps = []
    for s in range(p - 1):
        step = StepBuilder()
        for i in range(p):
            c = (i - s) % p
            step.add(ranks[i], ranks[(i + 1) % p], bounds[c], bounds[c], bounds[c + 1] - bounds[c])
        steps.append(step.build())
    return steps


def allreduce(ranks, count, offset=0):
    return reduce_scatter(ranks, count, offset) + allgather(ranks, count, offset)
