"""nvl72: NVIDIA GB200 NVL72 racks (72 GPUs on one NVLink switch domain), joined by a scale-out fabric.

Sources: NVIDIA GB200 NVL72 datasheet (NVLink 5, 1.8 TB/s per GPU both directions, so 900 GB/s per
direction; 130 TB/s per rack); ConnectX-8 SuperNIC, 800 Gb/s (100 GB/s) per GPU for scale-out.
Assumptions: 0.35 us per NVLink switch hop, 2 us per scale-out hop, a non-blocking scale-out fabric;
``racks`` defaults to as many as the ranks need.
Achieved bandwidth (``nvlink_eff``): NCCL 2.25.1 ring allreduce on 4 GB200 of one NVL72 tray peaks at
679.61 GB/s busbw of the 900 GB/s line rate (Azure ND GB200 v6 results, github.com/egmsft/
AI-benchmarking-guide, Azure_Results/ND_GB200_v6_results.md, commit 0682f76f), so 679.61/900. The
scale-out level keeps line rate (no published figure).
"""
import math

from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("nvl72")
def build(min_npus=1, racks=None, nvlink_bw="900GB/s", nvlink_lat="0.35us", scaleout_bw="100GB/s",
          scaleout_lat="2us", oversub=1.0, reduce_bw="inf", nvlink_eff=679.61 / 900):
    count = int(racks) if racks is not None else max(1, math.ceil(int(min_npus) / 72))
    return Topology(
        name="nvl72",
        levels=(
            Level("nvlink", 72, "switch", parse_bandwidth(nvlink_bw), parse_time(nvlink_lat),
                  efficiency=float(nvlink_eff)),
            Level("scaleout", count, "switch", 72 * parse_bandwidth(scaleout_bw), parse_time(scaleout_lat),
                  float(oversub)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        description=f"{count} GB200 NVL72 rack(s), NVLink 5 inside, 800G scale-out between",
    )
