"""Bounded waits: every wait on other ranks ends, either complete or with an error naming who is missing."""
from __future__ import annotations

import os
import time

from ..errors import CollectiveTimeout


def wait_all(requests: list, peers: list[int], timeout: float, what: str, notices=None) -> None:
    """Wait for every request; after ``timeout`` seconds raise naming the peers still outstanding.

    Polls rather than blocking in MPI_Waitall, which could never return if a peer died; an MPI error
    (a peer's process gone) is reported the same way, naming the peers not yet heard from. With
    ``notices`` (a notices.FailureNotices), a failure announced by any rank ends the wait with its
    CollectiveError (the outstanding requests are cancelled).
    """
    from mpi4py import MPI  # here, so a gloo-only process never initialises MPI

    deadline = None
    polls = 0
    try:
        while not MPI.Request.Testall(requests):
            polls += 1
            if polls % 64:
                continue
            if notices is not None:
                try:
                    notices.check()
                except Exception:
                    _outstanding(requests, peers)
                    raise
            now = time.monotonic()
            deadline = deadline or now + timeout
            if now > deadline:
                raise CollectiveTimeout(what, _outstanding(requests, peers), timeout)
            os.sched_yield()  # with more ranks than cores, let the rank we wait for run
    except MPI.Exception as exc:
        raise CollectiveTimeout(what, _outstanding(requests, peers), timeout,
                                f"MPI error: {exc.Get_error_string()}") from None


def _outstanding(requests, peers) -> list[int]:
    """Peers whose requests have not completed; frees those requests so the process can still exit."""
    from mpi4py import MPI

    missing = set()
    for request, peer in zip(requests, peers):
        if request == MPI.REQUEST_NULL:
            continue
        try:
            if request.Test():
                continue
            request.Cancel()
        except MPI.Exception:
            pass
        missing.add(peer)
    return sorted(missing)
