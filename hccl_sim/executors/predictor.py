"""Layer 4b: the predictor — the same schedules through the same timing engine, no MPI, no data."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import NetworkModel


@dataclass(frozen=True)
class Prediction:
    collective: str
    algo: str
    nranks: int
    count: int
    dtype: str
    nbytes: int
    time: float  # seconds, first entry to last exit
    topology: str


def predict(collective: str, count: int, nranks: int, topology=None, placement=None, algo: str | None = None,
            dtype: torch.dtype = torch.float32, model: NetworkModel | None = None) -> Prediction:
    """Modeled time of one call with every rank entering at the same time."""
    from ..dtypes import DTYPE_NAMES, check_dtype
    check_dtype(dtype)
    model = model or NetworkModel(nranks, topology, placement)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    resolved = model.resolve(collective, algo, count, itemsize)
    result = model.time(collective, resolved, count, itemsize)
    return Prediction(collective, resolved, nranks, count, DTYPE_NAMES[dtype], count * itemsize, result.time,
                      model.topology.name)
