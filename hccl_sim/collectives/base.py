"""The descriptor each collective fills in (nccl-tests' ``testColl``: its byte counts, data, bus-bandwidth
factor and the call), with the defaults most collectives share.

``count`` follows nccl-tests: the elements of a call's working buffer, its larger one (allgather's output,
reduce-scatter's input, each rank's all-to-all buffer); each rank's block is count // p. A v-variant's
shape comes from its counts instead (``job``). No torch at import: prediction needs none.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import BUF, Job
from ..errors import CollectiveError


class Collective:
    """What one collective means. Subclasses (one file each) override what differs."""
    name = ""
    reduces = False  # takes a reduction op
    rooted = False  # has a root rank
    blocked = False  # the working buffer is p per-rank blocks
    in_place = False  # one tensor is input and output
    count_args: tuple[str, ...] = ()  # a v-variant's count arguments, in call order
    layout = ""  # the tensors' sizes in words ({p}: the rank count), for errors

    # ---- nccl-tests' bandwidth figures --------------------------------------------------------
    def busbw_factor(self, nranks: int) -> float:
        """busbw = algbw * factor (nccl-tests' definition; (p-1)/p unless the collective says otherwise)."""
        return (nranks - 1) / nranks

    def busbw(self, algbw: float, nranks: int) -> float:
        return algbw * self.busbw_factor(nranks)

    # ---- element counts -----------------------------------------------------------------------
    def count_of(self, nranks: int, n_in: int | None, n_out: int | None) -> int:
        """The working count of a call from one rank's tensor elements (None: the rank passes none);
        0 for a v-variant, whose count is known once every rank's counts are shared (``agreed_job``)."""
        raise NotImplementedError

    def sizes(self, nranks: int, rank: int, count: int, *args) -> tuple[int, int]:
        """(input, output) elements of ``rank``'s tensors in a call of ``count`` working elements (a
        v-variant: of its count arguments ``args`` on that rank), as if the rank were the root."""
        raise NotImplementedError

    def holds(self, rank: int, root: int) -> tuple[bool, bool]:
        """Whether ``rank`` passes an input and an output tensor (a non-root gather has no output)."""
        return True, True

    def work_count(self, count: int, nranks: int) -> int:
        """The working elements a benchmark call of ``count`` moves: nccl-tests rounds block
        collectives down to p equal blocks."""
        return count // nranks * nranks

    def job(self, count: int, root: int = 0, counts=None) -> Job:
        """The schedule's shape of a call: ``count`` working elements, or a v-variant's ``counts`` (per-rank
        blocks; a p x p matrix for alltoallv) when given."""
        return Job(count, root)

    def equal_counts(self, nranks: int, block: int):
        """A v-variant's ``counts`` of equal blocks (what its benchmark passes); None for the others."""
        return None

    def rank_args(self, rank: int, job: Job) -> tuple:
        """The count arguments ``rank`` passes in a call of shape ``job`` (empty but for v-variants)."""
        return ()

    # ---- emulation on real tensors ------------------------------------------------------------
    def working_buffers(self, rank: int, nranks: int, job: Job, output, input) -> dict:
        """The schedule's buffers on this rank, from flat contiguous user tensors (None where unused);
        puts this rank's own part in place (the one copy no schedule makes)."""
        raise NotImplementedError

    def finish(self, rank: int, nranks: int, job: Job, buffers: dict, output, op: str) -> None:
        """Move this rank's result from the working buffers into ``output`` and finish an average."""

    def expected_output(self, rank: int, inputs, op: str = "sum", root: int = 0, counts=None):
        """The torch reference for ``rank`` from every rank's input (``inputs[r]``, any sequence); None
        where the rank has no defined output. ``counts`` as for ``job``."""
        raise NotImplementedError

    def call(self, comm, output, input, op: str, root: int, algo: str | None, *args):
        """Call the collective on a Communicator (the benchmark's and tests' one way to do so)."""
        raise NotImplementedError

    # ---- argument checks ----------------------------------------------------------------------
    def checked_counts(self, nranks: int, values: tuple) -> tuple[tuple, str]:
        """(count arguments as lists of p Python ints, error): from any integer sequence, numpy array or
        torch tensor; floats, bools, negatives and wrong lengths give an error naming the argument."""
        args = []
        for name, value in zip(self.count_args, values):
            items, error = _integers(name, nranks, value)
            if error:
                return (), error
            args.append(items)
        return tuple(args), ""

    def check(self, rank: int, nranks: int, output, input, op: str, root: int, args: tuple = ()):
        """(error message or "", working count, dtype) of one rank's arguments (``args``: its checked
        count arguments)."""
        import torch

        from ..dtypes import UnsupportedError, check_dtype, check_reducible
        has_in, has_out = self.holds(rank, root)
        if input is output and has_in and has_out:
            tensors = {"": output}
        else:
            tensors = {k: t for k, t, held in (("output: ", output, has_out), ("input: ", input, has_in)) if held}
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
            if self.reduces:
                check_reducible(op, dtype)
        except UnsupportedError as exc:
            return str(exc), -1, None
        if self.rooted and not (isinstance(root, int) and 0 <= root < nranks):
            return f"root: {root!r} is not a rank of {nranks}", -1, dtype
        n_in = input.numel() if has_in else None
        n_out = output.numel() if has_out else None
        count = self.count_of(nranks, n_in, n_out)
        for field, n, need in zip(("input", "output"), (n_in, n_out), self.sizes(nranks, rank, count, *args)):
            if n is not None and n != need:
                return f"{field}: has {n} elements, needs {need} ({self.layout.format(p=nranks)})", -1, dtype
        return "", count, dtype

    def agreed_job(self, rows: np.ndarray, root: int) -> Job:
        """A v-variant's shape from every rank's count arguments (``rows[r]``: rank r's, concatenated);
        raises CollectiveError, the same on every rank, where they disagree."""
        raise NotImplementedError(f"{self.name} takes no counts")


class InPlace(Collective):
    """One tensor in and out, ``count`` elements on every rank (allreduce, broadcast, reduce)."""
    in_place = True
    layout = "input = output, one tensor"

    def busbw_factor(self, nranks: int) -> float:
        return 1.0

    def count_of(self, nranks, n_in, n_out):
        return n_out

    def sizes(self, nranks, rank, count):
        return count, count

    def work_count(self, count, nranks):
        return count

    def working_buffers(self, rank, nranks, job, output, input):
        return {BUF: output}


class VariableBlocks(Collective):
    """allgatherv, reduce_scatterv: rank r's block has ``counts[r]`` elements, the same counts on every rank."""
    count_args = ("counts",)

    def count_of(self, nranks, n_in, n_out):
        return 0

    def job(self, count, root=0, counts=None):
        if counts is None:
            return Job(count, root)
        blocks = tuple(int(x) for x in counts)
        return Job(sum(blocks), root, blocks)

    def equal_counts(self, nranks, block):
        return [block] * nranks

    def rank_args(self, rank, job):
        return (list(job.blocks),)

    def agreed_job(self, rows, root):
        differ = [r for r in range(len(rows)) if (rows[r] != rows[0]).any()]
        if differ:
            raise CollectiveError(f"{self.name}: ranks disagree on counts (rank 0: {rows[0].tolist()}; "
                                  f"rank {differ[0]}: {rows[differ[0]].tolist()})")
        return self.job(0, root, rows[0].tolist())


def block_bounds(job: Job, nranks: int) -> list[int]:
    """Offsets of every rank's block in the working buffer, and its end (p + 1 values)."""
    return [seg[0][0] for seg in job.block_segments(nranks)] + [job.count]


def own_block(job: Job, rank: int, nranks: int) -> slice:
    lo, hi = block_bounds(job, nranks)[rank:rank + 2]
    return slice(lo, hi)


def _integers(name: str, nranks: int, value) -> tuple[list[int] | None, str]:
    """``value`` as a list of ``nranks`` non-negative Python ints, or an error naming ``name``."""
    import torch
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            return None, f"{name}: needs integers, got a tensor of {value.dtype}"
        value = value.tolist()
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            return None, f"{name}: needs integers, got an array of {value.dtype}"
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        return None, f"{name}: needs a sequence of {nranks} non-negative integers, got {type(value).__name__}"
    items = list(value)
    if len(items) != nranks:
        return None, f"{name}: needs {nranks} entries (one per rank), got {len(items)}"
    for i, x in enumerate(items):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
            return None, f"{name}[{i}]: needs a non-negative integer, got {x!r}"
    return [int(x) for x in items], ""
