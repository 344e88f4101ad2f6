"""Pairwise all-to-all: in step k (1..p-1) rank i sends its block for rank i+k and receives from i-k.

Cost: (p-1)(a + n/p b), n the bytes each rank sends (equal blocks).

At scale (compact, timing only) the pairing goes digit by digit over a level structure
(``Context.radices``): in step k rank i sends to the rank whose mixed-radix digits are i's plus k's,
each digit modulo its radix (no carries). Every step is a permutation and every pair meets once, as in
the shift-order pairwise, but all routes of a step now cross the same levels, so steps fall into a few
classes of identical load pattern; each class is one step repeated. See ``compact_alltoall``.
"""
import numpy as np

from . import registry as reg
from .schedule import RANK, SEND, Step, array_step, broadcast_array, compact_step


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


def alltoall_by_digits(nranks: int, count: int, radices: tuple[int, ...], mesh_levels: int = 0) -> list[Step]:
    """Pairwise all-to-all in digit order over the mixed-radix rank grid ``radices`` (level 0 first,
    the first ``mesh_levels`` of them full-mesh dimensions); ``count`` elements a rank, equal blocks.

    Step k (1..p-1) sends rank i's block for rank j = i (+) k, adding digit by digit modulo each radix
    (no carries). Two steps use the same number of flows on every link, up to relabeling of the
    links, when their highest non-zero digit is the same switch level (a route climbs every switch
    level up to its highest differing one, whatever the lower digits), or when they have no non-zero
    switch digit and the same set of non-zero mesh digits (one mesh hop per such digit). So on a
    topology whose levels are ``radices`` (linear placement, no per-link degradation: the network
    model sets ``radices`` only then) such steps take the same time from a common start, and each
    class is one representative step (digit 1 where the class has non-zero digits) repeated by the
    class size. Exact for the stepwise engine; the shift-order data schedule differs in which pairs
    meet when, not in what is sent.
    """
    radices = tuple(int(r) for r in radices)
    if nranks < 2:
        return []
    if int(np.prod(radices)) != nranks:
        raise ValueError(f"alltoall: radices {radices} do not multiply to {nranks} ranks")
    block = count // nranks
    digits = np.arange(nranks, dtype=np.int64)
    strides = np.concatenate([[1], np.cumprod(radices)[:-1]]).astype(np.int64)
    coords = [(digits // strides[i]) % radices[i] for i in range(len(radices))]
    src = digits.astype(RANK)

    def step_for(levels, repeat):
        dst = digits.copy()
        for i in levels:  # digit i of the partner is i's plus one, modulo the radix
            dst += (((coords[i] + 1) % radices[i]) - coords[i]) * strides[i]
        return compact_step(src, dst.astype(RANK), broadcast_array(block, nranks, np.int64), False, repeat)

    steps = []
    mesh = [i for i in range(min(mesh_levels, len(radices))) if radices[i] > 1]
    for subset in range(1, 1 << len(mesh)):  # no switch digit: classes by the set of mesh digits
        levels = [mesh[b] for b in range(len(mesh)) if subset >> b & 1]
        steps.append(step_for(levels, int(np.prod([radices[i] - 1 for i in levels]))))
    for top in range(mesh_levels, len(radices)):  # highest non-zero digit at switch level ``top``
        if radices[top] > 1:
            steps.append(step_for([top], (radices[top] - 1) * int(strides[top])))
    return steps


def compact_alltoall(ctx, count, _variant, _root):
    if not ctx.radices:
        raise ValueError("alltoall: the compact pairwise schedule needs the rank grid of a regular topology "
                         "with linear placement (Context.radices)")
    return alltoall_by_digits(ctx.nranks, count, ctx.radices, ctx.mesh_levels)


reg.register(reg.Algorithm(
    "pairwise", "all-to-all in p-1 steps, step k from rank i to rank i+k",
    builders={"alltoall": lambda ctx, job, variant: alltoall(reg.ranks_of(ctx), job.alltoall_matrix(ctx.nranks))},
    formulas={"alltoall": "(p-1)(a + n/p b)"},
    compact={"alltoall": compact_alltoall},
    hccl_names=("pairwise",), order=130, order_in={"alltoall": 55}))
