"""atlas950-supercluster: Huawei Atlas 950 SuperCluster, 64 Atlas 950 SuperPoDs, 524,288 NPUs.

Sources: Huawei Connect 2025 keynote (64 SuperPoDs, over 520,000 NPUs, SuperPoDs joined over UBoE or
RoCE). Assumptions (not published): each NPU has 400 Gb/s (50 GB/s) per direction of scale-out
bandwidth into a non-blocking UBoE fabric (``oversub`` to change that), 2 us per hop; inside each
SuperPoD as the atlas950-superpod preset.
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_time
from .atlas950_superpod import build as superpod


@preset("atlas950-supercluster")
def build(min_npus=1, superpods=64, scaleout_bw="50GB/s", scaleout_lat="2us", oversub=1.0, reduce_bw="inf"):
    pod = superpod(reduce_bw=reduce_bw)
    return Topology(
        name="atlas950-supercluster",
        levels=pod.levels + (Level("cluster", int(superpods), "switch", pod.num_npus * parse_bandwidth(scaleout_bw),
                                   parse_time(scaleout_lat), float(oversub)),),
        reduce_bandwidth=pod.reduce_bandwidth,
        npu_flops=pod.npu_flops,
        description=f"Atlas 950 SuperCluster: {int(superpods)} Atlas 950 SuperPoDs over UBoE",
    )
