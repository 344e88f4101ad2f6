"""Hierarchical allreduce: intra-server reduce-scatter -> inter-server allreduce of each shard among
the ranks with the same local index -> intra-server allgather. Each level's algorithm is selectable.

Needs the same number of ranks in every server. Cost: intra RS + inter AR on n/m + intra AG, where m
is the ranks per server.
"""
from . import ring, rhd, tree
from .schedule import chunk_bounds, merge_parallel

INTRA = {"ring": (ring.reduce_scatter, ring.allgather)}
INTER = {"ring": ring.allreduce, "tree": tree.allreduce, "rhd": rhd.allreduce}


def allreduce(groups, count, intra="ring", inter="ring"):
    if intra not in INTRA:
        raise ValueError(f"hier: intra-server algorithm {intra!r} is not one of {', '.join(INTRA)}")
    if inter not in INTER:
        raise ValueError(f"hier: inter-server algorithm {inter!r} is not one of {', '.join(INTER)}")
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"hier: needs the same number of ranks in every server, got {sorted(len(g) for g in groups)}")
    m = sizes.pop()
    reduce_scatter, allgather = INTRA[intra]
    bounds = chunk_bounds(count, m)
    steps = merge_parallel([reduce_scatter(g, count) for g in groups])
    steps += merge_parallel([
        INTER[inter]([g[j] for g in groups], int(bounds[j + 1] - bounds[j]), int(bounds[j])) for j in range(m)
    ])
    steps += merge_parallel([allgather(g, count) for g in groups])
    return steps
