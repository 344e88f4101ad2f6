"""atlas960-supercluster: Huawei Atlas 960 SuperCluster, 65 Atlas 960 SuperPoDs, 1,006,720 NPUs.

Sources: Huawei Connect 2025 keynote (over 1 million NPUs, SuperPoDs joined over UBoE or RoCE, 2027).
Assumptions (not published): 65 SuperPoDs, the fewest of 15,488 NPUs that exceed one million; each NPU
has 800 Gb/s (100 GB/s) per direction into a non-blocking UBoE fabric, 2 us per hop; inside each
SuperPoD as the atlas960-superpod preset.
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_time
from .atlas960_superpod import build as superpod


@preset("atlas960-supercluster")
def build(min_npus=1, superpods=65, scaleout_bw="100GB/s", scaleout_lat="2us", oversub=1.0, reduce_bw="inf"):
    pod = superpod(reduce_bw=reduce_bw)
    return Topology(
        name="atlas960-supercluster",
        levels=pod.levels + (Level("cluster", int(superpods), "switch", pod.num_npus * parse_bandwidth(scaleout_bw),
                                   parse_time(scaleout_lat), float(oversub)),),
        reduce_bandwidth=pod.reduce_bandwidth,
        description=f"Atlas 960 SuperCluster: {int(superpods)} Atlas 960 SuperPoDs over UBoE",
    )
