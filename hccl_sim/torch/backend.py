"""The torch.distributed process group "hccl_sim": torch's collectives on a hccl_sim Communicator.

A Python ProcessGroup subclass (torch's PyProcessGroup trampoline forwards both Python calls and C++
callers such as DDP's reducer and functional collectives to these methods). The data of every operation
has moved when it returns; in modeled time it runs on this rank's communication stream, and waiting for
its Work (torch's front end does so at once for a blocking call) joins the compute clock to its end
(``timeline.py``). Sends and receives are queued, and the queue is flushed as one batch (posted together,
so no ordering of isend/irecv deadlocks) before any other operation of this process and when one of
their Works is waited for.

Every dtype gloo takes on CPU goes through, adapted in one place (``_wire``, applied to every call by
``_call`` and to point-to-point batches): bool as uint8 (SUM as OR, PRODUCT as AND), complex as its real
pairs (SUM, AVG), others the emulator does not reduce as bytes. Operations on lists of tensors pack them
(``_pack``: one call per dtype, tensors end to end) and copy the result back (``_unpack``) in the
tensors' own dtype, so PREMUL_SUM scales and torch copies as the caller's dtype defines.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout

from ..comm import Communicator
from ..dtypes import DTYPE_CODES
from ..errors import CollectiveError, CollectiveTimeout, abort_on_uncaught_timeout
from ..executors.transport import GlooTransport, MPITransport, under_mpirun
from ..topology import Topology
from . import recorder as _rec
from . import timeline as _tl

BACKEND_NAME = "hccl_sim"

RedOpType = dist.ReduceOp.RedOpType
_OPS = {RedOpType.SUM: "sum", RedOpType.AVG: "avg", RedOpType.PRODUCT: "prod", RedOpType.MIN: "min",
        RedOpType.MAX: "max"}


@dataclass
class Options:
    """Process-group options (``pg_options=`` of init_process_group / new_group).

    Unset fields come from HCCL_SIM_TOPOLOGY, HCCL_SIM_PLACEMENT, HCCL_SIM_ALGO, HCCL_SIM_TIMEOUT; a
    subgroup without its own topology sits on the NPUs of its ranks in the world group's topology.
    ``transport``: "mpi", "gloo" or None (HCCL_SIM_TRANSPORT, else MPI under mpirun and gloo otherwise)."""
    topology: str | Topology | None = None
    placement: str | list[int] | None = None
    algo: str | None = None
    timeout: float | None = None  # seconds a rank waits for its peers before raising
    transport: str | None = None


def _reduce_op(opts) -> tuple[str, object]:
    """(hccl_sim op name, premultiply factor or None) of an options object, a ReduceOp, a RedOpType or None."""
    op = RedOpType.SUM if opts is None else getattr(opts, "reduceOp", opts)
    kind = op if isinstance(op, RedOpType) else op.op  # isinstance(RedOpType.X, ReduceOp) is True too
    if kind == RedOpType.PREMUL_SUM:
        return "sum", op.factor
    if kind not in _OPS:
        raise ValueError(f"hccl_sim: ReduceOp {kind} is not supported (SUM, AVG, PRODUCT, MIN, MAX, PREMUL_SUM)")
    return _OPS[kind], None


def _root(opts) -> int:
    return opts.rootRank if opts is not None else 0


def _list(tensors) -> list:
    """``pg.op(t)`` and ``pg.op([t])`` alike."""
    return [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)


def _check_tensor(t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"hccl_sim: expected a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise ValueError(f"hccl_sim: sparse tensors ({t.layout}) are not supported; call .to_dense() first")


def _wire(t: torch.Tensor, op: str | None = None) -> tuple[torch.Tensor, str | None]:
    """(``t`` viewed as a dtype the Communicator takes, sharing its memory; the op to run on that view).

    bool as uint8 (SUM/MAX as max, PRODUCT/MIN as min: or and and), complex as (..., 2) real pairs
    (SUM and AVG only, as torch defines them), any other dtype as (..., itemsize) bytes when only moved."""
    _check_tensor(t)
    if t.dtype in DTYPE_CODES:
        return t, op
    if t.dtype == torch.bool:
        if op == "avg":
            raise ValueError("hccl_sim: AVG is not defined for bool tensors")
        return t.view(torch.uint8), {"sum": "max", "prod": "min"}.get(op, op)
    if t.is_complex():
        if op not in (None, "sum", "avg"):
            raise ValueError(f"hccl_sim: {op} is not defined for complex tensors (SUM and AVG are)")
        return torch.view_as_real(t.resolve_conj()), op
    if op is not None:
        raise ValueError(f"hccl_sim: reductions of {t.dtype} are not supported")
    return t.unsqueeze(-1).view(torch.uint8), op


def _wire_width(dtype: torch.dtype) -> int:
    """Elements of the wire view (``_wire``) per element of ``dtype``: 2 for complex, the item size for a
    dtype moved as bytes, else 1."""
    if dtype in DTYPE_CODES or dtype == torch.bool:
        return 1
    return 2 if dtype.is_complex else dtype.itemsize


def _by_dtype(items, tensor_of=lambda item: item) -> list[list]:
    """``items`` grouped by the dtype of ``tensor_of(item)``, in first-seen order: one packed call each."""
    groups: dict = {}
    for item in items:
        groups.setdefault(tensor_of(item).dtype, []).append(item)
    return list(groups.values())


def _pack(tensors, rows: int | None = None) -> torch.Tensor:
    """A new buffer holding ``tensors`` (one dtype) end to end; with ``rows``, a (rows, N) buffer whose row
    r holds the r-th of ``rows`` equal parts of each tensor in turn (reduce-scatter's blocks)."""
    for t in tensors:
        _check_tensor(t)
    if rows is None:
        return torch.cat([t.reshape(-1) for t in tensors])
    return torch.cat([t.reshape(rows, -1) for t in tensors], dim=1)


def _unpack(packed: torch.Tensor, targets) -> None:
    """Copy ``packed`` (flat, or rows x N) back into ``targets``, a block of columns each in turn: a tensor
    takes its whole block, a list of one tensor per row takes one row of it each (the inverse of _pack)."""
    packed = packed.reshape(1, -1) if packed.dim() == 1 else packed
    rows, offset = packed.shape[0], 0
    for target in targets:
        width = target[0].numel() if isinstance(target, list) else target.numel() // rows
        block = packed[:, offset:offset + width]
        if isinstance(target, list):
            for row, t in zip(block, target):
                t.copy_(row.view(t.shape))
        else:
            target.copy_(block.reshape(target.shape))
        offset += width


def _scaled(tensor: torch.Tensor, factor) -> torch.Tensor:
    """A copy of ``tensor`` times ``factor`` (PREMUL_SUM never changes the caller's input)."""
    return tensor * (factor.to(tensor.dtype) if isinstance(factor, torch.Tensor) else factor)


class DistCollectiveError(dist.DistBackendError, CollectiveError):
    """torch's backend error for ranks that disagree or invalid input (also a hccl_sim CollectiveError)."""


class DistCollectiveTimeout(dist.DistBackendError, CollectiveTimeout):
    """torch's backend error for a collective that timed out (also a hccl_sim CollectiveTimeout and a
    TimeoutError); ``missing`` names the ranks it waited for."""

    def __init__(self, exc: CollectiveTimeout):
        dist.DistBackendError.__init__(self, str(exc))
        self.missing = exc.missing


def _as_torch_error(exc: Exception) -> Exception:
    """hccl_sim's cross-rank errors as torch.distributed's DistBackendError, as the built-in backends raise."""
    if isinstance(exc, dist.DistBackendError):
        return exc
    if isinstance(exc, CollectiveTimeout):
        return DistCollectiveTimeout(exc)
    if isinstance(exc, CollectiveError):
        return DistCollectiveError(str(exc))
    return exc


def _numel(shape) -> int:
    return math.prod(shape)


class _Work(dist.Work):
    """An operation whose data has moved; in modeled time it ends at ``end`` on the communication stream.

    wait() joins this rank's compute clock to ``end``; the future is complete (C++ waiters such as DDP's
    reducer are joined by the optimizer-step hook and the end of ``step()``, see timeline.py)."""

    def __init__(self, result, end: float | None = None, future: torch.futures.Future | None = None):
        super().__init__()
        if future is None:
            future = torch.futures.Future()
            future.set_result(result)
        self._future = future
        self._end = end

    def _finish(self) -> None:
        """Make the result available (queued sends and receives are posted here)."""

    def wait(self, timeout: timedelta | None = None) -> bool:
        self._finish()
        self._future.wait()  # raises the operation's error
        if self._end is not None:
            _tl.timeline().join(self._end)
        return True

    def get_future(self) -> torch.futures.Future:
        self._finish()
        return self._future

    def is_completed(self) -> bool:
        return self._future.done()

    def is_success(self) -> bool:
        return self._future.done() and not self._has_error()

    def _has_error(self) -> bool:
        try:
            self._future.value()
            return False
        except Exception:
            return True

    def result(self):
        return self.get_future().value()

    def synchronize(self) -> None:
        self.wait()


# ---- queued point-to-point operations ---------------------------------------------------------
_pending: list = []  # (process group, kind, tensor, peer, tag, work)


class _P2PWork(_Work):
    """A queued send or receive: waiting for it flushes the queue."""

    def __init__(self, tensor: torch.Tensor, source: int = -1):
        super().__init__(None, future=torch.futures.Future())
        self._tensor, self._source = tensor, source

    def _finish(self) -> None:
        flush_p2p()

    def _source_rank(self) -> int:
        return self._source


def flush_p2p() -> None:
    """Post every queued send and receive, one batch per process group, and wait for them."""
    while _pending:
        pg = _pending[0][0]
        batch = [p for p in _pending if p[0] is pg]
        _pending[:] = [p for p in _pending if p[0] is not pg]
        error = end = None
        try:
            end = pg._run("send_recv", pg.comm.batch_send_recv,
                          [(kind, _wire(t)[0], peer, tag) for _, kind, t, peer, tag, _ in batch], flush=False,
                          start=min(work._issued for *_, work in batch))
        except Exception as exc:  # every waiter of the batch sees the failure
            error = exc
        for _, _, t, _, _, work in batch:
            work._end = end
            if error is None:
                work._future.set_result([t])
            else:
                work._future.set_exception(error)
        if error is not None:
            raise error


def _no_grad(method):
    """Operations write into tensors that may require grad (parameters), as gloo does."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with torch.no_grad():
            return method(*args, **kwargs)
    return wrapper


class ProcessGroupHcclSim(dist.ProcessGroup):
    """torch.distributed's process-group interface on a hccl_sim Communicator."""

    def __init__(self, comm: Communicator, rank: int, size: int):
        super().__init__(rank, size)
        self.comm = comm
        self._rank, self._size = rank, size
        self._group_name = self._group_desc = ""

    def getBackendName(self) -> str:
        return BACKEND_NAME

    @property
    def name(self) -> str:  # torch's own groups have .name(); keep a readable attribute too
        return BACKEND_NAME

    # a Python process group has no C++ backend to keep its name and description: keep them here
    def setGroupName(self, name: str) -> None:
        self._group_name = name

    def getGroupName(self) -> str:
        return self._group_name

    def setGroupDesc(self, desc: str) -> None:
        self._group_desc = desc

    def getGroupDesc(self) -> str:
        return self._group_desc

    @property
    def group_name(self) -> str:
        return self._group_name

    @property
    def group_desc(self) -> str:
        return self._group_desc

    def __repr__(self):
        return f"ProcessGroupHcclSim(rank={self._rank}, size={self._size}, topology={self.comm.topology.name})"

    # ---- one communicator call, on the process's communication stream --------------------------
    def _run(self, kind, method, *args, flush=True, start=None, **kwargs) -> float:
        """Run ``method`` from the later of this rank's clock (or ``start``) and the stream's free time;
        returns its modeled end."""
        if flush:
            flush_p2p()
        timeline = _tl.timeline()
        begin = timeline.enter(start)  # sets the clock all groups of this process share
        nbytes, wait = 0, 0.0
        try:
            record = method(*args, **kwargs)
            nbytes, wait = record.nbytes, record.wait
            if _rec.active is not None:
                _rec.active.op(self, kind, args, kwargs, record, timeline.clock)
        except (CollectiveError, CollectiveTimeout) as exc:
            raise _as_torch_error(exc) from exc
        finally:
            timeline.leave(kind, begin, self.comm.clock, nbytes, wait)
        return self.comm.clock

    def _call(self, kind, method, *tensors, counts=(), op=None, **kwargs) -> float:
        """``method`` on the wire views (``_wire``) of ``tensors`` (None passes through), then ``counts``
        (lists of element counts) in wire elements, with ``op`` as the wire op: the one place where every
        operation's dtypes are adapted. Returns the modeled end (``_run``)."""
        like = next(t for t in tensors if t is not None)
        _, wire_op = _wire(like, op)
        width = _wire_width(like.dtype)
        args = [None if t is None else _wire(t)[0] for t in tensors] + [[c * width for c in cs] for cs in counts]
        if op is not None:
            kwargs["op"] = wire_op
        return self._run(kind, method, *args, **kwargs)

    def _done(self, result, opts=None) -> _Work:
        """The Work of an operation; a blocking call (torch's front end sets ``opts.asyncOp = False``; C++
        callers and direct calls leave it True) joins the compute clock now, so no host time between
        its return and torch's ``wait()`` counts as compute overlapping it."""
        timeline = _tl.timeline()
        work = _Work(result, timeline.stream)
        if getattr(opts, "asyncOp", True) is False:
            timeline.join(work._end, account=False)
            work._end = None  # joined
        return work

    # ---- allreduce --------------------------------------------------------------------------
    def allreduce(self, tensors, opts=None):
        tensors = _list(tensors)
        if len(tensors) > 1:
            return self.allreduce_coalesced(tensors, opts)
        op, factor = _reduce_op(opts)
        for t in tensors:  # in place: no packing copy for the single tensor DDP's buckets send
            if factor is not None:
                t.copy_(_scaled(t, factor))
            self._call("allreduce", self.comm.allreduce, t, op=op)
        return self._done(tensors, opts)

    def allreduce_coalesced(self, tensors, opts=None):
        """One collective per dtype over the tensors packed end to end."""
        tensors = _list(tensors)
        op, factor = _reduce_op(opts)
        for group in _by_dtype(tensors):
            flat = _pack(group)
            if factor is not None:
                flat = _scaled(flat, factor)
            self._call("allreduce", self.comm.allreduce, flat, op=op)
            _unpack(flat, group)
        return self._done(tensors, opts)

    # ---- rooted -----------------------------------------------------------------------------
    def broadcast(self, tensors, opts=None):
        tensors = _list(tensors)
        for t in tensors:
            self._call("broadcast", self.comm.broadcast, t, root=_root(opts))
        return self._done(tensors, opts)

    def reduce(self, tensors, opts=None):
        tensors = _list(tensors)
        root = _root(opts)
        op, factor = _reduce_op(opts)
        for t in tensors:
            work = _scaled(t, factor) if factor is not None else t
            self._call("reduce", self.comm.reduce, work, root=root, op=op)
            if work is not t and self._rank == root:
                t.copy_(work)
        return self._done(tensors, opts)

    def gather(self, output_tensors, input_tensors, opts=None):
        root = _root(opts)
        (inp,) = _list(input_tensors)
        _check_tensor(inp)
        if self._rank == root:
            outputs = list(output_tensors[0])
            self._check_list("gather", outputs, inp)
            buffer = torch.empty((self._size, inp.numel()), dtype=inp.dtype)
            self._call("gather", self.comm.gather, buffer, inp, root=root)
            _unpack(buffer, [outputs])
        else:
            self._call("gather", self.comm.gather, None, inp, root=root)
        return self._done(list(output_tensors[0]) if output_tensors else [], opts)

    def scatter(self, output_tensors, input_tensors, opts=None):
        root = _root(opts)
        (out,) = _list(output_tensors)
        _check_tensor(out)
        if self._rank == root:
            inputs = input_tensors[0]
            self._check_list("scatter", inputs, out)
            self._call("scatter", self.comm.scatter, out, _pack(inputs), root=root)
        else:
            self._call("scatter", self.comm.scatter, out, None, root=root)
        return self._done([out], opts)

    def _check_list(self, name, tensors, like):
        if len(tensors) != self._size or any(t.numel() != like.numel() or t.dtype != like.dtype for t in tensors):
            raise ValueError(f"hccl_sim {name}: needs {self._size} tensors of {like.numel()} {like.dtype} "
                             f"elements, got {[(t.numel(), t.dtype) for t in tensors]}")

    # ---- allgather --------------------------------------------------------------------------
    def allgather(self, output_tensors, input_tensors, opts=None):
        """``output_tensors[i][r]`` gets rank r's ``input_tensors[i]``."""
        for outputs, inp in zip(output_tensors, _list(input_tensors)):
            if len(outputs) != self._size:
                raise ValueError(f"hccl_sim all_gather: needs {self._size} output tensors, got {len(outputs)}")
            _check_tensor(inp)
            counts = [o.numel() for o in outputs]
            buffer = torch.empty(sum(counts), dtype=inp.dtype)
            if all(c == inp.numel() for c in counts):
                self._call("allgather", self.comm.allgather, buffer, inp)
            else:  # uneven sizes: allgatherv
                self._call("allgatherv", self.comm.allgatherv, buffer, inp, counts=(counts,))
            _unpack(buffer, list(outputs))
        return self._done([list(o) for o in output_tensors], opts)

    def allgather_coalesced(self, output_lists, input_list, opts=None):
        """gloo's layout: ``output_lists[r][i]`` gets rank r's ``input_list[i]``; one allgather per dtype."""
        inputs = _list(input_list)
        if len(output_lists) != self._size or any(len(o) != len(inputs) for o in output_lists):
            raise ValueError(f"hccl_sim all_gather_coalesced: needs {self._size} output lists of {len(inputs)} "
                             f"tensors, got {[len(o) for o in output_lists]}")
        self._allgather_packed([([output_lists[r][i] for r in range(self._size)], x) for i, x in enumerate(inputs)])
        return self._done(output_lists, opts)

    def _allgather_packed(self, pairs) -> None:
        """``pairs``: (per-rank outputs, input); the inputs of a dtype packed into one allgather."""
        for outputs, x in pairs:
            if any(o.numel() != x.numel() for o in outputs):
                raise ValueError(f"hccl_sim all_gather (coalesced): outputs have {[o.numel() for o in outputs]} "
                                 f"elements, the input {x.numel()}")
        for group in _by_dtype(pairs, lambda pair: pair[1]):
            packed = _pack([x for _, x in group])
            gathered = torch.empty(self._size, packed.numel(), dtype=packed.dtype)
            self._call("allgather", self.comm.allgather, gathered, packed)
            _unpack(gathered, [list(outputs) for outputs, _ in group])

    def all_gather_single(self, output, input, opts=None):
        self._call("allgather", self.comm.allgather, output, input)
        return self._done([output], opts)

    _allgather_base = all_gather_single

    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        """One allgather per dtype over the inputs packed end to end, unpacked rank by rank."""
        p = self._size
        pairs = []
        for o, i in zip(outputs, inputs):
            if o.numel() != p * i.numel():
                raise ValueError(f"hccl_sim all_gather_into_tensor_coalesced: output has {o.numel()} elements, "
                                 f"needs {p} x {i.numel()}")
            pairs.append((list(o.reshape(p, *i.shape).unbind(0)), i))
        self._allgather_packed(pairs)
        return self._done(list(outputs), opts)

    allgather_into_tensor_coalesced = all_gather_single_coalesced

    # ---- reduce-scatter ---------------------------------------------------------------------
    def reduce_scatter(self, output_tensors, input_tensors, opts=None):
        op, factor = _reduce_op(opts)
        for out, inputs in zip(_list(output_tensors), input_tensors):
            if len(inputs) != self._size:
                raise ValueError(f"hccl_sim reduce_scatter: needs {self._size} input tensors, got {len(inputs)}")
            flat = _pack(inputs)
            if factor is not None:
                flat = _scaled(flat, factor)
            counts = [x.numel() for x in inputs]
            if all(c == out.numel() for c in counts):
                self._call("reduce_scatter", self.comm.reduce_scatter, out, flat, op=op)
            else:
                self._call("reduce_scatterv", self.comm.reduce_scatterv, out, flat, counts=(counts,), op=op)
        return self._done(_list(output_tensors), opts)

    def reduce_scatter_single(self, output, input, opts=None):
        op, factor = _reduce_op(opts)
        if factor is not None:
            input = _scaled(input, factor)
        self._call("reduce_scatter", self.comm.reduce_scatter, output, input, op=op)
        return self._done([output], opts)

    _reduce_scatter_base = reduce_scatter_single

    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        """One reduce-scatter per dtype: rank r's blocks of every input packed side by side."""
        p = self._size
        op, factor = _reduce_op(opts)
        pairs = list(zip(outputs, inputs))
        for o, i in pairs:
            if i.numel() != p * o.numel():
                raise ValueError(f"hccl_sim reduce_scatter_tensor_coalesced: input has {i.numel()} elements, "
                                 f"needs {p} x {o.numel()}")
        for group in _by_dtype(pairs, lambda pair: pair[1]):
            packed = _pack([i for _, i in group], rows=p)
            if factor is not None:
                packed = _scaled(packed, factor)
            result = torch.empty(packed.shape[1], dtype=packed.dtype)
            self._call("reduce_scatter", self.comm.reduce_scatter, result, packed, op=op)
            _unpack(result, [o for o, _ in group])
        return self._done(list(outputs), opts)

    reduce_scatter_tensor_coalesced = reduce_scatter_single_coalesced

    # ---- all-to-all -------------------------------------------------------------------------
    def all_to_all_single(self, output, input, output_split_sizes, input_split_sizes, opts=None):
        p = self._size
        if not output_split_sizes and not input_split_sizes:
            self._call("alltoall", self.comm.alltoall, output, input)
            return self._done([output], opts)
        rows_in = input.shape[0] if input.dim() else 1
        rows_out = output.shape[0] if output.dim() else 1
        in_row = _numel(input.shape[1:]) if input.dim() else 1
        out_row = _numel(output.shape[1:]) if output.dim() else 1
        in_splits = list(input_split_sizes) or [rows_in // p] * p
        out_splits = list(output_split_sizes) or [rows_out // p] * p
        if len(in_splits) != p or len(out_splits) != p or sum(in_splits) != rows_in or sum(out_splits) != rows_out:
            raise ValueError(f"hccl_sim all_to_all_single: split sizes {in_splits} / {out_splits} do not divide "
                             f"{rows_in} / {rows_out} rows over {p} ranks")
        self._call("alltoallv", self.comm.alltoallv, output, input,
                   counts=([s * in_row for s in in_splits], [s * out_row for s in out_splits]))
        return self._done([output], opts)

    alltoall_base = all_to_all_single

    def alltoall(self, output_tensors, input_tensors, opts=None):
        p = self._size
        if len(output_tensors) != p or len(input_tensors) != p:
            raise ValueError(f"hccl_sim all_to_all: needs {p} input and {p} output tensors")
        flat_in = _pack(input_tensors)
        recv = [t.numel() for t in output_tensors]
        flat_out = torch.empty(sum(recv), dtype=flat_in.dtype)
        self._call("alltoallv", self.comm.alltoallv, flat_out, flat_in,
                   counts=([t.numel() for t in input_tensors], recv))
        _unpack(flat_out, list(output_tensors))
        return self._done(list(output_tensors), opts)

    # ---- barrier and point to point ----------------------------------------------------------
    def barrier(self, opts=None):
        self._run("barrier", self.comm.barrier)
        return self._done([], opts)

    def send(self, tensors, dst, tag):
        return self._queue("send", tensors, dst, tag)

    def recv(self, tensors, src, tag):
        return self._queue("recv", tensors, src, tag)

    def recv_anysource(self, tensors, tag):
        """Receive from whichever rank sends with ``tag``: posted at once (after the queue is flushed)."""
        (tensor,) = _list(tensors)
        flush_p2p()
        wire = _wire(tensor)[0]
        record = None
        timeline = _tl.timeline()
        begin = timeline.enter()
        try:
            record, source = self.comm.recv_any(wire, tag)
            if _rec.active is not None:
                _rec.active.op(self, "send_recv", ([("recv", tensor, source, tag)],), {}, record, timeline.clock)
        except (CollectiveError, CollectiveTimeout) as exc:
            raise _as_torch_error(exc) from exc
        finally:
            timeline.leave("send_recv", begin, self.comm.clock, record.nbytes if record else 0)
        work = _P2PWork(tensor, source)
        work._end = self.comm.clock
        work._future.set_result([tensor])
        return work

    def _queue(self, kind, tensors, peer, tag):
        (tensor,) = _list(tensors)
        _wire(tensor)
        if not 0 <= peer < self._size:
            raise ValueError(f"hccl_sim {kind}: peer {peer} is not a rank of this group (size {self._size})")
        work = _P2PWork(tensor, peer)
        work._issued = _tl.timeline().enter()
        _pending.append((self, kind, tensor, peer, tag, work))
        return work

    def shutdown(self):
        flush_p2p()

    # torch's _coalescing_manager(device=...) brackets the fast-path coalesced calls with these; the
    # coalesced methods above already run as one collective, so there is nothing to batch here
    def _start_coalescing(self, device):
        flush_p2p()

    def _end_coalescing(self, device):
        return self._done([])


for _name in ("allreduce", "allreduce_coalesced", "broadcast", "reduce", "gather", "scatter", "allgather",
              "allgather_coalesced", "all_gather_single", "all_gather_single_coalesced", "reduce_scatter",
              "reduce_scatter_single", "reduce_scatter_single_coalesced", "all_to_all_single", "alltoall",
              "send", "recv", "recv_anysource"):
    setattr(ProcessGroupHcclSim, _name, _no_grad(getattr(ProcessGroupHcclSim, _name)))
for _alias, _name in (("_allgather_base", "all_gather_single"), ("allgather_into_tensor_coalesced",
                      "all_gather_single_coalesced"), ("_reduce_scatter_base", "reduce_scatter_single"),
                      ("reduce_scatter_tensor_coalesced", "reduce_scatter_single_coalesced"),
                      ("alltoall_base", "all_to_all_single")):
    setattr(ProcessGroupHcclSim, _alias, getattr(ProcessGroupHcclSim, _name))


# ---- creating groups ---------------------------------------------------------------------------
_world = None  # (the world group's NetworkModel, its MPI communicator in torch's rank order or None)


def _mpi_world(rank: int, size: int):
    """MPI.COMM_WORLD renumbered in torch's rank order (they differ under torch launch variables)."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if world.size != size:
        raise RuntimeError(f"hccl_sim: torch's world size {size} is not the MPI job's {world.size}; run under "
                           f"`mpirun -n {size}` (each torch rank is one MPI rank), or set "
                           f"HCCL_SIM_TRANSPORT=gloo to use torch's rendezvous and gloo")
    ranks = world.allgather(rank)
    if sorted(ranks) != list(range(size)):
        raise RuntimeError(f"hccl_sim: the torch ranks of the MPI processes are {ranks}, not 0..{size - 1}")
    return world if ranks == list(range(size)) else world.Split(0, rank)


def transport_kind(options: Options | None = None) -> str:
    """"mpi" or "gloo": Options.transport, else HCCL_SIM_TRANSPORT, else MPI under an MPI launcher."""
    kind = (options.transport if options is not None and options.transport else
            os.environ.get("HCCL_SIM_TRANSPORT", "")) or ("mpi" if under_mpirun() else "gloo")
    if kind not in ("mpi", "gloo"):
        raise ValueError(f"hccl_sim: transport {kind!r} is not 'mpi' or 'gloo' (Options.transport, HCCL_SIM_TRANSPORT)")
    return kind


def create_process_group(dist_opts, options: Options | None = None):
    """The creator registered with torch (extended API: it sees the group's global ranks and store)."""
    global _world
    if options is not None and not isinstance(options, Options):
        raise TypeError(f"hccl_sim: pg_options must be hccl_sim.torch.Options, got {type(options).__name__}")
    options = options or Options()
    rank, size = dist_opts.group_rank, dist_opts.group_size
    members = list(dist_opts.global_ranks_in_group)
    timeout = options.timeout
    if timeout is None and dist_opts.timeout != default_pg_timeout:
        timeout = dist_opts.timeout.total_seconds()
    topology, placement = options.topology, options.placement
    if members and _world is not None and topology is None:  # a subgroup: on the NPUs its ranks have
        topology = _world[0].topology
        placement = [_world[0].placement.npus[g] for g in members] if placement is None else placement
    if transport_kind(options) == "gloo":  # on the group's own c10d store, made by torch's rendezvous
        transport = GlooTransport(dist_opts.store, rank, size, timeout or dist_opts.timeout.total_seconds(),
                                  prefix=f"hccl_sim.transport")
    elif not members or _world is None or _world[1] is None:
        from mpi4py import MPI
        transport = MPITransport(_mpi_world(rank, size) if not members else MPI.COMM_WORLD.Create_group(
            MPI.COMM_WORLD.group.Incl(members)))
    else:
        world_mpi = _world[1]
        transport = MPITransport(world_mpi.Create_group(world_mpi.group.Incl(members)))
    abort_on_uncaught_timeout()
    comm = Communicator(transport, topology=topology, placement=placement, algo=options.algo, timeout=timeout,
                        clock=_tl.timeline().comm_clock)
    if not members:
        _world = (comm.model, getattr(transport, "comm", None))
        _tl.set_rank(rank)
        _tl.timeline().npu_flops = comm.model.topology.npu_flops
    return ProcessGroupHcclSim(comm, rank, size)


def register() -> None:
    if BACKEND_NAME.upper() not in dist.Backend._plugins:
        dist.Backend.register_backend(BACKEND_NAME, create_process_group, extended_api=True, devices=["cpu"])
