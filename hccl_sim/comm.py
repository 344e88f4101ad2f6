"""Layer 5: the communicator users call — collectives on torch tensors with a virtual clock per rank."""
from __future__ import annotations

import os
import sys
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from mpi4py import MPI

from .dtypes import DTYPE_CODES, DTYPE_NAMES, OP_CODES, OPS, UnsupportedError, check_dtype, check_op
from .executors.model import NetworkModel
from .executors.mpi import MPIExecutor
from .errors import CollectiveError, CollectiveTimeout
from .executors.waiting import DEFAULT_TIMEOUT, wait_all

COLLECTIVES = ("allreduce",)


@dataclass(frozen=True)
class CallRecord:
    """One collective as this rank saw it, in modeled seconds."""
    collective: str
    algo: str
    count: int
    dtype: str
    op: str
    nbytes: int
    start: float  # this rank's clock on entry
    end: float  # this rank's clock on exit
    time: float  # the collective's span: last rank out minus first rank in

    @property
    def duration(self) -> float:
        return self.end - self.start


# the header every rank contributes on entry: its clock, and what it is calling, for the consistency check
_FIELDS = ("clock", "collective", "algo", "count", "dtype", "op", "root", "error")


def _abort_on_uncaught_timeout(previous):
    """An uncaught CollectiveTimeout ends the whole job: the missing rank would otherwise keep
    MPI_Finalize (and so every other rank) waiting."""
    def hook(kind, value, tb):
        previous(kind, value, tb)
        if issubclass(kind, CollectiveTimeout):
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(1)
    hook.installed = True
    return hook


_HEADER_TAG = 1 << 15  # above every step tag of the executor


def _code(text: str) -> int:
    return zlib.crc32(text.encode())


class Communicator:
    """Collectives over an MPI communicator, with modeled time on a modeled topology.

    ``topology`` is a preset spec (``"flat"``, ``"two-level:server=4"``), a file path or a Topology;
    ``placement`` maps ranks to NPUs (``"linear"``, ``"spread"``, ``"per-group:K"``, ``"list:..."``).
    ``algo`` is the default algorithm (``"auto"`` picks the lowest modeled time).
    """

    def __init__(self, comm: MPI.Comm | None = None, topology=None, placement=None, algo: str | None = None,
                 check: bool = True, timeout: float | None = None):
        base = comm if comm is not None else MPI.COMM_WORLD
        self.mpi = base.Dup()  # our traffic never matches the user's
        self.mpi.Set_errhandler(MPI.ERRORS_RETURN)  # a dead peer raises here instead of aborting the job
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        if not getattr(sys.excepthook, "installed", False):
            sys.excepthook = _abort_on_uncaught_timeout(sys.excepthook)
        if not self.timeout > 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        self.rank, self.size = self.mpi.rank, self.mpi.size
        topology = topology if topology is not None else os.environ.get("HCCL_SIM_TOPOLOGY")
        placement = placement if placement is not None else os.environ.get("HCCL_SIM_PLACEMENT")
        self.model = NetworkModel(self.size, topology, placement)
        self.algo = algo or os.environ.get("HCCL_SIM_ALGO") or "auto"
        self.check = check
        self.clock = 0.0
        self.last: CallRecord | None = None
        self.last_timing = None  # the TimingResult of the last call (all ranks' entry and exit)
        self.executor = MPIExecutor(self.mpi, self.timeout)
        self._peers = [r for r in range(self.size) if r != self.rank]
        self._header = np.zeros(len(_FIELDS))
        self._headers = np.zeros((self.size, len(_FIELDS)))

    @property
    def topology(self):
        return self.model.topology

    def advance(self, seconds: float) -> float:
        """Move this rank's clock forward by modeled compute time."""
        if not seconds >= 0:
            raise ValueError(f"advance: seconds must be >= 0, got {seconds!r}")
        self.clock += float(seconds)
        return self.clock

    def sync_clocks(self) -> float:
        """Set every rank's clock to the latest one (a free, modeled-time-only barrier)."""
        self.clock = self.mpi.allreduce(self.clock, op=MPI.MAX)
        return self.clock

    def free(self) -> None:
        if self.mpi != MPI.COMM_NULL:
            self.mpi.Free()

    # ---- collectives --------------------------------------------------------------------------
    def allreduce(self, tensor: torch.Tensor, op: str = "sum", algo: str | None = None) -> CallRecord:
        """Reduce ``tensor`` over all ranks, in place: every rank ends with the same result."""
        return self._run("allreduce", tensor, op, algo)

    def _run(self, collective: str, tensor: torch.Tensor, op: str, algo: str | None, root: int = -1) -> CallRecord:
        algo = algo or self.algo
        error = ""
        if not isinstance(tensor, torch.Tensor):
            error = f"expected a torch.Tensor, got {type(tensor).__name__}"
        else:
            try:
                check_dtype(tensor.dtype)
                check_op(op, tensor.dtype)
            except UnsupportedError as exc:
                error = str(exc)
        count = tensor.numel() if not error else -1
        headers = self._exchange(collective, algo, count, tensor.dtype if not error else None, op, root, error)
        entry = headers[:, 0]
        itemsize = tensor.element_size()
        resolved = self.model.resolve(collective, algo, count, itemsize)
        schedule = self.model.schedule(collective, resolved, count)
        timing = self.model.timing.run(schedule, itemsize, entry)

        flat = tensor.reshape(-1) if tensor.is_contiguous() else tensor.contiguous().reshape(-1)
        self.executor.run(schedule, {0: flat}, op, collective)
        if op == "avg":
            flat.div_(self.size)
        if flat.data_ptr() != tensor.data_ptr() or not tensor.is_contiguous():
            tensor.copy_(flat.view(tensor.shape))

        self.clock = float(timing.exit[self.rank])
        self.last_timing = timing
        self.last = CallRecord(collective, resolved, count, DTYPE_NAMES[tensor.dtype], op, count * itemsize,
                               float(entry[self.rank]), self.clock, timing.time)
        return self.last

    def _exchange(self, collective, algo, count, dtype, op, root, error) -> np.ndarray:
        """Share clocks and call signatures; raise the same error on every rank if they disagree."""
        h = self._header
        h[:] = (self.clock, _code(collective), _code(algo), count,
                DTYPE_CODES.get(dtype, -1), OP_CODES.get(op, -1), root, 1 if error else 0)
        headers = self._headers
        headers[self.rank] = h
        # point to point rather than MPI_Allgather, so that a rank that never comes is named, not waited for
        requests = [self.mpi.Irecv(headers[r], r, _HEADER_TAG) for r in self._peers]
        requests += [self.mpi.Isend(h, r, _HEADER_TAG) for r in self._peers]
        wait_all(requests, self._peers * 2, self.timeout, collective)
        if headers[:, 7].any():
            messages = self.mpi.allgather(error)  # only on the error path: a pickled exchange is fine
            bad = [f"rank {r}: {m}" for r, m in enumerate(messages) if m]
            raise CollectiveError(f"{collective}: invalid input on {len(bad)} rank(s): " + "; ".join(bad))
        if self.check:
            for col in range(1, 7):
                if (headers[:, col] != headers[0, col]).any():
                    self._mismatch(collective, _FIELDS[col], (collective, algo, count, dtype, op, root)[col - 1])
        return headers.copy()

    def _mismatch(self, collective, field, mine):
        shown = DTYPE_NAMES.get(mine, mine) if field == "dtype" else mine
        values = self.mpi.allgather(str(shown))
        groups: dict[str, list[int]] = {}
        for r, v in enumerate(values):
            groups.setdefault(v, []).append(r)
        detail = "; ".join(f"ranks {','.join(map(str, rs))}: {v}" for v, rs in groups.items())
        raise CollectiveError(f"{collective}: ranks disagree on {field} ({detail})")


__all__ = ["Communicator", "CallRecord", "CollectiveError", "CollectiveTimeout", "COLLECTIVES", "OPS"]
