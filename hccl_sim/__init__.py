"""hccl_sim: an emulator of HCCL collectives on modeled Ascend SuperPoD (UnifiedBus) networks.

Real MPI processes stand in for NPUs, real torch tensors move, and time is modeled.
"""
from .dtypes import OPS, UnsupportedError
from .planning import NetworkModel
from .executors.predictor import Call, ConcurrentPrediction, Prediction, predict, predict_many
from .errors import CollectiveError, CollectiveTimeout, abort_on_uncaught_timeout
from .topology import Level, Placement, Topology, TopologyError, load_topology

__version__ = "0.1.0"


def __getattr__(name):
    # the communicator needs mpi4py and torch; importing it lazily keeps `hccl-sim predict` free of both
    if name in ("Communicator", "CallRecord"):
        from . import comm
        return getattr(comm, name)
    if name == "DTYPES":  # torch dtypes: torch loads only when they are asked for
        from . import dtypes
        return dtypes.DTYPES
    raise AttributeError(name)


__all__ = ["Communicator", "CallRecord", "CollectiveError", "CollectiveTimeout", "abort_on_uncaught_timeout", "DTYPES", "OPS", "UnsupportedError", "NetworkModel",
           "Call", "ConcurrentPrediction", "Prediction", "predict", "predict_many", "Level", "Placement", "Topology", "TopologyError", "load_topology"]
