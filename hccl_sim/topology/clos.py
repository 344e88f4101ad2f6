"""The Clos twin of a topology: each full-mesh level replaced by a non-blocking switch level with the
same per-NPU bandwidth at that level, so a prediction on both shows what the mesh costs.

An NPU of a full-mesh level of size s with links of b bytes/s reaches its peers there at (s-1) b. In
the twin the NPU has one port into a level-0 switch carrying the sum of that over all mesh levels, and
the unit of level i-1 (``stride`` NPUs) has an uplink of stride x the per-NPU bandwidth of mesh levels
i and above, so every NPU keeps its bandwidth out of each unit. Latencies per hop stay; switch levels
above the meshes are kept as they are. Use it as ``NAME:clos_twin=1`` (any preset) or
``hccl-sim topology show NAME --clos-twin``.
"""
from __future__ import annotations

from dataclasses import replace

from .core import Topology


def clos_twin(topology: Topology) -> Topology:
    """The twin (see the module docstring); a topology with no mesh level is returned as it is."""
    mesh = [lv for lv in topology.levels if lv.kind == "mesh"]
    if not mesh:
        return topology
    per_npu = [(lv.size - 1) * lv.link_bandwidth for lv in mesh]
    levels = []
    for i, lv in enumerate(topology.levels):
        if lv.kind != "mesh":
            levels.append(lv)
            continue
        # cost terms (efficiency, overhead) carry over, so a calibrated mesh and its twin compare like for like
        levels.append(replace(lv, kind="switch", bandwidth=int(topology.strides[i]) * sum(per_npu[i:]),
                              oversubscription=1.0, multipath=False))
    return replace(topology, name=f"{topology.name}-clos-twin", levels=tuple(levels), _cache={},
                   description=f"Clos twin of {topology.name}: full-mesh levels as non-blocking switches "
                               "with the same per-NPU bandwidth")
