"""Layer 4b: the predictor — the same schedules through the same timing engine, no MPI, no data."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..algorithms import selection
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
            dtype: torch.dtype = torch.float32, model: NetworkModel | None = None, root: int = 0,
            counts=None) -> Prediction:
    """Modeled time of one call with every rank entering at the same time. ``count`` is the working
    buffer's elements (nccl-tests' count: allgather's output, reduce-scatter's input); ``counts`` the
    per-rank blocks of a v-variant (a p x p matrix for alltoallv). ``algo`` None: $HCCL_SIM_ALGO,
    $HCCL_ALGO, else auto, as the Communicator."""
    from ..dtypes import DTYPE_NAMES, check_dtype
    check_dtype(dtype)
    model = model or NetworkModel(nranks, topology, placement)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    shape = {"root": root, "blocks": None, "matrix": None}
    if counts is not None:
        if collective == "alltoallv":
            shape["matrix"] = tuple(tuple(int(x) for x in row) for row in counts)
            count = sum(map(sum, shape["matrix"]))
        else:
            shape["blocks"] = tuple(int(x) for x in counts)
            count = sum(shape["blocks"])
    resolved = model.resolve(collective, selection.default_algo(algo), count, itemsize, **shape)
    result = model.time(collective, resolved, count, itemsize, **shape)
    return Prediction(collective, resolved, nranks, count, DTYPE_NAMES[dtype], count * itemsize, result.time,
                      model.topology.name)
