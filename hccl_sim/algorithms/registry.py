"""The algorithm registry: every algorithm file registers itself here once, and every table that names
algorithms (``BUILDERS``, ``FORMULAS``, ``COMPACT_BUILDERS``, HCCL_ALGO names, the level tables of
``hier``, the CLI's help and ``hccl-sim algos``) is read from it.

SimGrid registers each collective algorithm with one X-macro line that feeds both selection and help
(src/smpi/colls/smpi_coll.cpp, ``COLL_APPLY``); an ``Algorithm`` is that line: its name, builders per
collective with one signature, cost formulas, HCCL's names for it, the forms in which it serves one
level of a hierarchy, and a help line. Adding an algorithm is one file ending in ``register(Algorithm(...))``
(``algorithms/__init__.py`` imports every module beside it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

# builder(ctx: Context, job: Job, variant: str) -> list[Step]: the schedule's steps (Job and Context in
# algorithms/__init__.py); variant is what follows "NAME:" in the algorithm string ("" if nothing).
Builder = Callable
# compact builder(ctx, count, variant, root) -> list[Step]: timing-only steps (see schedule.compact_step)
CompactBuilder = Callable

# the order the tables list collectives in; a collective not named here (a new one) follows, by name.
# The collectives layer checks that every collective an algorithm builds has a descriptor.
ORDER = ("allreduce", "allgather", "reduce_scatter", "broadcast", "reduce", "scatter", "gather", "alltoall",
         "barrier")
# the v-variants share their fixed-size sibling's algorithms (blocks or matrix carry the sizes)
V_VARIANTS = {"allgatherv": "allgather", "reduce_scatterv": "reduce_scatter", "alltoallv": "alltoall"}


@dataclass(frozen=True)
class Level:
    """How an algorithm serves one level of a hierarchy (a group of ranks inside ``hier``, HCCL's levelN).

    Full forms take the group's ranks: ``allreduce(ranks, count, offset)``, ``reduce_scatter(ranks, blocks)``
    and ``allgather(ranks, blocks)`` (blocks: per member, lists of (offset, count) segments),
    ``scatter(ranks, blocks, root_pos)``, ``broadcast(ranks, count, offset, root_pos)``. Compact forms
    (timing only, any size) take a (q, k) array of ranks, k groups of q members, and the elements of
    each group: ``compact_reduce_scatter``, ``compact_allgather``, ``compact_allreduce``."""
    allreduce: Callable | None = None
    reduce_scatter: Callable | None = None
    allgather: Callable | None = None
    scatter: Callable | None = None
    broadcast: Callable | None = None
    compact_reduce_scatter: Callable | None = None
    compact_allgather: Callable | None = None
    compact_allreduce: Callable | None = None


@dataclass(frozen=True)
class Algorithm:
    """One algorithm, registered once.

    ``builders``: collective -> builder(ctx, job, variant); ``formulas``: collective -> Hockney cost text
    (``hccl-sim algos``); ``compact``: collective -> compact builder(ctx, count, variant, root), the
    timing-only schedule used at scale (``Context.compact``); ``hccl_names``: the names (case-insensitive)
    that select it at a level of HCCL_ALGO, its own included where HCCL_ALGO may name it; ``level``: its forms on one level of ``hier``;
    ``order``: its place in every list (``hccl-sim algos``, and ``auto``'s ties: the first listed wins),
    ``order_in`` per collective where that differs; ``auto``: whether ``auto`` considers it;
    ``whole_hierarchy``: named at any level of HCCL_ALGO, it runs the whole hierarchy (HCCL's AHC);
    ``step_flows``: for an algorithm whose steps grow as p^2 (a full mesh), ``step_flows(ctx)`` the
    transfers of its largest step, or None where it does not apply; ``auto`` leaves it out above
    ``planning.MESH_PHASE_FLOWS``."""
    name: str
    help: str
    builders: Mapping[str, Builder]
    formulas: Mapping[str, str] = field(default_factory=dict)
    compact: Mapping[str, CompactBuilder] = field(default_factory=dict)
    hccl_names: tuple[str, ...] = ()
    level: Level = Level()
    order: int = 1000
    order_in: Mapping[str, int] = field(default_factory=dict)
    auto: bool = True
    whole_hierarchy: bool = False
    step_flows: Callable | None = None

    def rank(self, collective: str) -> int:
        return self.order_in.get(collective, self.order)


REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm``; a second registration of one name is an error."""
    if algorithm.name in REGISTRY:
        raise ValueError(f"algorithm {algorithm.name!r} is registered twice")
    REGISTRY[algorithm.name] = algorithm
    return algorithm


def collectives() -> list[str]:
    """Every collective some algorithm builds, in ``ORDER`` then by name."""
    named = {c for a in REGISTRY.values() for c in (*a.builders, *a.formulas, *a.compact)}
    return sorted(named, key=lambda c: (ORDER.index(c) if c in ORDER else len(ORDER), c))


def _for(collective: str) -> list[Algorithm]:
    base = V_VARIANTS.get(collective, collective)
    found = [a for a in REGISTRY.values() if base in a.builders]
    return sorted(found, key=lambda a: a.rank(base))


def builders() -> dict[str, dict[str, Builder]]:
    """collective -> algorithm name -> builder, every collective and its v-variant."""
    table = {c: {a.name: a.builders[c] for a in _for(c)} for c in collectives()}
    return {**table, **{v: table[base] for v, base in V_VARIANTS.items()}}


def in_auto(collective: str) -> list[str]:
    """The algorithms of ``collective`` that ``auto`` may pick, in order."""
    return [a.name for a in _for(collective) if a.auto]


def whole_hierarchy() -> set[str]:
    """Algorithms that, named at one level of HCCL_ALGO, run every level."""
    return {a.name for a in REGISTRY.values() if a.whole_hierarchy}


def formulas() -> dict[tuple[str, str], str]:
    """(collective, algorithm) -> cost formula, the v-variants included."""
    return {(c, a.name): a.formulas[V_VARIANTS.get(c, c)] for c in (*collectives(), *V_VARIANTS)
            for a in _for(c) if V_VARIANTS.get(c, c) in a.formulas}


def compact_builders() -> dict[str, dict[str, CompactBuilder]]:
    """collective -> algorithm name -> compact builder (fixed-size collectives only)."""
    return {c: {a.name: a.compact[c] for a in _for(c) if c in a.compact} for c in collectives()
            if any(c in a.compact for a in REGISTRY.values())}


def level_forms(form: str) -> dict[str, Callable]:
    """algorithm name -> its ``Level`` form ``form`` ("allreduce", "compact_allgather", ...), where it has one."""
    algos = sorted(REGISTRY.values(), key=lambda a: a.order)
    return {a.name: getattr(a.level, form) for a in algos if getattr(a.level, form) is not None}


def hccl_names() -> dict[str, str | None]:
    """HCCL_ALGO level names (lower case) -> our algorithm, NA -> None (the default)."""
    names: dict[str, str | None] = {"na": None}
    for a in sorted(REGISTRY.values(), key=lambda a: a.order):
        names.update({n.lower(): a.name for n in a.hccl_names})
    return names


def help_names() -> str:
    """The algorithm names for ``--algo``'s help, in order, ``hier`` last with its per-level form."""
    algos = sorted(REGISTRY.values(), key=lambda a: (a.name == "hier", a.order))
    return ", ".join(a.name + ("[:A0/A1/...], one per level" if a.name == "hier" else "") for a in algos)


# ---- builder adapters: a module function over the communicator's ranks 0..p-1 as a builder(ctx, job, variant)
def ranks_of(ctx) -> list[int]:
    return list(range(ctx.nranks))


def flat(fn):
    """fn(ranks, count): allreduce-style, the whole buffer."""
    return lambda ctx, job, variant: fn(ranks_of(ctx), job.count)


def blocked(fn):
    """fn(ranks, blocks): per-rank blocks (allgather, reduce-scatter and their v-variants)."""
    return lambda ctx, job, variant: fn(ranks_of(ctx), job.block_segments(ctx.nranks))


def rooted(fn):
    """fn(ranks, count, offset, root_pos): broadcast, reduce."""
    return lambda ctx, job, variant: fn(ranks_of(ctx), job.count, 0, job.root)


def rooted_blocked(fn):
    """fn(ranks, blocks, root_pos): scatter, gather."""
    return lambda ctx, job, variant: fn(ranks_of(ctx), job.block_segments(ctx.nranks), job.root)


def on_all_ranks(fn):
    """A compact builder from fn(rank grid, counts) over every rank as one group."""
    def build(ctx, count, variant, root):
        import numpy as np
        from .schedule import RANK
        return fn(np.arange(ctx.nranks, dtype=RANK), count)
    return build


def pass_forms(allreduce, reduce_scatter, allgather, compact_pass=None, compact_allreduce=None, **level):
    """(builders, compact, level) of an algorithm written as allreduce(ranks, count, offset),
    reduce_scatter(ranks, blocks) and allgather(ranks, blocks), with its timing-only
    compact_pass(rank grid, counts, reduce) and compact_allreduce(rank grid, counts) if it has them;
    ``level`` adds other ``Level`` forms (scatter, broadcast)."""
    builders = {"allreduce": flat(allreduce), "allgather": blocked(allgather), "reduce_scatter": blocked(reduce_scatter)}
    compact = {}
    if compact_pass is not None:
        level.update(compact_reduce_scatter=lambda ranks, counts: compact_pass(ranks, counts, True),
                     compact_allgather=lambda ranks, counts: compact_pass(ranks, counts, False),
                     compact_allreduce=compact_allreduce)
        compact = {"allreduce": on_all_ranks(compact_allreduce),
                   "reduce_scatter": on_all_ranks(level["compact_reduce_scatter"]),
                   "allgather": on_all_ranks(level["compact_allgather"])}
    return builders, compact, Level(allreduce=allreduce, reduce_scatter=reduce_scatter, allgather=allgather, **level)
