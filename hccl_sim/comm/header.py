"""The header every rank sends every other on entry to a collective: its clock, what it calls, and whether
its own arguments were valid. The exchange gives every rank all entry clocks (the timing model needs
them) and raises the same CollectiveError on every rank when the calls disagree or one is invalid."""
from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np

from ..dtypes import DTYPE_CODES, DTYPE_NAMES, OP_CODES
from ..errors import CollectiveError

_TAG = 1 << 15  # above every step tag of the executor


class Call(NamedTuple):
    """What a rank calls; every field must agree across the ranks."""
    collective: str
    algo: str
    count: int  # working elements (0 for a v-variant: its counts are compared after, in full)
    dtype: object  # a torch dtype, or None (barrier)
    op: str
    root: int  # -1 where the collective has none


def _code(text: str) -> int:
    return zlib.crc32(text.encode())


# how each field travels: as one float64 of a fixed-size record, so the exchange is buffer-based
_ENCODE = {"collective": _code, "algo": _code, "count": int, "dtype": lambda d: DTYPE_CODES.get(d, -1),
           "op": lambda op: OP_CODES.get(op, -1), "root": int}
RECORD = np.dtype([("clock", np.float64), *((f, np.float64) for f in Call._fields), ("invalid", np.float64)])


class HeaderExchange:
    """The per-call header exchange of one communicator (point to point rather than MPI_Allgather, so
    that a rank that never comes is named after ``timeout``, not waited for)."""

    def __init__(self, transport, timeout: float, notices):
        self.transport, self.timeout, self.notices = transport, timeout, notices
        self.rank, size = transport.rank, transport.size
        self._peers = [r for r in range(size) if r != self.rank]
        self._wire = np.zeros((size, len(RECORD.names)))  # one row per rank, sent as float64
        self.records = self._wire.view(RECORD).reshape(size)  # the same memory, by field name

    def exchange(self, clock: float, call: Call, error: str = "", check: bool = True) -> np.ndarray:
        """Every rank's clock on entry (seconds, by rank); CollectiveError on every rank alike if a rank's
        ``error`` (its invalid argument) is set, or, with ``check``, if the ranks' calls differ."""
        records = self.records
        records["clock"][self.rank] = clock
        records["invalid"][self.rank] = 1.0 if error else 0.0
        for field, encode in _ENCODE.items():
            records[field][self.rank] = encode(getattr(call, field))
        mine = self._wire[self.rank]
        requests = [self.transport.irecv(self._wire[r], r, _TAG) for r in self._peers]
        requests += [self.transport.isend(mine, r, _TAG) for r in self._peers]
        self.transport.wait_all(requests, self._peers * 2, self.timeout, call.collective, self.notices)
        if records["invalid"].any():
            messages = self.transport.allgather(error)  # only on the error path: a pickled exchange is fine
            count = sum(1 for m in messages if m)
            raise CollectiveError(f"{call.collective}: invalid input on {count} rank(s): "
                                  + "; ".join(f"{rank_list(rs)}: {m}" for m, rs in by_message(messages).items()))
        if check:
            for field in _ENCODE:
                if (records[field] != records[field][0]).any():
                    self._mismatch(call.collective, field, getattr(call, field))
        return records["clock"].copy()

    def _mismatch(self, collective: str, field: str, mine) -> None:
        shown = DTYPE_NAMES.get(mine, mine) if field == "dtype" else mine
        values = self.transport.allgather(str(shown))
        detail = "; ".join(f"{rank_list(rs)}: {v}" for v, rs in by_message(values).items())
        raise CollectiveError(f"{collective}: ranks disagree on {field} ({detail})")


def by_message(messages) -> dict[str, list[int]]:
    """message -> the ranks that sent it (empty messages left out), so a reason shared is said once."""
    groups: dict[str, list[int]] = {}
    for rank, message in enumerate(messages):
        if message:
            groups.setdefault(str(message), []).append(rank)
    return groups


def rank_list(ranks: list[int]) -> str:
    """[2] -> 'rank 2'; [0, 1, 2, 3, 6] -> 'ranks 0-3,6'."""
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    runs, start = [], ranks[0]
    for prev, cur in zip(ranks, ranks[1:] + [None]):
        if cur is None or cur != prev + 1:
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return "ranks " + ",".join(runs)
