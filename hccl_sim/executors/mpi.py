"""Layer 4a: moves the real bytes of a schedule between processes (MPI, or gloo: ``transport.py``).

Buffer-based throughout: each torch tensor is viewed as bytes through numpy (no copy, no pickle),
and the transport sends slices of that view. Per step, a rank posts its receives then its sends, waits
for all of them, then applies the reductions in place with torch. Copies land straight in their
destination unless they would overwrite data this rank sends in the same step; reductions arrive in
a scratch buffer first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ..algorithms.schedule import Schedule
from ..dtypes import reducer
from .transport import Transport, as_transport

_TAG_SPACE = 1 << 15


@dataclass
class _RankStep:
    tag: int
    peers: list  # the peer of each request, receives then sends, to name who is missing on a timeout
    sends: list  # (peer, buf, byte offset, nbytes)
    recvs: list  # (peer, buf, byte offset, nbytes) in schedule order; buf None means scratch
    reduces: list  # (tmp element offset, buf, element offset, count)
    staged: list  # copies that would clobber data being sent: (tmp element offset, buf, element offset, count)


def _overlaps(ranges, buf, lo, hi):
    return any(b == buf and lo < h and l < hi for b, l, h in ranges)


def plan_rank(schedule: Schedule, rank: int, itemsize: int) -> tuple[list[_RankStep], int]:
    """This rank's part of each step, and the scratch (elements) it needs."""
    schedule.check_executable()
    steps, scratch = [], 0
    for index, step in enumerate(schedule.steps):
        sends, recvs, reduces, staged, tmp = [], [], [], [], 0
        reads = []
        for src, dst, sb, so, db, do, count, red in step:
            if count == 0:
                continue
            if src == rank:
                sends.append((dst, sb, so * itemsize, count * itemsize))
                reads.append((sb, so, so + count))
        for src, dst, sb, so, db, do, count, red in step:
            if count == 0 or dst != rank:
                continue
            if red or _overlaps(reads, db, do, do + count):
                (reduces if red else staged).append((tmp, db, do, count))
                recvs.append((src, None, tmp * itemsize, count * itemsize))
                tmp += count
            else:
                recvs.append((src, db, do * itemsize, count * itemsize))
        if sends or recvs or reduces or staged:
            peers = [r[0] for r in recvs] + [s[0] for s in sends]
            steps.append(_RankStep(index % _TAG_SPACE, peers, sends, recvs, reduces, staged))
        scratch = max(scratch, tmp)
    return steps, scratch


def as_bytes(tensor: torch.Tensor) -> np.ndarray:
    """A writable uint8 numpy view of a contiguous tensor's memory."""
    return tensor.reshape(-1).view(torch.uint8).numpy()


def flat_view(tensor: torch.Tensor) -> torch.Tensor:
    """A flat view of a contiguous tensor, or a flat contiguous copy of a strided one."""
    return tensor.reshape(-1) if tensor.is_contiguous() else tensor.contiguous().reshape(-1)


def copy_back(tensor: torch.Tensor, flat: torch.Tensor) -> None:
    """Put ``flat`` (from ``flat_view(tensor)``) back into ``tensor`` where it is a copy, not a view."""
    if flat.data_ptr() != tensor.data_ptr() or not tensor.is_contiguous():
        tensor.copy_(flat.view(tensor.shape))


class MPIExecutor:
    def __init__(self, transport: Transport, timeout: float = 30.0, notices=None):
        self.comm = as_transport(transport)
        self.timeout = timeout
        self.notices = notices  # failure notices every wait polls (Transport.failure_notices()), or None
        self._plans: dict = {}
        self._scratch: torch.Tensor | None = None

    def _plan(self, schedule: Schedule, itemsize: int):
        key = (id(schedule), itemsize)
        entry = self._plans.get(key)
        if entry is None or entry[0] is not schedule:
            if len(self._plans) > 512:
                self._plans.clear()
            entry = (schedule, plan_rank(schedule, self.comm.rank, itemsize))
            self._plans[key] = entry
        return entry[1]

    def _scratch_for(self, count: int, dtype: torch.dtype) -> torch.Tensor:
        nbytes = count * torch.empty(0, dtype=dtype).element_size()
        if self._scratch is None or self._scratch.numel() < nbytes:
            self._scratch = torch.empty(max(nbytes, 1 << 16), dtype=torch.uint8)
        return self._scratch[:nbytes].view(dtype)

    def run(self, schedule: Schedule, buffers: dict[int, torch.Tensor], op: str, what: str = "collective") -> None:
        """Execute this rank's part of ``schedule`` on flat contiguous tensors of one dtype."""
        some = next(iter(buffers.values()))
        dtype, itemsize = some.dtype, some.element_size()
        steps, scratch_count = self._plan(schedule, itemsize)
        if not steps:
            return
        tmp = self._scratch_for(scratch_count, dtype)
        raw = {b: as_bytes(t) for b, t in buffers.items()}
        raw[None] = as_bytes(tmp)
        combine = reducer(op)
        comm = self.comm
        for st in steps:
            reqs = [comm.irecv(raw[b][o:o + n], peer, st.tag) for peer, b, o, n in st.recvs]
            reqs += [comm.isend(raw[b][o:o + n], peer, st.tag) for peer, b, o, n in st.sends]
            comm.wait_all(reqs, st.peers, self.timeout, what, self.notices)
            for t, b, o, count in st.reduces:
                combine(buffers[b][o:o + count], tmp[t:t + count])
            for t, b, o, count in st.staged:
                buffers[b][o:o + count].copy_(tmp[t:t + count])
