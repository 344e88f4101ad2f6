"""Multi-ring (UB-Mesh, arXiv 2503.20377): several rings over edge-disjoint links of a full mesh at once.

Ring k visits positions 0, k, 2k, ... (mod p) for every shift k in 1..p-1 coprime with p, so each is a
Hamiltonian cycle and no two use the same directed link (ring k uses i -> i+k only). Each block is split
over the rings; each ring runs the ring reduce-scatter or allgather on its share. On a 1D full mesh of
p members with links of b, ring allreduce of n bytes becomes 2(p-1)a + 2(p-1)/p (n/R) b with R = phi(p)
rings (all p-1 links busy when p is prime). On a switch the rings share the NPU's port: no gain.
"""
from math import gcd

from . import registry as reg
from . import ring
from .schedule import chunk_bounds, merge_parallel


def shifts(p: int) -> list[int]:
    return [k for k in range(1, p) if gcd(k, p) == 1]


def _split(segs, parts):
    """Piece k of each (offset, count) segment, for k in range(parts)."""
    out = [[] for _ in range(parts)]
    for off, cnt in segs:
        bounds = chunk_bounds(cnt, parts)
        for k in range(parts):
            out[k].append((off + int(bounds[k]), int(bounds[k + 1] - bounds[k])))
    return out


def _rings(ranks, blocks, fn):
    p = len(ranks)
    ks = shifts(p) or [1]
    pieces = [_split(b, len(ks)) for b in blocks]  # pieces[i][k]: rank i's block, ring k's share
    lists = []
    for r, k in enumerate(ks):
        order = [(j * k) % p for j in range(p)]
        lists.append(fn([ranks[i] for i in order], [pieces[i][r] for i in order]))
    return merge_parallel(lists)


def reduce_scatter_blocks(ranks, blocks):
    return _rings(ranks, blocks, ring.reduce_scatter_blocks)


def allgather_blocks(ranks, blocks):
    return _rings(ranks, blocks, ring.allgather_blocks)


def allreduce(ranks, count, offset=0):
    blocks = ring.segments_of(chunk_bounds(count, len(ranks)), offset)
    return reduce_scatter_blocks(ranks, blocks) + allgather_blocks(ranks, blocks)


_BUILDERS, _, _LEVEL = reg.pass_forms(allreduce, reduce_scatter_blocks, allgather_blocks)
reg.register(reg.Algorithm(
    "mring", "multi-ring: phi(p) rings over edge-disjoint links of a full mesh at once (UB-Mesh)",
    builders=_BUILDERS,
    formulas={"allreduce": "phi(p) rings on disjoint mesh links, n/phi(p) each: 2(p-1)a + 2(p-1)/p n/phi(p) b on a "
                           "full mesh",
              "allgather": "(p-1)a + (p-1)/p n/phi(p) b on a full mesh",
              "reduce_scatter": "(p-1)a + (p-1)/p n/phi(p) (b + g) on a full mesh"},
    hccl_names=("mring", "multiring"), level=_LEVEL, order=80))
