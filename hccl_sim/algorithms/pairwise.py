"""Pairwise all-to-all: in step k (1..p-1) rank i sends its block for rank i+k and receives from i-k.

Cost: (p-1)(a + n/p b), n the bytes each rank sends (equal blocks).
"""
from .schedule import SEND, StepBuilder


def alltoall(ranks, send_blocks, recv_blocks):
    """``send_blocks[i][j]`` = (offset, count) in rank i's input; ``recv_blocks[j][i]`` its place at rank j."""
    p, steps = len(ranks), []
    for k in range(1, p):
        step = StepBuilder()
        for i in range(p):
            j = (i + k) % p
            (so, c), (do, _) = send_blocks[i][j], recv_blocks[j][i]
            step.add(ranks[i], ranks[j], so, do, c, src_buf=SEND)
        steps.append(step.build())
    return steps
