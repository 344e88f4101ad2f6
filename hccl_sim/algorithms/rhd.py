"""Recursive halving-doubling (HCCL "H-D_R"): halving reduce-scatter, then doubling allgather.

For p not a power of two, with p' = 2^floor(log2 p) and r = p - p', the first 2r ranks pair up: each
even one folds its data into its odd neighbour before, and gets the result back after (two extra
steps of the whole buffer).
Cost (p a power of two): allreduce 2 log2(p) a + 2(p-1)/p n b + (p-1)/p n g;
otherwise add 2(a + n b) + n g.

The halving and the doubling are written once, over a (q, k) grid of ranks (k groups of q at once), and
serve the data schedules (one group, real offsets) and the compact ones (``schedule.compact_step``).
Compact reduce-scatter and allgather with p not a power of two split the buffer over the power-of-two
core (blocks of n/p' where the data schedule moves the fold partners' n/p blocks separately).
"""
import numpy as np

from . import registry as reg
from .schedule import StepBuilder, add_segments, array_step, as_columns, coalesce, column_counts, compact_step


def _fold(ranks):
    """(core rows, folded-in even rows, their odd partners) of a list or (q, k) grid of ranks."""
    q = len(ranks)
    core = 1 << (q.bit_length() - 1) if q else 0
    r = q - core
    odd, even = ranks[1:2 * r:2], ranks[0:2 * r:2]
    if isinstance(ranks, np.ndarray):
        return np.concatenate([odd, ranks[2 * r:]]), even, odd
    return list(odd) + list(ranks[2 * r:]), even, odd


def _halving(q, lo, hi, emit):
    """Recursive halving of each row's region [lo, hi) (arrays (q, k)): at distance d = q/2, q/4, .., 1
    row i keeps the half on its side of partner i ^ d and gives the other (``_given``),
    ``emit(d, lower, lo, mid, hi)`` with ``lower`` whether i < i ^ d. Returns the regions kept."""
    rows, d = np.arange(q), q // 2
    while d >= 1:
        mid = lo + (hi - lo + 1) // 2
        lower = (rows < (rows ^ d))[:, None]
        emit(d, lower, lo, mid, hi)
        lo, hi = np.where(lower, lo, mid), np.where(lower, mid, hi)
        d //= 2
    return lo, hi


def _given(lower, lo, mid, hi):
    """The half a halving step gives away: [mid, hi) from the lower partner, [lo, mid) from the upper."""
    return np.where(lower, mid, lo), np.where(lower, hi, mid)


def _doubling(q, lo, hi, emit):
    """Recursive doubling from each row's region: at d = 1, 2, .., q/2 row i sends partner i ^ d what it
    holds, ``emit(d, lo, hi)``, and both then hold the union."""
    rows, d = np.arange(q), 1
    while d < q:
        emit(d, lo, hi)
        partner = rows ^ d
        lo, hi = np.minimum(lo, lo[partner]), np.maximum(hi, hi[partner])
        d *= 2


def _exchange(core, steps, reduce, timing_only):
    """An ``emit`` that appends one step: every row of ``core`` sends its partner the region [lo, hi) it
    sends (doubling: ``emit(d, lo, hi)``) or gives away (halving: ``emit(d, lower, lo, mid, hi)``)."""
    def emit(d, *region):
        if len(region) == 2:  # doubling: all the row holds
            lo, hi = region
            count = hi - lo
        else:  # halving: the half given away
            lower, lo, mid, hi = region
            count = np.where(lower, hi - mid, mid - lo)
        if timing_only:  # counts only: no offsets
            steps.append(compact_step(core.ravel(), _partner_ranks(core, d), count, reduce))
            return
        start = lo if len(region) == 2 else _given(*region)[0]
        rows = np.arange(len(core))
        steps.append(array_step(core[rows], core[rows ^ d], start.ravel(), start.ravel(), count.ravel(), reduce))
    return emit


_PARTNER_RANKS: dict = {}


def _partner_ranks(core: np.ndarray, d: int) -> np.ndarray:
    """``core`` rows exchanged at distance d, flattened; shared by halving and doubling and by every
    size of the same communicator (a million-rank array each; schedules of many sizes are cached)."""
    key = (core.shape, hash(core.tobytes()), d)
    found = _PARTNER_RANKS.get(key)
    if found is None:
        if len(_PARTNER_RANKS) > 256:
            _PARTNER_RANKS.clear()
        found = _PARTNER_RANKS[key] = core[np.arange(core.shape[0]) ^ d].ravel()
    return found


def _fold_step(src, dst, off, counts, reduce, timing_only):
    """The fold (or unfold) step: each of ``src`` sends its partner in ``dst`` ``counts`` elements."""
    if not len(src):
        return []
    if timing_only:
        k = src.shape[1]
        return [compact_step(src.ravel(), dst.ravel(), np.broadcast_to(column_counts(counts, k), src.shape), reduce)]
    n = len(src)
    return [array_step(np.asarray(src), np.asarray(dst), np.full(n, off), np.full(n, off), np.full(n, counts), reduce)]


def _allreduce(ranks, counts, offset, timing_only):
    core, even, odd = _fold(ranks)
    k = ranks.shape[1] if timing_only else 1
    shape = (len(core), k)
    lo = np.full(shape, offset, dtype=np.int64)
    hi = lo + np.broadcast_to(column_counts(counts, k), shape)
    steps = _fold_step(even, odd, offset, counts, True, timing_only)
    core_grid = core if timing_only else np.asarray(core)
    lo, hi = _halving(len(core), lo, hi, _exchange(core_grid, steps, True, timing_only))
    _doubling(len(core), lo, hi, _exchange(core_grid, steps, False, timing_only))
    return steps + _fold_step(odd, even, offset, counts, False, timing_only)


def allreduce(ranks, count, offset=0):
    return _allreduce(list(ranks), count, offset, False)


def compact_allreduce(ranks, counts):
    """Timing-only allreduce on every column of the rank grid ``ranks``, ``counts`` elements a column."""
    return _allreduce(as_columns(ranks), counts, 0, True)


def compact_reduce_scatter(ranks, counts):
    ranks = as_columns(ranks)
    q, k = ranks.shape
    core, even, odd = _fold(ranks)
    steps = _fold_step(even, odd, 0, counts, True, True)
    shape = (len(core), k)
    _halving(len(core), np.zeros(shape, np.int64), np.broadcast_to(column_counts(counts, k), shape).copy(),
             _exchange(core, steps, True, True))
    return steps + _fold_step(odd, even, 0, -(-column_counts(counts, k) // q), False, True)


def compact_allgather(ranks, counts):
    ranks = as_columns(ranks)
    q, k = ranks.shape
    core, even, odd = _fold(ranks)
    c = core.shape[0]
    total = column_counts(counts, k)
    bounds = (np.arange(c + 1)[:, None] * total[None, :]) // c  # the core's blocks after a halving
    steps = _fold_step(even, odd, 0, -(-total // q), False, True)
    _doubling(c, bounds[:-1], bounds[1:], _exchange(core, steps, False, True))
    return steps + _fold_step(odd, even, 0, counts, False, True)


def _block_positions(ranks, blocks):
    """Core ranks of the fold and, per core position, the segments of the blocks it is responsible for:
    a core rank that absorbed its even neighbour owns both blocks (adjacent, so halving stays contiguous)."""
    core, even, _ = _fold(list(ranks))
    r = len(even)
    owned = [blocks[2 * i] + blocks[2 * i + 1] for i in range(r)] + [blocks[i] for i in range(2 * r, len(ranks))]
    return core, r, owned


def _block_exchange(core, owned, steps, reduce):
    """An ``emit`` over regions of core positions: every row sends its partner the owned blocks there."""
    def emit(d, *region):
        lo, hi = region if len(region) == 2 else _given(*region)
        step = StepBuilder()
        for i in range(len(core)):
            segs = coalesce(seg for j in range(int(lo[i, 0]), int(hi[i, 0])) for seg in owned[j])
            add_segments(step, core[i], core[i ^ d], segs, reduce=reduce)
        steps.append(step.build())
    return emit


def reduce_scatter_blocks(ranks, blocks):
    """Fold (non-power-of-two), halving over core positions, then folded ranks get their block back.

    Cost (p a power of two): log2(p) a + (p-1)/p n b + (p-1)/p n g; otherwise add a + n b + n g before
    and a + n/p b after."""
    core, r, owned = _block_positions(ranks, blocks)
    everything = coalesce(seg for b in blocks for seg in b)
    pre, post = StepBuilder(), StepBuilder()
    for i in range(r):
        add_segments(pre, ranks[2 * i], ranks[2 * i + 1], everything, reduce=True)
        add_segments(post, ranks[2 * i + 1], ranks[2 * i], blocks[2 * i])
    q, steps = len(core), [pre.build()] if r else []
    _halving(q, np.zeros((q, 1), np.int64), np.full((q, 1), q, np.int64), _block_exchange(core, owned, steps, True))
    return steps + ([post.build()] if r else [])


def allgather_blocks(ranks, blocks):
    """Folded ranks hand their block to their neighbour, doubling over core positions, then the
    neighbour returns everything. Cost (p a power of two): log2(p) a + (p-1)/p n b."""
    core, r, owned = _block_positions(ranks, blocks)
    pre, post = StepBuilder(), StepBuilder()
    for i in range(r):
        add_segments(pre, ranks[2 * i], ranks[2 * i + 1], blocks[2 * i])
        add_segments(post, ranks[2 * i + 1], ranks[2 * i],
                     coalesce(seg for b, segs in enumerate(blocks) if b != 2 * i for seg in segs))
    q, steps = len(core), [pre.build()] if r else []
    positions = np.arange(q, dtype=np.int64)[:, None]
    _doubling(q, positions, positions + 1, _block_exchange(core, owned, steps, False))
    return steps + ([post.build()] if r else [])


def compact_pass(ranks, counts, reduce: bool):
    return compact_reduce_scatter(ranks, counts) if reduce else compact_allgather(ranks, counts)


_BUILDERS, _COMPACT, _LEVEL = reg.pass_forms(allreduce, reduce_scatter_blocks, allgather_blocks, compact_pass,
                                            compact_allreduce)
reg.register(reg.Algorithm(
    "rhd", "recursive halving-doubling, HCCL's H-D_R (log2 p steps a pass; a fold when p is not a power of two)",
    builders=_BUILDERS,
    formulas={"allreduce": "2 log2(p) a + 2(p-1)/p n b + (p-1)/p n g  (+2(a + n b) + n g if p is not a power of two)",
              "allgather": "log2(p) a + (p-1)/p n b  (+ a + n/p b before and a + n b after if p is not a power of two)",
              "reduce_scatter": "log2(p) a + (p-1)/p n (b + g)  (+ a + n(b + g) before and a + n/p b after if p is "
                                "not a power of two)"},
    compact=_COMPACT, hccl_names=("rhd", "h-d_r", "hd_r", "hdr"), level=_LEVEL, order=30))
