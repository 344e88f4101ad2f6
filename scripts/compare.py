"""The same collective on two systems, predicted (no MPI): by default Atlas 950 SuperPoD against NVL144.

    python scripts/compare.py                                  # allreduce, 64, 2,048 and 8,192 ranks, 1 MiB to 1 GiB
    python scripts/compare.py --collective alltoall --ranks 144,1152 --outdir out/

A thin driver over the general tools: it writes a sweep file (topologies x ranks x sizes, algorithm
``auto`` so each system gets its best algorithm), runs ``hccl-sim sweep --predict`` on it, draws the
figures with ``hccl-sim plot`` (busbw against size per topology at each rank count, and against the
rank count), and prints a table of modeled times side by side with their ratio. NVL144 racks are
added as the rank count needs them (NVLink inside a rack, scale-out between).
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
    args = parser.parse_args(argv)

    import yaml

    from hccl_sim.cli import main as hccl_sim
    from hccl_sim.cli.report import read_results
    from hccl_sim.topology.units import format_size

    os.makedirs(args.outdir, exist_ok=True)
    topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
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
        times[(int(row["ranks"]), int(row["size_bytes"]))][row["topology"]] = (row["modeled_time_us"], row["algo"])
    first, others = topologies[0], topologies[1:]
    header = f"{'ranks':>6} {'size':>7}  {first + ' us (algo)':>34}" + "".join(
        f"  {t + ' us (algo)':>34} {'x':>6}" for t in others)
    print(header)
    for (ranks, size), by_topo in sorted(times.items()):
        base, algo = by_topo[first]
        line = f"{ranks:>6} {format_size(size):>7}  {f'{base:.1f} ({algo})':>34}"
        for t in others:
            time_us, other_algo = by_topo[t]
            line += f"  {f'{time_us:.1f} ({other_algo})':>34} {time_us / base:6.2f}"
        print(line)
    print(f"x: modeled time relative to {first}. Figures in {args.outdir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
