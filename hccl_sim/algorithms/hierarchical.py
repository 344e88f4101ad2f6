"""Hierarchical composition across levels (HCCL-style), each level's algorithm selectable as
``hier:INTRA/INTER``. Needs the same number m of ranks in every server (level-0 group).

- allreduce: intra reduce-scatter -> inter allreduce of each shard among the ranks with the same local
  index -> intra allgather. Cost: intra RS + inter AR of n/m + intra AG.
- broadcast: intra scatter from the root -> inter broadcast of each shard -> intra allgather.
- allgather: inter allgather among same-local-index ranks -> intra allgather of the gathered columns.
- reduce-scatter: intra reduce-scatter of columns -> inter reduce-scatter among same-local-index ranks.
"""
from . import bruck, mesh, mring, nhr, pipeline, rhd, ring, star, tree
from .ring import segments_of
from .schedule import chunk_bounds, merge_parallel

INTER = {"ring": ring.allreduce, "tree": tree.allreduce, "rhd": rhd.allreduce, "nb": bruck.allreduce,
         "nhr": nhr.allreduce, "mesh": mesh.allreduce, "mring": mring.allreduce}
# algorithms over per-position blocks, usable at either level
ALLGATHER = {"ring": ring.allgather_blocks, "mesh": mesh.allgather_blocks, "rhd": rhd.allgather_blocks,
             "nb": bruck.allgather_blocks, "nhr": nhr.allgather_blocks, "dring": ring.double_allgather_blocks,
             "mring": mring.allgather_blocks}
REDUCE_SCATTER = {"ring": ring.reduce_scatter_blocks, "mesh": mesh.reduce_scatter_blocks,
                  "rhd": rhd.reduce_scatter_blocks, "nb": bruck.reduce_scatter_blocks, "nhr": nhr.reduce_scatter_blocks,
                  "dring": ring.double_reduce_scatter_blocks, "mring": mring.reduce_scatter_blocks}
SCATTER = {"ring": ring.scatter_blocks, "star": star.scatter_blocks, "mesh": star.scatter_blocks,
           "tree": tree.scatter_blocks}
BROADCAST = {"ring": ring.broadcast, "tree": tree.broadcast, "star": star.broadcast, "mesh": mesh.broadcast,
             "pipeline": pipeline.broadcast}


def _pick(table, name, level):
    if name not in table:
        raise ValueError(f"hier: {level} algorithm {name!r} is not one of {', '.join(table)}")
    return table[name]


def _server_size(groups):
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"hier: needs the same number of ranks in every server, got {sorted(len(g) for g in groups)}")
    return sizes.pop()


def allreduce(groups, count, intra="ring", inter="ring"):
    reduce_scatter = _pick(REDUCE_SCATTER, intra, "intra-server")
    allgather = _pick(ALLGATHER, intra, "intra-server")
    inter_allreduce = _pick(INTER, inter, "inter-server")
    m = _server_size(groups)
    bounds = chunk_bounds(count, m)
    blocks = segments_of(bounds)
    steps = merge_parallel([reduce_scatter(list(g), blocks) for g in groups])
    steps += merge_parallel([
        inter_allreduce([g[j] for g in groups], int(bounds[j + 1] - bounds[j]), int(bounds[j])) for j in range(m)
    ])
    steps += merge_parallel([allgather(list(g), blocks) for g in groups])
    return steps


def broadcast(groups, count, root, intra="ring", inter="tree"):
    scatter = _pick(SCATTER, intra, "intra-server")
    allgather = _pick(ALLGATHER, intra, "intra-server") if intra in ALLGATHER else ring.allgather_blocks
    inter_broadcast = _pick(BROADCAST, inter, "inter-server")
    m = _server_size(groups)
    home = next(i for i, g in enumerate(groups) if root in g)
    blocks = segments_of(chunk_bounds(count, m))
    steps = scatter(groups[home], blocks, groups[home].index(root))
    steps += merge_parallel([
        inter_broadcast([g[j] for g in groups], blocks[j][0][1], blocks[j][0][0], home) for j in range(m)
    ])
    return steps + merge_parallel([allgather(g, blocks) for g in groups])


def _columns(groups, blocks):
    m = len(groups[0])
    return [[seg for g in groups for seg in blocks[g[j]]] for j in range(m)]


def allgather_blocks(groups, blocks, intra="ring", inter="ring"):
    """``blocks[r]``: rank r's segments of the output."""
    intra_ag, inter_ag = _pick(ALLGATHER, intra, "intra-server"), _pick(ALLGATHER, inter, "inter-server")
    m = _server_size(groups)
    steps = merge_parallel([inter_ag([g[j] for g in groups], [blocks[g[j]] for g in groups]) for j in range(m)])
    columns = _columns(groups, blocks)
    return steps + merge_parallel([intra_ag(list(g), columns) for g in groups])


def reduce_scatter_blocks(groups, blocks, intra="ring", inter="ring"):
    intra_rs = _pick(REDUCE_SCATTER, intra, "intra-server")
    inter_rs = _pick(REDUCE_SCATTER, inter, "inter-server")
    m = _server_size(groups)
    columns = _columns(groups, blocks)
    steps = merge_parallel([intra_rs(list(g), columns) for g in groups])
    return steps + merge_parallel([inter_rs([g[j] for g in groups], [blocks[g[j]] for g in groups]) for j in range(m)])
