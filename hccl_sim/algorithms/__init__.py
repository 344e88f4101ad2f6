"""Layer 2: collective algorithms as pure functions producing schedules. No MPI, no torch, no timing."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from . import hierarchical, rhd, ring, tree
from .schedule import BUF, SEND, TMP, Schedule, Step, StepBuilder, chunk_bounds, merge_parallel


@dataclass(frozen=True)
class Context:
    """What an algorithm may know of the communicator: its size and its ranks grouped by server."""
    nranks: int
    groups: tuple[tuple[int, ...], ...]

    @classmethod
    def flat(cls, nranks: int) -> "Context":
        return cls(nranks, (tuple(range(nranks)),))


def _hier(ctx, count, spec):
    intra, _, inter = (spec or "ring/ring").partition("/")
    return hierarchical.allreduce(ctx.groups, count, intra or "ring", inter or "ring")


# collective -> algorithm name -> builder(ctx, count, variant) -> list of steps
BUILDERS = {
    "allreduce": {
        "ring": lambda ctx, count, _: ring.allreduce(range(ctx.nranks), count),
        "tree": lambda ctx, count, _: tree.allreduce(range(ctx.nranks), count),
        "rhd": lambda ctx, count, _: rhd.allreduce(range(ctx.nranks), count),
        "hier": _hier,
    },
}

# Cost formulas for `hccl-sim algos`, Hockney a-b-g with p ranks, n bytes, m ranks per server.
FORMULAS = {
    ("allreduce", "ring"): "2(p-1)a + 2(p-1)/p n b + (p-1)/p n g",
    ("allreduce", "tree"): "2 ceil(log2 p)(a + n b) + ceil(log2 p) n g",
    ("allreduce", "rhd"): "2 log2(p) a + 2(p-1)/p n b + (p-1)/p n g  (+2(a + n b) + n g if p is not a power of two)",
    ("allreduce", "hier"): "ring RS over m + inter AR of n/m over p/m + ring AG over m",
}


def split_algo(algo: str) -> tuple[str, str]:
    """'hier:ring/rhd' -> ('hier', 'ring/rhd')."""
    name, _, variant = algo.partition(":")
    return name, variant


def algorithms_for(collective: str) -> list[str]:
    return list(BUILDERS.get(collective, {}))


@lru_cache(maxsize=512)
def build_schedule(collective: str, algo: str, ctx: Context, count: int) -> Schedule:
    """The schedule of ``collective`` with ``algo`` over ``count`` elements (cached: schedules are immutable)."""
    table = BUILDERS.get(collective)
    if table is None:
        raise ValueError(f"collective {collective!r} is not supported (supported: {', '.join(BUILDERS)})")
    name, variant = split_algo(algo)
    if name not in table:
        raise ValueError(f"{collective}: algorithm {algo!r} is not one of {', '.join(table)}")
    schedule = Schedule(collective, algo, ctx.nranks, count)
    if count > 0 and ctx.nranks > 1:
        schedule.extend(table[name](ctx, count, variant))
    return schedule
