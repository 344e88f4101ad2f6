"""Layer 4b: the predictor — the same schedules through the same timing engine, no MPI, no data."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..algorithms import selection
from ..collectives import lookup
from ..dtypes import element_type
from ..planning import NetworkModel


@dataclass(frozen=True)
class Prediction:
    collective: str
    algo: str
    nranks: int
    count: int
    dtype: str
    nbytes: int
    time: float  # seconds, first entry to last exit
    topology: str


def _shape(collective: str, count: int, root: int, counts) -> tuple[int, dict]:
    """(count, the schedule's shape arguments) of a call, v-variants' ``counts`` included."""
    job = lookup(collective).job(count, root, counts)
    return job.count, job.shape()


def predict(collective: str, count: int, nranks: int, topology=None, placement=None, algo: str | None = None,
            dtype="fp32", model: NetworkModel | None = None, root: int = 0, counts=None) -> Prediction:
    """Modeled time of one call with every rank entering at the same time. ``count`` is the working
    buffer's elements (nccl-tests' count: allgather's output, reduce-scatter's input); ``counts`` the
    per-rank blocks of a v-variant (a p x p matrix for alltoallv). ``dtype``: a name ("fp32", "bf16", ...)
    or a torch dtype. ``algo`` None: $HCCL_SIM_ALGO, $HCCL_ALGO, else auto, as the Communicator."""
    name, itemsize, _ = element_type(dtype)
    model = model or NetworkModel(nranks, topology, placement)
    count, shape = _shape(collective, count, root, counts)
    resolved = model.resolve(collective, selection.default_algo(algo), count, itemsize, **shape)
    result = model.time(collective, resolved, count, itemsize, **shape)
    return Prediction(collective, resolved, nranks, count, name, count * itemsize, result.time, model.topology.name)


@dataclass(frozen=True)
class Call:
    """One collective of a set running at the same time (``predict_many``).

    ``ranks``: the group's members as world ranks, in group-rank order (group rank i is ``ranks[i]``);
    ``start``: when the group's ranks enter the call, seconds (one for all, or one per group rank);
    ``count``: elements of ``dtype`` (not bytes: 32 MiB of fp32 is ``8 << 20``), the working buffer as
    for ``predict``; ``algo``, ``dtype``, ``root``, ``counts`` as for ``predict``."""
    collective: str
    count: int
    ranks: Sequence[int]
    algo: str | None = None
    start: float | Sequence[float] = 0.0
    dtype: object = "fp32"
    root: int = 0
    counts: object = None


@dataclass(frozen=True)
class ConcurrentPrediction(Prediction):
    start: float = 0.0  # seconds, the group's first entry
    end: float = 0.0  # seconds, the group's last exit
    alone: float = 0.0  # seconds, the same call's time with the fabric to itself


def predict_many(calls: Sequence[Call], nranks: int | None = None, topology=None,
                 placement=None) -> list[ConcurrentPrediction]:
    """Modeled times of several collectives running at the same time on one topology, the flows of all
    of them sharing links max-min fairly (a tensor-parallel allreduce beside a data-parallel
    reduce-scatter, say). World ranks 0..nranks-1 (default: the largest rank named + 1) sit on NPUs by
    ``placement``; each call's group is its own communicator (``auto`` picks its algorithm as if it ran
    alone). Timed by the exact engine, so a call alone in the list gets exactly its ``predict`` time
    wherever ``predict`` uses that engine (``timing.choose_engine``); ``alone`` in each result is its
    ``predict`` time. Raises ValueError naming the call for a rank outside the world, and when all calls
    together have more transfers than the exact engine takes at once (``timing.engine.MANY_TRANSFERS``)."""
    calls = list(calls)
    if nranks is None:
        nranks = max((max(c.ranks) for c in calls if len(c.ranks)), default=-1) + 1
    world = NetworkModel(nranks, topology, placement)
    npus = np.asarray(world.placement.npus, dtype=np.int64)
    jobs, chosen, alone = [], [], []
    for i, call in enumerate(calls):
        ranks = np.asarray(call.ranks, dtype=np.int64)
        if not len(ranks) or ranks.min() < 0 or ranks.max() >= nranks or len(set(ranks.tolist())) < len(ranks):
            raise ValueError(f"predict_many: call {i} ({call.collective}): ranks must be distinct world ranks in "
                             f"0..{nranks - 1}, got {list(call.ranks)}")
        itemsize = element_type(call.dtype).itemsize
        group = NetworkModel(len(ranks), world.topology, npus[ranks].tolist())
        count, shape = _shape(call.collective, call.count, call.root, call.counts)
        algo = group.resolve(call.collective, selection.default_algo(call.algo), count, itemsize, **shape)
        schedule = group.schedule(call.collective, algo, count, **shape)
        jobs.append((schedule, itemsize, npus[ranks], call.start))
        chosen.append((call, algo, count, itemsize))
        alone.append(group.timing.run(schedule, itemsize).time)
    results = world.timing.run_many(jobs)
    return [ConcurrentPrediction(call.collective, algo, len(call.ranks), count, element_type(call.dtype).name,
                                 count * itemsize, r.time, world.topology.name, float(r.entry.min()),
                                 float(r.exit.max()), t)
            for (call, algo, count, itemsize), r, t in zip(chosen, results, alone)]
