"""Binomial tree: reduce to the first rank, then broadcast from it, ceil(log2 p) steps each.

Cost: allreduce 2 ceil(log2 p) (a + n b) + ceil(log2 p) n g.
"""
from .schedule import StepBuilder


def _levels(p):
    return max(p - 1, 0).bit_length()


def reduce(ranks, count, offset=0):
    p, steps = len(ranks), []
    for k in range(_levels(p)):
        step, d = StepBuilder(), 1 << k
        for i in range(d, p, 2 * d):
            step.add(ranks[i], ranks[i - d], offset, offset, count, reduce=True)
        steps.append(step.build())
    return steps


def broadcast(ranks, count, offset=0):
    p, steps = len(ranks), []
    for k in reversed(range(_levels(p))):
        step, d = StepBuilder(), 1 << k
        for i in range(0, p - d, 2 * d):
            step.add(ranks[i], ranks[i + d], offset, offset, count)
        steps.append(step.build())
    return steps


def allreduce(ranks, count, offset=0):
    return reduce(ranks, count, offset) + broadcast(ranks, count, offset)
