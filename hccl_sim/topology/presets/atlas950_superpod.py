"""atlas950-superpod: Huawei Atlas 950 SuperPoD, 8,192 Ascend 950 NPUs in 128 compute cabinets of 64.

Sources: Huawei Connect 2025 keynote (8,192 NPUs, 128 compute + 32 interconnect cabinets, 2 TB/s UB
per NPU, 16.3 PB/s total UB bandwidth); UB-Mesh (Huawei, arXiv 2503.20377, 2025) for its rack design:
8 NPUs a board in a 1D full mesh, 64 a rack as an 8 x 8 2D full mesh, racks joined by a Clos of UB
switches.
Compute (``npu_flops``): 1 PFLOP/s FP8 per Ascend 950 (Huawei Connect 2025; 8 EFLOPS FP8 for the
SuperPoD); its BF16 rate is not published.
Assumptions (not published for the Atlas 950): its cabinet is UB-Mesh's rack (the keynote gives no
cabinet topology); the 2 TB/s per NPU counts both directions (16.3 PB/s / 8,192), so 1 TB/s per
direction, split as 7 board-mesh links and 7 rack-mesh links of 64 GB/s and 128 GB/s to the SuperPoD
Clos (a cabinet uplink of 64 x 128 GB/s); 0.2 us per mesh hop, 0.5 us per switch hop. ``board``,
``boards`` and ``cabinets`` shrink it (tests use ``board=2,boards=2,cabinets=4``).
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("atlas950-superpod")
def build(min_npus=1, mesh_bw="64GB/s", mesh_lat="0.2us", uplink_bw="128GB/s", switch_lat="0.5us",
          cabinets=128, oversub=1.0, reduce_bw="inf", npu_flops=1e15, board=8, boards=8):
    board, boards = int(board), int(boards)  # reduced variants for tests: board=2,boards=2,cabinets=4
    return Topology(
        name="atlas950-superpod",
        levels=(
            Level("board", board, "mesh", parse_bandwidth(mesh_bw), parse_time(mesh_lat)),
            Level("cabinet", boards, "mesh", parse_bandwidth(mesh_bw), parse_time(mesh_lat)),
            Level("superpod", int(cabinets), "switch", board * boards * parse_bandwidth(uplink_bw), parse_time(switch_lat),
                  float(oversub)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        npu_flops=float(npu_flops),
        description=f"Atlas 950 SuperPoD: {int(cabinets)} cabinets x {board * boards} Ascend 950 "
                    f"({board}x{boards} UB 2D full mesh), UB Clos",
    )
