"""The benchmark harness's tensors for one call of any collective (nccl-tests' common harness: each
collective's descriptor says only what differs)."""
from __future__ import annotations

from dataclasses import dataclass

from .data import RankInputs


@dataclass
class BenchCall:
    """One rank's tensors for a benchmark call of ``collective`` over ``count`` elements (nccl-tests'
    count: rounded down to p equal blocks where the collective has blocks, see ``work_count``)."""
    collective: str
    rank: int
    nranks: int
    count: int
    dtype: torch.dtype
    root: int = 0

    def __post_init__(self):
        from . import SPECS
        p = self.nranks
        self.spec = spec = SPECS[self.collective]
        self.work_count = spec.work_count(self.count, p)  # what the call moves: nccl-tests rounds to p blocks
        self.counts = spec.equal_counts(p, self.count // p)  # a v-variant's counts: equal blocks
        job = spec.job(self.work_count, self.root, self.counts)
        self.args = spec.rank_args(self.rank, job)
        n_in, self.n_out = spec.sizes(p, self.rank, job.count, *self.args)
        self.inputs = RankInputs(p, n_in, self.dtype)

    def invoker(self, comm, op: str, algo: str | None):
        """A no-argument function that calls the collective on tensors allocated once (for timed loops)."""
        return self.run(comm, op, algo, prepare_only=True)

    def run(self, comm, op: str, algo: str | None, prepare_only: bool = False):
        """Call the collective on fresh copies of this rank's data; the record and this rank's output.
        With ``prepare_only``, return instead a function that repeats the call on those same tensors."""
        import torch
        has_in, has_out = self.spec.holds(self.rank, self.root)
        x = self.inputs[self.rank] if has_in else None
        if self.spec.in_place:
            x = out = x.clone()
        else:
            out = torch.empty(self.n_out, dtype=self.dtype) if has_out else None

        def call():
            return self.spec.call(comm, out, x, op, self.root, algo, *self.args)
        return call if prepare_only else (call(), out)

    def wrong(self, output, op: str) -> int:
        """Elements of ``output`` that differ from the torch reference (exact for ints, tolerance for floats)."""
        import torch
        expected = self.spec.expected_output(self.rank, self.inputs, op, self.root, self.counts)
        if expected is None or output is None:
            return 0
        if self.dtype.is_floating_point:
            ok = torch.isclose(output.double(), expected.double(), rtol=1e-2 if self.dtype.itemsize == 2 else 1e-5)
        else:
            ok = output == expected
        return int((~ok).sum())
