"""What the harness needs to know of each collective (the nccl-tests pattern: one harness, and per
collective only what differs): its bus-bandwidth factor, whether it reduces or has a root, how user
tensors map onto the schedule's working buffers, its test data and its torch reference.

Sizes follow nccl-tests: a collective's ``count`` is the elements of its larger buffer (allgather's
output, reduce-scatter's input, each rank's all-to-all buffer), and each rank's block is count // p.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from .algorithms import BUF, SEND, Job
from .dtypes import average


@dataclass(frozen=True)
class CollectiveSpec:
    name: str
    busbw_factor: Callable[[int], float]  # nccl-tests: busbw = algbw * factor(nranks)
    reduces: bool
    rooted: bool = False
    blocked: bool = False  # the working buffer is p per-rank blocks

    def busbw(self, algbw: float, nranks: int) -> float:
        return algbw * self.busbw_factor(nranks)


def _share(n):
    return (n - 1) / n


SPECS = {
    "allreduce": CollectiveSpec("allreduce", lambda n: 2 * (n - 1) / n, True),
    "allgather": CollectiveSpec("allgather", _share, False, blocked=True),
    "allgatherv": CollectiveSpec("allgatherv", _share, False, blocked=True),
    "reduce_scatter": CollectiveSpec("reduce_scatter", _share, True, blocked=True),
    "reduce_scatterv": CollectiveSpec("reduce_scatterv", _share, True, blocked=True),
    "broadcast": CollectiveSpec("broadcast", lambda n: 1.0, False, rooted=True),
    "reduce": CollectiveSpec("reduce", lambda n: 1.0, True, rooted=True),
    "scatter": CollectiveSpec("scatter", _share, False, rooted=True, blocked=True),
    "gather": CollectiveSpec("gather", _share, False, rooted=True, blocked=True),
    "alltoall": CollectiveSpec("alltoall", _share, False),
    "alltoallv": CollectiveSpec("alltoallv", _share, False),
    "barrier": CollectiveSpec("barrier", lambda n: 0.0, False),
}


def block_bounds(job: Job, nranks: int) -> list[int]:
    return [seg[0][0] for seg in job.block_segments(nranks)] + [job.count]


def working_buffers(collective: str, rank: int, nranks: int, job: Job, output, input) -> dict[int, torch.Tensor]:
    """The schedule's buffers on this rank, from flat contiguous user tensors; puts this rank's own
    part in place (the one copy no schedule makes). ``output``/``input`` may be None where unused."""
    import torch
    if collective in ("allreduce", "broadcast"):
        return {BUF: output}
    if collective == "reduce":  # non-roots keep their input: the tree's partial sums go to a copy
        return {BUF: output if rank == job.root else output.clone()}
    if collective == "barrier":
        return {BUF: torch.empty(0)}
    if collective in ("alltoall", "alltoallv"):
        send, recv = job.alltoall_blocks(nranks)
        (so, n), (ro, _) = send[rank][rank], recv[rank][rank]
        output[ro:ro + n].copy_(input[so:so + n])
        return {BUF: output, SEND: input}
    lo, hi = block_bounds(job, nranks)[rank:rank + 2]
    dtype = (input if input is not None else output).dtype
    if collective in ("allgather", "allgatherv"):
        output[lo:hi].copy_(input)
        return {BUF: output}
    if collective in ("reduce_scatter", "reduce_scatterv"):
        return {BUF: input.clone()}
    if collective == "scatter":  # the root's input is only read
        return {BUF: input if rank == job.root else torch.empty(job.count, dtype=dtype)}
    if collective == "gather":
        work = output if rank == job.root else torch.empty(job.count, dtype=dtype)
        work[lo:hi].copy_(input)
        return {BUF: work}
    raise ValueError(f"collective {collective!r} is not supported (supported: {', '.join(SPECS)})")


def finish(collective: str, rank: int, nranks: int, job: Job, buffers, output, op: str) -> None:
    """Move this rank's result from the working buffers into ``output`` and finish an average."""
    if collective in ("reduce_scatter", "reduce_scatterv", "scatter"):
        lo, hi = block_bounds(job, nranks)[rank:rank + 2]
        output.copy_(buffers[BUF][lo:hi])
    if op == "avg" and (collective in ("allreduce", "reduce_scatter", "reduce_scatterv")
                        or (collective == "reduce" and rank == job.root)):
        average(output, nranks)


def rank_data(rank: int, count: int, dtype: torch.dtype) -> torch.Tensor:
    """Deterministic per-rank data: small integers, exact in every dtype and in any sum of 16 ranks."""
    import torch
    values = (torch.arange(count, dtype=torch.int64) * 7 + rank * 3) % 5 + 1
    return values.to(dtype)


def reference(op: str, inputs) -> torch.Tensor:
    """The reduction of ``inputs`` (any iterable of equal-size tensors) with ``op``, computed by torch in
    float64/int64 one input at a time (memory of two inputs, however many ranks), cast back."""
    import torch
    it = iter(inputs)
    first = next(it)
    dtype = first.dtype
    wide = torch.float64 if dtype.is_floating_point else torch.int64
    out, n = first.to(wide, copy=True), 1
    combine = {"sum": torch.add, "avg": torch.add, "prod": torch.mul, "max": torch.maximum, "min": torch.minimum}[op]
    for x in it:
        combine(out, x.to(wide), out=out)
        n += 1
    if op == "avg":
        out = out / n if out.is_floating_point() else torch.div(out, n, rounding_mode="trunc")
    return out.to(dtype)


class RankInputs(Sequence):
    """Every rank's ``rank_data`` input, made when asked for: a rank checking a result holds a few
    inputs at a time, not all p of them."""

    def __init__(self, nranks: int, count: int, dtype: torch.dtype):
        self.nranks, self.count, self.dtype = nranks, count, dtype

    def __len__(self) -> int:
        return self.nranks

    def __getitem__(self, rank: int) -> torch.Tensor:
        if not 0 <= rank < self.nranks:
            raise IndexError(f"rank {rank} of {self.nranks}")
        return rank_data(rank, self.count, self.dtype)


def expected_output(collective: str, rank: int, inputs: list[torch.Tensor], op: str = "sum", root: int = 0,
                    counts=None, matrix=None):
    """The torch reference of ``collective`` for ``rank``, from every rank's input (``inputs[r]``);
    None where the rank has no defined output (non-root gather, barrier). Non-root reduce keeps its input."""
    import torch
    p = len(inputs)
    if collective == "allreduce":
        return reference(op, inputs)
    if collective == "broadcast":
        return inputs[root].clone()
    if collective == "reduce":
        return reference(op, inputs) if rank == root else inputs[rank].clone()
    if collective in ("allgather", "allgatherv"):
        return torch.cat(list(inputs))
    if collective in ("reduce_scatter", "reduce_scatterv"):
        sizes = counts if counts is not None else [inputs[0].numel() // p] * p
        return torch.split(reference(op, inputs), list(sizes))[rank].clone()
    if collective == "scatter":
        return torch.split(inputs[root], [inputs[root].numel() // p] * p)[rank].clone()
    if collective == "gather":
        return torch.cat(list(inputs)) if rank == root else None
    if collective in ("alltoall", "alltoallv"):
        if matrix is None:
            matrix = [[inputs[0].numel() // p] * p for _ in range(p)]
        parts = [torch.split(inputs[i], list(matrix[i]))[rank].clone() for i in range(p)]  # not views of p inputs
        return torch.cat(parts)
    if collective == "barrier":
        return None
    raise ValueError(f"collective {collective!r} is not supported")


def work_count(collective: str, count: int, nranks: int) -> int:
    """The working elements a benchmark call of ``count`` elements moves: nccl-tests rounds the sizes of
    block collectives (allgather, reduce-scatter, scatter, gather, all-to-all) down to p equal blocks;
    a barrier moves none."""
    if collective in ("allreduce", "broadcast", "reduce"):
        return count
    return 0 if collective == "barrier" else count // nranks * nranks


@dataclass
class BenchCall:
    """One rank's tensors for a benchmark call of ``collective`` over ``count`` working elements."""
    collective: str
    rank: int
    nranks: int
    count: int
    dtype: torch.dtype
    root: int = 0

    def __post_init__(self):
        p, spec = self.nranks, SPECS[self.collective]
        block = self.count // p
        if self.collective in ("allreduce", "broadcast", "reduce"):
            n = self.count
        elif self.collective == "barrier":
            n = 0
        elif spec.blocked and self.collective not in ("reduce_scatter", "reduce_scatterv", "scatter"):
            n = block
        else:  # reduce-scatter, scatter and all-to-all: p blocks in
            n = block * p
        self.inputs = RankInputs(p, n, self.dtype)
        self.counts = [block] * p

    @property
    def work_count(self) -> int:
        """The working elements the call really moves (nccl-tests rounds blocked sizes down to p blocks)."""
        return work_count(self.collective, self.count, self.nranks)

    def invoker(self, comm, op: str, algo: str | None):
        """A no-argument function that calls the collective on tensors allocated once (for timed loops)."""
        return self.run(comm, op, algo, prepare_only=True)

    def run(self, comm, op: str, algo: str | None, prepare_only: bool = False):
        """Call the collective on fresh copies of this rank's data; the record and this rank's output.
        With ``prepare_only``, return instead a function that repeats the call on those same tensors."""
        import torch
        c, r, x = self.collective, self.rank, self.inputs[self.rank]
        block = self.count // self.nranks
        if c in ("allreduce",):
            out = x.clone()
            return self._done(lambda: comm.allreduce(out, op=op, algo=algo), out, prepare_only)
        if c == "broadcast":
            out = x.clone()
            return self._done(lambda: comm.broadcast(out, root=self.root, algo=algo), out, prepare_only)
        if c == "reduce":
            out = x.clone()
            return self._done(lambda: comm.reduce(out, root=self.root, op=op, algo=algo), out, prepare_only)
        if c == "barrier":
            return self._done(lambda: comm.barrier(algo=algo), None, prepare_only)
        if c in ("allgather", "allgatherv"):
            out = torch.empty(block * self.nranks, dtype=self.dtype)
            extra = (self.counts,) if c == "allgatherv" else ()
            return self._done(lambda: getattr(comm, c)(out, x, *extra, algo=algo), out, prepare_only)
        if c in ("reduce_scatter", "reduce_scatterv"):
            out = torch.empty(block, dtype=self.dtype)
            extra = (self.counts,) if c == "reduce_scatterv" else ()
            return self._done(lambda: getattr(comm, c)(out, x, *extra, op=op, algo=algo), out, prepare_only)
        if c == "scatter":
            out = torch.empty(block, dtype=self.dtype)
            source = x if r == self.root else None
            return self._done(lambda: comm.scatter(out, source, root=self.root, algo=algo), out, prepare_only)
        if c == "gather":
            out = torch.empty(block * self.nranks, dtype=self.dtype) if r == self.root else None
            return self._done(lambda: comm.gather(out, x, root=self.root, algo=algo), out, prepare_only)
        if c in ("alltoall", "alltoallv"):
            out = torch.empty(block * self.nranks, dtype=self.dtype)
            if c == "alltoall":
                return self._done(lambda: comm.alltoall(out, x, algo=algo), out, prepare_only)
            counts = self.counts
            return self._done(lambda: comm.alltoallv(out, x, counts, counts, algo=algo), out, prepare_only)
        raise ValueError(f"collective {c!r} is not supported")

    @staticmethod
    def _done(call, out, prepare_only):
        return call if prepare_only else (call(), out)

    def wrong(self, output, op: str) -> int:
        """Elements of ``output`` that differ from the torch reference (exact for ints, tolerance for floats)."""
        import torch
        matrix = [self.counts] * self.nranks
        expected = expected_output(self.collective, self.rank, self.inputs, op, self.root, self.counts, matrix)
        if expected is None or output is None:
            return 0
        if self.dtype.is_floating_point:
            ok = torch.isclose(output.double(), expected.double(), rtol=1e-2 if self.dtype.itemsize == 2 else 1e-5)
        else:
            ok = output == expected
        return int((~ok).sum())
