"""Star: the root talks to every other rank directly, in one step.

Cost on a flat switch (the root's one link shared by p-1 flows): broadcast and reduce
a + (p-1) n b (+ (p-1) n g); scatter and gather a + (p-1)/p n b.
"""
from . import registry as reg
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


reg.register(reg.Algorithm(
    "star", "the root talks to every other rank directly, in one step",
    builders={"allreduce": reg.flat(allreduce), "broadcast": reg.rooted(broadcast), "reduce": reg.rooted(reduce),
              "scatter": reg.rooted_blocked(scatter_blocks), "gather": reg.rooted_blocked(gather_blocks)},
    formulas={"allreduce": "2a + 2(p-1) n b + (p-1) n g on a switch", "broadcast": "a + (p-1) n b on a switch",
              "reduce": "a + (p-1) n (b + g) on a switch", "scatter": "a + (p-1)/p n b", "gather": "a + (p-1)/p n b"},
    hccl_names=("star",),
    level=reg.Level(scatter=scatter_blocks, broadcast=broadcast),
    order=110, order_in={"broadcast": 95, "reduce": 95, "scatter": 3, "gather": 3}))
