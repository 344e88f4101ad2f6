"""What the harness knows of each collective, one descriptor per file (nccl-tests' ``testColl``): element
counts, working buffers, finish, torch reference, benchmark call, bus-bandwidth factor and argument
checks. ``SPECS`` is the registry: adding a collective is one file and one line below.

Sizes follow nccl-tests: a collective's ``count`` is the elements of its larger buffer (allgather's
output, reduce-scatter's input, each rank's all-to-all buffer), and each rank's block is count // p.
"""
from __future__ import annotations

from .allgather import AllGather
from .allgatherv import AllGatherV
from .allreduce import AllReduce
from .alltoall import AllToAll
from .alltoallv import AllToAllV
from .barrier import Barrier
from .base import Collective, block_bounds
from .bench import BenchCall
from .broadcast import Broadcast
from .data import RankInputs, rank_data, reference
from .gather import Gather
from .reduce import Reduce
from .reduce_scatter import ReduceScatter
from .reduce_scatterv import ReduceScatterV
from .scatter import Scatter

SPECS: dict[str, Collective] = {}


def register(spec: Collective) -> Collective:
    """Add a collective's descriptor to the registry (the Communicator, bench, predict and sweep read it)."""
    if spec.name in SPECS:
        raise ValueError(f"collective {spec.name!r} is registered twice")
    SPECS[spec.name] = spec
    return spec


for _spec in (AllReduce(), AllGather(), AllGatherV(), ReduceScatter(), ReduceScatterV(), Broadcast(), Reduce(),
              Scatter(), Gather(), AllToAll(), AllToAllV(), Barrier()):
    register(_spec)


def lookup(name: str) -> Collective:
    """The descriptor of collective ``name``; ValueError listing the supported ones otherwise."""
    if name not in SPECS:
        raise ValueError(f"collective {name!r} is not supported (supported: {', '.join(SPECS)})")
    return SPECS[name]


__all__ = ["SPECS", "Collective", "BenchCall", "RankInputs", "block_bounds", "lookup", "rank_data", "reference",
           "register"]


def _every_built_collective_described():
    """An algorithm's builder for a collective with no descriptor here is a typo or a missing file."""
    from ..algorithms.registry import REGISTRY, collectives
    for name in collectives():
        if name not in SPECS:
            users = [a.name for a in REGISTRY.values() if name in a.builders or name in a.formulas]
            raise ValueError(f"algorithm(s) {', '.join(users)} build collective {name!r}, which has no descriptor "
                             f"in hccl_sim/collectives/ (registered: {', '.join(SPECS)})")


_every_built_collective_described()
