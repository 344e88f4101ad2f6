"""hccl_sim: an emulator of HCCL collectives on modeled Ascend SuperPoD (UnifiedBus) networks.

Real MPI processes stand in for NPUs, real torch tensors move, and time is modeled.
"""
from .dtypes import DTYPES, OPS, UnsupportedError
from .executors.model import NetworkModel
from .executors.predictor import Prediction, predict
from .errors import CollectiveError, CollectiveTimeout
from .topology import Level, Placement, Topology, TopologyError, load_topology

__version__ = "0.1.0"


def __getattr__(name):
    # the communicator needs mpi4py; importing it lazily keeps `hccl-sim predict` MPI-free
    if name in ("Communicator", "CallRecord"):
        from . import comm
        return getattr(comm, name)
    raise AttributeError(name)


__all__ = ["Communicator", "CallRecord", "CollectiveError", "CollectiveTimeout", "DTYPES", "OPS", "UnsupportedError", "NetworkModel",
           "Prediction", "predict", "Level", "Placement", "Topology", "TopologyError", "load_topology"]
