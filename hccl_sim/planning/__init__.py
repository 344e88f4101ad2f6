"""Layer 4, between timing and the executors: the plan of one communicator's calls (placement of its
ranks, the algorithm ``auto`` or HCCL_ALGO chooses, the schedule, and its modeled time). No MPI, no torch."""
from .model import COMPACT_RANKS, FULL_SCHEDULE_RANKS, MESH_PHASE_FLOWS, NetworkModel, rank_grid, server_groups

__all__ = ["COMPACT_RANKS", "FULL_SCHEDULE_RANKS", "MESH_PHASE_FLOWS", "NetworkModel", "rank_grid", "server_groups"]
