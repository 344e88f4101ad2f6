"""cloudmatrix384: Huawei CloudMatrix384 / Atlas 900 A3 SuperPoD, 384 Ascend 910C NPUs in 48 servers of 8.

Sources: Huawei, "Serving Large Language Models on Huawei CloudMatrix384" (arXiv 2506.12708, 2025):
a two-tier non-blocking UB Clos (L1 switches on each server board, L2 switches joining the 48 servers),
about 392 GB/s unidirectional UB bandwidth per NPU, about 1.2 us NPU-to-NPU latency for small messages,
inter-server bandwidth within 3% of intra-server; a 910C package is two dies with 7 UB links each, and
the paper's own all-to-all measurements count a die as a rank.
Compute (``npu_flops``): 752 TFLOP/s dense BF16 per Ascend 910C (two dies), as recalled from the same
paper and not re-checked against it here; SemiAnalysis' 300 PFLOP/s BF16 for the 384 NPUs gives 781.
Assumptions: the 1.2 us is two hops of 0.6 us through the server's L1 switch; leaving the server adds
two hops of 0.5 us through L2; the server uplink is non-blocking (8 x 392 GB/s). With ``per_die=1``
ranks are dies, 16 a server (768 in all), each with half its package's bandwidth and compute (196 GB/s,
i.e. 7 links of 28 GB/s; the split per link is not published) and the two dies of a package joined
through the L1 switch like any two dies of the server.
"""
from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("cloudmatrix384")
def build(min_npus=1, bw="392GB/s", lat="0.6us", l2_lat="0.5us", reduce_bw="inf", npu_flops=7.52e14, per_die=0):
    dies = 2 if str(per_die).lower() in ("1", "true", "yes") else 1
    per_rank = parse_bandwidth(bw) / dies
    return Topology(
        name="cloudmatrix384",
        levels=(
            Level("server", 8 * dies, "switch", per_rank, parse_time(lat)),
            Level("superpod", 48, "switch", 8 * dies * per_rank, parse_time(l2_lat)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        npu_flops=float(npu_flops) / dies,
        description="CloudMatrix384: 48 servers x 8 Ascend 910C" + (" (16 dies)" if dies == 2 else "")
                    + ", non-blocking two-tier UB Clos",
    )
