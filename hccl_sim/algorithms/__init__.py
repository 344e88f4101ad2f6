"""Layer 2: collective algorithms as pure functions producing schedules. No MPI, no torch, no timing.

Every collective runs on a working buffer ``BUF`` laid out the same way for all of its algorithms
(see hccl_sim/collectives.py for how user tensors map onto it): allreduce, broadcast and reduce work
in place on the whole tensor; allgather(v), reduce-scatter(v), scatter and gather on the concatenation
of per-rank blocks (rank r's block at offset sum(blocks[:r])); all-to-all(v) copies from ``SEND`` to
``BUF``. Rank r's own part is put in place locally, so schedules move only what crosses ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import bruck, dbtree, gmesh, hierarchical, levels, mesh, mring, nhr, pairwise, pipeline, rhd, ring, star, tree
from .compact import COMPACT_BUILDERS, ROOTED as COMPACT_ROOTED
from .ring import segments_of
from .schedule import BUF, SEND, TMP, Schedule, Step, StepBuilder, chunk_bounds, merge_parallel, reverse_steps


@dataclass(frozen=True)
class Context:
    """What an algorithm may know of the communicator: its size and its ranks grouped by server."""
    nranks: int
    groups: tuple[tuple[int, ...], ...]
    # Timing-only compact schedules (repeated steps, numpy-built; see compact.py), for large cases.
    compact: bool = False
    # The ranks as a mixed-radix grid over the topology's levels (level 0 first, the first
    # ``mesh_levels`` full-mesh), when the placement makes them one; () otherwise.
    radices: tuple[int, ...] = ()
    mesh_levels: int = 0
    # Per grid level, a class id shared by levels of the same size and links (levels.py rotates the
    # dimension order within a class); () when unknown.
    level_classes: tuple[int, ...] = ()
    # Per grid level, bytes/s one rank can send to the others of its group at once (mesh: radix - 1
    # links); levels.py weighs its parts by it. () when unknown.
    level_bandwidth: tuple[float, ...] = ()

    @classmethod
    def flat(cls, nranks: int) -> "Context":
        return cls(nranks, (tuple(range(nranks)),))


@dataclass(frozen=True)
class Job:
    """The shape of one call: working-buffer elements, root, per-rank blocks, all-to-all matrix."""
    count: int
    root: int = 0
    blocks: tuple[int, ...] | None = None  # elements of each rank's block (block collectives)
    matrix: tuple[tuple[int, ...], ...] | None = None  # all-to-all: matrix[i][j] elements from i to j

    def block_segments(self, nranks: int):
        sizes = self.blocks if self.blocks is not None else np.diff(chunk_bounds(self.count, nranks))
        return segments_of(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))

    def alltoall_matrix(self, nranks: int) -> np.ndarray:
        """Elements rank i sends rank j, shape (p, p): the matrix, or equal blocks of count // p."""
        if self.matrix is not None:
            return np.asarray(self.matrix, dtype=np.int64).reshape(nranks, nranks)
        return np.full((nranks, nranks), self.count // nranks, dtype=np.int64)

    def alltoall_blocks(self, nranks: int):
        """(send_blocks[i][j], recv_blocks[j][i]) as (offset, count), from the matrix or equal blocks."""
        m = self.alltoall_matrix(nranks)
        send_off = np.cumsum(m, axis=1) - m
        recv_off = np.cumsum(m, axis=0) - m  # rank j's buffer holds what i sends, in order of i
        send = [[(int(send_off[i, j]), int(m[i, j])) for j in range(nranks)] for i in range(nranks)]
        recv = [[(int(recv_off[i, j]), int(m[i, j])) for i in range(nranks)] for j in range(nranks)]
        return send, recv


def _ranks(ctx):
    return list(range(ctx.nranks))


def _hier_levels(variant, default):
    intra, _, inter = (variant or default).partition("/")
    d_intra, _, d_inter = default.partition("/")
    return intra or d_intra, inter or d_inter


def _rooted(module_fn):
    return lambda ctx, job, v: module_fn(_ranks(ctx), job.count, 0, job.root)


def _blocked(fn):
    return lambda ctx, job, v: fn(_ranks(ctx), job.block_segments(ctx.nranks))


def _rooted_blocked(fn):
    return lambda ctx, job, v: fn(_ranks(ctx), job.block_segments(ctx.nranks), job.root)


def _flat_allreduce(fn):
    return lambda ctx, job, v: fn(_ranks(ctx), job.count)


def _alltoall(fn):
    return lambda ctx, job, v: fn(_ranks(ctx), job.alltoall_matrix(ctx.nranks))


def _reduce_by_scatter(rs, gather):
    """Reduce as reduce-scatter of p chunks then a gather of them to the root."""
    def build(ctx, job, v):
        blocks = segments_of(chunk_bounds(job.count, ctx.nranks))
        return rs(_ranks(ctx), blocks) + gather(_ranks(ctx), blocks, job.root)
    return build


def _hier(fn, default, by_level):
    """``hier:A/B`` on server groups (HCCL's level0/level1), or ``hier:A0/A1/...`` with one algorithm
    per level of the rank grid (levels.py) when the names match the levels the ranks span."""
    def build(ctx, job, v):
        names = v.split("/") if v else []
        if levels.applies(ctx, names) and (len(names) > 2 or ctx.mesh_levels):
            return by_level(ctx, job, names)
        if len(names) > 2:
            levels.check_names(ctx, names, "hier")
        return fn(ctx, job, *_hier_levels(v, default))
    return build


# hier's default level algorithms, "INTRA/INTER", per collective (HCCL's level0/level1)
HIER_DEFAULTS = {"allreduce": "ring/ring", "allgather": "ring/ring", "reduce_scatter": "ring/ring",
                 "broadcast": "ring/tree", "reduce": "ring/ring"}


def _hier_broadcast(ctx, job, intra, inter):
    return hierarchical.broadcast(ctx.groups, job.count, job.root, intra, inter)


def _broadcast_by_level(ctx, job, names):
    """Scatter down, allgather up by level; two names that are not allgather algorithms (``ring/tree``:
    a broadcast across servers) keep the two-level form on server groups."""
    if len(names) == 2 and not all(n in hierarchical.ALLGATHER for n in names):
        return _hier_broadcast(ctx, job, *names)
    return levels.broadcast(ctx, job.count, job.root, names)


def _hier_reduce(ctx, job, intra, inter):
    """Two-level reduce on server groups: the hierarchical reduce-scatter of p chunks, then a binomial
    gather of them to the root."""
    blocks = segments_of(chunk_bounds(job.count, ctx.nranks))
    return (hierarchical.reduce_scatter_blocks(ctx.groups, blocks, intra, inter)
            + tree.gather_blocks(_ranks(ctx), blocks, job.root))

# collective -> algorithm name -> builder(ctx, job, variant) -> list of steps
BUILDERS = {
    "allreduce": {
        "ring": _flat_allreduce(ring.allreduce),
        "tree": _flat_allreduce(tree.allreduce),
        "rhd": _flat_allreduce(rhd.allreduce),
        "nb": _flat_allreduce(bruck.allreduce),
        "nhr": _flat_allreduce(nhr.allreduce),
        "mesh": _flat_allreduce(mesh.allreduce),
        "dring": _flat_allreduce(ring.double_allreduce),
        "mring": _flat_allreduce(mring.allreduce),
        "dbtree": lambda ctx, job, v: dbtree.allreduce(_ranks(ctx), job.count, 0, v),
        "pipeline": lambda ctx, job, v: pipeline.allreduce(_ranks(ctx), job.count, 0, v),
        "star": _flat_allreduce(star.allreduce),
        "hier": _hier(lambda ctx, job, a, b: hierarchical.allreduce(ctx.groups, job.count, a, b),
                      HIER_DEFAULTS["allreduce"], lambda ctx, job, names: levels.allreduce(ctx, job.count, names)),
    },
    "allgather": {
        "ring": _blocked(ring.allgather_blocks),
        "rhd": _blocked(rhd.allgather_blocks),
        "nb": _blocked(bruck.allgather_blocks),
        "nhr": _blocked(nhr.allgather_blocks),
        "mesh": _blocked(mesh.allgather_blocks),
        "dring": _blocked(ring.double_allgather_blocks),
        "mring": _blocked(mring.allgather_blocks),
        "hier": _hier(lambda ctx, job, a, b: hierarchical.allgather_blocks(
            ctx.groups, job.block_segments(ctx.nranks), a, b), HIER_DEFAULTS["allgather"],
            lambda ctx, job, names: levels.allgather_blocks(ctx, job.block_segments(ctx.nranks), names)),
    },
    "reduce_scatter": {
        "ring": _blocked(ring.reduce_scatter_blocks),
        "rhd": _blocked(rhd.reduce_scatter_blocks),
        "nb": _blocked(bruck.reduce_scatter_blocks),
        "nhr": _blocked(nhr.reduce_scatter_blocks),
        "mesh": _blocked(mesh.reduce_scatter_blocks),
        "dring": _blocked(ring.double_reduce_scatter_blocks),
        "mring": _blocked(mring.reduce_scatter_blocks),
        "hier": _hier(lambda ctx, job, a, b: hierarchical.reduce_scatter_blocks(
            ctx.groups, job.block_segments(ctx.nranks), a, b), HIER_DEFAULTS["reduce_scatter"],
            lambda ctx, job, names: levels.reduce_scatter_blocks(ctx, job.block_segments(ctx.nranks), names)),
    },
    "broadcast": {
        "tree": _rooted(tree.broadcast),
        "ring": _rooted(ring.broadcast),
        "mesh": _rooted(mesh.broadcast),
        "star": _rooted(star.broadcast),
        "pipeline": lambda ctx, job, v: pipeline.broadcast(_ranks(ctx), job.count, 0, job.root, v),
        "hier": _hier(_hier_broadcast, HIER_DEFAULTS["broadcast"], _broadcast_by_level),
    },
    "reduce": {
        "tree": _rooted(tree.reduce),
        "ring": _reduce_by_scatter(ring.reduce_scatter_blocks, tree.gather_blocks),
        "mesh": _rooted(mesh.reduce),
        "star": _rooted(star.reduce),
        "pipeline": lambda ctx, job, v: pipeline.reduce(_ranks(ctx), job.count, 0, job.root, v),
        "hier": _hier(_hier_reduce, HIER_DEFAULTS["reduce"],
                      lambda ctx, job, names: levels.reduce(ctx, job.count, job.root, names)),
    },
    "scatter": {
        "star": _rooted_blocked(star.scatter_blocks),
        "tree": _rooted_blocked(tree.scatter_blocks),
        "ring": _rooted_blocked(ring.scatter_blocks),
    },
    "gather": {
        "star": _rooted_blocked(star.gather_blocks),
        "tree": _rooted_blocked(tree.gather_blocks),
        "ring": _rooted_blocked(lambda ranks, blocks, root: reverse_steps(ring.scatter_blocks(ranks, blocks, root),
                                                                          reduce=False)),
    },
    "alltoall": {
        "pairwise": _alltoall(pairwise.alltoall),
        "mesh": _alltoall(mesh.alltoall),
        "gmesh": lambda ctx, job, v: gmesh.alltoall(ctx, job.alltoall_matrix(ctx.nranks)),
    },
    "barrier": {
        "nb": lambda ctx, job, v: bruck.barrier(_ranks(ctx)),
        "tree": lambda ctx, job, v: tree.barrier(_ranks(ctx)),
        "mesh": lambda ctx, job, v: mesh.barrier(_ranks(ctx)),
    },
}
# the v-variants share their fixed-size sibling's algorithms (blocks or matrix carry the sizes)
BUILDERS["allgatherv"] = BUILDERS["allgather"]
BUILDERS["reduce_scatterv"] = BUILDERS["reduce_scatter"]
BUILDERS["alltoallv"] = BUILDERS["alltoall"]

# Cost formulas for `hccl-sim algos`: Hockney a-b-g, p ranks, n bytes (the larger buffer, as nccl-tests
# counts it), m ranks per server, K pipeline chunks, L = ceil(log2 p).
FORMULAS = {
    ("allreduce", "ring"): "2(p-1)a + 2(p-1)/p n b + (p-1)/p n g",
    ("allreduce", "tree"): "2L(a + n b) + L n g",
    ("allreduce", "rhd"): "2 log2(p) a + 2(p-1)/p n b + (p-1)/p n g  (+2(a + n b) + n g if p is not a power of two)",
    ("allreduce", "nb"): "2L a + 2(p-1)/p n b + (p-1)/p n g",
    ("allreduce", "nhr"): "2L a + 2(p-1)/p n b + (p-1)/p n g",
    ("allreduce", "mesh"): "2a + 2/p n b + (p-1)/p n g on a full mesh",
    ("allreduce", "dring"): "two opposite rings on n/2 each: 2(p-1)a + 2(p-1)/p n b + (p-1)/p n g on a switch",
    ("allreduce", "mring"): "phi(p) rings on disjoint mesh links, n/phi(p) each: 2(p-1)a + 2(p-1)/p n/phi(p) b on a full mesh",
    ("allgather", "mring"): "(p-1)a + (p-1)/p n/phi(p) b on a full mesh",
    ("reduce_scatter", "mring"): "(p-1)a + (p-1)/p n/phi(p) (b + g) on a full mesh",
    ("allreduce", "dbtree"): "two pipelined binary trees on n/2 each, reduce then broadcast",
    ("allreduce", "pipeline"): "chain reduce + chain broadcast in K chunks: 2(K+p-2)(a + n/K b) + (K+p-2) n/K g",
    ("allreduce", "star"): "2a + 2(p-1) n b + (p-1) n g on a switch",
    ("allreduce", "hier"): "intra RS over m + inter AR of n/m over p/m + intra AG over m; hier:A0/A1/..: RS down "
                           "each level, AR across the top, AG up (mesh levels at once: n(p-1)/p over all their links)",
    ("allgather", "ring"): "(p-1)a + (p-1)/p n b",
    ("allgather", "rhd"): "log2(p) a + (p-1)/p n b  (+ a + n/p b before and a + n b after if p is not a power of two)",
    ("allgather", "nb"): "L a + (p-1)/p n b",
    ("allgather", "nhr"): "L a + (p-1)/p n b",
    ("allgather", "mesh"): "a + n/p b on a full mesh",
    ("allgather", "dring"): "(p-1)a + (p-1)/p n b on a switch; both directions of a ring on a mesh",
    ("allgather", "hier"): "inter AG of n/m over p/m + intra AG over m",
    ("reduce_scatter", "ring"): "(p-1)a + (p-1)/p n b + (p-1)/p n g",
    ("reduce_scatter", "rhd"): "log2(p) a + (p-1)/p n (b + g)  (+ a + n(b + g) before and a + n/p b after if p is not a power of two)",
    ("reduce_scatter", "nb"): "L a + (p-1)/p n (b + g)",
    ("reduce_scatter", "nhr"): "L a + (p-1)/p n (b + g)",
    ("reduce_scatter", "mesh"): "a + n/p b + (p-1)/p n g on a full mesh",
    ("reduce_scatter", "dring"): "(p-1)a + (p-1)/p n (b + g) on a switch",
    ("reduce_scatter", "hier"): "intra RS over m + inter RS of n/m over p/m",
    ("broadcast", "tree"): "L(a + n b)",
    ("broadcast", "ring"): "ring scatter + ring allgather: 2(p-1)a + 2(p-1)/p n b",
    ("broadcast", "mesh"): "direct scatter + direct allgather: 2a + 2/p n b on a full mesh",
    ("broadcast", "star"): "a + (p-1) n b on a switch",
    ("broadcast", "pipeline"): "(K+p-2)(a + n/K b)",
    ("broadcast", "hier"): "intra scatter + inter broadcast of n/m + intra allgather; hier:A0/A1/..: scatter down "
                           "the levels, AG up",
    ("reduce", "tree"): "L(a + n b + n g)",
    ("reduce", "ring"): "ring RS + binomial gather: (p-1+L)a + 2(p-1)/p n b + (p-1)/p n g",
    ("reduce", "mesh"): "direct RS + direct gather: 2a + 2/p n b + (p-1)/p n g on a full mesh",
    ("reduce", "star"): "a + (p-1) n (b + g) on a switch",
    ("reduce", "pipeline"): "(K+p-2)(a + n/K b + n/K g)",
    ("reduce", "hier"): "hierarchical RS + binomial gather; hier:A0/A1/..: RS down each level, gather up the levels",
    ("scatter", "star"): "a + (p-1)/p n b",
    ("scatter", "tree"): "L a + (p-1)/p n b",
    ("scatter", "ring"): "(p-1)(a + n/p b)",
    ("gather", "star"): "a + (p-1)/p n b",
    ("gather", "tree"): "L a + (p-1)/p n b",
    ("gather", "ring"): "(p-1)(a + n/p b)",
    ("alltoall", "pairwise"): "(p-1)(a + n/p b)",
    ("alltoall", "mesh"): "a + n/p b on a full mesh; a + (p-1)/p n b on a switch",
    ("alltoall", "gmesh"): "rounds of groups of G (mesh levels, else level 0): a + (G-1) n/p b, then p/G - 1 "
                           "rounds of a + G n/p b",
    ("barrier", "nb"): "L a (dissemination)",
    ("barrier", "tree"): "2L a",
    ("barrier", "mesh"): "a",
}
for _v, _f in (("allgatherv", "allgather"), ("reduce_scatterv", "reduce_scatter"), ("alltoallv", "alltoall")):
    for (_c, _a), _text in list(FORMULAS.items()):
        if _c == _f:
            FORMULAS[(_v, _a)] = _text

# collectives that synchronise even with no data
ZERO_SIZE_COLLECTIVES = {"barrier"}


def hier_levels(collective: str, variant: str) -> tuple[str, str]:
    """(intra, inter) algorithms of ``hier[:INTRA/INTER]``, the collective's defaults filling what is unset."""
    default = HIER_DEFAULTS.get(collective.removesuffix("v"), "ring/ring")
    return _hier_levels(variant, default)


def split_algo(algo: str) -> tuple[str, str]:
    """'hier:ring/rhd' -> ('hier', 'ring/rhd')."""
    name, _, variant = algo.partition(":")
    return name, variant


def algorithms_for(collective: str) -> list[str]:
    return list(BUILDERS.get(collective, {}))


@lru_cache(maxsize=512)
def build_schedule(collective: str, algo: str, ctx: Context, count: int, root: int = 0,
                   blocks: tuple[int, ...] | None = None,
                   matrix: tuple[tuple[int, ...], ...] | None = None) -> Schedule:
    """The schedule of ``collective`` with ``algo`` over ``count`` working elements (cached: schedules are
    immutable). ``root`` for rooted collectives, ``blocks`` per-rank block sizes for the v-variants,
    ``matrix`` the all-to-all-v counts."""
    table = BUILDERS.get(collective)
    if table is None:
        raise ValueError(f"collective {collective!r} is not supported (supported: {', '.join(BUILDERS)})")
    name, variant = split_algo(algo)
    if name not in table:
        raise ValueError(f"{collective}: algorithm {algo!r} is not one of {', '.join(table)}")
    if not 0 <= root < max(ctx.nranks, 1):
        raise ValueError(f"{collective}: root {root} is not a rank of {ctx.nranks}")
    if blocks is not None and len(blocks) != ctx.nranks:
        raise ValueError(f"{collective}: counts has {len(blocks)} entries for {ctx.nranks} ranks")
    schedule = Schedule(collective, algo, ctx.nranks, count)
    compact = COMPACT_BUILDERS.get(collective, {}).get(name) if ctx.compact and blocks is matrix is None else None
    if compact is not None:  # numpy-built, timing-only steps (see compact.py)
        schedule.timing_only = True
        if ctx.nranks > 1 and count > 0:
            schedule.extend(compact(ctx, count, variant, *((root,) if collective in COMPACT_ROOTED else ())))
        return schedule
    if ctx.nranks > 1 and (count > 0 or collective in ZERO_SIZE_COLLECTIVES):
        schedule.extend(table[name](ctx, Job(count, root, blocks, matrix), variant))
    return schedule
