"""The same collective on two systems, predicted (no MPI): by default Atlas 950 SuperPoD against NVL144.

    python scripts/compare.py                                  # allreduce, 64, 2,048 and 8,192 ranks, 1 MiB to 1 GiB
    python scripts/compare.py --collective alltoall --ranks 144,1152 --outdir out/

A thin driver over the general tools: it writes a sweep file (topologies x ranks x sizes, algorithm
``auto`` so each system gets its best algorithm), runs ``hccl-sim sweep --predict`` on it, draws the
figures with ``hccl-sim plot`` (busbw against size per topology at each rank count, and against the
rank count), and prints a table of modeled times (and busbw) side by side with their ratio, then each
system's per-NPU and bisection bandwidth at the largest rank count. NVL144 racks are added as the rank
count needs them (NVLink inside a rack, scale-out between). ``auto`` tries on the Atlas 950 the
per-level hierarchical forms (full mesh in the cabinet, all its links at once; see
hccl_sim/algorithms/levels.py); ``--clos-twin`` adds the Atlas 950's Clos twin as a third system.

What the headline claims mean for a collective (Huawei Connect 2025: an Atlas 950 SuperPoD has 56.8x
the NPUs and about 6.7x the compute of an NVL144): a bandwidth-bound allreduce of n bytes takes about
2n / busbw whatever the number of NPUs, and busbw is set by the bandwidth each NPU has into the
collective (its links, and how the algorithm keeps them busy), not by how many NPUs there are. So the
SuperPoD does not make one collective 56.8x faster: it keeps 8,192 NPUs in one UB domain, where 8,192
GPUs span 57 NVL144 racks joined by scale-out links of 100 GB/s per die; the comparison below at the
same rank count is what that buys. Compute grows with the NPU count, communication per NPU does not,
so the 7x compute is worth it to the extent the per-NPU collective time keeps up.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collective", default="allreduce")
    parser.add_argument("--topologies", default="atlas950-superpod,nvl144", help="two (or more) topology specs")
    parser.add_argument("--ranks", default="64,2048,8192", help="rank counts, comma-separated")
    parser.add_argument("-b", "--minbytes", default="1M")
    parser.add_argument("-e", "--maxbytes", default="1G")
    parser.add_argument("-f", "--stepfactor", default=16, type=int)
    parser.add_argument("--algo", default="auto", help="algorithm for every system (default: each one's best)")
    parser.add_argument("--outdir", default="compare-out")
    parser.add_argument("--formats", default="png")
    parser.add_argument("--clos-twin", action="store_true", help="add the first system's Clos twin")
    args = parser.parse_args(argv)

    import yaml

    from hccl_sim.cli import main as hccl_sim
    from hccl_sim.cli.report import read_results
    from hccl_sim.topology import load_topology
    from hccl_sim.topology.units import format_bandwidth, format_size

    os.makedirs(args.outdir, exist_ok=True)
    topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
    if args.clos_twin:
        topologies.append(topologies[0] + ":clos_twin=1")
    grid = {"collectives": [args.collective], "algos": [args.algo], "topologies": topologies,
            "ranks": [int(r) for r in args.ranks.split(",")],
            "sizes": {"min": args.minbytes, "max": args.maxbytes, "factor": args.stepfactor},
            "output": os.path.join(args.outdir, "compare.csv")}
    sweep_file = os.path.join(args.outdir, "compare.yaml")
    with open(sweep_file, "w") as f:
        yaml.safe_dump(grid, f, sort_keys=False)
    for command in (["sweep", sweep_file, "--predict", "--restart", "--no-progress"],
                    ["plot", grid["output"], "--formats", args.formats]):
        if hccl_sim(command):
            return 1

    times = defaultdict(dict)
    for row in read_results(grid["output"]):
        times[(int(row["ranks"]), int(row["size_bytes"]))][row["topology"]] = (
            row["modeled_time_us"], row["algo"], row["busbw_GBps"])
    first, others = topologies[0], topologies[1:]
    header = f"{'ranks':>6} {'size':>7}  {first + ' us (algo) busbw':>44}" + "".join(
        f"  {t + ' us (algo) busbw':>44} {'x':>6}" for t in others)
    print(header)
    for (ranks, size), by_topo in sorted(times.items()):
        base, algo, bus = by_topo[first]
        line = f"{ranks:>6} {format_size(size):>7}  {f'{base:.1f} ({algo}) {bus:.0f}':>44}"
        for t in others:
            time_us, other_algo, other_bus = by_topo[t]
            line += f"  {f'{time_us:.1f} ({other_algo}) {other_bus:.0f}':>44} {time_us / base:6.2f}"
        print(line)
    print(f"x: modeled time relative to {first}; busbw in GB/s. Figures in {args.outdir}/")
    ranks = max(grid["ranks"])
    for t in topologies:
        topo = load_topology(t, ranks)
        print(f"{t}: {topo.num_npus} NPUs at {ranks} ranks, per NPU {format_bandwidth(topo.injection_bandwidth())} "
              f"per direction, bisection {format_bandwidth(topo.bisection_bandwidth())}")
    print("\n".join(__doc__.split("\n\n")[3].splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
