"""two-level: servers of K NPUs on a server switch; each server's uplink and downlink to a top switch.

Defaults: 8 NPUs a server at 392 GB/s and 0.6 us a hop inside it (CloudMatrix384 per-NPU figures);
each server reaches the top switch through one 200 GB/s link per direction (an assumption: 8 x 200
Gb/s RoCE ports) with 2 us a hop. ``oversub`` divides the server uplink.
"""
import math

from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("two-level")
def build(min_npus=1, server=8, servers=None, intra_bw="392GB/s", intra_lat="0.6us",
          inter_bw="200GB/s", inter_lat="2us", oversub=1.0, reduce_bw="inf"):
    k = int(server)
    count = int(servers) if servers is not None else max(1, math.ceil(int(min_npus) / k))
    return Topology(
        name="two-level",
        levels=(
            Level("server", k, "switch", parse_bandwidth(intra_bw), parse_time(intra_lat)),
            Level("top", count, "switch", parse_bandwidth(inter_bw), parse_time(inter_lat), float(oversub)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        description=f"{count} server{'s' if count != 1 else ''} of {k} NPUs",
    )
