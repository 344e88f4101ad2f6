"""Schedules are data: ordered steps, each a set of concurrent transfers between participants.

A transfer moves ``count`` elements from ``(src, src_buf, src_off)`` to ``(dst, dst_buf, dst_off)``
and either copies them or reduces them into what is there. Every transfer of a step reads the
sender's buffer as it stood when the step began. Participants are indices 0..p-1 into the
communicator; buffers are small integers (``BUF`` the collective's in/out buffer, ``SEND`` a separate
input where the collective has one, ``TMP`` scratch sized by the schedule).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

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
    # Timing-only compact schedules: the engine runs this step ``repeat`` times in a row with the same
    # transfers (a ring's p-1 identical-pattern steps). Data executors refuse repeat > 1.
    repeat: int = 1
    # Multi-path (all-path) routing: the NPU each transfer detours through (a two-hop path inside a
    # full-mesh level), -1 for the direct route; None when every transfer goes direct. Timing only:
    # data executors move the bytes from src to dst either way (algorithms/multipath.py).
    via: np.ndarray | None = None

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


def array_step(src, dst, src_off, dst_off, count, reduce, src_buf=BUF, dst_buf=BUF) -> Step:
    """A step from per-transfer arrays (numpy-built schedules); ``reduce`` and the buffers one for all."""
    n = len(src)
    return Step(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), np.full(n, src_buf, dtype=np.int8),
                np.asarray(src_off, dtype=np.int64), np.full(n, dst_buf, dtype=np.int8),
                np.asarray(dst_off, dtype=np.int64), np.asarray(count, dtype=np.int64),
                np.full(n, bool(reduce), dtype=bool))


@dataclass
class Schedule:
    """A collective algorithm's plan for ``nranks`` participants over ``count`` elements."""
    collective: str
    algo: str
    nranks: int
    count: int
    steps: list[Step] = field(default_factory=list)
    tmp_count: int = 0  # elements of scratch (TMP) each rank needs
    # Compact, timing-only steps (``compact_step``: zero offsets, repeated steps): data executors refuse it
    timing_only: bool = False

    def append(self, step: Step | StepBuilder) -> None:
        step = step.build() if isinstance(step, StepBuilder) else step
        if len(step):
            self.steps.append(step)

    def extend(self, steps) -> None:
        for step in steps:
            self.append(step)

    @property
    def num_transfers(self) -> int:
        return sum(len(s) * s.repeat for s in self.steps)

    @property
    def compact(self) -> bool:
        """Has repeated steps (``Step.repeat``), which the timing engines may expand or time once."""
        return any(s.repeat > 1 for s in self.steps)

    def check_executable(self) -> None:
        """Raise unless a data executor can run this schedule (compact ones are timing-only)."""
        if self.timing_only or self.compact:
            raise ValueError(f"{self.collective}/{self.algo}: this {self.nranks}-rank schedule is a compact, "
                             "timing-only one (repeated steps, no real offsets); data executors need the full "
                             "schedule (Context(compact=False))")

    def bytes_sent(self, itemsize: int) -> int:
        return int(sum(int(s.count.sum()) * s.repeat for s in self.steps)) * itemsize

    def __str__(self) -> str:
        lines = [f"{self.collective}/{self.algo}: {self.nranks} ranks, {self.count} elements, {len(self.steps)} steps"]
        for i, step in enumerate(self.steps):
            if step.repeat > 1:
                lines.append(f"  step {i}: {len(step)} transfers, repeated {step.repeat} times")
                continue
            parts = [
                f"{s}->{d} [{sb}:{so}+{c}]{'+=' if r else '='}[{db}:{do}]"
                for s, d, sb, so, db, do, c, r in step
            ]
            lines.append(f"  step {i}: " + ", ".join(parts))
        return "\n".join(lines)


def expand_repeats(steps: list[Step]) -> list[Step]:
    """The same steps with every repeated step written out ``repeat`` times (arrays shared)."""
    return [replace(s, repeat=1) for s in steps for _ in range(s.repeat)]


def merge_parallel(step_lists: list[list[Step]]) -> list[Step]:
    """Run several step lists side by side (on disjoint data): step i of each becomes one step.

    Repeated steps stay repeated when every list has the same repeat pattern; otherwise they are
    written out first, so the merge is exact either way."""
    if len({tuple(s.repeat for s in steps) for steps in step_lists if steps}) > 1:
        step_lists = [expand_repeats(steps) for steps in step_lists]
    merged = []
    for i in range(max((len(s) for s in step_lists), default=0)):
        parts = [steps[i] for steps in step_lists if i < len(steps)]
        merged.append(Step(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS),
                           repeat=parts[0].repeat))
    return merged


def add_segments(step: StepBuilder, src, dst, segments, reduce=False, src_buf=BUF, dst_buf=BUF) -> None:
    """One transfer per (offset, count) segment, at the same offset on both sides."""
    for off, cnt in segments:
        step.add(src, dst, off, off, cnt, reduce, src_buf, dst_buf)


def flatten_blocks(blocks):
    """Every segment of ``blocks`` (per block, a list of (offset, count)) in block order: (offsets, counts,
    each block's first segment index, its number of segments), numpy arrays."""
    sizes = np.array([len(b) for b in blocks], dtype=np.int64)
    flat = np.array([seg for b in blocks for seg in b], dtype=np.int64).reshape(-1, 2)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return flat[:, 0], flat[:, 1], first, sizes


def coalesce(segments) -> list[tuple[int, int]]:
    """Sorted (offset, count) segments with adjacent ones merged and empty ones dropped."""
    out: list[list[int]] = []
    for off, cnt in sorted((int(o), int(c)) for o, c in segments):
        if cnt <= 0:
            continue
        if out and out[-1][0] + out[-1][1] == off:
            out[-1][1] += cnt
        else:
            out.append([off, cnt])
    return [(o, c) for o, c in out]


def reverse_steps(steps: list[Step], reduce: bool) -> list[Step]:
    """The time-reversal of a copy schedule: every transfer runs backwards, steps in reverse order.

    Reversing a schedule in which each rank receives each element once (a broadcast or allgather)
    gives its dual (reduce or reduce-scatter) when ``reduce`` is set, or a gather from a scatter.
    """
    out = []
    for step in reversed(steps):
        out.append(Step(step.dst.copy(), step.src.copy(), step.dst_buf.copy(), step.dst_off.copy(),
                        step.src_buf.copy(), step.src_off.copy(), step.count.copy(),
                        np.full(len(step), reduce, dtype=bool)))
    return out


def chunk_bounds(count: int, parts: int) -> np.ndarray:
    """Offsets of ``parts`` near-equal chunks of ``count`` (the first ``count % parts`` one larger)."""
    base, extra = divmod(count, parts)
    sizes = np.full(parts, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


# ---- compact, timing-only steps (Context.compact: very large communicators) ---------------------------
# One meaning of "compact": a schedule for the timing engine alone, built from the same algorithm code as
# the data schedule, where (1) offsets and buffer ids are zero (broadcast arrays, no memory: the engine
# times bytes over routes and never reads them), (2) every chunk an algorithm splits a buffer into
# carries the largest chunk (at most one element more than the data schedule moves a transfer), so
# (3) what a rank sends one peer in a step is one transfer, and identical consecutive steps are one step
# with ``repeat`` (a ring's q-1 steps). Data executors refuse these schedules (``Schedule.timing_only``).
RANK = np.int32  # rank ids in compact steps: half the memory of int64 at 10^6 ranks


def broadcast_array(value, n, dtype):
    """``value`` as a read-only length-n array that takes no memory."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))


def _counts(values: np.ndarray) -> np.ndarray:
    """Per-transfer counts; a uniform column becomes a zero-memory broadcast."""
    values = np.asarray(values, dtype=np.int64).ravel()
    if len(values) and (values == values[0]).all():
        return broadcast_array(values[0], len(values), np.int64)
    return values


def compact_step(src, dst, count, reduce: bool, repeat: int = 1) -> Step:
    """A timing-only step: transfers src[t] -> dst[t] of count[t] elements, offsets zero."""
    n = len(src)
    zero64, zero8 = broadcast_array(0, n, np.int64), broadcast_array(0, n, np.int8)
    return Step(src, dst, zero8, zero64, zero8, zero64, _counts(count), broadcast_array(reduce, n, bool), repeat)


def as_columns(ranks) -> np.ndarray:
    """Ranks as a (q, k) grid: k groups (columns) of q members; a flat list is one column."""
    ranks = np.asarray(ranks, dtype=RANK)
    return ranks[:, None] if ranks.ndim == 1 else ranks


def column_counts(counts, k: int) -> np.ndarray:
    """Elements of each of k columns, from one number or k."""
    return np.broadcast_to(np.asarray(counts, dtype=np.int64), (k,))
