"""`hccl-sim`: bench (under mpirun), predict (no MPI), algos and topology inspection."""
from __future__ import annotations

import argparse
import sys

from ..topology.units import parse_size


def sizes_from(args) -> list[int]:
    """nccl-tests' sweep: -b min, -e max, then times -f (if given) or plus -i."""
    lo, hi = parse_size(args.minbytes), parse_size(args.maxbytes)
    if hi < lo:
        raise SystemExit(f"hccl-sim: -e {args.maxbytes} is smaller than -b {args.minbytes}")
    if args.stepfactor is not None and args.stepfactor <= 1 and lo != hi:
        raise SystemExit("hccl-sim: -f must be greater than 1")
    step = parse_size(args.stepbytes)
    sizes, size = [], lo
    while size <= hi:
        sizes.append(size)
        nxt = size * args.stepfactor if args.stepfactor else size + step
        if nxt <= size:
            break
        size = int(nxt)
    return sizes


def _add_sweep(p, default_min="32M", default_max="32M"):
    p.add_argument("-b", "--minbytes", default=default_min, help="smallest size (K/M/G suffixes), default %(default)s")
    p.add_argument("-e", "--maxbytes", default=default_max, help="largest size, default %(default)s")
    p.add_argument("-f", "--stepfactor", type=float, default=None, help="multiply the size by this each step")
    p.add_argument("-i", "--stepbytes", default="1M", help="add this to the size each step (when no -f), default 1M")


def _add_model(p):
    p.add_argument("-d", "--datatype", default="fp32", help="fp32 fp64 fp16 bf16 int8 int32 int64 uint8")
    p.add_argument("-o", "--op", default="sum", help="sum prod max min avg")
    p.add_argument("--algo", default="auto", help="ring, tree, rhd, hier[:INTRA/INTER] or auto")
    p.add_argument("--topology", default=None, help="preset (flat, two-level, NAME:k=v,...) or a topology file")
    p.add_argument("--placement", default=None, help="linear, spread, per-group:K or list:0,1,...")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hccl-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="run collectives under mpirun and report modeled and wall time")
    bench.add_argument("collective")
    _add_sweep(bench)
    _add_model(bench)
    bench.add_argument("-n", "--iters", type=int, default=20)
    bench.add_argument("-w", "--warmup_iters", type=int, default=5)
    bench.add_argument("-c", "--check", type=int, default=1, help="check results (1) or not (0)")

    predict = sub.add_parser("predict", help="modeled time without MPI, at any scale")
    predict.add_argument("collective")
    predict.add_argument("--size", default=None, help="bytes (K/M/G); or use -b/-e/-f")
    predict.add_argument("--ranks", type=int, default=8)
    _add_sweep(predict)
    _add_model(predict)

    sub.add_parser("algos", help="algorithms per collective with their cost formulas")

    topo = sub.add_parser("topology", help="list or describe topologies")
    topo.add_argument("action", choices=("list", "show"))
    topo.add_argument("name", nargs="?")
    topo.add_argument("--ranks", type=int, default=8, help="ranks a sized-to-fit preset is built for")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "bench":
            from .bench import run
        elif args.command == "predict":
            from .predict import run
        elif args.command == "algos":
            from .info import run_algos as run
        else:
            from .info import run_topology as run
        return run(args) or 0
    except (ValueError, KeyError) as exc:
        print(f"hccl-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
