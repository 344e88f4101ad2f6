"""How far the stepwise engine is from the exact one: both on the same schedule, every rank entering at 0.

    python benchmarks/stepwise_error.py [--ranks 1024,1536,4096,8192] [--size 64M] [--max-transfers 8M]

For each topology and rank count, every allreduce algorithm with a schedule at that scale (the compact
one above 1,024 ranks, repeated steps written out for the exact engine) is timed by both engines; the
table gives the stepwise engine's relative error (stepwise / exact - 1) and which engine the chooser
(``hccl_sim.timing.choose_engine``) gives the case. Cases with more than --max-transfers transfers are not
timed exactly (too slow to write out) and show "-".
"""
import argparse
import time

import numpy as np

from hccl_sim.planning import NetworkModel
from hccl_sim.timing import choose_engine
from hccl_sim.timing.stepwise import StepwiseSimulator
from hccl_sim.topology import load_topology
from hccl_sim.topology.units import parse_size

TOPOLOGIES = {1024: ["two-level:server=8", "ubmesh-pod"], 1536: ["two-level:server=8", "DRIFT"],
              4096: ["two-level:server=8", "atlas950-superpod"], 8192: ["two-level:server=8", "atlas950-superpod"]}
DRIFT = "two-level:server=8,intra_bw=100GB/s,intra_lat=1us,inter_bw=25GB/s,inter_lat=2us"  # issue 15's case
ALGOS = ["ring", "rhd", "nhr", "hier"]


def measure(spec, p, algo, count, max_transfers):
    topo = load_topology(spec, p)
    model = NetworkModel(p, topo)
    if algo not in model.applicable("allreduce"):
        return None
    sched = model.schedule("allreduce", algo, count)
    start = time.perf_counter()
    step = StepwiseSimulator(topo, model.timing.npus).run(sched, 4, np.zeros(p))[0].max()
    step_s = time.perf_counter() - start
    exact = exact_s = None
    if sched.num_transfers <= max_transfers:
        start = time.perf_counter()
        exact = model.timing.exact(sched, 4).run(np.zeros(p))[0].max()
        exact_s = time.perf_counter() - start
    return dict(topology=spec if spec != DRIFT else "two-level (drift case)", ranks=p, algo=algo,
                transfers=sched.num_transfers, stepwise=step, exact=exact, stepwise_s=step_s, exact_s=exact_s,
                chooser=choose_engine(sched))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1024,1536,4096,8192")
    parser.add_argument("--size", default="64M")
    parser.add_argument("--max-transfers", default="8M")
    args = parser.parse_args()
    limit = parse_size(args.max_transfers)
    print("| topology | ranks | algo | transfers | stepwise (ms) | exact (ms) | stepwise error | chooser |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for p in (int(x) for x in args.ranks.split(",")):
        for spec in TOPOLOGIES.get(p, ["two-level:server=8"]):
            spec = DRIFT if spec == "DRIFT" else spec
            size = parse_size("16M") if spec == DRIFT else parse_size(args.size)
            for algo in ALGOS:
                row = measure(spec, p, algo, size // 4, limit)
                if row is None:
                    continue
                err = f"{row['stepwise'] / row['exact'] - 1:+.2%}" if row["exact"] else "-"
                exact = f"{row['exact'] * 1e3:.4f}" if row["exact"] else "-"
                print(f"| {row['topology']} | {p} | {algo} | {row['transfers']:,} | {row['stepwise'] * 1e3:.4f} | "
                      f"{exact} | {err} | {row['chooser']} |", flush=True)


if __name__ == "__main__":
    main()
