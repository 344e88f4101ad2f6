"""AHC, HCCL's asymmetric hierarchical concatenate: hierarchical allreduce, reduce-scatter and allgather
when servers (level-0 groups) hold different numbers of ranks, ``ahc[:INTRA/INTER]`` (default ring/ring;
HCCL_ALGO ``level1:AHC``, which HCCL also applies at level2; ``AHC_BROKE`` is taken as the same).

Source: CANN HCCL user guide, "AHC" (hiascend.com/document/detail/en/CANNCommunityEdition/900/API/hcclug/
hcclug_000123.html; figure 1 there: 5 ranks in groups of 2 and 3), and the HCCL_ALGO environment variable
reference (maintenref/envvar/envref_07_0079). Its allreduce, with G groups of m_g ranks:

1. the buffer is cut into lcm(m_g) * G slices, so that every group's cut into m_g near-equal parts falls
   on slice boundaries (member j of group g owns slices [j S / m_g, (j+1) S / m_g), S the slice count);
   every group runs a reduce-scatter over its members on that cut, all groups at once (INTRA);
2. the union of all groups' cuts splits the buffer into segments; in every group exactly one member
   holds a given segment, and these G "logical same-number" ranks allreduce it (INTER), all segments at
   once (each group's segment sizes are uneven: that is the asymmetric concatenation);
3. every group allgathers its cut over its members (INTRA).

Reduce-scatter (rank r's block out) runs steps 1-2, then every rank fetches the parts of its block from
the members of its group that hold them (one step). Allgather is the dual: every rank hands the parts of
its block to the members of its group that hold them (one step); the G ranks holding the same segments
allgather them (INTER; in each segment's source group the holder contributes it), then step 3. The
cuts include the block boundaries, so each segment has one source group. HCCL picks INTRA/INTER itself (NB, NHR, ring); here
they are named, and ``auto`` leaves AHC out (it runs where asked, as HCCL's does when configured).

Cost (allreduce, n bytes, ring at both levels): the intra-group reduce-scatter and allgather of the
largest group, (m-1)/m n each at ring cost, plus a ring allreduce among G ranks of the segments one
rank holds, about n/m_min in all: 2(m_max-1)a + 2(m_max-1)/m_max n b + 2(G-1)a + 2(G-1)/G n/m_min b.
"""
from __future__ import annotations

from math import lcm

import numpy as np

from . import registry as reg
from .ring import segments_of
from .schedule import StepBuilder, add_segments, chunk_bounds, merge_parallel


def _form(form: str, name: str, level: str):
    table = reg.level_forms(form)
    if name not in table:
        raise ValueError(f"ahc: {level} algorithm {name!r} has no {form.replace('_', '-')} form "
                         f"(one of {', '.join(table)})")
    return table[name]


def _names(variant: str) -> tuple[str, str]:
    intra, _, inter = (variant or "ring/ring").partition("/")
    if "/" in inter:
        raise ValueError(f"ahc: {variant!r} names more than two levels (ahc:INTRA/INTER)")
    return intra or "ring", inter or "ring"


class _Cut:
    """Each group's cut of [0, count) into its members' parts, and the segments of their union (and of
    ``extra`` boundaries) with the member of every group that holds each."""

    def __init__(self, groups, count: int, extra=()):
        self.groups = [list(g) for g in groups]
        sizes = [len(g) for g in self.groups]
        slices = lcm(*sizes) * len(sizes)
        bounds = chunk_bounds(count, slices)
        self.bounds = [bounds[np.arange(m + 1) * (slices // m)] for m in sizes]  # per group, m + 1 offsets
        cuts = np.unique(np.concatenate(self.bounds + [np.asarray(extra, dtype=np.int64)]))
        cuts = cuts[(cuts >= 0) & (cuts <= count)]
        self.segments = [(int(lo), int(hi)) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]

    def holder(self, g: int, offset: int) -> int:
        """The member (position in group g) whose part holds element ``offset``."""
        return int(np.searchsorted(self.bounds[g], offset, side="right")) - 1

    def holders(self, lo: int) -> list[int]:
        return [g[self.holder(i, lo)] for i, g in enumerate(self.groups)]

    def intra(self, fn):
        """fn(ranks, blocks) in every group at once, on the group's cut."""
        return merge_parallel([fn(g, segments_of(b)) for g, b in zip(self.groups, self.bounds)])

    def exchange(self, blocks, to_holders: bool):
        """One step: every rank's block parts go to (or come from) the members of its group holding them."""
        step = StepBuilder()
        for gi, group in enumerate(self.groups):
            for rank in group:
                for off, cnt in blocks[rank]:
                    for j, member in enumerate(group):
                        lo, hi = max(off, int(self.bounds[gi][j])), min(off + cnt, int(self.bounds[gi][j + 1]))
                        if member != rank and hi > lo:
                            src, dst = (rank, member) if to_holders else (member, rank)
                            add_segments(step, src, dst, [(lo, hi - lo)])
        return [step.build()]


def allreduce(groups, count: int, intra: str = "ring", inter: str = "ring", offset: int = 0):
    """AHC allreduce of ``count`` elements over server ``groups`` (lists of ranks, any sizes)."""
    rs, ag = _form("reduce_scatter", intra, "intra-group"), _form("allgather", intra, "intra-group")
    ar = _form("allreduce", inter, "inter-group")
    cut = _Cut(groups, count)
    return cut.intra(rs) + _inter_allreduce(cut, ar) + cut.intra(ag)


def _inter_allreduce(cut, ar):
    return merge_parallel([ar(cut.holders(lo), hi - lo, lo) for lo, hi in cut.segments])


def _block_bounds(blocks):
    return [b for segs in blocks for off, cnt in segs for b in (off, off + cnt)]


def reduce_scatter_blocks(groups, blocks, intra: str = "ring", inter: str = "ring"):
    """Afterwards rank r holds ``blocks[r]`` reduced over all ranks."""
    rs, ar = _form("reduce_scatter", intra, "intra-group"), _form("allreduce", inter, "inter-group")
    cut = _Cut(groups, max(_block_bounds(blocks), default=0), _block_bounds(blocks))
    return cut.intra(rs) + _inter_allreduce(cut, ar) + cut.exchange(blocks, to_holders=False)


def allgather_blocks(groups, blocks, intra: str = "ring", inter: str = "ring"):
    """Rank r starts with ``blocks[r]``; afterwards every rank holds every block."""
    ag, inter_ag = _form("allgather", intra, "intra-group"), _form("allgather", inter, "inter-group")
    cut = _Cut(groups, max(_block_bounds(blocks), default=0), _block_bounds(blocks))
    group_of = {r: gi for gi, g in enumerate(cut.groups) for r in g}
    owner = sorted((off, r) for r, segs in enumerate(blocks) for off, cnt in segs if cnt > 0)
    starts = [off for off, _ in owner]
    by_holders: dict = {}  # the G holders of a segment -> per group, the segments that group is the source of
    for lo, hi in cut.segments:
        source = group_of[owner[int(np.searchsorted(starts, lo, side="right")) - 1][1]]
        parts = by_holders.setdefault(tuple(cut.holders(lo)), [[] for _ in cut.groups])
        parts[source].append((lo, hi - lo))
    inter_steps = merge_parallel([inter_ag(list(holders), parts) for holders, parts in by_holders.items()])
    return cut.exchange(blocks, to_holders=True) + inter_steps + cut.intra(ag)


reg.register(reg.Algorithm(
    "ahc", "HCCL's asymmetric hierarchical concatenate: hierarchical on servers of different sizes, "
           "ahc:INTRA/INTER (explicit only, not in auto)",
    builders={
        "allreduce": lambda ctx, job, variant: allreduce(ctx.groups, job.count, *_names(variant)),
        "reduce_scatter": lambda ctx, job, variant: reduce_scatter_blocks(
            ctx.groups, job.block_segments(ctx.nranks), *_names(variant)),
        "allgather": lambda ctx, job, variant: allgather_blocks(
            ctx.groups, job.block_segments(ctx.nranks), *_names(variant)),
    },
    formulas={
        "allreduce": "intra RS over each group's m_g + inter AR of each segment among the G logical same-number "
                     "ranks + intra AG: about 2(m-1)a + 2(m-1)/m n b + 2(G-1)a + 2(G-1)/G n/m_min b (ring/ring)",
        "reduce_scatter": "intra RS + inter AR of the segments + one step fetching each rank's block",
        "allgather": "one step handing each block to its holders + inter AG of the segments + intra AG"},
    hccl_names=("ahc", "ahc_broke"), order=125, auto=False, whole_hierarchy=True))
