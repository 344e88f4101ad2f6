"""Layer 5: the communicator users call — collectives on torch tensors with a virtual clock per rank."""
from __future__ import annotations

import os
import sys
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .algorithms import Job, Schedule, StepBuilder, selection
from .collectives import SPECS, finish, working_buffers
from .dtypes import DTYPE_CODES, DTYPE_NAMES, OP_CODES, OPS, UnsupportedError, check_dtype, check_reducible
from .planning import NetworkModel
from .executors.mpi import MPIExecutor, as_bytes
from .errors import CollectiveError, CollectiveTimeout
from .executors.transport import as_transport
from .executors.waiting import DEFAULT_TIMEOUT

COLLECTIVES = tuple(SPECS)


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
    wait: float = 0.0  # seconds of the duration due to other ranks entering later (the ranks' skew)

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
            if "mpi4py.MPI" in sys.modules:
                sys.modules["mpi4py.MPI"].COMM_WORLD.Abort(1)
            os._exit(1)  # gloo: do not wait at exit for ranks that never come
    hook.installed = True
    return hook


_HEADER_TAG = 1 << 15  # above every step tag of the executor


def _code(text: str) -> int:
    return zlib.crc32(text.encode())


def _integer_counts(collective, p, counts, recv_counts):
    """(counts, recv_counts, error): the v-collectives' counts as lists of p Python ints, from any integer
    sequence, numpy array or torch tensor; floats, bools, negatives and wrong lengths give an error."""
    if collective not in ("allgatherv", "reduce_scatterv", "alltoallv"):
        return counts, recv_counts, ""
    names = ("send_counts", "recv_counts") if collective == "alltoallv" else ("counts",)
    out = []
    for name, value in zip(names, (counts, recv_counts)):
        if isinstance(value, torch.Tensor):
            if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
                return None, None, f"{name}: needs integers, got a tensor of {value.dtype}"
            value = value.tolist()
        elif isinstance(value, np.ndarray):
            if value.dtype.kind not in "iu":
                return None, None, f"{name}: needs integers, got an array of {value.dtype}"
            value = value.tolist()
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
            return None, None, f"{name}: needs a sequence of {p} non-negative integers, got {type(value).__name__}"
        items = list(value)
        if len(items) != p:
            return None, None, f"{name}: needs {p} entries (one per rank), got {len(items)}"
        for i, x in enumerate(items):
            if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
                return None, None, f"{name}[{i}]: needs a non-negative integer, got {x!r}"
        out.append([int(x) for x in items])
    return out[0], (out[1] if len(out) > 1 else recv_counts), ""


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    """A flat view of a contiguous tensor, or a flat contiguous copy of a strided one."""
    return tensor.reshape(-1) if tensor.is_contiguous() else tensor.contiguous().reshape(-1)


class Communicator:
    """Collectives over an MPI communicator (or another Transport), with modeled time on a modeled topology.

    ``topology`` is a preset spec (``"flat"``, ``"two-level:server=4"``), a file path or a Topology;
    ``placement`` maps ranks to NPUs (``"linear"``, ``"spread"``, ``"per-group:K"``, ``"list:..."``).
    ``algo`` is the default algorithm (``"auto"`` picks the lowest modeled time).
    """

    def __init__(self, comm=None, topology=None, placement=None, algo: str | None = None,
                 check: bool = True, timeout: float | None = None):
        base = as_transport(comm)  # MPI.COMM_WORLD if None
        self.transport = base.dup()  # our traffic never matches the user's; a dead peer raises, not aborts
        self.mpi = getattr(self.transport, "comm", None)  # the MPI communicator (None over gloo)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        if not getattr(sys.excepthook, "installed", False):
            sys.excepthook = _abort_on_uncaught_timeout(sys.excepthook)
        if not self.timeout > 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        self.rank, self.size = self.transport.rank, self.transport.size
        topology = topology if topology is not None else os.environ.get("HCCL_SIM_TOPOLOGY")
        placement = placement if placement is not None else os.environ.get("HCCL_SIM_PLACEMENT")
        self.model = NetworkModel(self.size, topology, placement)
        self.algo = selection.default_algo(algo)
        self.check = check
        self.clock = 0.0
        self.last: CallRecord | None = None
        self.last_timing = None  # the TimingResult of the last call (all ranks' entry and exit)
        self.notices = self.transport.failure_notices()  # a rank failing mid-call tells the others at once
        self.executor = MPIExecutor(self.transport, self.timeout, self.notices)
        self._p2p = base.dup()  # send/recv traffic: user tags never meet collective steps
        self._tag_ub = min(self._p2p.tag_ub, 1 << 30)
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
        self.clock = max(self.transport.allgather(self.clock))
        return self.clock

    def free(self) -> None:
        self.transport.free()
        self._p2p.free()

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
        return self._call("allgatherv", output, input, "none", algo, counts=counts)

    def reduce_scatter(self, output: torch.Tensor, input: torch.Tensor, op: str = "sum",
                       algo: str | None = None) -> CallRecord:
        """Reduce ``input`` (p * output.numel() elements) over all ranks; rank r gets block r in ``output``."""
        return self._call("reduce_scatter", output, input, op, algo)

    def reduce_scatterv(self, output: torch.Tensor, input: torch.Tensor, counts, op: str = "sum",
                        algo: str | None = None) -> CallRecord:
        """Like reduce_scatter with blocks of ``counts[r]`` elements (the same ``counts`` on every rank)."""
        return self._call("reduce_scatterv", output, input, op, algo, counts=counts)

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
        return self._call("alltoallv", output, input, "none", algo, counts=send_counts, recv_counts=recv_counts)

    def barrier(self, algo: str | None = None) -> CallRecord:
        """Every rank waits for all (in modeled time: the latency of the barrier's zero-byte messages)."""
        return self._call("barrier", None, None, "none", algo)

    def _call(self, collective, output, input, op, algo, root=-1, counts=None, recv_counts=None) -> CallRecord:
        self.notices.check()  # a failure in an earlier call left this communicator unusable
        algo = algo or self.algo
        spec = SPECS[collective]
        root = root if spec.rooted else -1
        counts, recv_counts, error = _integer_counts(collective, self.size, counts, recv_counts)
        error, count, dtype = (error, -1, None) if error else \
            self._check(collective, output, input, op, root, counts, recv_counts)
        headers = self._exchange(collective, algo, count, dtype, op, root, error)
        entry = headers[:, 0]
        blocks = matrix = None
        if counts is not None:  # every rank's counts, buffer-based, then checked alike on every rank
            blocks, matrix, count = self._share_counts(collective, counts, recv_counts)
        itemsize = torch.empty(0, dtype=dtype).element_size() if dtype is not None else 1
        shape = {"root": max(root, 0), "blocks": blocks, "matrix": matrix}
        resolved = self.model.resolve(collective, algo, count, itemsize, **shape)
        schedule = self.model.schedule(collective, resolved, count, **shape)
        timing = self.model.timing.run(schedule, itemsize, entry)

        flat_out = _flat(output) if output is not None else None
        flat_in = (flat_out if input is output else _flat(input)) if input is not None else None
        job = Job(count, max(root, 0), blocks, matrix)
        try:
            buffers = working_buffers(collective, self.rank, self.size, job, flat_out, flat_in)
            self.executor.run(schedule, buffers, op if spec.reduces else "sum", collective)
            if flat_out is not None:
                finish(collective, self.rank, self.size, job, buffers, flat_out, op)
                if flat_out.data_ptr() != output.data_ptr() or not output.is_contiguous():
                    output.copy_(flat_out.view(output.shape))
        except (CollectiveError, CollectiveTimeout):
            raise  # already the same on every rank (a notice), or naming who is missing
        except Exception as exc:  # this rank failed after every rank committed: tell the others now
            raise self.notices.fail(f"{collective}: rank {self.rank} failed during the call: "
                                    f"{type(exc).__name__}: {exc}") from exc

        self.clock = float(timing.exit[self.rank])
        self.last_timing = timing
        nbytes = count * itemsize if matrix is None else int(sum(matrix[self.rank])) * itemsize
        self.last = CallRecord(collective, resolved, count, DTYPE_NAMES.get(dtype, "none"), op, nbytes,
                               float(entry[self.rank]), self.clock, timing.time,
                               self._skew_wait(schedule, itemsize, entry, timing))
        return self.last

    def _skew_wait(self, schedule, itemsize: int, entry, timing) -> float:
        """Seconds of this rank's time in the call due to other ranks entering later: its duration minus
        the duration with every rank entering together (0 when they did; deterministic, from the model)."""
        if entry.max() == entry.min():
            return 0.0
        duration = float(timing.exit[self.rank] - entry[self.rank])
        aligned = float(self.model.timing.run(schedule, itemsize).exit[self.rank])
        return min(max(duration - aligned, 0.0), duration)

    def _check(self, collective, output, input, op, root, counts, recv_counts):
        """(error message or "", working element count, dtype) of this rank's arguments."""
        p, r = self.size, self.rank
        tensors = {"": output} if input is output else {"output: ": output, "input: ": input}
        if collective in ("scatter",) and r != root:
            tensors.pop("input: ")
        if collective == "gather" and r != root:
            tensors.pop("output: ")
        if collective == "barrier":
            tensors = {}
        for name, t in tensors.items():
            if not isinstance(t, torch.Tensor):
                return f"{name}expected a torch.Tensor, got {type(t).__name__}", -1, None
        dtypes = {t.dtype for t in tensors.values()}
        if len(dtypes) > 1:
            return f"output and input have different dtypes ({output.dtype}, {input.dtype})", -1, None
        dtype = dtypes.pop() if dtypes else None
        try:
            if dtype is not None:
                check_dtype(dtype)
            if SPECS[collective].reduces:
                check_reducible(op, dtype)
        except UnsupportedError as exc:
            return str(exc), -1, None
        if SPECS[collective].rooted and not (isinstance(root, int) and 0 <= root < p):
            return f"root: {root!r} is not a rank of {p}", -1, dtype
        n_out = output.numel() if isinstance(output, torch.Tensor) else None
        n_in = input.numel() if isinstance(input, torch.Tensor) else None
        if collective == "allgather" and n_out != p * n_in:
            return f"output: has {n_out} elements, needs {p} x input ({n_in})", -1, dtype
        if collective == "reduce_scatter" and n_in != p * n_out:
            return f"input: has {n_in} elements, needs {p} x output ({n_out})", -1, dtype
        if collective == "allgatherv" and (n_in != counts[r] or n_out != sum(counts)):
            return f"input/output: have {n_in}/{n_out} elements, counts need {counts[r]}/{sum(counts)}", -1, dtype
        if collective == "reduce_scatterv" and (n_out != counts[r] or n_in != sum(counts)):
            return f"output/input: have {n_out}/{n_in} elements, counts need {counts[r]}/{sum(counts)}", -1, dtype
        if collective == "scatter" and r == root and n_in != p * n_out:
            return f"input: has {n_in} elements on the root, needs {p} x output ({n_out})", -1, dtype
        if collective == "gather" and r == root and n_out != p * n_in:
            return f"output: has {n_out} elements on the root, needs {p} x input ({n_in})", -1, dtype
        if collective == "alltoall" and (n_out != n_in or n_in % p):
            return f"input/output: need the same size, a multiple of {p} (have {n_in}/{n_out})", -1, dtype
        if collective == "alltoallv" and (n_in != sum(counts) or n_out != sum(recv_counts)):
            return (f"input/output: have {n_in}/{n_out} elements, send_counts/recv_counts need "
                    f"{sum(counts)}/{sum(recv_counts)}"), -1, dtype
        count = {"allreduce": n_out, "broadcast": n_out, "reduce": n_out, "allgather": n_out,
                 "reduce_scatter": n_in, "scatter": n_out * p if n_out is not None else -1,
                 "gather": n_in * p if n_in is not None else -1, "alltoall": n_in, "barrier": 0}.get(collective, 0)
        return "", count, dtype

    def _share_counts(self, collective, counts, recv_counts):
        """Gather every rank's counts (a small buffer-based allgather: all ranks passed the header
        exchange) and check they agree; (blocks, matrix, working count), identical on every rank."""
        p = self.size
        mine = np.asarray(list(counts) + (list(recv_counts) if recv_counts is not None else []), dtype=np.int64)
        rows = np.array(self.transport.allgather(mine), dtype=np.int64).reshape(p, len(mine))
        if collective == "alltoallv":
            send, recv = rows[:, :p], rows[:, p:]
            bad = [(i, j) for i in range(p) for j in range(p) if send[i, j] != recv[j, i]]
            if bad:
                i, j = bad[0]
                raise CollectiveError(f"alltoallv: rank {i} sends {send[i, j]} elements to rank {j}, which "
                                      f"expects {recv[j, i]} ({len(bad)} disagreeing pair(s))")
            matrix = tuple(tuple(int(x) for x in row) for row in send)
            return None, matrix, int(send.sum())
        differ = [r for r in range(p) if (rows[r] != rows[0]).any()]
        if differ:
            raise CollectiveError(f"{collective}: ranks disagree on counts (rank 0: {rows[0].tolist()}; "
                                  f"rank {differ[0]}: {rows[differ[0]].tolist()})")
        blocks = tuple(int(x) for x in rows[0])
        return blocks, None, sum(blocks)

    # ---- point to point ---------------------------------------------------------------------------
    def send(self, tensor: torch.Tensor, dst: int, tag: int = 0) -> CallRecord:
        """Send ``tensor`` to rank ``dst``; the message carries its modeled arrival time (this rank's
        clock + route latency + bytes / bandwidth), and this rank's clock moves to it."""
        return self.batch_send_recv([("send", tensor, dst, tag)])

    def recv(self, tensor: torch.Tensor, src: int, tag: int = 0) -> CallRecord:
        """Receive into ``tensor`` from rank ``src``: clock = max(own clock, sender's clock + transfer)."""
        return self.batch_send_recv([("recv", tensor, src, tag)])

    def batch_send_recv(self, ops, head=None) -> CallRecord:
        """``ops``: ("send" | "recv", tensor, peer[, tag]) items, all posted, then all waited for.

        This rank's sends are timed together (they share its links) from its clock; each receive
        completes at the arrival time its sender computed. The clock ends at the latest of them.
        ``head``: the header of a single receive, already received (``recv_any``)."""
        ops = [tuple(o) + (0,) * (4 - len(o)) for o in ops]
        for kind, tensor, peer, tag in ops:
            if kind not in ("send", "recv"):
                raise ValueError(f"batch_send_recv: kind {kind!r} is not 'send' or 'recv'")
            if not isinstance(tensor, torch.Tensor):
                raise ValueError(f"{kind}: expected a torch.Tensor, got {type(tensor).__name__}")
            check_dtype(tensor.dtype)
            if not (isinstance(peer, int) and 0 <= peer < self.size):
                raise ValueError(f"{kind}: peer {peer!r} is not a rank of {self.size}")
            if not (isinstance(tag, int) and 0 <= 2 * tag + 1 <= self._tag_ub):
                raise ValueError(f"{kind}: tag {tag!r} must be an integer in 0..{(self._tag_ub - 1) // 2}")
        start = self.clock
        sends = [(t, peer, tag) for kind, t, peer, tag in ops if kind == "send"]
        recvs = [(t, peer, tag) for kind, t, peer, tag in ops if kind == "recv"]
        arrivals = self._send_arrivals([(peer, t.numel() * t.element_size()) for t, peer, _ in sends])
        # phase 1: headers (arrival time, bytes, dtype) both ways, and the data of the sends
        out_heads = [np.array([a, t.numel() * t.element_size(), DTYPE_CODES[t.dtype]], dtype=np.float64)
                     for a, (t, _, _) in zip(arrivals, sends)]
        in_heads = [np.zeros(3) for _ in recvs] if head is None else [head]
        flats = [_flat(t) for t, _, _ in sends]
        head_reqs = [] if head is not None else [
            self._p2p.irecv(h, peer, 2 * tag) for h, (_, peer, tag) in zip(in_heads, recvs)]
        send_reqs = [self._p2p.isend(h, peer, 2 * tag) for h, (_, peer, tag) in zip(out_heads, sends)]
        send_reqs += [self._p2p.isend(as_bytes(f), peer, 2 * tag + 1) for f, (_, peer, tag) in zip(flats, sends)]
        send_peers = [peer for _, peer, _ in sends] * 2
        self._p2p.wait_all(head_reqs, [peer for _, peer, _ in recvs], self.timeout, "recv", self.notices)
        # phase 2: the data of the receives, each checked against its header
        problems, data_reqs, targets = [], [], []
        for head, (t, peer, tag) in zip(in_heads, recvs):
            nbytes = t.numel() * t.element_size()
            flat = _flat(t)
            if int(head[1]) != nbytes or int(head[2]) != DTYPE_CODES[t.dtype]:
                problems.append(f"recv from rank {peer} (tag {tag}): the message has {int(head[1])} bytes of "
                                f"{list(DTYPE_CODES)[int(head[2])]}, the tensor {nbytes} bytes of {t.dtype}")
                flat = torch.empty(int(head[1]), dtype=torch.uint8)  # drain it so the sender completes
            targets.append((t, flat))
            data_reqs.append(self._p2p.irecv(as_bytes(flat), peer, 2 * tag + 1))
        self._p2p.wait_all(data_reqs + send_reqs, [p for _, p, _ in recvs] + send_peers, self.timeout,
                           "batch_send_recv", self.notices)
        if problems:
            raise CollectiveError("; ".join(problems))
        for t, flat in targets:
            if flat.data_ptr() != t.data_ptr() or not t.is_contiguous():
                t.copy_(flat.view(t.shape))
        self.clock = max([self.clock] + list(arrivals) + [float(h[0]) for h in in_heads])
        nbytes = sum(t.numel() * t.element_size() for _, t, _, _ in ops)
        name = ops[0][0] if len(ops) == 1 else "batch_send_recv"
        self.last = CallRecord(name, "p2p", sum(t.numel() for _, t, _, _ in ops), "mixed" if len(
            {t.dtype for _, t, _, _ in ops}) > 1 else DTYPE_NAMES.get(ops[0][1].dtype, "none") if ops else "none",
            "none", nbytes, start, self.clock, self.clock - start)
        return self.last

    def recv_any(self, tensor: torch.Tensor, tag: int = 0) -> tuple[CallRecord, int]:
        """Receive into ``tensor`` from whichever rank sends to this one with ``tag``; (record, source)."""
        check_dtype(tensor.dtype)
        head = np.zeros(3)
        source = self._p2p.recv_any(head, 2 * tag, self.timeout, "recv from any source")
        record = self.batch_send_recv([("recv", tensor, source, tag)], head=head)
        return record, source

    def _send_arrivals(self, sends) -> list[float]:
        """Modeled arrival time of each of this rank's concurrent sends, posted at its clock."""
        if not sends:
            return []
        step = StepBuilder()
        for peer, nbytes in sends:
            if peer != self.rank:
                step.add(self.rank, peer, 0, 0, nbytes)
        schedule = Schedule("send", "p2p", self.size, max(n for _, n in sends))
        schedule.append(step)
        entry = np.full(self.size, self.clock)
        result = self.model.timing.run(schedule, 1, entry, record=True)
        arrive = iter(result.transfers.arrive.tolist() if result.transfers is not None else [])
        return [self.clock if peer == self.rank else next(arrive) for peer, _ in sends]

    def _exchange(self, collective, algo, count, dtype, op, root, error) -> np.ndarray:
        """Share clocks and call signatures; raise the same error on every rank if they disagree."""
        h = self._header
        h[:] = (self.clock, _code(collective), _code(algo), count,
                DTYPE_CODES.get(dtype, -1), OP_CODES.get(op, -1), root, 1 if error else 0)
        headers = self._headers
        headers[self.rank] = h
        # point to point rather than MPI_Allgather, so that a rank that never comes is named, not waited for
        requests = [self.transport.irecv(headers[r], r, _HEADER_TAG) for r in self._peers]
        requests += [self.transport.isend(h, r, _HEADER_TAG) for r in self._peers]
        self.transport.wait_all(requests, self._peers * 2, self.timeout, collective, self.notices)
        if headers[:, 7].any():
            messages = self.transport.allgather(error)  # only on the error path: a pickled exchange is fine
            bad = _by_message(messages)
            count = sum(1 for m in messages if m)
            raise CollectiveError(f"{collective}: invalid input on {count} rank(s): "
                                  + "; ".join(f"{_rank_list(rs)}: {m}" for m, rs in bad.items()))
        if self.check:
            for col in range(1, 7):
                if (headers[:, col] != headers[0, col]).any():
                    self._mismatch(collective, _FIELDS[col], (collective, algo, count, dtype, op, root)[col - 1])
        return headers.copy()

    def _mismatch(self, collective, field, mine):
        shown = DTYPE_NAMES.get(mine, mine) if field == "dtype" else mine
        values = self.transport.allgather(str(shown))
        detail = "; ".join(f"{_rank_list(rs)}: {v}" for v, rs in _by_message(values).items())
        raise CollectiveError(f"{collective}: ranks disagree on {field} ({detail})")


def _by_message(messages) -> dict[str, list[int]]:
    """message -> the ranks that sent it (empty messages left out), so a reason shared is said once."""
    groups: dict[str, list[int]] = {}
    for rank, message in enumerate(messages):
        if message:
            groups.setdefault(str(message), []).append(rank)
    return groups


def _rank_list(ranks: list[int]) -> str:
    """[2] -> 'rank 2'; [0, 1, 2, 3, 6] -> 'ranks 0-3,6'."""
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    runs, start = [], ranks[0]
    for prev, cur in zip(ranks, ranks[1:] + [None]):
        if cur is None or cur != prev + 1:
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return "ranks " + ",".join(runs)


__all__ = ["Communicator", "CallRecord", "CollectiveError", "CollectiveTimeout", "COLLECTIVES", "OPS"]
