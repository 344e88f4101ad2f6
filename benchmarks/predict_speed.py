"""How fast `predict` is at SuperPoD and SuperCluster scale, and how much memory it takes.

    python benchmarks/predict_speed.py [--scales 8192,524288,1006720] [--size 1G] [--json out.json]

Each case runs in a fresh subprocess: wall time of building the network model and predicting one call
(imports excluded), and the subprocess's peak resident memory (ru_maxrss, which includes numpy and
torch). Targets (issue 4, this 2-core machine): 8,192 NPUs < 1 s, 524,288 < 10 s, 1,000,000+ < 30 s,
each < 4 GiB. Topologies: the presets atlas950-superpod (8,192), atlas950-supercluster (524,288) and
atlas960-supercluster (1,006,720), or ``--topology`` for every scale.
"""
import argparse
import json
import subprocess
import sys

CASES = [("allreduce", "ring"), ("allreduce", "rhd"), ("allreduce", "hier:ring/rhd"), ("allreduce", "nhr"),
         ("allgather", "ring"), ("allgather", "rhd"), ("reduce_scatter", "ring"), ("reduce_scatter", "rhd"),
         ("alltoall", "pairwise")]
PRESETS = {8192: "atlas950-superpod", 524288: "atlas950-supercluster", 1006720: "atlas960-supercluster"}
TARGETS = [(8192, 1.0), (524288, 10.0), (float("inf"), 30.0)]
MEMORY_TARGET = 4 << 30

CHILD = r"""
import json, resource, sys, time
import hccl_sim
from hccl_sim.executors.model import NetworkModel
from hccl_sim.topology import load_topology
collective, algo, nranks, count, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
topology = load_topology(spec, nranks)
start = time.perf_counter()
model = NetworkModel(nranks, topology)
prediction = hccl_sim.predict(collective, count, nranks, algo=algo, model=model)
wall = time.perf_counter() - start
print(json.dumps({"topology": topology.name, "npus": topology.num_npus, "wall_s": wall, "modeled_s": prediction.time,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def target_for(nranks):
    return next(t for limit, t in TARGETS if nranks <= limit)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="8192,524288,1006720")
    parser.add_argument("--size", default="1G", help="bytes per call (fp32)")
    parser.add_argument("--topology", default=None, help="one topology for every scale (default: the preset of that size)")
    parser.add_argument("--cases", default=None, help="comma-separated collective/algo, e.g. allreduce/ring")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--case-timeout", type=float, default=120, help="stop a case after this many seconds")
    args = parser.parse_args()
    from hccl_sim.algorithms import BUILDERS, split_algo
    from hccl_sim.algorithms.compact import COMPACT_BUILDERS
    from hccl_sim.topology.units import parse_size
    count = parse_size(args.size) // 4
    cases = [tuple(c.split("/", 1)) for c in args.cases.split(",")] if args.cases else CASES
    rows = []
    print(f"{'collective':15s} {'algo':14s} {'ranks':>9s} {'topology':22s} {'wall_s':>8s} {'target':>7s} "
          f"{'peak_MiB':>9s} {'modeled_ms':>12s}  ok")
    for scale in (int(s) for s in args.scales.split(",")):
        preset = args.topology or PRESETS.get(scale)
        if preset is None:
            parser.error(f"no preset for {scale} NPUs; give --topology")
        for collective, algo in cases:
            name = split_algo(algo)[0]
            if name not in BUILDERS.get(collective, {}):
                print(f"{collective:15s} {algo:14s} {scale:9d} skipped: no such algorithm registered yet")
                continue
            if name not in COMPACT_BUILDERS.get(collective, {}):
                print(f"{collective:15s} {algo:14s} {scale:9d} skipped: no compact schedule (only full ones, too slow here)")
                continue
            try:
                proc = subprocess.run([sys.executable, "-c", CHILD, collective, algo, str(scale), str(count),
                                       preset], capture_output=True, text=True, timeout=args.case_timeout)
            except subprocess.TimeoutExpired:
                print(f"{collective:15s} {algo:14s} {scale:9d} {preset:22s} >{args.case_timeout:7.0f} "
                      f"{target_for(scale):7.0f}  (stopped)  NO", flush=True)
                continue
            if proc.returncode:
                print(f"{collective:15s} {algo:14s} {scale:9d} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            row = {"collective": collective, "algo": algo, "ranks": scale, **json.loads(proc.stdout)}
            target = target_for(scale)
            row["target_s"] = target
            row["ok"] = row["wall_s"] < target and row["peak_bytes"] < MEMORY_TARGET
            rows.append(row)
            print(f"{collective:15s} {algo:14s} {scale:9d} {row['topology']:22s} {row['wall_s']:8.2f} {target:7.0f} "
                  f"{row['peak_bytes'] / 2**20:9.0f} {row['modeled_s'] * 1e3:12.3f}  {'yes' if row['ok'] else 'NO'}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
