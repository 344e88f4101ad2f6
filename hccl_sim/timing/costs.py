"""The cost terms of ``topology/costs.py`` applied to one call, for every engine and both executors.

Three narrow hooks in ``TimingModel.run`` (engine.py) use this module:

- the call's protocol regime (chosen by its size, count x itemsize): the call is timed on a variant
  of the topology whose links run at ``bandwidth_factor`` times their achieved bandwidth and whose
  transfers each pay ``step_latency`` more (``Topology.step_latency``, added to every route latency);
- slicing: a schedule of two or more steps whose largest transfer exceeds ``slice_bytes`` is timed as
  its wavefront: each transfer cut into C chunks, sub-step j holding chunk j-s of every step s with
  0 <= j-s < C, so chunk c of step s+1 follows chunk c of step s and steps overlap (m steps become
  m+C-1 sub-steps; a pipelined chain of m hops takes (m+C-1)(a + n/(C B))). The data executors still
  run the schedule as written; compact (timing-only) schedules are not sliced;
- the per-call overhead (per collective family, plus per level for the highest level the call's NPUs
  span): every rank enters the call's first step that many seconds after its entry, so the call's
  time and every exit move by it.

At neutral costs (the default) neither hook changes anything, so closed forms hold exactly.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..algorithms.schedule import Schedule, Step
from ..topology import Topology
from ..topology.costs import Regime


def regime_topology(topology: Topology, regime: Regime) -> Topology:
    """``topology`` as a call in ``regime`` sees it; its costs keep the overheads, not the regimes."""
    levels = tuple(replace(lv, bandwidth=lv.bandwidth * regime.bandwidth_factor) for lv in topology.levels)
    costs = replace(topology.costs, regimes=())
    return replace(topology, levels=levels, costs=costs, step_latency=topology.step_latency + regime.step_latency,
                   _cache={})


def regime_model(model, schedule: Schedule, itemsize: int):
    """The TimingModel a call runs on: ``model`` itself, or (kept on ``model``) the one of the call's
    protocol regime, chosen by its size in bytes."""
    topology = model.topology
    if not topology.costs.regimes:
        return model
    regime = topology.costs.regime(schedule.count * itemsize)
    if regime.neutral:
        return model
    variants = model.__dict__.setdefault("_cost_regimes", {})
    if regime not in variants:
        variants[regime] = type(model)(regime_topology(topology, regime), model.npus)
    return variants[regime]


def sliced_schedule(model, schedule: Schedule, itemsize: int) -> Schedule:
    """``schedule`` as slicing times it on ``model``'s topology, kept on ``model`` per schedule."""
    if not model.topology.costs.slice_bytes:
        return schedule
    cache = model.__dict__.setdefault("_cost_sliced", {})
    key = (id(schedule), itemsize)
    if cache.get(key, (None,))[0] is not schedule:
        if len(cache) > 256:
            cache.clear()
        cache[key] = (schedule, sliced(schedule, model.topology, itemsize))
    return cache[key][1]


def call_overhead(topology: Topology, collective: str, npus) -> float:
    """Seconds every rank waits after entering a call before its first step: the collective family's
    overhead plus that of the highest level the call's NPUs span."""
    top = topology.span_level(npus) if any(lv.overhead for lv in topology.levels) else -1
    return topology.costs.call_overhead(collective) + (topology.levels[top].overhead if top >= 0 else 0.0)


def sliced(schedule: Schedule, topology: Topology, itemsize: int) -> Schedule:
    """The schedule as slicing times it (see the module docstring); ``schedule`` itself when not sliced."""
    costs, steps = topology.costs, schedule.steps
    if not costs.slice_bytes or len(steps) < 2 or schedule.timing_only or any(s.repeat > 1 for s in steps):
        return schedule
    biggest = max((int(s.count.max()) for s in steps if len(s)), default=0) * itemsize
    chunks = min(costs.max_slices, math.ceil(biggest / costs.slice_bytes))
    if chunks <= 1:
        return schedule
    out = Schedule(schedule.collective, schedule.algo, schedule.nranks, schedule.count, tmp_count=schedule.tmp_count,
                   timing_only=True)
    fields = ("src", "dst", "src_buf", "src_off", "dst_buf", "dst_off")
    for j in range(len(steps) + chunks - 1):
        parts = [(steps[s], j - s) for s in range(max(0, j - chunks + 1), min(len(steps), j + 1))]
        cols = {f: np.concatenate([getattr(step, f) for step, _ in parts]) for f in fields}
        count = np.concatenate([step.count * (c + 1) // chunks - step.count * c // chunks for step, c in parts])
        out.append(Step(**cols, count=count, reduce=np.concatenate([step.reduce for step, _ in parts])))
    return out
