"""What the harness needs to know of each collective (the nccl-tests pattern: one harness, and per
collective only what differs): its bus-bandwidth factor, whether it reduces, and its test data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class CollectiveSpec:
    name: str
    busbw_factor: Callable[[int], float]  # nccl-tests: busbw = algbw * factor(nranks)
    reduces: bool

    def busbw(self, algbw: float, nranks: int) -> float:
        return algbw * self.busbw_factor(nranks)


SPECS = {
    "allreduce": CollectiveSpec("allreduce", lambda n: 2 * (n - 1) / n, True),
}


def rank_data(rank: int, count: int, dtype: torch.dtype) -> torch.Tensor:
    """Deterministic per-rank data: small integers, exact in every dtype and in any sum of 16 ranks."""
    values = (torch.arange(count, dtype=torch.int64) * 7 + rank * 3) % 5 + 1
    return values.to(dtype)


def reference(op: str, inputs: list[torch.Tensor]) -> torch.Tensor:
    """The reduction of ``inputs`` with ``op``, computed by torch in float64/int64, cast back."""
    dtype = inputs[0].dtype
    wide = torch.float64 if dtype.is_floating_point else torch.int64
    stacked = torch.stack([x.to(wide) for x in inputs])
    if op in ("sum", "avg"):
        out = stacked.sum(0)
        if op == "avg":
            out = out / len(inputs)
    elif op == "prod":
        out = stacked.prod(0)
    elif op == "max":
        out = stacked.max(0).values
    else:
        out = stacked.min(0).values
    return out.to(dtype)
