"""Star: the root talks to every other rank directly, in one step.

Cost on a flat switch (the root's one link shared by p-1 flows): broadcast and reduce
a + (p-1) n b (+ (p-1) n g); scatter and gather a + (p-1)/p n b.
"""
from .schedule import StepBuilder, add_segments


def broadcast(ranks, count, offset=0, root_pos=0):
    step = StepBuilder()
    for i, r in enumerate(ranks):
        if i != root_pos:
            step.add(ranks[root_pos], r, offset, offset, count)
    return [step.build()]


def reduce(ranks, count, offset=0, root_pos=0):
    step = StepBuilder()
    for i, r in enumerate(ranks):
        if i != root_pos:
            step.add(r, ranks[root_pos], offset, offset, count, reduce=True)
    return [step.build()]


def allreduce(ranks, count, offset=0):
    return reduce(ranks, count, offset) + broadcast(ranks, count, offset)


def scatter_blocks(ranks, blocks, root_pos=0):
    step = StepBuilder()
    for i, r in enumerate(ranks):
        if i != root_pos:
            add_segments(step, ranks[root_pos], r, blocks[i])
    return [step.build()]


def gather_blocks(ranks, blocks, root_pos=0):
    step = StepBuilder()
    for i, r in enumerate(ranks):
        if i != root_pos:
            add_segments(step, r, ranks[root_pos], blocks[i])
    return [step.build()]
