"""The Communicator: collectives and point to point on torch tensors, with a modeled clock per rank.

Each public method is one call into a protocol that lives beside it: the collective's descriptor
(``hccl_sim.collectives``) checks the arguments and lays out the buffers, ``header.py`` exchanges and
compares the ranks' calls, the executor moves the bytes, the timing model sets the clock, and
``p2p.py`` handles send and receive.
"""
from __future__ import annotations

import numpy as np
import torch

from ..collectives import SPECS
from ..dtypes import DTYPE_NAMES
from ..errors import CollectiveError, CollectiveTimeout
from ..planning import NetworkModel
from ..executors.mpi import MPIExecutor, copy_back, flat_view
from ..executors.transport import as_transport
from .clock import Clock
from .config import CommConfig
from .header import Call, HeaderExchange
from .p2p import PointToPoint
from .record import CallRecord

COLLECTIVES = tuple(SPECS)


class Communicator:
    """Collectives over an MPI communicator (or another Transport), with modeled time on a modeled topology.

    ``topology`` is a preset spec (``"flat"``, ``"two-level:server=4"``), a file path or a Topology;
    ``placement`` maps ranks to NPUs (``"linear"``, ``"spread"``, ``"per-group:K"``, ``"list:..."``).
    ``algo`` is the default algorithm (``"auto"`` picks the lowest modeled time). Settings not given come
    from the environment (``CommConfig.from_env``). ``clock``: a Clock to share (the torch backend's
    process groups share one), else a new one at 0.
    """

    def __init__(self, comm=None, topology=None, placement=None, algo: str | None = None,
                 check: bool = True, timeout: float | None = None, clock: Clock | None = None):
        self.config = config = CommConfig.from_env(topology, placement, algo, timeout)
        base = as_transport(comm)  # MPI.COMM_WORLD if None
        self.transport = base.dup()  # our traffic never matches the user's; a dead peer raises, not aborts
        self.mpi = getattr(self.transport, "comm", None)  # the MPI communicator (None over gloo)
        self.timeout, self.algo, self.check = config.timeout, config.algo, check
        self.rank, self.size = self.transport.rank, self.transport.size
        self.model = NetworkModel(self.size, config.topology, config.placement)
        self._clock = clock if clock is not None else Clock()
        self.last: CallRecord | None = None
        self.last_timing = None  # the TimingResult of the last call (all ranks' entry and exit)
        self.notices = self.transport.failure_notices()  # a rank failing mid-call tells the others at once
        self.executor = MPIExecutor(self.transport, self.timeout, self.notices)
        self.headers = HeaderExchange(self.transport, self.timeout, self.notices)
        self.p2p = PointToPoint(base.dup(), self._clock, self.model.timing, self.timeout, self.notices)

    @property
    def topology(self):
        return self.model.topology

    @property
    def clock(self) -> float:
        """This rank's modeled time, seconds (the shared Clock's ``now``)."""
        return self._clock.now

    @clock.setter
    def clock(self, seconds: float) -> None:
        self._clock.now = float(seconds)

    def advance(self, seconds: float) -> float:
        """Move this rank's clock forward by modeled compute time."""
        return self._clock.advance(seconds)

    def sync_clocks(self) -> float:
        """Set every rank's clock to the latest one (a free, modeled-time-only barrier)."""
        self.clock = max(self.transport.allgather(self.clock))
        return self.clock

    def free(self) -> None:
        self.transport.free()
        self.p2p.transport.free()

    # ---- collectives --------------------------------------------------------------------------
    # torch.distributed's argument order: output first. Every call returns this rank's CallRecord.
    def allreduce(self, tensor: torch.Tensor, op: str = "sum", algo: str | None = None) -> CallRecord:
        """Reduce ``tensor`` over all ranks, in place: every rank ends with the same result."""
        return self._call("allreduce", tensor, tensor, op, algo)

    def broadcast(self, tensor: torch.Tensor, root: int = 0, algo: str | None = None) -> CallRecord:
        """Copy the root's ``tensor`` into every rank's ``tensor``."""
        return self._call("broadcast", tensor, tensor, "none", algo, root)

    def reduce(self, tensor: torch.Tensor, root: int = 0, op: str = "sum", algo: str | None = None) -> CallRecord:
        """Reduce ``tensor`` over all ranks into the root's ``tensor``; other ranks' tensors are unchanged."""
        return self._call("reduce", tensor, tensor, op, algo, root)

    def allgather(self, output: torch.Tensor, input: torch.Tensor, algo: str | None = None) -> CallRecord:
        """``output`` (p * input.numel() elements) gets every rank's ``input``, in rank order."""
        return self._call("allgather", output, input, "none", algo)

    def allgatherv(self, output: torch.Tensor, input: torch.Tensor, counts, algo: str | None = None) -> CallRecord:
        """Like allgather with ``counts[r]`` elements from rank r (the same ``counts`` on every rank)."""
        return self._call("allgatherv", output, input, "none", algo, counts=(counts,))

    def reduce_scatter(self, output: torch.Tensor, input: torch.Tensor, op: str = "sum",
                       algo: str | None = None) -> CallRecord:
        """Reduce ``input`` (p * output.numel() elements) over all ranks; rank r gets block r in ``output``."""
        return self._call("reduce_scatter", output, input, op, algo)

    def reduce_scatterv(self, output: torch.Tensor, input: torch.Tensor, counts, op: str = "sum",
                        algo: str | None = None) -> CallRecord:
        """Like reduce_scatter with blocks of ``counts[r]`` elements (the same ``counts`` on every rank)."""
        return self._call("reduce_scatterv", output, input, op, algo, counts=(counts,))

    def scatter(self, output: torch.Tensor, input: torch.Tensor | None = None, root: int = 0,
                algo: str | None = None) -> CallRecord:
        """Rank r's ``output`` gets block r of the root's ``input`` (p * output.numel() elements, root only)."""
        return self._call("scatter", output, input, "none", algo, root)

    def gather(self, output: torch.Tensor | None, input: torch.Tensor, root: int = 0,
               algo: str | None = None) -> CallRecord:
        """The root's ``output`` (p * input.numel() elements) gets every rank's ``input``; None elsewhere."""
        return self._call("gather", output, input, "none", algo, root)

    def alltoall(self, output: torch.Tensor, input: torch.Tensor, algo: str | None = None) -> CallRecord:
        """Block j of rank i's ``input`` becomes block i of rank j's ``output`` (p equal blocks)."""
        return self._call("alltoall", output, input, "none", algo)

    def alltoallv(self, output: torch.Tensor, input: torch.Tensor, send_counts, recv_counts,
                  algo: str | None = None) -> CallRecord:
        """Rank i sends ``send_counts[j]`` elements to rank j (in order of j) and receives
        ``recv_counts[j]`` from rank j (in order of j); every pair must agree."""
        return self._call("alltoallv", output, input, "none", algo, counts=(send_counts, recv_counts))

    def barrier(self, algo: str | None = None) -> CallRecord:
        """Every rank waits for all (in modeled time: the latency of the barrier's zero-byte messages)."""
        return self._call("barrier", None, None, "none", algo)

    # ---- point to point ---------------------------------------------------------------------------
    def send(self, tensor: torch.Tensor, dst: int, tag: int = 0) -> CallRecord:
        """Send ``tensor`` to rank ``dst``; the message carries its modeled arrival time (this rank's
        clock + route latency + bytes / bandwidth), and this rank's clock moves to it."""
        return self.batch_send_recv([("send", tensor, dst, tag)])

    def recv(self, tensor: torch.Tensor, src: int, tag: int = 0) -> CallRecord:
        """Receive into ``tensor`` from rank ``src``: clock = max(own clock, sender's clock + transfer)."""
        return self.batch_send_recv([("recv", tensor, src, tag)])

    def batch_send_recv(self, ops) -> CallRecord:
        """``ops``: ("send" | "recv", tensor, peer[, tag]) items, all posted, then all waited for (``p2p.py``)."""
        return self._keep(self.p2p.batch_send_recv(ops))

    def recv_any(self, tensor: torch.Tensor, tag: int = 0) -> tuple[CallRecord, int]:
        """Receive into ``tensor`` from whichever rank sends to this one with ``tag``; (record, source)."""
        return self._keep(self.p2p.recv_any(tensor, tag))

    def _keep(self, result):
        """``result`` (a CallRecord, or a tuple that starts with one), kept as ``last``."""
        self.last = result[0] if isinstance(result, tuple) else result
        return result

    # ---- one collective -----------------------------------------------------------------------
    def _call(self, collective, output, input, op, algo, root=-1, counts=()) -> CallRecord:
        self.notices.check()  # a failure in an earlier call left this communicator unusable
        algo = algo or self.algo
        spec = SPECS[collective]
        root = root if spec.rooted else -1
        args, error = spec.checked_counts(self.size, counts)
        error, count, dtype = (error, -1, None) if error else \
            spec.check(self.rank, self.size, output, input, op, root, args)
        entry = self.headers.exchange(self.clock, Call(collective, algo, count, dtype, op, root), error, self.check)
        job = self._agreed_job(spec, args, root) if args else spec.job(count, max(root, 0))
        itemsize = torch.empty(0, dtype=dtype).element_size() if dtype is not None else 1
        shape = job.shape()
        resolved = self.model.resolve(collective, algo, job.count, itemsize, **shape)
        schedule = self.model.schedule(collective, resolved, job.count, **shape)
        timing = self.model.timing.run(schedule, itemsize, entry)

        flat_out = flat_view(output) if output is not None else None
        flat_in = (flat_out if input is output else flat_view(input)) if input is not None else None
        try:
            buffers = spec.working_buffers(self.rank, self.size, job, flat_out, flat_in)
            self.executor.run(schedule, buffers, op if spec.reduces else "sum", collective)
            if flat_out is not None:
                spec.finish(self.rank, self.size, job, buffers, flat_out, op)
                copy_back(output, flat_out)
        except (CollectiveError, CollectiveTimeout):
            raise  # already the same on every rank (a notice), or naming who is missing
        except Exception as exc:  # this rank failed after every rank committed: tell the others now
            raise self.notices.fail(f"{collective}: rank {self.rank} failed during the call: "
                                    f"{type(exc).__name__}: {exc}") from exc

        self.clock = float(timing.exit[self.rank])
        self.last_timing = timing
        n = job.count if job.matrix is None else sum(job.matrix[self.rank])  # alltoallv: what this rank sends
        return self._keep(CallRecord(collective, resolved, job.count, DTYPE_NAMES.get(dtype, "none"), op,
                                     int(n) * itemsize, float(entry[self.rank]), self.clock, timing.time,
                                     self._skew_wait(schedule, itemsize, entry, timing)))

    def _agreed_job(self, spec, args, root):
        """A v-variant's shape from every rank's counts (a small buffer-based allgather: all ranks passed
        the header exchange), checked alike on every rank."""
        mine = np.concatenate([np.asarray(a, dtype=np.int64) for a in args])
        rows = np.array(self.transport.allgather(mine), dtype=np.int64).reshape(self.size, len(mine))
        return spec.agreed_job(rows, max(root, 0))

    def _skew_wait(self, schedule, itemsize: int, entry, timing) -> float:
        """Seconds of this rank's time in the call due to other ranks entering later: its duration minus
        the duration with every rank entering together (0 when they did; deterministic, from the model)."""
        if entry.max() == entry.min():
            return 0.0
        duration = float(timing.exit[self.rank] - entry[self.rank])
        aligned = float(self.model.timing.run(schedule, itemsize).exit[self.rank])
        return min(max(duration - aligned, 0.0), duration)
