"""nvl144: NVIDIA Vera Rubin NVL144 racks (144 GPU dies on one NVLink switch domain), joined by scale-out.

Sources: NVIDIA Vera Rubin NVL144 announcement (GTC 2025): NVLink 6 at 3.6 TB/s per two-die GPU both
directions, 260 TB/s per rack, so 0.9 TB/s per die and direction; ConnectX-9 SuperNIC, 1.6 Tb/s
(200 GB/s) per GPU, 100 GB/s per die. Assumptions: 0.35 us per NVLink switch hop, 2 us per scale-out
hop, a non-blocking scale-out fabric; ``racks`` defaults to as many as the ranks need.
"""
import math

from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("nvl144")
def build(min_npus=1, racks=None, nvlink_bw="900GB/s", nvlink_lat="0.35us", scaleout_bw="100GB/s",
          scaleout_lat="2us", oversub=1.0, reduce_bw="inf"):
    count = int(racks) if racks is not None else max(1, math.ceil(int(min_npus) / 144))
    return Topology(
        name="nvl144",
        levels=(
            Level("nvlink", 144, "switch", parse_bandwidth(nvlink_bw), parse_time(nvlink_lat)),
            Level("scaleout", count, "switch", 144 * parse_bandwidth(scaleout_bw), parse_time(scaleout_lat),
                  float(oversub)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        description=f"{count} Vera Rubin NVL144 rack(s), NVLink 6 inside, 1.6T scale-out between",
    )
