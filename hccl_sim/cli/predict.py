"""`hccl-sim predict`: modeled times from the shared timing engine, no MPI and no data."""
from __future__ import annotations

from ..collectives import SPECS
from ..dtypes import element_type as dtype_from_name  # no torch: prediction needs only the item size
from ..executors.model import NetworkModel
from ..executors.predictor import predict
from ..topology.units import parse_size
from . import sizes_from
from .report import render

COLUMNS = ["size_bytes", "count", "dtype", "op", "algo", "ranks", "modeled_time_us", "algbw_GBps", "busbw_GBps"]


def result_row(spec, size, count, dtype, op, algo, ranks, seconds) -> dict:
    algbw = size / seconds / 1e9 if seconds > 0 else 0.0
    return {"size_bytes": size, "count": count, "dtype": dtype, "op": op if spec.reduces else "none",
            "algo": algo, "ranks": ranks, "modeled_time_us": seconds * 1e6, "algbw_GBps": algbw,
            "busbw_GBps": spec.busbw(algbw, ranks)}


def run(args) -> int:
    if args.collective not in SPECS:
        raise ValueError(f"collective {args.collective!r} is not supported (supported: {', '.join(SPECS)})")
    spec, dtype = SPECS[args.collective], dtype_from_name(args.datatype)
    from ..dtypes import check_op
    if spec.reduces:
        check_op(args.op, dtype)
    if spec.rooted and not 0 <= args.root < args.ranks:
        raise ValueError(f"-r/--root: {args.root} is not a rank of {args.ranks}")
    if args.ranks < 1:
        raise ValueError(f"--ranks must be >= 1, got {args.ranks}")
    sizes = [parse_size(s) for s in args.size.split(",")] if args.size else sizes_from(args)
    model = NetworkModel(args.ranks, args.topology, args.placement)
    itemsize = dtype.itemsize
    rows = []
    for size in sizes:
        count = size // itemsize
        if args.collective == "barrier":
            count = 0
        elif spec.blocked or args.collective.startswith("alltoall"):  # nccl-tests: p whole blocks
            count = count // args.ranks * args.ranks
        p = predict(args.collective, count, args.ranks, algo=args.algo, dtype=dtype, model=model,
                    root=args.root if spec.rooted else 0)
        rows.append(result_row(spec, count * itemsize, count, p.dtype, args.op, p.algo, args.ranks, p.time))
    print(render(rows, args.format, COLUMNS))
    return 0
