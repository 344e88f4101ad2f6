"""Schedules are data: ordered steps, each a set of concurrent transfers between participants.

A transfer moves ``count`` elements from ``(src, src_buf, src_off)`` to ``(dst, dst_buf, dst_off)``
and either copies them or reduces them into what is there. Every transfer of a step reads the
sender's buffer as it stood when the step began. Participants are indices 0..p-1 into the
communicator; buffers are small integers (``BUF`` the collective's in/out buffer, ``SEND`` a separate
input where the collective has one, ``TMP`` scratch sized by the schedule).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BUF, SEND, TMP = 0, 1, 2
_FIELDS = ("src", "dst", "src_buf", "src_off", "dst_buf", "dst_off", "count", "reduce")


@dataclass(frozen=True, eq=False)
class Step:
    src: np.ndarray
    dst: np.ndarray
    src_buf: np.ndarray
    src_off: np.ndarray
    dst_buf: np.ndarray
    dst_off: np.ndarray
    count: np.ndarray
    reduce: np.ndarray

    def __len__(self) -> int:
        return len(self.src)

    def __iter__(self):
        """Transfers as tuples, in the order of ``_FIELDS``."""
        return zip(*(getattr(self, f).tolist() for f in _FIELDS))


class StepBuilder:
    """Collects transfers of one step; ``build()`` turns them into a ``Step`` of arrays."""

    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, src, dst, src_off, dst_off, count, reduce=False, src_buf=BUF, dst_buf=BUF):
        self.rows.append((src, dst, src_buf, src_off, dst_buf, dst_off, count, bool(reduce)))
        return self

    def build(self) -> Step:
        cols = list(zip(*self.rows)) if self.rows else [()] * len(_FIELDS)
        types = (np.int64, np.int64, np.int8, np.int64, np.int8, np.int64, np.int64, bool)
        return Step(*(np.asarray(c, dtype=t) for c, t in zip(cols, types)))


@dataclass
class Schedule:
    """A collective algorithm's plan for ``nranks`` participants over ``count`` elements."""
    collective: str
    algo: str
    nranks: int
    count: int
    steps: list[Step] = field(default_factory=list)
    tmp_count: int = 0  # elements of scratch (TMP) each rank needs

    def append(self, step: Step | StepBuilder) -> None:
        step = step.build() if isinstance(step, StepBuilder) else step
        if len(step):
            self.steps.append(step)

    def extend(self, steps) -> None:
        for step in steps:
            self.append(step)

    @property
    def num_transfers(self) -> int:
        return sum(len(s) for s in self.steps)

    def bytes_sent(self, itemsize: int) -> int:
        return int(sum(int(s.count.sum()) for s in self.steps)) * itemsize

    def __str__(self) -> str:
        lines = [f"{self.collective}/{self.algo}: {self.nranks} ranks, {self.count} elements, {len(self.steps)} steps"]
        for i, step in enumerate(self.steps):
            parts = [
                f"{s}->{d} [{sb}:{so}+{c}]{'+=' if r else '='}[{db}:{do}]"
                for s, d, sb, so, db, do, c, r in step
            ]
            lines.append(f"  step {i}: " + ", ".join(parts))
        return "\n".join(lines)


def merge_parallel(step_lists: list[list[Step]]) -> list[Step]:
    """Run several step lists side by side (disjoint participants): step i of each becomes one step."""
    merged = []
    for i in range(max((len(s) for s in step_lists), default=0)):
        parts = [steps[i] for steps in step_lists if i < len(steps)]
        merged.append(Step(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS)))
    return merged


def chunk_bounds(count: int, parts: int) -> np.ndarray:
    """Offsets of ``parts`` near-equal chunks of ``count`` (the first ``count % parts`` one larger)."""
    base, extra = divmod(count, parts)
    sizes = np.full(parts, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
