"""ubmesh-pod: a UB-Mesh pod, 1,024 NPUs as a 4D full mesh (board x rack x pod-row x pod-column).

Source: UB-Mesh (Huawei, arXiv 2503.20377, 2025): 8 NPUs a board in a 1D full mesh, 64 a rack as an
8 x 8 2D full mesh, a pod of 16 racks as a 4 x 4 2D full mesh of racks (nD-FullMesh, no switches
inside the pod). Assumptions: per NPU and direction, 7 board links and 7 rack links of 50 GB/s and
3 + 3 inter-rack links of 25 GB/s; 0.2 us per intra-rack hop and 0.5 us per inter-rack hop.
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("ubmesh-pod")
def build(min_npus=1, rack_bw="50GB/s", rack_lat="0.2us", pod_bw="25GB/s", pod_lat="0.5us", reduce_bw="inf"):
    rack, pod = (parse_bandwidth(rack_bw), parse_time(rack_lat)), (parse_bandwidth(pod_bw), parse_time(pod_lat))
    return Topology(
        name="ubmesh-pod",
        levels=(
            Level("board", 8, "mesh", *rack),
            Level("rack", 8, "mesh", *rack),
            Level("pod-row", 4, "mesh", *pod),
            Level("pod-column", 4, "mesh", *pod),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        description="UB-Mesh pod: 16 racks x 64 NPUs, 4D full mesh",
    )
