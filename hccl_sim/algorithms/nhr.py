"""NHR, HCCL's nonuniform hierarchical ring: ceil(log2 p) steps for any p, no extra traffic.

Follows HCCL's templates (CANN hccl, alg_template/temp_reduce_scatter/reduce_scatter_nhr.cc,
temp_all_gather/all_gather_nhr.cc, temp_all_reduce/all_reduce_nhr.cc and
nonuniform_hierarchical_ring_base.cc: ``GetStepInfo``, ``GetRankMapping``). p ranks, p slices (one per
rank, indices mod p), L = ceil(log2 p) steps, m(d) = floor((p-1+d) / 2d) slices a step at distance d:

- reduce-scatter, step s = 0..L-1, d = 2^s: rank i sends to rank i-d (and receives from i+d) its
  partial sums of the m(d) slices i-d, i-3d, i-5d, ... (stride 2d); the receiver reduces them into its
  own. After the last step rank i holds slice i reduced over every rank.
- allgather, its time reversal, step t = 0..L-1, d = 2^(L-1-t): rank i sends to rank i+d (receives
  from i-d) the m(d) slices i, i-2d, i-4d, ... After the step at distance d, rank i holds the ceil(p/d)
  slices i, i-d, i-2d, ...: m(d) = ceil(p/d) - ceil(p/2d) exactly fills the gaps, so every rank gets
  every slice once, for any p (this is the "nonuniform" part: no fold, no padding to a power of two;
  the ranks at distance d form rings that close over the wrap-around).
- allreduce: reduce-scatter then allgather over p near-equal chunks. HCCL then stores virtual slice v
  in chunk ``slice_map(p)[v]`` (its "tree" reordering, ``GetRankMapping``), so that the slices a rank
  sends in one step are adjacent in memory and merge into one transfer (always for p = 2^k or 3 * 2^k);
  reduce-scatter and allgather alone keep the identity (rank i's block is slice i).

Chunks are near-equal (``chunk_bounds``), where HCCL's allreduce rounds slices up to 128 bytes.
Cost (n bytes, equal chunks): every rank sends sum_d m(d) = p-1 slices, so allgather ceil(log2 p) a +
(p-1)/p n b, reduce-scatter the same + (p-1)/p n g, allreduce 2 ceil(log2 p) a + 2(p-1)/p n b +
(p-1)/p n g. (A step whose slices are not adjacent is several transfers; the timing engine overlaps
their reduces, so it models less than (p-1)/p n g for such schedules: HCCL reduces them one by one.)
"""
import numpy as np

from . import registry as reg
from .ring import segments_of
from .schedule import BUF, Step, as_columns, chunk_bounds, column_counts, compact_step, flatten_blocks


def num_steps(p: int) -> int:
    """ceil(log2 p): HCCL's GetStepNumInterServer."""
    return max(p - 1, 0).bit_length()


def slices_per_step(p: int, d: int) -> int:
    """Slices every rank sends in the step at distance d: floor((p-1+d) / 2d)."""
    return (p - 1 + d) // (2 * d)


def distances(p: int, reduce: bool) -> list[int]:
    """The step distances in order: 1, 2, 4, ... for reduce-scatter; the reverse for allgather."""
    ds = [1 << s for s in range(num_steps(p))]
    return ds if reduce else ds[::-1]


def slice_map(p: int) -> list[int]:
    """HCCL's NHRBase::GetRankMapping (no keepOrder): virtual slice v lives in memory chunk map[v].

    Starting from 0..p-1, each round splits every part of length ``length`` into its even then its
    odd positions, while the next step still sends more than one slice and the parts have even length
    (a round on parts of odd length is the last). For p = 2^k it is the bit reversal."""
    tree = list(range(p))
    length = p
    for s in range(num_steps(p)):
        if slices_per_step(p, 1 << s) <= 1:
            break
        out, odd = [0] * p, False
        for start in range(0, p, length):
            end = min(start + length, p)
            for i in range(start, end):
                off = i - start
                out[start + (off // 2 if off % 2 == 0 else (off + length) // 2)] = tree[i]
            odd |= (end - start) % 2 == 1
        tree = out
        if odd:
            break
        length //= 2
    where = [0] * p
    for position, v in enumerate(tree):
        where[v] = position
    return where


def _pass(ranks, blocks, reduce, order=None):
    """Reduce-scatter (``reduce``) or allgather steps; ``blocks[order[v]]`` (lists of (offset, count)
    segments) holds virtual slice v. Step at distance d: rank i sends rank i-d the slices i-d, i-3d, ..
    (reduce-scatter) or rank i+d the slices i, i-2d, .. (allgather), m(d) of them, their segments merged
    where adjacent (one transfer each, rank by rank, offsets ascending); numpy-built for all ranks."""
    p = len(ranks)
    ranks = np.asarray(ranks, dtype=np.int64)
    off, cnt, first_seg, sizes = flatten_blocks(blocks)
    order = np.arange(p, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    rows = np.arange(p, dtype=np.int64)
    steps = []
    for d in distances(p, reduce):
        m = slices_per_step(p, d)
        dst = (rows - d) % p if reduce else (rows + d) % p
        first = dst if reduce else rows
        chunk = order[(first[:, None] - 2 * d * np.arange(m)[None, :]) % p].ravel()  # the slices, rank by rank
        per = sizes[chunk]
        seg = np.repeat(first_seg[chunk] - np.cumsum(per) + per, per) + np.arange(int(per.sum()))
        row = np.repeat(np.repeat(rows, m), per)
        o, c = off[seg], cnt[seg]
        by_offset = np.argsort(row * (int(o.max(initial=0)) + 1) + o, kind="stable")  # within a rank, as coalesce
        o, c, row = o[by_offset], c[by_offset], row[by_offset]
        keep = c > 0
        o, c, row = o[keep], c[keep], row[keep]
        new = np.ones(len(o), dtype=bool)  # a segment starts unless it continues the previous one
        new[1:] = (row[1:] != row[:-1]) | (o[1:] != o[:-1] + c[:-1])
        starts = np.flatnonzero(new)
        seg_off, seg_row = o[starts], row[starts]
        seg_cnt = np.add.reduceat(c, starts) if len(starts) else c[:0]
        n = len(starts)
        buf = np.full(n, BUF, dtype=np.int8)
        steps.append(Step(ranks[seg_row], ranks[dst[seg_row]], buf, seg_off, buf.copy(), seg_off.copy(),
                          seg_cnt, np.full(n, reduce, dtype=bool)))
    return steps


def compact_pass(ranks, counts, reduce: bool):
    """Timing-only reduce-scatter (``reduce``) or allgather on every column of the rank grid ``ranks``
    (q, k), ``counts`` elements a column: the steps of ``_pass``, where row i's m(d) slices to row i-d
    (i+d) are one transfer of m(d) largest chunks (``schedule.compact_step``): the data schedule's m(d)
    slices, merged (as HCCL's allreduce slice map makes them for q = 2^k or 3 * 2^k) or not (several
    transfers of the same pair, whose reduces the engine overlaps)."""
    ranks = as_columns(ranks)
    q, k = ranks.shape
    if q < 2:
        return []
    chunk = -(-column_counts(counts, k) // q)  # largest chunk
    src, steps = ranks.ravel(), []
    for d in distances(q, reduce):
        dst = np.roll(ranks, d if reduce else -d, axis=0).ravel()  # row i -> row i-d (i+d)
        steps.append(compact_step(src, dst, np.broadcast_to(slices_per_step(q, d) * chunk, (q, k)), reduce))
    return steps


def compact_allreduce(ranks, counts):
    return compact_pass(ranks, counts, True) + compact_pass(ranks, counts, False)


def reduce_scatter_blocks(ranks, blocks, order=None):
    """Afterwards ``ranks[i]`` holds ``blocks[i]`` (``blocks[order[i]]``) reduced over all ranks."""
    return _pass(ranks, blocks, True, order)


def allgather_blocks(ranks, blocks, order=None):
    """``ranks[i]`` starts with ``blocks[i]`` (``blocks[order[i]]``); afterwards every rank holds all."""
    return _pass(ranks, blocks, False, order)


def allreduce(ranks, count, offset=0):
    p = len(ranks)
    blocks = segments_of(chunk_bounds(count, p), offset)
    order = slice_map(p)
    return reduce_scatter_blocks(ranks, blocks, order) + allgather_blocks(ranks, blocks, order)


_BUILDERS, _COMPACT, _LEVEL = reg.pass_forms(allreduce, reduce_scatter_blocks, allgather_blocks, compact_pass,
                                            compact_allreduce)
reg.register(reg.Algorithm(
    "nhr", "HCCL's nonuniform hierarchical ring: ceil(log2 p) steps for any p, no extra traffic",
    builders=_BUILDERS,
    formulas={"allreduce": "2L a + 2(p-1)/p n b + (p-1)/p n g", "allgather": "L a + (p-1)/p n b",
              "reduce_scatter": "L a + (p-1)/p n (b + g)"},
    compact=_COMPACT, hccl_names=("nhr",), level=_LEVEL, order=50))
