"""Hierarchical composition across levels (HCCL-style), each level's algorithm selectable as
``hier:INTRA/INTER``. Needs the same number m of ranks in every server (level-0 group).

- allreduce: intra reduce-scatter -> inter allreduce of each shard among the ranks with the same local
  index -> intra allgather. Cost: intra RS + inter AR of n/m + intra AG.
- broadcast: intra scatter from the root -> inter broadcast of each shard -> intra allgather.
- allgather: inter allgather among same-local-index ranks -> intra allgather of the gathered columns.
- reduce-scatter: intra reduce-scatter of columns -> inter reduce-scatter among same-local-index ranks.
"""
import numpy as np

from . import levels
from . import registry as reg
from .ring import segments_of
from .schedule import RANK, chunk_bounds, merge_parallel


def level_table(form: str) -> dict:
    """algorithm name -> its form ``form`` on one level (registry ``Level``): "allreduce", "allgather", ..."""
    return reg.level_forms(form)


def _pick(form, name, level):
    table = level_table(form)
    if name not in table:
        raise ValueError(f"hier: {level} algorithm {name!r} is not one of {', '.join(table)} (the algorithms "
                         f"registered with a {form} form on one level)")
    return table[name]


def _server_size(groups):
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"hier: needs the same number of ranks in every server, got {sorted(len(g) for g in groups)}")
    return sizes.pop()


def allreduce(groups, count, intra="ring", inter="ring"):
    reduce_scatter = _pick("reduce_scatter", intra, "intra-server")
    allgather = _pick("allgather", intra, "intra-server")
    inter_allreduce = _pick("allreduce", inter, "inter-server")
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
    scatter = _pick("scatter", intra, "intra-server")
    allgather = _pick("allgather", intra if intra in level_table("allgather") else "ring", "intra-server")
    inter_broadcast = _pick("broadcast", inter, "inter-server")
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
    intra_ag, inter_ag = _pick("allgather", intra, "intra-server"), _pick("allgather", inter, "inter-server")
    m = _server_size(groups)
    steps = merge_parallel([inter_ag([g[j] for g in groups], [blocks[g[j]] for g in groups]) for j in range(m)])
    columns = _columns(groups, blocks)
    return steps + merge_parallel([intra_ag(list(g), columns) for g in groups])


def reduce_scatter_blocks(groups, blocks, intra="ring", inter="ring"):
    intra_rs = _pick("reduce_scatter", intra, "intra-server")
    inter_rs = _pick("reduce_scatter", inter, "inter-server")
    m = _server_size(groups)
    columns = _columns(groups, blocks)
    steps = merge_parallel([intra_rs(list(g), columns) for g in groups])
    return steps + merge_parallel([inter_rs([g[j] for g in groups], [blocks[g[j]] for g in groups]) for j in range(m)])


# ---- hier: the builders, on server groups or one algorithm per level of the rank grid (levels.py) --------
# hier's default level algorithms, "INTRA/INTER", per collective (HCCL's level0/level1)
HIER_DEFAULTS = {"allreduce": "ring/ring", "allgather": "ring/ring", "reduce_scatter": "ring/ring",
                 "broadcast": "ring/tree", "reduce": "ring/ring"}


def hier_levels(collective: str, variant: str) -> tuple[str, str]:
    """(intra, inter) algorithms of ``hier[:INTRA/INTER]``, the collective's defaults filling what is unset."""
    default = HIER_DEFAULTS.get(collective.removesuffix("v"), "ring/ring")
    intra, _, inter = (variant or default).partition("/")
    d_intra, _, d_inter = default.partition("/")
    return intra or d_intra, inter or d_inter


def _level_names(ctx, variant):
    """The names of ``hier:A0/A1/...`` when they select one algorithm per level of the rank grid
    (levels.py), else None: ``hier`` or ``hier:INTRA/INTER`` on server groups (HCCL's level0/level1)."""
    names = variant.split("/") if variant else []
    if levels.applies(ctx, names) and (len(names) > 2 or ctx.mesh_levels):
        return names
    if len(names) > 2:
        levels.check_names(ctx, names, "hier")
    return None


def _hier(collective, two_level, by_level):
    def build(ctx, job, variant):
        names = _level_names(ctx, variant)
        return two_level(ctx, job, *hier_levels(collective, variant)) if names is None else by_level(ctx, job, names)
    return build


def _broadcast_two_level(ctx, job, intra, inter):
    return broadcast(ctx.groups, job.count, job.root, intra, inter)


def _broadcast_by_level(ctx, job, names):
    """Scatter down, allgather up by level; two names that are not allgather algorithms (``ring/tree``:
    a broadcast across servers) keep the two-level form on server groups."""
    if len(names) == 2 and not all(n in level_table("allgather") for n in names):
        return _broadcast_two_level(ctx, job, *names)
    return levels.broadcast(ctx, job.count, job.root, names)


def _reduce_two_level(ctx, job, intra, inter):
    """Two-level reduce on server groups: the hierarchical reduce-scatter of p chunks, then a binomial
    gather of them to the root."""
    from . import tree
    blocks = segments_of(chunk_bounds(job.count, ctx.nranks))
    return reduce_scatter_blocks(ctx.groups, blocks, intra, inter) + tree.gather_blocks(reg.ranks_of(ctx), blocks,
                                                                                        job.root)


def compact_allreduce(groups: np.ndarray, count: int, inter: str = "ring"):
    """Timing-only: the intra-server ring reduce-scatter inside every server at once, the inter-server
    allreduce of shard j among the ranks with local index j (all j at once), the ring allgather inside
    every server; ``groups`` (servers, m)."""
    forms = level_table("compact_allreduce")
    if inter not in forms:
        raise ValueError(f"hier: inter-server algorithm {inter!r} has no compact form (compact: {', '.join(forms)})")
    groups = np.asarray(groups, dtype=RANK)
    m = groups.shape[1]
    shard = np.diff((np.arange(m + 1) * count) // m)  # per local index, near-equal
    rs, ag = level_table("compact_reduce_scatter")["ring"], level_table("compact_allgather")["ring"]
    return rs(groups.T, count) + forms[inter](groups, shard) + ag(groups.T, count)


def _compact(collective, by_level, two_level):
    """Timing-only ``hier``: one algorithm per grid level (levels.py), else the two-level form on server
    groups, as the full schedule chooses (``_hier``)."""
    def build(ctx, count, variant, _root):
        names = _level_names(ctx, variant)
        if names is not None:
            return by_level(ctx, count, names)
        intra, inter = hier_levels(collective, variant)
        if intra != "ring" and collective == "allreduce":
            span = ""
            if ctx.radices:  # two names on ranks that span more levels: say how to name one per level
                sizes = [ctx.radices[i] for i in levels.grid_levels(ctx.radices)]
                span = (f"; these ranks span {len(sizes)} levels of sizes {sizes}: name one algorithm per level "
                        f"(hier:A0/.../A{len(sizes) - 1}, HCCL_ALGO level0:..;level{len(sizes) - 1}:..)")
            raise ValueError(f"hier: intra-server algorithm {intra!r} has no compact form (compact: ring){span}")
        return two_level(np.array(ctx.groups, dtype=RANK), count, intra, inter)
    return build


def compact_blocks(groups: np.ndarray, count: int, intra: str, inter: str, collective: str):
    """Timing-only two-level reduce-scatter (intra RS of the whole buffer, then inter RS of shard j among
    the ranks with local index j) or allgather (the reverse order) on equal blocks; ``groups`` (servers, m)."""
    form = "compact_reduce_scatter" if collective == "reduce_scatter" else "compact_allgather"
    m = groups.shape[1]
    shard = np.diff((np.arange(m + 1) * count) // m)  # per local index, near-equal
    intra_steps = _pick(form, intra, "intra-server")(groups.T, count)
    inter_steps = _pick(form, inter, "inter-server")(groups, shard)
    return intra_steps + inter_steps if collective == "reduce_scatter" else inter_steps + intra_steps


def _compact_blocks(collective):
    return _compact(collective, lambda ctx, count, names: levels.compact_blocks(ctx, count, names, collective),
                    lambda groups, count, intra, inter: compact_blocks(groups, count, intra, inter, collective))


reg.register(reg.Algorithm(
    "hier", "hierarchical: one algorithm per level, hier:INTRA/INTER on servers (HCCL level0/level1) or "
            "hier:A0/A1/... one per level of the rank grid",
    builders={
        "allreduce": _hier("allreduce", lambda ctx, job, a, b: allreduce(ctx.groups, job.count, a, b),
                           lambda ctx, job, names: levels.allreduce(ctx, job.count, names)),
        "allgather": _hier("allgather", lambda ctx, job, a, b: allgather_blocks(
            ctx.groups, job.block_segments(ctx.nranks), a, b),
            lambda ctx, job, names: levels.allgather_blocks(ctx, job.block_segments(ctx.nranks), names)),
        "reduce_scatter": _hier("reduce_scatter", lambda ctx, job, a, b: reduce_scatter_blocks(
            ctx.groups, job.block_segments(ctx.nranks), a, b),
            lambda ctx, job, names: levels.reduce_scatter_blocks(ctx, job.block_segments(ctx.nranks), names)),
        "broadcast": _hier("broadcast", _broadcast_two_level, _broadcast_by_level),
        "reduce": _hier("reduce", _reduce_two_level, lambda ctx, job, names: levels.reduce(ctx, job.count, job.root,
                                                                                            names)),
    },
    formulas={
        "allreduce": "intra RS over m + inter AR of n/m over p/m + intra AG over m; hier:A0/A1/..: RS down each "
                     "level, AR across the top, AG up (mesh levels at once: n(p-1)/p over all their links)",
        "allgather": "inter AG of n/m over p/m + intra AG over m",
        "reduce_scatter": "intra RS over m + inter RS of n/m over p/m",
        "broadcast": "intra scatter + inter broadcast of n/m + intra allgather; hier:A0/A1/..: scatter down the "
                     "levels, AG up",
        "reduce": "hierarchical RS + binomial gather; hier:A0/A1/..: RS down each level, gather up the levels"},
    compact={"allreduce": _compact("allreduce", lambda ctx, count, names: levels.allreduce(ctx, count, names),
                                   lambda groups, count, intra, inter: compact_allreduce(groups, count, inter)),
             "reduce_scatter": _compact_blocks("reduce_scatter"),
             "allgather": _compact_blocks("allgather")},
    order=120))
