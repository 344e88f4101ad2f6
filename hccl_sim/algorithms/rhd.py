"""Recursive halving-doubling (HCCL "H-D_R"): halving reduce-scatter, then doubling allgather.

For p not a power of two, with p' = 2^floor(log2 p) and r = p - p', the first 2r ranks pair up: each
even one folds its data into its odd neighbour before, and gets the result back after (two extra
steps of the whole buffer).
Cost (p a power of two): allreduce 2 log2(p) a + 2(p-1)/p n b + (p-1)/p n g;
otherwise add 2(a + n b) + n g.
"""
from .schedule import StepBuilder


def _fold(ranks):
    """(core ranks, the pairs folded into them) for a non-power-of-two count."""
    p = len(ranks)
    core = 1 << (p.bit_length() - 1) if p else 0
    r = p - core
    pairs = [(ranks[2 * i], ranks[2 * i + 1]) for i in range(r)]
    return [ranks[2 * i + 1] for i in range(r)] + list(ranks[2 * r:]), pairs


def _halving(core, count, offset):
    """Steps of recursive halving, and the region each core position ends with."""
    q = len(core)
    region = [(offset, offset + count)] * q
    steps, d = [], q // 2
    while d >= 1:
        step, new = StepBuilder(), list(region)
        for i in range(q):
            j = i ^ d
            lo, hi = region[i]
            mid = lo + (hi - lo + 1) // 2
            keep, give = ((lo, mid), (mid, hi)) if i < j else ((mid, hi), (lo, mid))
            step.add(core[i], core[j], give[0], give[0], give[1] - give[0], reduce=True)
            new[i] = keep
        region = new
        steps.append(step.build())
        d //= 2
    return steps, region


def _doubling(core, region):
    q, steps, d = len(core), [], 1
    region = list(region)
    while d < q:
        step, new = StepBuilder(), list(region)
        for i in range(q):
            j = i ^ d
            lo, hi = region[i]
            step.add(core[i], core[j], lo, lo, hi - lo)
            new[i] = (min(lo, region[j][0]), max(hi, region[j][1]))
        region = new
        steps.append(step.build())
        d *= 2
    return steps


def reduce_scatter_regions(ranks, count, offset=0):
    """Halving reduce-scatter over a power-of-two group; returns steps and each rank's region."""
    return _halving(list(ranks), count, offset)


def allreduce(ranks, count, offset=0):
    core, pairs = _fold(list(ranks))
    pre, post = StepBuilder(), StepBuilder()
    for even, odd in pairs:
        pre.add(even, odd, offset, offset, count, reduce=True)
        post.add(odd, even, offset, offset, count)
    halving, region = _halving(core, count, offset)
    steps = ([pre.build()] if pairs else []) + halving + _doubling(core, region)
    return steps + ([post.build()] if pairs else [])
