"""Layer 2: collective algorithms as pure functions producing schedules. No MPI, no torch, no timing.

Every collective runs on a working buffer ``BUF`` laid out the same way for all of its algorithms
(see hccl_sim/collectives/ for how user tensors map onto it): allreduce, broadcast and reduce work
in place on the whole tensor; allgather(v), reduce-scatter(v), scatter and gather on the concatenation
of per-rank blocks (rank r's block at offset sum(blocks[:r])); all-to-all(v) copies from ``SEND`` to
``BUF``. Rank r's own part is put in place locally, so schedules move only what crosses ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pkgutil import iter_modules
import numpy as np

from . import registry
from .ring import segments_of
from .schedule import BUF, SEND, TMP, Schedule, Step, StepBuilder, chunk_bounds, merge_parallel, reverse_steps

# every module beside this one is imported, so each algorithm file registers itself (registry.register);
# lists follow each Algorithm's ``order``, not the import order
for _module in iter_modules(__path__):
    import_module(f"{__name__}.{_module.name}")
from .hierarchical import HIER_DEFAULTS, hier_levels  # noqa: E402  (hier's defaults, for selection)


@dataclass(frozen=True)
class Context:
    """What an algorithm may know of the communicator: its size and its ranks grouped by server."""
    nranks: int
    groups: tuple[tuple[int, ...], ...]
    # Ask for compact, timing-only schedules (schedule.compact_step: zero offsets, largest chunks,
    # repeated steps) where the algorithm has one: for large cases.
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

    def shape(self) -> dict:
        """The keywords ``build_schedule`` and ``NetworkModel`` take for this call's shape."""
        return {"root": self.root, "blocks": self.blocks, "matrix": self.matrix}

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


# collective -> algorithm name -> builder(ctx, job, variant) -> list of steps (registry.Algorithm.builders)
BUILDERS = registry.builders()
# Cost formulas for `hccl-sim algos`: Hockney a-b-g, p ranks, n bytes (the larger buffer, as nccl-tests
# counts it), m ranks per server, K pipeline chunks, L = ceil(log2 p).
FORMULAS = registry.formulas()
# collective -> algorithm name -> compact builder(ctx, count, variant, root), used when ctx.compact
COMPACT_BUILDERS = registry.compact_builders()

# collectives that synchronise even with no data
ZERO_SIZE_COLLECTIVES = {"barrier"}


def split_algo(algo: str) -> tuple[str, str]:
    """'hier:ring/rhd' -> ('hier', 'ring/rhd')."""
    name, _, variant = algo.partition(":")
    return name, variant


def algorithms_for(collective: str, auto: bool = False) -> list[str]:
    """The algorithms of ``collective`` in order; with ``auto``, those ``auto`` may pick."""
    return registry.in_auto(collective) if auto else list(BUILDERS.get(collective, {}))


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
    if compact is not None:  # timing-only steps (schedule.compact_step)
        schedule.timing_only = True
        if ctx.nranks > 1 and count > 0:
            schedule.extend(compact(ctx, count, variant, root))
        return schedule
    if ctx.nranks > 1 and (count > 0 or collective in ZERO_SIZE_COLLECTIVES):
        schedule.extend(table[name](ctx, Job(count, root, blocks, matrix), variant))
    return schedule
