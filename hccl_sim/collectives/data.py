"""Test data and torch references every collective's descriptor shares."""
from __future__ import annotations

from collections.abc import Sequence


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
