"""What a Communicator call returns."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallRecord:
    """One collective (or point-to-point batch) as this rank saw it, in modeled seconds."""
    collective: str
    algo: str
    count: int
    dtype: str
    op: str
    nbytes: int
    start: float  # this rank's clock on entry
    end: float  # this rank's clock on exit
    time: float  # the collective's span: last rank out minus first rank in
    wait: float = 0.0  # seconds of the duration due to other ranks entering later (the ranks' skew)

    @property
    def duration(self) -> float:
        return self.end - self.start
