"""atlas960-superpod: Huawei Atlas 960 SuperPoD, 15,488 Ascend 960 NPUs in 176 compute cabinets of 88.

Sources: Huawei Connect 2025 keynote (15,488 NPUs, 176 compute + 44 interconnect cabinets, Ascend 960
with 2.2 TB/s interconnect bandwidth, 2027); UB-Mesh (arXiv 2503.20377) for its board and rack meshes.
Assumptions (not published): a cabinet is built as UB-Mesh's rack, 11 boards of 8 NPUs, an 8 x 11 2D
full mesh; the 2.2 TB/s
counts both directions, so 1.1 TB/s per direction: 7 board links of 70 GB/s, 10 cabinet links of
40 GB/s and 210 GB/s to the SuperPoD Clos; 0.2 us per mesh hop, 0.5 us per switch hop.
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("atlas960-superpod")
def build(min_npus=1, board_bw="70GB/s", cabinet_bw="40GB/s", mesh_lat="0.2us", uplink_bw="210GB/s",
          switch_lat="0.5us", cabinets=176, oversub=1.0, reduce_bw="inf"):
    return Topology(
        name="atlas960-superpod",
        levels=(
            Level("board", 8, "mesh", parse_bandwidth(board_bw), parse_time(mesh_lat)),
            Level("cabinet", 11, "mesh", parse_bandwidth(cabinet_bw), parse_time(mesh_lat)),
            Level("superpod", int(cabinets), "switch", 88 * parse_bandwidth(uplink_bw), parse_time(switch_lat),
                  float(oversub)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        description=f"Atlas 960 SuperPoD: {int(cabinets)} cabinets x 88 Ascend 960 (8x11 UB 2D full mesh), UB Clos",
    )
