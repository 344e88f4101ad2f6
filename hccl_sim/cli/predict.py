"""`hccl-sim predict`: modeled times from the shared timing engine, no MPI and no data.

The same cases as bench (sizes, dtypes, ops, comma-separated algorithms), each a row; a case the model
cannot run is a row that says why. With no ``--ranks``, a topology of fixed size (a SuperPoD preset, a
topology file) is predicted whole, and the header says so.
"""
from __future__ import annotations

import sys

from ..algorithms.selection import algo_source
from ..collectives import lookup
from ..planning import NetworkModel
from ..topology.units import parse_size
from . import algos_from, combinations, sizes_from
from .cases import Case, case_row, notes_of, predicted_row
from .report import CONFIG_COLUMNS, FIGURE_COLUMNS, hccl_test_table, render

COLUMNS = ["size_bytes", "count", "dtype", "op", "requested_algo", "algo", "ranks", "modeled_time_us", "algbw_GBps", "busbw_GBps",
           "status"]
# csv and json carry the configuration too, so that `hccl-sim plot` (and anyone) can read them alone
FILE_ROW_COLUMNS = CONFIG_COLUMNS + [c for c in FIGURE_COLUMNS if c != "wrong"]
SIZED_TO_FIT_RANKS = 8


def default_ranks(topology) -> tuple[int, bool]:
    """(ranks, whole): every NPU of a topology of fixed size, else SIZED_TO_FIT_RANKS for a preset
    that grows to fit (flat, two-level, nvl72, ...)."""
    from ..topology import load_topology
    from ..topology.core import TopologyError
    npus = load_topology(topology, 1).num_npus
    try:
        load_topology(topology, npus + 1)
    except TopologyError:
        return npus, True
    return SIZED_TO_FIT_RANKS, False


def run(args) -> int:
    spec = lookup(args.collective)
    if args.ranks is not None and args.ranks < 1:
        raise ValueError(f"--ranks must be >= 1, got {args.ranks}")
    ranks, whole = (args.ranks, False) if args.ranks is not None else default_ranks(args.topology)
    combos = combinations(args, spec.reduces, emulated=False)  # no data: every dtype and op is timed
    sizes = [parse_size(s) for s in args.size.split(",")] if args.size else sizes_from(args)
    topology, placement = args.topology or "flat", args.placement or "linear"
    cases = [Case(args.collective, size, dtype, op, args.root, algo, topology, placement, ranks, algo_source(args.algo))
             for dtype, op in combos for size in sizes for algo in algos_from(args)]
    for case in cases:
        case.validate()
    model = NetworkModel(ranks, args.topology, args.placement)
    rows = []
    for case in cases:
        row = case_row(case, "predicted", "", "", "", None)
        row.update(predicted_row(case, model))
        rows.append(row)
    if args.format == "table":
        what = f" (every NPU of {model.topology.name}; --ranks to choose)" if whole else ""
        print(f"# hccl-sim predict {args.collective}: {ranks} ranks{what}, topology {topology} "
              f"({model.topology.name}), placement {placement}; modeled, no MPI")
    for note in notes_of(rows):  # on stdout in the table's header; csv and json stay parseable
        print(f"# note: {note}", file=sys.stdout if args.format == "table" else sys.stderr)
    if args.format == "hccl_test":
        lo, hi = (sizes[0], sizes[-1]) if args.size else (parse_size(args.minbytes), parse_size(args.maxbytes))
        print(hccl_test_table(rows, lo, hi, None, None))
    else:
        print(render(rows, args.format, COLUMNS if args.format == "table" else FILE_ROW_COLUMNS))
    return 0 if all(r["status"] == "ok" for r in rows) else 1
