"""NCCL's double binary tree: two complementary binary trees, each reducing then broadcasting half of
the data, pipelined in chunks. Tree 2 is tree 1 shifted by one rank (odd p) or mirrored (even p), so
most ranks that are leaves in one tree are inner nodes in the other.

Cost (flat, large n): about n b for each of reduce and broadcast plus 2(log2 p + K) a per tree.
"""
from . import registry as reg
from . import pipeline
from .schedule import merge_parallel


def btree_parents(p):
    """NCCL's ncclGetBtree: parent of each rank (root 0) in an in-order binary tree."""
    parents = {0: None}
    for r in range(1, p):
        bit = r & -r
        up = (r ^ bit) | (bit << 1)
        parents[r] = up if up < p else r ^ bit
    return parents


def dtree_parents(p):
    base = btree_parents(p)
    if p % 2:  # shift by one
        to, back = (lambda r: (r - 1) % p), (lambda r: (r + 1) % p)
    else:  # mirror
        to = back = (lambda r: p - 1 - r)
    return {r: (None if base[to(r)] is None else back(base[to(r)])) for r in range(p)}


def allreduce(ranks, count, offset=0, variant=""):
    p = len(ranks)
    half = (count + 1) // 2
    trees = []
    for parents, lo, n in ((btree_parents(p), offset, half), (dtree_parents(p), offset + half, count - half)):
        tree = {ranks[r]: (None if up is None else ranks[up]) for r, up in parents.items()}
        k = pipeline.chunks_for(n, variant)
        trees.append(pipeline.tree_reduce(tree, n, k, lo) + pipeline.tree_broadcast(tree, n, k, lo))
    return merge_parallel(trees)


reg.register(reg.Algorithm(
    "dbtree", "NCCL's double binary tree: two complementary trees, each on half the data, pipelined",
    builders={"allreduce": lambda ctx, job, variant: allreduce(reg.ranks_of(ctx), job.count, 0, variant)},
    formulas={"allreduce": "two pipelined binary trees on n/2 each, reduce then broadcast"},
    hccl_names=("dbtree",), order=90))
