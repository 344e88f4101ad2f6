"""Mesh (HCCL "full mesh", direct): every rank talks to every other rank at once, one step per phase.

On a full-mesh topology each pair has its own link, so a phase costs a + (n/p) b. Cost: allgather and
reduce-scatter a + n/p b (+ (p-1)/p n g); allreduce 2a + 2/p n b + (p-1)/p n g; broadcast (direct
scatter, direct allgather) 2a + 2/p n b; alltoall a + n/p b with n the bytes each rank sends.
"""
from .ring import segments_of
from .schedule import SEND, StepBuilder, add_segments, chunk_bounds


def reduce_scatter_blocks(ranks, blocks):
    step = StepBuilder()
    for i, src in enumerate(ranks):
        for j, dst in enumerate(ranks):
            if i != j:
                add_segments(step, src, dst, blocks[j], reduce=True)
    return [step.build()]


def allgather_blocks(ranks, blocks):
    step = StepBuilder()
    for i, src in enumerate(ranks):
        for j, dst in enumerate(ranks):
            if i != j:
                add_segments(step, src, dst, blocks[i])
    return [step.build()]


def allreduce(ranks, count, offset=0):
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    return reduce_scatter_blocks(ranks, blocks) + allgather_blocks(ranks, blocks)


def broadcast(ranks, count, offset=0, root_pos=0):
    """The root hands chunk j to rank j, then every rank (the root with its own chunk) sends its chunk
    to all but the root."""
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    scatter = StepBuilder()
    for j, dst in enumerate(ranks):
        if j != root_pos:
            add_segments(scatter, ranks[root_pos], dst, blocks[j])
    gather = StepBuilder()
    for i, src in enumerate(ranks):
        for j, dst in enumerate(ranks):
            if i != j and j != root_pos:
                add_segments(gather, src, dst, blocks[i])
    return [scatter.build(), gather.build()]


def reduce(ranks, count, offset=0, root_pos=0):
    """Direct reduce-scatter, then every rank sends its reduced chunk to the root."""
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    gather = StepBuilder()
    for i, src in enumerate(ranks):
        if i != root_pos:
            add_segments(gather, src, ranks[root_pos], blocks[i])
    return reduce_scatter_blocks(ranks, blocks) + [gather.build()]


def alltoall(ranks, send_blocks, recv_blocks):
    """``send_blocks[i][j]``: segment of rank i's input for rank j; ``recv_blocks[j][i]``: where it lands."""
    step = StepBuilder()
    for i, src in enumerate(ranks):
        for j, dst in enumerate(ranks):
            if i != j:
                (so, c), (do, _) = send_blocks[i][j], recv_blocks[j][i]
                step.add(src, dst, so, do, c, src_buf=SEND)
    return [step.build()]


def barrier(ranks):
    step = StepBuilder()
    for src in ranks:
        for dst in ranks:
            if src != dst:
                step.add(src, dst, 0, 0, 0)
    return [step.build()]
