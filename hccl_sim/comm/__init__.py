"""Layer 5: the communicator users call -- collectives on torch tensors with a virtual clock per rank.

``communicator.py`` holds the public methods; the protocols live beside it: ``header.py`` (the record
every rank exchanges on entry), ``p2p.py`` (send and receive), ``config.py`` (settings from the
environment), ``clock.py`` (the modeled clock a communicator shares with the torch timeline).
"""
from ..dtypes import DTYPE_NAMES, OPS
from ..errors import CollectiveError, CollectiveTimeout, abort_on_uncaught_timeout
from .clock import Clock
from .communicator import COLLECTIVES, Communicator
from .config import CommConfig
from .record import CallRecord

__all__ = ["Communicator", "CallRecord", "Clock", "CommConfig", "CollectiveError", "CollectiveTimeout", "COLLECTIVES",
           "DTYPE_NAMES", "OPS", "abort_on_uncaught_timeout"]
