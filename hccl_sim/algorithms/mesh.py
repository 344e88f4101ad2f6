"""Mesh (HCCL "full mesh", direct): every rank talks to every other rank at once, one step per phase.

On a full-mesh topology each pair has its own link, so a phase costs a + (n/p) b. Cost: allgather and
reduce-scatter a + n/p b (+ (p-1)/p n g); allreduce 2a + 2/p n b + (p-1)/p n g; broadcast (direct
scatter, direct allgather) 2a + 2/p n b; alltoall a + n/p b with n the bytes each rank sends.

A step holds p(p-1) transfers (more with multi-segment blocks), so every step is built with numpy for
all pairs at once, with real offsets: the same schedule serves the data executors and, at any size,
the timing engine (hundreds of ranks in milliseconds; what bounds the size is the engine's flows).
"""
import numpy as np

from . import registry as reg
from . import star
from .ring import segments_of
from .schedule import SEND, array_step, chunk_bounds, flatten_blocks


def _pairs(p: int, skip_dst: int = -1):
    """(src, dst) positions of every ordered pair i != j, src-major, leaving out dst ``skip_dst``."""
    src, dst = np.divmod(np.arange(p * p, dtype=np.int64), p)
    keep = (src != dst) & (dst != skip_dst)
    return src[keep], dst[keep]


def _pair_step(ranks, src, dst, blocks, block_of, reduce):
    """One step: pair (src[t], dst[t]) moves every segment of ``blocks[block_of[t]]`` (same offset on
    both sides), pairs in the given order, segments in block order."""
    ranks = np.asarray(ranks, dtype=np.int64)
    off, cnt, first, sizes = flatten_blocks(blocks)
    per_pair = sizes[block_of]
    seg = np.repeat(first[block_of] - np.cumsum(per_pair) + per_pair, per_pair) + np.arange(int(per_pair.sum()))
    src, dst = np.repeat(src, per_pair), np.repeat(dst, per_pair)
    return array_step(ranks[src], ranks[dst], off[seg], off[seg], cnt[seg], reduce)


def reduce_scatter_blocks(ranks, blocks):
    src, dst = _pairs(len(ranks))
    return [_pair_step(ranks, src, dst, blocks, dst, True)]


def allgather_blocks(ranks, blocks):
    src, dst = _pairs(len(ranks))
    return [_pair_step(ranks, src, dst, blocks, src, False)]


def allreduce(ranks, count, offset=0):
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    return reduce_scatter_blocks(ranks, blocks) + allgather_blocks(ranks, blocks)


def broadcast(ranks, count, offset=0, root_pos=0):
    """The root hands chunk j to rank j, then every rank (the root with its own chunk) sends its chunk
    to all but the root."""
    p = len(ranks)
    blocks = segments_of(chunk_bounds(count, p), offset)
    others = np.array([j for j in range(p) if j != root_pos], dtype=np.int64)
    scatter = _pair_step(ranks, np.full(len(others), root_pos), others, blocks, others, False)
    src, dst = _pairs(p, skip_dst=root_pos)
    return [scatter, _pair_step(ranks, src, dst, blocks, src, False)]


def reduce(ranks, count, offset=0, root_pos=0):
    """Direct reduce-scatter, then every rank sends its reduced chunk to the root."""
    p = len(ranks)
    blocks = segments_of(chunk_bounds(count, p), offset)
    others = np.array([i for i in range(p) if i != root_pos], dtype=np.int64)
    gather = _pair_step(ranks, others, np.full(len(others), root_pos), blocks, others, False)
    return reduce_scatter_blocks(ranks, blocks) + [gather]


def alltoall(ranks, matrix):
    """``matrix[i, j]``: elements rank i sends rank j (p x p numpy array); rank i's input holds its
    blocks in order of j, rank j's output what it receives in order of i."""
    ranks = np.asarray(ranks, dtype=np.int64)
    src, dst = _pairs(len(ranks))
    send_off, recv_off = np.cumsum(matrix, axis=1) - matrix, np.cumsum(matrix, axis=0) - matrix
    return [array_step(ranks[src], ranks[dst], send_off[src, dst], recv_off[src, dst], matrix[src, dst],
                       False, src_buf=SEND)]


def barrier(ranks):
    src, dst = _pairs(len(ranks))
    ranks = np.asarray(ranks, dtype=np.int64)
    zero = np.zeros(len(src), dtype=np.int64)
    return [array_step(ranks[src], ranks[dst], zero, zero, zero, False)]


# a mesh step holds p(p-1) transfers: above this many the full-mesh schedule is refused (memory: ~50
# bytes a transfer), naming the forms that scale
MESH_MAX_TRANSFERS = 1 << 23


def _mesh(build):
    """The full-mesh schedule (numpy-built, equal chunks) as a compact builder, refused above
    MESH_MAX_TRANSFERS transfers a step."""
    def compact(ctx, count, _variant, _root):
        p = ctx.nranks
        if p * (p - 1) > MESH_MAX_TRANSFERS:
            raise ValueError(f"mesh: {p} ranks make {p * (p - 1)} transfers a step (at most {MESH_MAX_TRANSFERS}); "
                             "at this scale use mesh by level (hier:mesh/...) or, for all-to-all, gmesh")
        return build(list(range(p)), count)
    return compact


def _equal_blocks(count, p):
    return segments_of(chunk_bounds(count, p))


_BUILDERS, _, _LEVEL = reg.pass_forms(allreduce, reduce_scatter_blocks, allgather_blocks, scatter=star.scatter_blocks,
                                      broadcast=broadcast)
reg.register(reg.Algorithm(
    "mesh", "HCCL's full mesh (direct): every rank talks to every other at once, one step a phase",
    step_flows=lambda ctx: ctx.nranks * (ctx.nranks - 1),
    builders={**_BUILDERS, "broadcast": reg.rooted(broadcast), "reduce": reg.rooted(reduce),
              "alltoall": lambda ctx, job, variant: alltoall(reg.ranks_of(ctx), job.alltoall_matrix(ctx.nranks)),
              "barrier": lambda ctx, job, variant: barrier(reg.ranks_of(ctx))},
    formulas={"allreduce": "2a + 2/p n b + (p-1)/p n g on a full mesh", "allgather": "a + n/p b on a full mesh",
              "reduce_scatter": "a + n/p b + (p-1)/p n g on a full mesh",
              "broadcast": "direct scatter + direct allgather: 2a + 2/p n b on a full mesh",
              "reduce": "direct RS + direct gather: 2a + 2/p n b + (p-1)/p n g on a full mesh",
              "alltoall": "a + n/p b on a full mesh; a + (p-1)/p n b on a switch", "barrier": "a"},
    compact={"allreduce": _mesh(allreduce),
             "reduce_scatter": _mesh(lambda ranks, count: reduce_scatter_blocks(ranks,
                                                                                _equal_blocks(count, len(ranks)))),
             "allgather": _mesh(lambda ranks, count: allgather_blocks(ranks, _equal_blocks(count, len(ranks)))),
             "alltoall": _mesh(lambda ranks, count: alltoall(ranks, np.full((len(ranks),) * 2, count // len(ranks))))},
    hccl_names=("mesh", "fullmesh"), level=_LEVEL, order=60))
