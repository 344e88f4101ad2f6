"""Layer 1: NPUs, links, levels, routes and the placement of ranks onto NPUs. No MPI, no torch."""
from .core import Level, Topology, TopologyError
from .placement import Placement
from .registry import PRESETS, load_topology, preset

__all__ = ["Level", "Placement", "Topology", "TopologyError", "PRESETS", "load_topology", "preset"]
