"""How the executor's messages travel: MPI under mpirun, or torch's gloo after a torch rendezvous.

A transport is the small interface the executor and the Communicator need: non-blocking send and
receive of contiguous numpy buffers with an integer tag, a bounded wait naming the ranks still missing,
an allgather of small Python objects, and an independent duplicate (its traffic never matches the
original's). The schedules, the modeled times and the consistency check are the same over both.

- ``MPITransport``: an mpi4py communicator (``mpirun``); mpi4py is imported only when one is made.
- ``GlooTransport``: torch's ``ProcessGroupGloo`` send/recv on a private group built from a c10d store
  (torchrun, ``torch.multiprocessing.spawn``, ``env://``, ``tcp://``, ``file://``).
"""
from __future__ import annotations

import os
import pickle
import time
from datetime import timedelta

import numpy as np

from ..errors import CollectiveError, CollectiveTimeout


class Transport:
    """The interface; ``rank``, ``size``, ``tag_ub`` (largest usable tag) are attributes."""
    rank: int
    size: int
    tag_ub: int

    def isend(self, buf: np.ndarray, peer: int, tag: int):
        """Start sending the contiguous array ``buf`` to ``peer``; returns a request for wait_all."""
        raise NotImplementedError

    def irecv(self, buf: np.ndarray, peer: int, tag: int):
        """Start receiving into the contiguous writable array ``buf`` from ``peer``."""
        raise NotImplementedError

    def wait_all(self, requests: list, peers: list[int], timeout: float, what: str, notices=None) -> None:
        """Wait for every request; after ``timeout`` seconds raise CollectiveTimeout naming the peers of
        the requests still outstanding (``peers[i]`` is the peer of ``requests[i]``). A failure another
        rank announced on ``notices`` ends the wait with its CollectiveError (where the transport can)."""
        raise NotImplementedError

    def failure_notices(self):
        """The channel on which a rank failing mid-call tells the others (``check()``, ``fail(message)``)."""
        return LocalNotices()

    def recv_any(self, buf: np.ndarray, tag: int, timeout: float, what: str) -> int:
        """Receive into ``buf`` from whichever rank sends with ``tag`` (bounded); returns that rank."""
        raise NotImplementedError

    def allgather(self, obj) -> list:
        """Every rank's ``obj`` (small, picklable), in rank order."""
        raise NotImplementedError

    def dup(self) -> "Transport":
        """A transport over the same ranks whose messages never match this one's (collective on all ranks)."""
        raise NotImplementedError

    def free(self) -> None:
        pass


class MPITransport(Transport):
    """An mpi4py communicator; errors are returned, not fatal, so a dead peer raises instead of aborting."""

    def __init__(self, comm=None):
        from mpi4py import MPI

        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.rank, self.comm.size
        self.tag_ub = int(self.comm.Get_attr(MPI.TAG_UB) or 32767)

    def isend(self, buf, peer, tag):
        return self.comm.Isend(buf, peer, tag)

    def irecv(self, buf, peer, tag):
        return self.comm.Irecv(buf, peer, tag)

    def wait_all(self, requests, peers, timeout, what, notices=None):
        from .waiting import wait_all

        wait_all(requests, peers, timeout, what, notices)

    def failure_notices(self):
        from .notices import FailureNotices

        return FailureNotices(self.comm)

    def recv_any(self, buf, tag, timeout, what):
        from mpi4py import MPI

        status, request = MPI.Status(), self.comm.Irecv(buf, MPI.ANY_SOURCE, tag)
        deadline = time.monotonic() + timeout
        while not request.Test(status):
            if time.monotonic() > deadline:
                request.Cancel()
                raise CollectiveTimeout(what, [], timeout, "no rank sent a message with this tag")
            os.sched_yield()
        return status.Get_source()

    def allgather(self, obj):
        if isinstance(obj, np.ndarray):  # buffer-based, no pickling (the counts of the v-collectives)
            rows = np.empty((self.size,) + obj.shape, dtype=obj.dtype)
            self.comm.Allgather(np.ascontiguousarray(obj), rows)
            return list(rows)
        return self.comm.allgather(obj)

    def dup(self):
        from mpi4py import MPI

        comm = self.comm.Dup()
        comm.Set_errhandler(MPI.ERRORS_RETURN)
        return MPITransport(comm)

    def free(self):
        from mpi4py import MPI

        if self.comm != MPI.COMM_NULL and self.comm != MPI.COMM_WORLD:
            self.comm.Free()


class GlooTransport(Transport):
    """Point-to-point messages on a private torch ``ProcessGroupGloo`` made from a c10d ``store``.

    ``prefix`` keys this group's entries in the store; every rank must make the same transports (and
    their duplicates) in the same order. Waits block in gloo with a deadline, never longer than
    ``timeout`` seconds in all."""

    _ALLGATHER_TAG = (1 << 30) + 1  # above every tag the Communicator uses

    def __init__(self, store, rank: int, size: int, timeout: float = 1800.0, prefix: str = "hccl_sim"):
        import torch.distributed as dist

        self._store, self._prefix, self._timeout = store, prefix, float(timeout)
        self._dups = 0
        self.rank, self.size = rank, size
        self.tag_ub = 1 << 30
        self.pg = dist.ProcessGroupGloo(dist.PrefixStore(prefix + "/", store), rank, size,
                                        timedelta(seconds=self._timeout))

    @staticmethod
    def _tensor(buf):
        import torch

        return torch.from_numpy(buf.reshape(-1))  # shares the array's memory: no copy either way

    def isend(self, buf, peer, tag):
        return self.pg.send([self._tensor(buf)], peer, tag)

    def irecv(self, buf, peer, tag):
        return self.pg.recv([self._tensor(buf)], peer, tag)

    def wait_all(self, requests, peers, timeout, what, notices=None):
        """gloo ends a wait early when a peer's connection breaks (its process died): that is raised as a
        CollectiveError naming the rank and gloo's error, a CollectiveTimeout only when time ran out."""
        if notices is not None:
            notices.check()
        deadline = time.monotonic() + timeout
        for i, work in enumerate(requests):
            try:
                work.wait(timedelta(seconds=max(deadline - time.monotonic(), 1e-3)))
            except RuntimeError as exc:
                failed = {peers[i]: exc}
                for other, peer in zip(requests[i + 1:], peers[i + 1:]):  # who else has not come
                    try:
                        other.wait(timedelta(milliseconds=1))
                    except RuntimeError as other_exc:
                        failed.setdefault(peer, other_exc)
                lost = sorted(p for p, e in failed.items() if not _timed_out(e))
                if lost:
                    error = str(failed[lost[0]]).splitlines()[0]
                    raise CollectiveError(f"{what}: lost the connection to rank(s) {', '.join(map(str, lost))} "
                                          f"(gloo error: {error})") from None
                raise CollectiveTimeout(what, sorted(failed), timeout) from None

    def recv_any(self, buf, tag, timeout, what):
        work = self.pg.recv_anysource([self._tensor(buf)], tag)
        try:
            work.wait(timedelta(seconds=timeout))
        except RuntimeError as exc:
            if not _timed_out(exc):
                raise CollectiveError(f"{what}: lost a connection (gloo error: {str(exc).splitlines()[0]})") from None
            raise CollectiveTimeout(what, [], timeout, "no rank sent a message with this tag") from None
        return work._source_rank()

    def allgather(self, obj):
        """Over the same point-to-point messages (so bounded and naming who is missing): sizes, then bytes."""
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8).copy()
        peers = [r for r in range(self.size) if r != self.rank]
        sizes = {r: np.zeros(1, dtype=np.int64) for r in peers}
        mine = np.array([data.size], dtype=np.int64)
        tag = self._ALLGATHER_TAG
        reqs = [self.irecv(sizes[r], r, tag) for r in peers] + [self.isend(mine, r, tag) for r in peers]
        self.wait_all(reqs, peers * 2, self._timeout, "allgather")
        bufs = {r: np.empty(int(sizes[r][0]), dtype=np.uint8) for r in peers}
        reqs = [self.irecv(bufs[r], r, tag + 1) for r in peers] + [self.isend(data, r, tag + 1) for r in peers]
        self.wait_all(reqs, peers * 2, self._timeout, "allgather")
        return [obj if r == self.rank else pickle.loads(bufs[r].tobytes()) for r in range(self.size)]

    def dup(self):
        self._dups += 1
        return GlooTransport(self._store, self.rank, self.size, self._timeout, f"{self._prefix}.{self._dups}")


def _timed_out(exc: Exception) -> bool:
    """Whether a gloo wait failed because its deadline passed (not because a connection broke)."""
    return "Timed out" in str(exc) or "timed out" in str(exc)


class LocalNotices:
    """Failure notices that stay on this rank (gloo cannot probe for a message): a rank that fails
    mid-call raises at once and refuses later calls; its peers time out naming it."""

    def __init__(self):
        self.failure: str | None = None

    def check(self) -> None:
        if self.failure is not None:
            raise CollectiveError(self.failure)

    def fail(self, message: str, grace: float = 1.0) -> CollectiveError:
        self.failure = self.failure or message
        return CollectiveError(self.failure)


def as_transport(comm=None) -> Transport:
    """``comm`` as a Transport: a Transport as is, an mpi4py communicator (MPI.COMM_WORLD if None) wrapped."""
    return comm if isinstance(comm, Transport) else MPITransport(comm)


_MPI_LAUNCH_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID")


def under_mpirun() -> bool:
    """Whether this process was started by an MPI launcher (MPICH/Hydra, Open MPI, PMIx, Intel MPI).

    Raises RuntimeError when torchrun (its TORCHELASTIC_* variables) runs under an MPI launcher too: each
    torchrun would make its own torch job, and MPI cannot initialise in torchrun's children (MPICH's
    PMI connection belongs to torchrun), so the user must pick one launcher."""
    mpi = [v for v in _MPI_LAUNCH_VARIABLES if os.environ.get(v)]
    elastic = sorted((v for v in os.environ if v.startswith("TORCHELASTIC_")), key=lambda v: v != "TORCHELASTIC_RUN_ID")
    if mpi and elastic:
        raise RuntimeError(f"hccl_sim: started by torchrun ({elastic[0]}) under an MPI launcher ({mpi[0]}); pick "
                           f"one launcher: `torchrun --nproc-per-node N script.py` or `mpirun -n N python script.py`")
    return bool(mpi)
