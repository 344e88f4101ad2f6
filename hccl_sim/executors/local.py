"""An in-process executor: runs a schedule over every rank's buffers in one process.

Same semantics as the MPI executor (each step reads the buffers as they were when it began), so
algorithms can be checked for any rank count without MPI.
"""
from __future__ import annotations

import torch

from ..algorithms.schedule import Schedule
from ..dtypes import reducer


def run_local(schedule: Schedule, buffers: list[dict[int, torch.Tensor]], op: str = "sum") -> None:
    """``buffers[r]`` maps buffer id to rank r's flat tensor; updated in place."""
    schedule.check_executable()
    combine = reducer(op)
    for step in schedule.steps:
        sent = [buffers[src][sb][so:so + count].clone()
                for src, dst, sb, so, db, do, count, red in step]
        for (src, dst, sb, so, db, do, count, red), data in zip(step, sent):
            target = buffers[dst][db][do:do + count]
            if red:
                combine(target, data)
            else:
                target.copy_(data)
