"""flat: every NPU on one non-blocking switch through its own up and down link.

Defaults use CloudMatrix384's per-NPU figures: about 392 GB/s unidirectional UB bandwidth and about
1.2 us NPU-to-NPU latency for small messages (two hops of 0.6 us).
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("flat")
def build(min_npus=1, npus=None, bw="392GB/s", lat="0.6us", reduce_bw="inf"):
    n = int(npus) if npus is not None else max(int(min_npus), 1)
    return Topology(
        name="flat",
        levels=(Level("switch", n, "switch", parse_bandwidth(bw), parse_time(lat)),),
        reduce_bandwidth=parse_rate(reduce_bw),
        description="one non-blocking switch",
    )
