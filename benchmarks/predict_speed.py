"""How fast `predict` is from 64 NPUs to SuperCluster scale, and how much memory it takes.

    python benchmarks/predict_speed.py [--scales 64,256,1024,8192,524288,1006720] [--size 1G] [--json out.json]

Each case runs in a fresh subprocess: wall time of building the network model and predicting one call
(imports excluded), the engine that timed it, and the subprocess's peak resident memory (ru_maxrss).
Then the whole process of ``hccl-sim predict`` at 8,192 NPUs (imports included). Targets (issue 15, this
2-core machine): allreduce ring, RHD and hier at 256 ranks <= 0.2 s and at 1,024 <= 1 s (on
two-level:server=8, 64 MiB); 8,192 NPUs <= 2 s; 524,288 <= 5 s; 1,000,000+ <= 10 s; each < 4 GiB; the whole
``hccl-sim predict`` process at 8,192 <= 1 s. Topologies: two-level:server=8 up to 1,024 ranks, then the
presets atlas950-superpod (8,192), atlas950-supercluster (524,288) and atlas960-supercluster (1,006,720),
or ``--topology`` for every scale.
"""
import argparse
import json
import subprocess
import sys
import time

CASES = [("allreduce", "ring"), ("allreduce", "rhd"), ("allreduce", "hier:ring/rhd"), ("allreduce", "nhr"),
         ("allgather", "ring"), ("allgather", "rhd"), ("reduce_scatter", "ring"), ("reduce_scatter", "rhd"),
         ("alltoall", "pairwise")]
# the middle of the range: the exact engine's cases
MIDDLE_CASES = [("allreduce", "ring"), ("allreduce", "rhd"), ("allreduce", "hier")]
MIDDLE_SIZE = 64 << 20
PRESETS = {64: "two-level:server=8", 256: "two-level:server=8", 1024: "two-level:server=8",
           8192: "atlas950-superpod", 524288: "atlas950-supercluster", 1006720: "atlas960-supercluster"}
TARGETS = [(256, 0.2), (1024, 1.0), (8192, 2.0), (524288, 5.0), (float("inf"), 10.0)]
WHOLE_PROCESS = [["allreduce", "--size", "1G", "--ranks", "8192", "--topology", "atlas950-superpod"],
                 ["allreduce", "--size", "1G", "--ranks", "8192", "--topology", "atlas950-superpod", "--algo", "hier"]]
WHOLE_PROCESS_TARGET = 1.0
MEMORY_TARGET = 4 << 30

CHILD = r"""
import json, resource, sys, time
import hccl_sim
from hccl_sim.planning import NetworkModel
from hccl_sim.topology import load_topology
collective, algo, nranks, count, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
topology = load_topology(spec, nranks)
start = time.perf_counter()
model = NetworkModel(nranks, topology)
prediction = hccl_sim.predict(collective, count, nranks, algo=algo, model=model)
wall = time.perf_counter() - start
from hccl_sim.timing import choose_engine
engine = choose_engine(model.schedule(collective, prediction.algo, count))
print(json.dumps({"topology": topology.name, "npus": topology.num_npus, "wall_s": wall, "modeled_s": prediction.time,
                  "engine": engine,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def target_for(nranks):
    return next(t for limit, t in TARGETS if nranks <= limit)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="64,256,1024,8192,524288,1006720")
    parser.add_argument("--size", default="1G", help="bytes per call (fp32)")
    parser.add_argument("--topology", default=None, help="one topology for every scale (default: the preset of that size)")
    parser.add_argument("--cases", default=None, help="comma-separated collective/algo, e.g. allreduce/ring")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--case-timeout", type=float, default=120, help="stop a case after this many seconds")
    args = parser.parse_args()
    from hccl_sim.algorithms import BUILDERS, split_algo
    from hccl_sim.algorithms import COMPACT_BUILDERS
    from hccl_sim.topology.units import parse_size
    count = parse_size(args.size) // 4
    cases = [tuple(c.split("/", 1)) for c in args.cases.split(",")] if args.cases else CASES
    rows = []
    print(f"{'collective':15s} {'algo':14s} {'ranks':>9s} {'topology':22s} {'wall_s':>8s} {'target':>7s} "
          f"{'peak_MiB':>9s} {'modeled_ms':>12s} {'engine':>8s}  ok")
    for scale in (int(s) for s in args.scales.split(",")):
        preset = args.topology or PRESETS.get(scale)
        if preset is None:
            parser.error(f"no preset for {scale} NPUs; give --topology")
        middle = scale <= 1024 and not args.cases
        for collective, algo in (MIDDLE_CASES if middle else cases):
            name = split_algo(algo)[0]
            if name not in BUILDERS.get(collective, {}):
                print(f"{collective:15s} {algo:14s} {scale:9d} skipped: no such algorithm registered yet")
                continue
            if not middle and name not in COMPACT_BUILDERS.get(collective, {}):
                print(f"{collective:15s} {algo:14s} {scale:9d} skipped: no compact schedule (only full ones, too slow here)")
                continue
            try:
                proc = subprocess.run([sys.executable, "-c", CHILD, collective, algo, str(scale),
                                       str(MIDDLE_SIZE // 4 if middle else count),
                                       preset], capture_output=True, text=True, timeout=args.case_timeout)
            except subprocess.TimeoutExpired:
                print(f"{collective:15s} {algo:14s} {scale:9d} {preset:22s} >{args.case_timeout:7.0f} "
                      f"{target_for(scale):7.1f}  (stopped)  NO", flush=True)
                continue
            if proc.returncode:
                print(f"{collective:15s} {algo:14s} {scale:9d} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            row = {"collective": collective, "algo": algo, "ranks": scale, **json.loads(proc.stdout)}
            target = target_for(scale)
            row["target_s"] = target
            row["ok"] = row["wall_s"] < target and row["peak_bytes"] < MEMORY_TARGET
            rows.append(row)
            print(f"{collective:15s} {algo:14s} {scale:9d} {row['topology']:22s} {row['wall_s']:8.2f} {target:7.1f} "
                  f"{row['peak_bytes'] / 2**20:9.0f} {row['modeled_s'] * 1e3:12.3f} {row['engine']:>8s}  "
                  f"{'yes' if row['ok'] else 'NO'}",
                  flush=True)
    for argv in WHOLE_PROCESS:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "hccl_sim.cli", "predict", *argv], capture_output=True, text=True)
        wall = time.perf_counter() - start
        ok = proc.returncode == 0 and wall <= WHOLE_PROCESS_TARGET
        rows.append({"command": "hccl-sim predict " + " ".join(argv), "wall_s": wall, "target_s": WHOLE_PROCESS_TARGET,
                     "ok": ok})
        print(f"whole process: hccl-sim predict {' '.join(argv)}: {wall:.2f} s (target {WHOLE_PROCESS_TARGET} s) "
              f"{'yes' if ok else 'NO'}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
