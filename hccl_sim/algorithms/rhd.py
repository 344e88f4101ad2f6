"""Recursive halving-doubling (HCCL "H-D_R"): halving reduce-scatter, then doubling allgather.

For p not a power of two, with p' = 2^floor(log2 p) and r = p - p', the first 2r ranks pair up: each
even one folds its data into its odd neighbour before, and gets the result back after (two extra
steps of the whole buffer).
Cost (p a power of two): allreduce 2 log2(p) a + 2(p-1)/p n b + (p-1)/p n g;
otherwise add 2(a + n b) + n g.
"""
from .schedule import StepBuilder, add_segments, coalesce


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


def _block_positions(ranks, blocks):
    """Core ranks of the fold and, per core position, the segments of the blocks it is responsible for:
    a core rank that absorbed its even neighbour owns both blocks (adjacent, so halving stays contiguous)."""
    core, pairs = _fold(list(ranks))
    r = len(pairs)
    owned = [blocks[2 * i] + blocks[2 * i + 1] for i in range(r)] + [blocks[i] for i in range(2 * r, len(ranks))]
    return core, pairs, owned


def _segs(owned, lo, hi):
    return coalesce(seg for j in range(lo, hi) for seg in owned[j])


def reduce_scatter_blocks(ranks, blocks):
    """Fold (non-power-of-two), halving over core positions, then folded ranks get their block back.

    Cost (p a power of two): log2(p) a + (p-1)/p n b + (p-1)/p n g; otherwise add a + n b + n g before
    and a + n/p b after."""
    core, pairs, owned = _block_positions(ranks, blocks)
    everything = coalesce(seg for b in blocks for seg in b)
    pre, post = StepBuilder(), StepBuilder()
    for i, (even, odd) in enumerate(pairs):
        add_segments(pre, even, odd, everything, reduce=True)
        add_segments(post, odd, even, blocks[2 * i])
    q, steps = len(core), [pre.build()] if pairs else []
    region = [(0, q)] * q
    d = q // 2
    while d >= 1:
        step, new = StepBuilder(), list(region)
        for i in range(q):
            lo, hi = region[i]
            mid = (lo + hi) // 2
            keep, give = ((lo, mid), (mid, hi)) if i < i ^ d else ((mid, hi), (lo, mid))
            add_segments(step, core[i], core[i ^ d], _segs(owned, *give), reduce=True)
            new[i] = keep
        region = new
        steps.append(step.build())
        d //= 2
    return steps + ([post.build()] if pairs else [])


def allgather_blocks(ranks, blocks):
    """Folded ranks hand their block to their neighbour, doubling over core positions, then the
    neighbour returns everything. Cost (p a power of two): log2(p) a + (p-1)/p n b."""
    core, pairs, owned = _block_positions(ranks, blocks)
    pre, post = StepBuilder(), StepBuilder()
    for i, (even, odd) in enumerate(pairs):
        add_segments(pre, even, odd, blocks[2 * i])
        add_segments(post, odd, even, coalesce(seg for b, segs in enumerate(blocks) if b != 2 * i for seg in segs))
    q, steps = len(core), [pre.build()] if pairs else []
    region = [(i, i + 1) for i in range(q)]
    d = 1
    while d < q:
        step, new = StepBuilder(), list(region)
        for i in range(q):
            j = i ^ d
            add_segments(step, core[i], core[j], _segs(owned, *region[i]))
            new[i] = (min(region[i][0], region[j][0]), max(region[i][1], region[j][1]))
        region = new
        steps.append(step.build())
        d *= 2
    return steps + ([post.build()] if pairs else [])
