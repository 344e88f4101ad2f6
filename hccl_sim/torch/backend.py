"""The torch.distributed process group "hccl_sim": torch's collectives on a hccl_sim Communicator.

A Python ProcessGroup subclass (torch's PyProcessGroup trampoline forwards both Python calls and C++
callers such as DDP's reducer and functional collectives to these methods). Every operation runs to
completion before it returns, so a Work is already complete; wait() and get_future() behave as torch
documents. Sends and receives are the exception: they are queued, and the queue is flushed as one batch
(posted together, so no ordering of isend/irecv deadlocks) before any other operation of this process
and when one of their Works is waited for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import _create_work_from_future
from torch.distributed.constants import default_pg_timeout

from ..comm import Communicator
from ..errors import CollectiveError, CollectiveTimeout
from ..topology import Topology
from . import timeline as _tl

BACKEND_NAME = "hccl_sim"

RedOpType = dist.ReduceOp.RedOpType
_OPS = {RedOpType.SUM: "sum", RedOpType.AVG: "avg", RedOpType.PRODUCT: "prod", RedOpType.MIN: "min",
        RedOpType.MAX: "max"}


@dataclass
class Options:
    """Process-group options (``pg_options=`` of init_process_group / new_group).

    Unset fields come from HCCL_SIM_TOPOLOGY, HCCL_SIM_PLACEMENT, HCCL_SIM_ALGO, HCCL_SIM_TIMEOUT; a
    subgroup without its own topology sits on the NPUs of its ranks in the world group's topology."""
    topology: str | Topology | None = None
    placement: str | list[int] | None = None
    algo: str | None = None
    timeout: float | None = None  # seconds a rank waits for its peers before raising


def _reduce_op(op) -> tuple[str, object]:
    """(hccl_sim op name, premultiply factor or None) of a torch ReduceOp."""
    kind = op.op if isinstance(op, dist.ReduceOp) else op
    if kind == RedOpType.PREMUL_SUM:
        return "sum", op.factor
    if kind not in _OPS:
        raise ValueError(f"hccl_sim: ReduceOp {kind} is not supported (SUM, AVG, PRODUCT, MIN, MAX, PREMUL_SUM)")
    return _OPS[kind], None


def _scaled(tensor: torch.Tensor, factor) -> torch.Tensor:
    """A copy of ``tensor`` times ``factor`` (PREMUL_SUM never changes the caller's input)."""
    return tensor * (factor.to(tensor.dtype) if isinstance(factor, torch.Tensor) else factor)


def _completed(result) -> dist.Work:
    future = torch.futures.Future()
    future.set_result(result)
    return _create_work_from_future(future)


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


# ---- queued point-to-point operations ---------------------------------------------------------
_pending: list = []  # (process group, kind, tensor, peer, tag, future)


def flush_p2p() -> None:
    """Post every queued send and receive, one batch per process group, and wait for them."""
    while _pending:
        pg = _pending[0][0]
        batch = [p for p in _pending if p[0] is pg]
        _pending[:] = [p for p in _pending if p[0] is not pg]
        error = None
        try:
            pg._run("send_recv", pg.comm.batch_send_recv, [(kind, t, peer, tag) for _, kind, t, peer, tag, _ in batch],
                    flush=False)
        except Exception as exc:  # every waiter of the batch sees the failure
            error = exc
        for _, _, t, _, _, future in batch:
            if error is None:
                future.set_result([t])
            else:
                future.set_exception(error)
        if error is not None:
            raise error


class _P2PWork(dist.Work):
    """A queued send or receive: waiting for it flushes the queue."""

    def __init__(self, future: torch.futures.Future):
        super().__init__()
        self._future = future

    def wait(self, timeout: timedelta | None = None) -> bool:
        flush_p2p()
        self._future.wait()  # raises the batch's error
        return True

    def get_future(self) -> torch.futures.Future:
        flush_p2p()
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

    # ---- one communicator call, on the process's modeled clock ---------------------------------
    def _run(self, kind, method, *args, flush=True, **kwargs):
        if flush:
            flush_p2p()
        timeline = _tl.timeline()
        start = timeline.enter()
        self.comm.clock = start  # all groups of this process share one clock
        nbytes = 0
        try:
            record = method(*args, **kwargs)
            nbytes = record.nbytes
        except (CollectiveError, CollectiveTimeout) as exc:
            raise _as_torch_error(exc) from exc
        finally:
            timeline.leave(kind, start, self.comm.clock, nbytes)
        return record

    # ---- allreduce --------------------------------------------------------------------------
    def allreduce(self, tensors, opts=None):
        op, factor = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        if len(tensors) > 1:
            return self.allreduce_coalesced(tensors, opts)
        for t in tensors:
            if factor is not None:
                t.copy_(_scaled(t, factor))
            self._allreduce_one(t, op)
        return _completed(list(tensors))

    def _allreduce_one(self, t: torch.Tensor, op: str) -> None:
        if t.is_complex():
            if op not in ("sum", "avg"):
                raise ValueError(f"hccl_sim: {op} is not defined for complex tensors")
            real = torch.view_as_real(t) if t.is_contiguous() else torch.view_as_real(t.contiguous())
            self._run("allreduce", self.comm.allreduce, real, op=op)
            if real.data_ptr() != torch.view_as_real(t).data_ptr():
                t.copy_(torch.view_as_complex(real))
        elif t.dtype == torch.bool:
            if op not in ("max", "min", "sum"):
                raise ValueError(f"hccl_sim: {op} is not defined for bool tensors")
            as_int = t.to(torch.uint8)
            self._run("allreduce", self.comm.allreduce, as_int, op="max" if op == "sum" else op)
            t.copy_(as_int.bool())
        else:
            self._run("allreduce", self.comm.allreduce, t, op=op)

    def allreduce_coalesced(self, tensors, opts=None):
        """One collective per dtype over the tensors packed end to end."""
        op, factor = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            flat = torch.cat([t.reshape(-1) for t in group])
            if factor is not None:
                flat = _scaled(flat, factor)
            self._allreduce_one(flat, op)
            offset = 0
            for t in group:
                t.copy_(flat[offset:offset + t.numel()].view(t.shape))
                offset += t.numel()
        return _completed(list(tensors))

    # ---- rooted -----------------------------------------------------------------------------
    def broadcast(self, tensors, opts=None):
        root = opts.rootRank if opts is not None else 0
        for t in tensors:
            self._run("broadcast", self.comm.broadcast, t, root=root)
        return _completed(list(tensors))

    def reduce(self, tensors, opts=None):
        root = opts.rootRank
        op, factor = _reduce_op(opts.reduceOp)
        for t in tensors:
            work = _scaled(t, factor) if factor is not None else t
            self._run("reduce", self.comm.reduce, work, root=root, op=op)
            if work is not t and self._rank == root:
                t.copy_(work)
        return _completed(list(tensors))

    def gather(self, output_tensors, input_tensors, opts=None):
        root = opts.rootRank
        (inp,) = input_tensors
        if self._rank == root:
            outputs = output_tensors[0]
            self._check_list("gather", outputs, inp)
            buffer = torch.empty(self._size * inp.numel(), dtype=inp.dtype)
            self._run("gather", self.comm.gather, buffer, inp, root=root)
            for r, out in enumerate(outputs):
                out.copy_(buffer[r * inp.numel():(r + 1) * inp.numel()].view(out.shape))
        else:
            self._run("gather", self.comm.gather, None, inp, root=root)
        return _completed(list(output_tensors[0]) if output_tensors else [])

    def scatter(self, output_tensors, input_tensors, opts=None):
        root = opts.rootRank
        (out,) = output_tensors
        if self._rank == root:
            inputs = input_tensors[0]
            self._check_list("scatter", inputs, out)
            flat = torch.cat([x.reshape(-1) for x in inputs])
            self._run("scatter", self.comm.scatter, out, flat, root=root)
        else:
            self._run("scatter", self.comm.scatter, out, None, root=root)
        return _completed([out])

    def _check_list(self, name, tensors, like):
        if len(tensors) != self._size or any(t.numel() != like.numel() or t.dtype != like.dtype for t in tensors):
            raise ValueError(f"hccl_sim {name}: needs {self._size} tensors of {like.numel()} {like.dtype} "
                             f"elements, got {[(t.numel(), t.dtype) for t in tensors]}")

    # ---- allgather --------------------------------------------------------------------------
    def allgather(self, output_tensors, input_tensors, opts=None):
        for outputs, inp in zip(output_tensors, input_tensors):
            if len(outputs) != self._size:
                raise ValueError(f"hccl_sim all_gather: needs {self._size} output tensors, got {len(outputs)}")
            counts = [o.numel() for o in outputs]
            buffer = torch.empty(sum(counts), dtype=inp.dtype)
            if all(c == inp.numel() for c in counts):
                self._run("allgather", self.comm.allgather, buffer, inp)
            else:  # uneven sizes: allgatherv
                self._run("allgatherv", self.comm.allgatherv, buffer, inp, counts)
            offset = 0
            for o, c in zip(outputs, counts):
                o.copy_(buffer[offset:offset + c].view(o.shape))
                offset += c
        return _completed([list(o) for o in output_tensors])

    def allgather_coalesced(self, output_lists, input_list, opts=None):
        return self.allgather(output_lists, input_list, opts)

    def all_gather_single(self, output, input, opts=None):
        self._run("allgather", self.comm.allgather, output, input)
        return _completed([output])

    _allgather_base = all_gather_single

    def all_gather_single_coalesced(self, outputs, inputs, opts=None):
        """One allgather per dtype over the inputs packed end to end, unpacked rank by rank."""
        p = self._size
        by_dtype: dict = {}
        for o, i in zip(outputs, inputs):
            if o.numel() != p * i.numel():
                raise ValueError(f"hccl_sim all_gather_into_tensor_coalesced: output has {o.numel()} elements, "
                                 f"needs {p} x {i.numel()}")
            by_dtype.setdefault(i.dtype, []).append((o, i))
        for pairs in by_dtype.values():
            packed = torch.cat([i.reshape(-1) for _, i in pairs])
            gathered = torch.empty(p, packed.numel(), dtype=packed.dtype)
            self._run("allgather", self.comm.allgather, gathered, packed)
            offset = 0
            for o, i in pairs:
                n = i.numel()
                o.copy_(gathered[:, offset:offset + n].reshape(o.shape))
                offset += n
        return _completed(list(outputs))

    allgather_into_tensor_coalesced = all_gather_single_coalesced

    # ---- reduce-scatter ---------------------------------------------------------------------
    def reduce_scatter(self, output_tensors, input_tensors, opts=None):
        op, factor = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        for out, inputs in zip(output_tensors, input_tensors):
            if len(inputs) != self._size:
                raise ValueError(f"hccl_sim reduce_scatter: needs {self._size} input tensors, got {len(inputs)}")
            counts = [x.numel() for x in inputs]
            flat = torch.cat([x.reshape(-1) for x in inputs])
            if factor is not None:
                flat = _scaled(flat, factor)
            if all(c == out.numel() for c in counts):
                self._run("reduce_scatter", self.comm.reduce_scatter, out, flat, op=op)
            else:
                self._run("reduce_scatterv", self.comm.reduce_scatterv, out, flat, counts, op=op)
        return _completed(list(output_tensors))

    def reduce_scatter_single(self, output, input, opts=None):
        op, factor = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        if factor is not None:
            input = _scaled(input, factor)
        self._run("reduce_scatter", self.comm.reduce_scatter, output, input, op=op)
        return _completed([output])

    _reduce_scatter_base = reduce_scatter_single

    def reduce_scatter_single_coalesced(self, outputs, inputs, opts=None):
        """One reduce-scatter per dtype: rank r's blocks of every input packed side by side."""
        p = self._size
        op, factor = _reduce_op(opts.reduceOp if opts is not None else dist.ReduceOp.SUM)
        by_dtype: dict = {}
        for o, i in zip(outputs, inputs):
            if i.numel() != p * o.numel():
                raise ValueError(f"hccl_sim reduce_scatter_tensor_coalesced: input has {i.numel()} elements, "
                                 f"needs {p} x {o.numel()}")
            by_dtype.setdefault(i.dtype, []).append((o, i))
        for pairs in by_dtype.values():
            packed = torch.cat([i.reshape(p, -1) for _, i in pairs], dim=1)
            if factor is not None:
                packed = _scaled(packed, factor)
            result = torch.empty(packed.shape[1], dtype=packed.dtype)
            self._run("reduce_scatter", self.comm.reduce_scatter, result, packed, op=op)
            offset = 0
            for o, _ in pairs:
                o.copy_(result[offset:offset + o.numel()].view(o.shape))
                offset += o.numel()
        return _completed(list(outputs))

    reduce_scatter_tensor_coalesced = reduce_scatter_single_coalesced

    # ---- all-to-all -------------------------------------------------------------------------
    def all_to_all_single(self, output, input, output_split_sizes, input_split_sizes, opts=None):
        p = self._size
        if not output_split_sizes and not input_split_sizes:
            self._run("alltoall", self.comm.alltoall, output, input)
            return _completed([output])
        rows_in = input.shape[0] if input.dim() else 1
        rows_out = output.shape[0] if output.dim() else 1
        in_row = _numel(input.shape[1:]) if input.dim() else 1
        out_row = _numel(output.shape[1:]) if output.dim() else 1
        in_splits = list(input_split_sizes) or [rows_in // p] * p
        out_splits = list(output_split_sizes) or [rows_out // p] * p
        if len(in_splits) != p or len(out_splits) != p or sum(in_splits) != rows_in or sum(out_splits) != rows_out:
            raise ValueError(f"hccl_sim all_to_all_single: split sizes {in_splits} / {out_splits} do not divide "
                             f"{rows_in} / {rows_out} rows over {p} ranks")
        self._run("alltoallv", self.comm.alltoallv, output, input, [s * in_row for s in in_splits],
                  [s * out_row for s in out_splits])
        return _completed([output])

    alltoall_base = all_to_all_single

    def alltoall(self, output_tensors, input_tensors, opts=None):
        p = self._size
        if len(output_tensors) != p or len(input_tensors) != p:
            raise ValueError(f"hccl_sim all_to_all: needs {p} input and {p} output tensors")
        send = [t.numel() for t in input_tensors]
        recv = [t.numel() for t in output_tensors]
        flat_in = torch.cat([t.reshape(-1) for t in input_tensors])
        flat_out = torch.empty(sum(recv), dtype=flat_in.dtype)
        self._run("alltoallv", self.comm.alltoallv, flat_out, flat_in, send, recv)
        offset = 0
        for t, n in zip(output_tensors, recv):
            t.copy_(flat_out[offset:offset + n].view(t.shape))
            offset += n
        return _completed(list(output_tensors))

    # ---- barrier and point to point ----------------------------------------------------------
    def barrier(self, opts=None):
        self._run("barrier", self.comm.barrier)
        return _completed([])

    def send(self, tensors, dst, tag):
        return self._queue("send", tensors, dst, tag)

    def recv(self, tensors, src, tag):
        return self._queue("recv", tensors, src, tag)

    def recv_anysource(self, tensors, tag):
        raise NotImplementedError("hccl_sim: recv from any source is not supported; name the source rank")

    def _queue(self, kind, tensors, peer, tag):
        (tensor,) = tensors
        if not 0 <= peer < self._size:
            raise ValueError(f"hccl_sim {kind}: peer {peer} is not a rank of this group (size {self._size})")
        future = torch.futures.Future()
        _pending.append((self, kind, tensor, peer, tag, future))
        return _P2PWork(future)

    def shutdown(self):
        flush_p2p()

    # torch's _coalescing_manager(device=...) brackets the fast-path coalesced calls with these; the
    # coalesced methods above already run as one collective, so there is nothing to batch here
    def _start_coalescing(self, device):
        flush_p2p()

    def _end_coalescing(self, device):
        return _completed([])


# ---- creating groups ---------------------------------------------------------------------------
_world = None  # (MPI communicator in torch's rank order, the world group's NetworkModel)


def _mpi_world(rank: int, size: int):
    """MPI.COMM_WORLD renumbered in torch's rank order (they differ under torch launch variables)."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if world.size != size:
        raise RuntimeError(f"hccl_sim: torch's world size {size} is not the MPI job's {world.size}; run under "
                           f"`mpirun -n {size}` (each torch rank is one MPI rank)")
    ranks = world.allgather(rank)
    if sorted(ranks) != list(range(size)):
        raise RuntimeError(f"hccl_sim: the torch ranks of the MPI processes are {ranks}, not 0..{size - 1}")
    return world if ranks == list(range(size)) else world.Split(0, rank)


def create_process_group(dist_opts, options: Options | None = None):
    """The creator registered with torch (extended API: it sees the group's global ranks)."""
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
    if not members or _world is None:  # the default group (or a subgroup before any hccl_sim world)
        from mpi4py import MPI
        mpi = _mpi_world(rank, size) if not members else MPI.COMM_WORLD.Create_group(
            MPI.COMM_WORLD.group.Incl(members))
    else:
        world_mpi, world_model = _world
        mpi = world_mpi.Create_group(world_mpi.group.Incl(members))
        if topology is None:  # on the NPUs its ranks have in the world group
            topology = world_model.topology
            placement = [world_model.placement.npus[g] for g in members] if placement is None else placement
    comm = Communicator(mpi, topology=topology, placement=placement, algo=options.algo, timeout=timeout)
    if not members:
        _world = (mpi, comm.model)
        _tl.set_rank(rank)
    return ProcessGroupHcclSim(comm, rank, size)


def register() -> None:
    if BACKEND_NAME.upper() not in dist.Backend._plugins:
        dist.Backend.register_backend(BACKEND_NAME, create_process_group, extended_api=True, devices=["cpu"])
