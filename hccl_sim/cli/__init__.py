"""`hccl-sim`: bench (under mpirun), sweep, plot, predict (no MPI), algos and topology inspection.

bench's flags are nccl-tests' (and hccl_test's), with their meanings and defaults: -b/-e sizes with
K/M/G, -f factor or -i step, -o op, -d dtype, -r root, -n iterations, -w warmup, -c check iterations.

Errors are printed once, by rank 0 of an mpirun job (the other ranks exit with the same status).
"""
from __future__ import annotations

import argparse
import os
import sys

from ..algorithms import registry, selection
from ..dtypes import NAMES as DTYPE_NAMES
from ..errors import abort_on_uncaught_timeout
from ..topology.units import parse_size

ALGO_HELP = (f"auto (lowest modeled time), an algorithm ({registry.help_names()}; see `hccl-sim algos`) "
             "or HCCL_ALGO syntax ('level0:NA;level1:H-D_R', "
             "per operator 'allreduce=level0:NA;level1:ring/others=...'); several comma-separated to compare. "
             "Default: $HCCL_SIM_ALGO, else $HCCL_ALGO, else auto. An unknown name is an error; an algorithm "
             "that does not apply to a collective is a row saying why, or, from the environment, auto (as HCCL)")


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def mpi_rank() -> int:
    """This process's rank in an mpirun job (0 outside one), from the launcher's environment: known
    before MPI is initialised, so argument errors can be printed by rank 0 alone."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage error, printed by rank 0 only
        if mpi_rank() == 0:
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


DEFAULT_SIZE = "32M"  # nccl-tests' -b and -e default


def sizes_from(args) -> list[int]:
    """nccl-tests' sweep: -b min, -e max, then times -f (if given) or plus -i. Raises ValueError naming
    the flag (an argument error: exit 2, printed once)."""
    lo, hi = _size(args.minbytes or DEFAULT_SIZE, "-b"), _size(args.maxbytes or DEFAULT_SIZE, "-e")
    if hi < lo:
        raise ValueError(f"-e {args.maxbytes}: smaller than -b {args.minbytes or DEFAULT_SIZE}")
    if args.stepfactor is not None and args.stepfactor <= 1 and lo != hi:
        raise ValueError(f"-f {args.stepfactor:g}: must be greater than 1")
    step = _size(args.stepbytes or "1M", "-i")
    if args.stepfactor is None and step < 1 and lo != hi:
        raise ValueError(f"-i {args.stepbytes}: must be at least 1 byte")
    return size_steps(lo, hi, args.stepfactor, step)


def size_steps(lo: int, hi: int, factor: float | None, step: int) -> list[int]:
    """Sizes in bytes from ``lo`` up to ``hi``: times ``factor`` each step when given, else plus ``step``;
    stops where the next size would not grow (a factor too small for a size of a few bytes)."""
    sizes, size = [], lo
    while size <= hi:
        sizes.append(size)
        nxt = int(size * factor) if factor else size + step
        if nxt <= size:
            break
        size = nxt
    return sizes


def _size(text, flag: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def algos_from(args) -> list[str]:
    """--algo takes one algorithm or several, comma-separated, to compare side by side."""
    text = selection.default_algo(args.algo)
    algos = [a.strip() for a in text.split(",")]
    if not all(algos):
        raise ValueError(f"{selection.algo_source(args.algo)}: {text!r} has an empty name; give one or more "
                         "algorithms, comma-separated (ring, tree, rhd, hier[:A/B] or auto)")
    return list(dict.fromkeys(algos))


def check_run_args(args) -> None:
    """Argument errors bench and predict share, found before any work (and before MPI starts): each
    raises ValueError naming the flag."""
    for flag, name in (("-n", "iters"), ("-w", "warmup_iters"), ("-c", "check"), ("--ranks", "ranks")):
        value = getattr(args, name, None)
        if value is not None and value < (1 if name == "ranks" else 0):
            raise ValueError(f"{flag} {value}: must be >= {1 if name == 'ranks' else 0}")
    if getattr(args, "size", None) and (args.minbytes or args.maxbytes or args.stepfactor or args.stepbytes):
        raise ValueError("--size: give --size or -b/-e/-f/-i, not both")
    if not getattr(args, "size", None):
        sizes_from(args)
        args.minbytes, args.maxbytes = args.minbytes or DEFAULT_SIZE, args.maxbytes or DEFAULT_SIZE
        args.stepbytes = args.stepbytes or "1M"
    algos_from(args)
    for flag in ("output", "trace"):
        if getattr(args, flag, None):
            check_writable(getattr(args, flag), f"--{flag}")
    if getattr(args, "output", None):
        from .report import file_format
        file_format(args.output)


def check_writable(path: str, flag: str) -> None:
    """Raise ValueError naming ``flag`` and the user's ``path`` unless a file can be written there."""
    where = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path!r}: is a directory")
    if not os.path.isdir(where):
        raise ValueError(f"{flag} {path!r}: directory {where!r} does not exist")
    if not os.access(where, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{flag} {path!r}: not writable")


def combinations(args, reduces: bool, emulated: bool) -> list[tuple[str, str]]:
    """(dtype, op) pairs of -d and -o, each name checked. ``emulated``: a reduction torch cannot compute
    on CPU is an error when named, and left out when it comes from ``all`` (nccl-tests' -d/-o all run
    what the library supports)."""
    from ..dtypes import UnsupportedError, check_op, check_reducible, dtype_from_name, element_type
    everything = "all" in (args.datatype, args.op)
    pairs = []
    for name in dtypes_from(args):
        dtype = dtype_from_name(name) if emulated else element_type(name)  # predict: no torch
        for op in ops_from(args, reduces):
            if reduces:
                check_op(op, dtype)
            if reduces and emulated:
                try:
                    check_reducible(op, dtype)
                except UnsupportedError:
                    if not everything:  # named: an error; from "all": left out
                        raise
                    continue
            pairs.append((name, op))
    return pairs


def dtypes_from(args) -> list[str]:
    """-d: one dtype, several comma-separated, or ``all`` (nccl-tests' -d all: every dtype)."""
    names = [d.strip() for d in args.datatype.split(",") if d.strip()]
    if names == ["all"]:
        from ..dtypes import DTYPES  # torch: only when a command needs it
        return list(DTYPES)
    return names


def ops_from(args, reduces: bool) -> list[str]:
    """-o: one op, several comma-separated, or ``all`` (nccl-tests' -o all); one for collectives that
    do not reduce."""
    from ..dtypes import OPS
    names = [o.strip() for o in args.op.split(",") if o.strip()]
    if names == ["all"]:
        names = list(OPS)
    return names if reduces else names[:1]


def _add_sweep(p):
    # defaults are None, so that predict can tell -b/-e/-i given from not given (sizes_from fills them)
    p.add_argument("-b", "--minbytes", default=None, help=f"smallest size (K/M/G suffixes), default {DEFAULT_SIZE}")
    p.add_argument("-e", "--maxbytes", default=None, help=f"largest size, default {DEFAULT_SIZE}")
    p.add_argument("-f", "--stepfactor", type=float, default=None, help="multiply the size by this each step (> 1)")
    p.add_argument("-i", "--stepbytes", default=None, help="add this to the size each step (when no -f), default 1M")


def _add_model(p):
    p.add_argument("-d", "--datatype", default="fp32",
                   help=" ".join(DTYPE_NAMES) + " (or nccl-tests' "
                        "names: float, half, double, bfloat16, f8e4m3, ...), several comma-separated, or all; "
                        "default %(default)s")
    p.add_argument("-o", "--op", default="sum",
                   help="sum prod max min avg (reducing collectives only), several comma-separated, or all")
    p.add_argument("-r", "--root", type=int, default=0, help="root rank of rooted collectives, default 0")
    p.add_argument("--algo", default=None, help=ALGO_HELP)
    p.add_argument("--topology", default=None, help="preset (flat, two-level, NAME:k=v,...) or a topology file")
    p.add_argument("--faults", default=None,
                   help="faults on the topology, ';'-separated: slow:LINK=F, down:LINK, straggler:NPU=F, late:NPU=TIME, "
                        "jitter=TIME, seed=N (LINK: npuA-npuB, LEVEL:UNIT[:up|down]); see hccl_sim/topology/faults.py")
    p.add_argument("--placement", default=None, help="linear, spread, per-group:K[@LEVEL], list:0,1,... or (under mpirun) hosts: "
                   "one modeled server per MPI host")
    p.add_argument("--format", choices=("table", "hccl_test", "csv", "json", "nccl-json"), default="table",
                   help="table (nccl-tests layout), hccl_test, csv, json or nccl-json (nccl-tests -J) on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hccl-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="run collectives under mpirun and report modeled and wall time")
    bench.add_argument("collective")
    _add_sweep(bench)
    _add_model(bench)
    bench.add_argument("-n", "--iters", type=int, default=20, help="timed calls per size (>= 0), default 20")
    bench.add_argument("-w", "--warmup_iters", type=int, default=5, help="warmup calls per size (>= 0), default 5")
    bench.add_argument("-c", "--check", type=int, default=1,
                       help="checked iterations per size (>= 0; 0: no check), default 1")
    bench.add_argument("--output", default=None, metavar="FILE.csv|FILE.json",
                       help="also write every figure and the configuration to this file (rank 0 only)")
    bench.add_argument("--seed", type=int, default=None, help="seed torch's RNG on every rank; recorded in files")
    bench.add_argument("--trace", default=None, metavar="FILE.json",
                       help="write the modeled timeline of one call (the last case that ran) as a Chrome trace")

    sweep = sub.add_parser("sweep", help="run a grid of cases from a YAML/TOML file; resumable")
    sweep.add_argument("file", help="sweep file (see hccl_sim/cli/sweep/spec.py for its fields)")
    sweep.add_argument("--predict", action="store_true", help="no MPI: modeled times from the predictor")
    sweep.add_argument("--output", default=None, help="results file (.csv or .json); overrides the sweep file's")
    sweep.add_argument("--restart", action="store_true", help="discard an existing results file instead of resuming")
    sweep.add_argument("--max-cases", type=int, default=None,
                       help="stop after this many cases (e.g. a job's share); run again to continue")
    sweep.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    plot = sub.add_parser("plot", help="PNG and SVG figures from a results file")
    plot.add_argument("results", help="results file written by bench --output or sweep")
    plot.add_argument("--outdir", default=None, help="directory for the figures, default next to the results")
    plot.add_argument("--formats", default="png,svg", help="comma-separated image formats, default png,svg")

    predict = sub.add_parser("predict", help="modeled time without MPI, at any scale")
    predict.add_argument("collective")
    predict.add_argument("--size", default=None, help="bytes (K/M/G); or use -b/-e/-f")
    predict.add_argument("--ranks", type=int, default=None,
                         help="ranks; default: every NPU of a fixed-size topology (a SuperPoD preset, a file), else 8")
    _add_sweep(predict)
    _add_model(predict)

    __import__("hccl_sim.cli.replay", fromlist=["add_parser"]).add_parser(sub)  # hccl-sim replay
    sub.add_parser("algos", help="algorithms per collective with their cost formulas")

    topo = sub.add_parser("topology", help="list or describe topologies")
    topo.add_argument("action", choices=("list", "show"))
    topo.add_argument("name", nargs="?")
    topo.add_argument("--ranks", type=int, default=8, help="ranks a sized-to-fit preset is built for")
    topo.add_argument("--clos-twin", action="store_true",
                      help="show also the Clos twin (each full-mesh level a switch of the same per-NPU bandwidth)")
    from .calibrate import add_parser as add_calibrate
    add_calibrate(sub)
    return parser


def main(argv=None) -> int:
    abort_on_uncaught_timeout()  # a rank left waiting for a dead one ends the MPI job, not hangs it
    args = build_parser().parse_args(argv)
    if getattr(args, "faults", None):  # faults travel in the topology spec, so files and sweeps record them
        args.topology = f"{args.topology or 'flat'}|{args.faults}"
    try:
        if args.command in ("bench", "predict"):
            check_run_args(args)
        if args.command == "bench":
            from .bench import run
        elif args.command == "predict":
            from .predict import run
        elif args.command == "sweep":
            from .sweep import run
        elif args.command == "plot":
            from .plot import run
        elif args.command == "replay":
            from .replay import run
        elif args.command == "calibrate":
            from .calibrate import run
        elif args.command == "algos":
            from .info import run_algos as run
        else:
            from .info import run_topology as run
        return run(args) or 0
    except (ValueError, KeyError, MissingExtra) as exc:
        if mpi_rank() == 0:  # under mpirun every rank meets the same argument error; one prints it
            print(f"hccl-sim: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
