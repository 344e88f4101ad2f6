"""dgx-h100: an NVIDIA DGX H100 SuperPOD-style cluster: servers of 8 H100 on NVSwitch, InfiniBand between.

Sources: NVIDIA DGX H100 datasheet (NVLink 4, 900 GB/s per GPU both directions, so 450 GB/s per
direction; 8 x 400 Gb/s ConnectX-7, 50 GB/s per GPU); DGX SuperPOD reference architecture (32 servers,
256 GPUs a scalable unit, rail-optimised non-blocking fat tree); NVIDIA H100 datasheet: 989 TFLOP/s dense BF16 per H100 SXM
(1,979 with sparsity), the ``npu_flops``. Assumptions: 0.5 us per NVSwitch hop,
2 us per InfiniBand hop, the fat tree as one non-blocking switch; ``servers`` defaults to 32 or as many
as the ranks need.
Achieved bandwidth (``nvlink_eff``): NCCL's ring reaches about 370 of the 450 GB/s NVLink line rate per
direction, the rest being protocol overhead (NVIDIA/nccl-tests issue #212, answer by an NCCL maintainer;
ASTRA-sim's HGX-H100 validation page measures 370.67 GB/s ring busbw), so 370/450. The InfiniBand level
keeps line rate (no published figure for this fabric).
"""
import math

from ..core import Level, Topology
from ..registry import preset
from ..units import parse_bandwidth, parse_rate, parse_time


@preset("dgx-h100")
def build(min_npus=1, servers=None, nvlink_bw="450GB/s", nvlink_lat="0.5us", ib_bw="50GB/s", ib_lat="2us",
          oversub=1.0, reduce_bw="inf", npu_flops=9.89e14, nvlink_eff=370 / 450):
    count = int(servers) if servers is not None else max(32, math.ceil(int(min_npus) / 8))
    return Topology(
        name="dgx-h100",
        levels=(
            Level("server", 8, "switch", parse_bandwidth(nvlink_bw), parse_time(nvlink_lat),
                  efficiency=float(nvlink_eff)),
            Level("fabric", count, "switch", 8 * parse_bandwidth(ib_bw), parse_time(ib_lat), float(oversub)),
        ),
        reduce_bandwidth=parse_rate(reduce_bw),
        npu_flops=float(npu_flops),
        description=f"{count} DGX H100 servers x 8 GPUs, NVLink 4 inside, 8 x 400G InfiniBand between",
    )
