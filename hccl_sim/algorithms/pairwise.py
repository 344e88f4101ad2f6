"""Pairwise all-to-all: in step k (1..p-1) rank i sends its block for rank i+k and receives from i-k.

Cost: (p-1)(a + n/p b), n the bytes each rank sends (equal blocks).
"""
import numpy as np

from .schedule import SEND, array_step


def alltoall(ranks, matrix):
    """``matrix[i, j]``: elements rank i sends rank j (p x p numpy array); rank i's input holds its
    blocks in order of j, rank j's output what it receives in order of i."""
    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    send_off, recv_off = np.cumsum(matrix, axis=1) - matrix, np.cumsum(matrix, axis=0) - matrix
    src = np.arange(p)
    steps = []
    for k in range(1, p):
        dst = (src + k) % p
        steps.append(array_step(ranks[src], ranks[dst], send_off[src, dst], recv_off[src, dst], matrix[src, dst],
                                False, src_buf=SEND))
    return steps
