"""Failure notices: a rank that fails inside a collective tells every other rank at once.

After the header exchange every rank has committed to the call, so a rank that then fails locally (an
exception in its reduction, say) would leave its peers waiting for data that never comes until their
timeout, which could only call it "missing". Instead the failing rank sends a short notice (its rank and
the error) to every peer, and every bounded wait (``waiting.wait_all``) probes for a notice alongside
its data (MPI_Iprobe: no receive stays posted, so nothing is left to cancel at exit). Every rank then raises the same
``CollectiveError`` within a poll or two. The communicator is unusable afterwards (messages of the
interrupted call may still be in flight), and says so on any later call.
"""
from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI

from ..errors import CollectiveError

NOTICE_TAG = (1 << 15) + 1  # above every step tag and the header tag
NOTICE_BYTES = 2048


class FailureNotices:
    """The notice channel of one MPI communicator (``comm`` must not be used with NOTICE_TAG elsewhere)."""

    def __init__(self, comm: MPI.Comm):
        self.comm = comm
        self.failure: str | None = None  # set once a notice arrived or this rank failed

    def check(self) -> None:
        """Raise the CollectiveError of a failure on any rank, if one was announced."""
        if self.failure is None and self.comm.Iprobe(MPI.ANY_SOURCE, NOTICE_TAG):
            buffer = np.zeros(NOTICE_BYTES, dtype=np.uint8)
            self.comm.Recv([buffer, MPI.BYTE], MPI.ANY_SOURCE, NOTICE_TAG)
            self.failure = bytes(buffer).rstrip(b"\0").decode("utf-8", "replace")
        if self.failure is not None:
            raise CollectiveError(self.failure)

    def fail(self, message: str, grace: float = 1.0) -> CollectiveError:
        """Announce this rank's failure (``message``, which names the rank and why) to every peer and
        return the error to raise here. Waits at most ``grace`` seconds for the notices to leave."""
        if self.failure is None:
            self.failure = message
            data = np.zeros(NOTICE_BYTES, dtype=np.uint8)
            encoded = message.encode("utf-8")[:NOTICE_BYTES - 1]
            data[:len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
            me = self.comm.rank
            requests = [self.comm.Isend([data, MPI.BYTE], r, NOTICE_TAG) for r in range(self.comm.size) if r != me]
            deadline = time.monotonic() + grace
            try:
                while not MPI.Request.Testall(requests) and time.monotonic() < deadline:
                    time.sleep(1e-4)
            except MPI.Exception:
                pass  # a peer already gone: the others still get theirs
        return CollectiveError(self.failure)
