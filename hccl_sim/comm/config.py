"""A communicator's settings: each from the argument given, else the environment, else the default."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..algorithms import selection

DEFAULT_TIMEOUT = 30.0  # seconds a wait lasts before naming the missing ranks


@dataclass(frozen=True)
class CommConfig:
    topology: object  # a preset spec, a file path or a Topology; $HCCL_SIM_TOPOLOGY, else flat
    placement: object  # ranks -> NPUs ("linear", "spread", "per-group:K", "list:..."); $HCCL_SIM_PLACEMENT
    algo: str  # the default algorithm: $HCCL_SIM_ALGO, $HCCL_ALGO, else "auto"
    timeout: float  # seconds: $HCCL_SIM_TIMEOUT, else DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, topology=None, placement=None, algo: str | None = None, timeout: float | None = None,
                 environ=os.environ) -> "CommConfig":
        """The settings, every one not given read from ``environ``. ValueError for a timeout <= 0."""
        if timeout is None:
            timeout = float(environ.get("HCCL_SIM_TIMEOUT", DEFAULT_TIMEOUT))
        if not float(timeout) > 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        return cls(topology if topology is not None else environ.get("HCCL_SIM_TOPOLOGY"),
                   placement if placement is not None else environ.get("HCCL_SIM_PLACEMENT"),
                   selection.default_algo(algo), float(timeout))
