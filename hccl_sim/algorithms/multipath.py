"""Multi-path (all-path) routing inside full-mesh levels (UB-Mesh's APR, arXiv 2503.20377).

On a level with ``multipath`` set, a transfer between two members of one full mesh (NPUs that differ
only in that level's coordinate) is split into s-1 near-equal pieces, s the level's size: one on the
direct link and one on each two-hop path through another member of the same mesh (``Step.via``, an
NPU, a member of the communicator or not). The
pieces are ordinary transfers of the step: they share every link max-min fairly with everything else,
so a lone flow gets up to s-1 links' bandwidth and a step that already loads every link (mesh
all-to-all) gains nothing. Data executors move each piece from src to dst; the detour is timing only.
Transfers that cross several levels, or none with multipath, keep their single route.
"""
from __future__ import annotations

import numpy as np

from .schedule import Schedule, Step, _FIELDS


def split_multipath(schedule: Schedule, topology, npus) -> Schedule:
    """``schedule`` with every transfer inside a multipath mesh level split over all its paths."""
    levels = [i for i, lv in enumerate(topology.levels) if lv.kind == "mesh" and lv.multipath]
    if not levels:
        return schedule
    npus = np.asarray(npus, dtype=np.int64)
    out = Schedule(schedule.collective, schedule.algo, schedule.nranks, schedule.count, [],
                   schedule.tmp_count, schedule.timing_only)
    for step in schedule.steps:
        out.steps.append(_split_step(step, topology, npus, levels))
    return out


def _split_step(step: Step, topology, npus, levels) -> Step:
    src_npu, dst_npu = npus[np.asarray(step.src)], npus[np.asarray(step.dst)]
    cs, cd = topology.coords(src_npu), topology.coords(dst_npu)
    differ = cs != cd
    cols = {f: [np.asarray(getattr(step, f))] for f in _FIELDS}
    vias = [np.full(len(step), -1, dtype=np.int64)]
    keep = np.ones(len(step), dtype=bool)
    for level in levels:
        size, stride = topology.levels[level].size, int(topology.strides[level])
        mine = differ[:, level] & (differ.sum(axis=1) == 1) & (np.asarray(step.count) >= size - 1)
        idx = np.flatnonzero(mine)
        if size < 3 or not len(idx):
            continue
        keep[idx] = False
        count = np.asarray(step.count)[idx]
        base = src_npu[idx] - cs[idx, level] * stride  # the mesh group's member 0
        for j in range(size - 1):  # piece 0 direct, piece j through the j-th other member
            lo, hi = (count * j) // (size - 1), (count * (j + 1)) // (size - 1)
            for f in _FIELDS:
                value = np.asarray(getattr(step, f))[idx]
                if f in ("src_off", "dst_off"):
                    value = value + lo
                elif f == "count":
                    value = hi - lo
                cols[f].append(value)
            if j == 0:
                vias.append(np.full(len(idx), -1, dtype=np.int64))
                continue
            # the j-th member that is neither end, in coordinate order
            others = np.arange(size)[None, :].repeat(len(idx), 0)
            mask = (others != cs[idx, level][:, None]) & (others != cd[idx, level][:, None])
            relay = base + others[mask].reshape(len(idx), size - 2)[:, j - 1] * stride
            vias.append(relay)
    cols = {f: np.concatenate([cols[f][0][keep]] + cols[f][1:]) for f in _FIELDS}
    via = np.concatenate([vias[0][keep]] + vias[1:])
    return Step(*(cols[f] for f in _FIELDS), repeat=step.repeat, via=via)
