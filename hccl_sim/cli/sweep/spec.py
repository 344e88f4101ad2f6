"""The sweep file and the grid of cases it stands for.

The file (every field optional; a single value stands for a one-element list)::

    collectives: [allreduce]                      # nccl-tests' ops
    algos: [ring, rhd, auto]                      # or HCCL_ALGO syntax; default $HCCL_SIM_ALGO, $HCCL_ALGO, auto
    sizes: {min: 1K, max: 64M, factor: 4}         # or {min, max, step}, or a list [8K, 1M]
    dtypes: [fp32]                                # or all (every dtype, as bench -d all)
    reduce_ops: [sum]                             # only for collectives that reduce; or all
    roots: [0]                                    # only for collectives with a root
    topologies: [flat, "two-level:server=4"]      # presets with parameters, or topology files
    placements: [linear, spread]
    ranks: [8, 64, 512]                           # --predict only; an emulated sweep runs on the mpirun ranks
    iters: 20                                     # -n, -w, -c of bench (emulated runs)
    warmup_iters: 5
    check: 1
    seed: 0
    output: results.csv                           # .csv or .json; default: FILE with .csv

Cases run in grid order (topology, placement, ranks, collective, dtype, op, root, algorithm, size; the
last fastest).
"""
from __future__ import annotations

import itertools

from ...algorithms.selection import algo_source, default_algo
from ...topology.files import read_document
from ...topology.units import parse_size
from .. import size_steps
from ..cases import Case, rooted

FIELDS = {  # field -> (default, kind)
    "collectives": (["allreduce"], "names"), "algos": (["auto"], "names"), "sizes": (None, "sizes"),
    "dtypes": (["fp32"], "names"), "reduce_ops": (["sum"], "names"), "roots": ([0], "ints"),
    "topologies": (["flat"], "names"), "placements": (["linear"], "names"), "ranks": (None, "ints"),
    "iters": (20, "int"), "warmup_iters": (5, "int"), "check": (1, "int"), "seed": (None, "int"),
    "output": (None, "name"),
}
DEFAULT_SIZES = {"min": "32M", "max": "32M"}  # nccl-tests' -b/-e defaults


class SweepError(ValueError):
    """A sweep file or results file that cannot be used, naming the field or row at fault."""


def load_sweep(path: str) -> dict:
    """Parse and validate a sweep file; every error names the file and the field."""
    data = read_document(path, "sweep file", SweepError)
    data = {} if data is None else data  # an empty file: every field at its default
    if not isinstance(data, dict):
        raise SweepError(f"sweep file {path!r}: expected a mapping of fields, got {type(data).__name__}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise SweepError(f"sweep file {path!r}: unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    sweep = {}
    for field, (default, kind) in FIELDS.items():
        value = data.get(field, [default_algo()] if field == "algos" else default)
        where = f"sweep file {path!r}: {field}"
        sweep[field] = _field(value, kind, where)
    sweep["algos_source"] = f"sweep file {path!r}: algos" if "algos" in data else algo_source()
    sweep["sizes"] = _sizes(data.get("sizes", DEFAULT_SIZES), f"sweep file {path!r}: sizes")
    for field in ("iters", "warmup_iters", "check"):
        if sweep[field] < 0:
            raise SweepError(f"sweep file {path!r}: {field}: must be >= 0, got {sweep[field]}")
    for field in ("collectives", "algos", "dtypes", "reduce_ops", "roots", "topologies", "placements"):
        if not sweep[field]:
            raise SweepError(f"sweep file {path!r}: {field}: must not be empty")
    return sweep


def _field(value, kind, where):
    if value is None:
        return None
    if kind in ("names", "ints"):
        items = value if isinstance(value, list) else [value]
        return [_field(v, kind[:-1] if kind == "ints" else "name", f"{where}[{i}]") for i, v in enumerate(items)]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SweepError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind == "name":
        if isinstance(value, (dict, list)) or isinstance(value, bool):
            raise SweepError(f"{where}: expected a name, got {value!r}")
        return str(value)
    return value


def _sizes(value, where) -> list[int]:
    try:
        if isinstance(value, list):
            sizes = [parse_size(v) for v in value]
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            sizes = [parse_size(value)]
        elif isinstance(value, dict):
            sizes = _size_range(value, where)
        else:
            raise SweepError(f"{where}: expected a size, a list of sizes or {{min, max, factor|step}}, got {value!r}")
    except SweepError:
        raise
    except ValueError as exc:
        raise SweepError(f"{where}: {exc}") from None
    if not sizes:
        raise SweepError(f"{where}: no sizes")
    return sizes


def _size_range(value: dict, where: str) -> list[int]:
    """``{min, max, factor|step}``: bench's -b, -e, -f, -i."""
    unknown = sorted(set(value) - {"min", "max", "factor", "step"})
    if unknown:
        raise SweepError(f"{where}: unknown key {unknown[0]!r} (min, max, factor or step)")
    lo, hi = parse_size(value.get("min", "32M")), parse_size(value.get("max", value.get("min", "32M")))
    if "factor" in value and "step" in value:
        raise SweepError(f"{where}: give factor or step, not both")
    factor = value.get("factor")
    step = parse_size(value.get("step", "1M"))
    if hi < lo:
        raise SweepError(f"{where}: max {hi} is smaller than min {lo}")
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1):
        raise SweepError(f"{where}: factor must be a number greater than 1, got {factor!r}")
    if factor is None and step < 1:
        raise SweepError(f"{where}: step must be at least 1 byte")
    return size_steps(lo, hi, factor, step)


def expand(sweep: dict, world: int | None) -> list[Case]:
    """The grid's cases in order. ``world``: the mpirun size of an emulated sweep (None: predict)."""
    if world is not None:
        if sweep["ranks"] not in (None, [world]):
            raise SweepError(f"ranks: an emulated sweep runs on the {world} mpirun ranks, but the file asks for "
                             f"{sweep['ranks']}; drop 'ranks' or run with --predict")
        ranks = [world]
    else:
        ranks = sweep["ranks"] or [8]
    for r in ranks:
        if r < 1:
            raise SweepError(f"ranks: must be >= 1, got {r}")
    cases = []
    from ...collectives import SPECS
    from ...dtypes import DTYPES, OPS
    for topo, place, nranks, coll in itertools.product(sweep["topologies"], sweep["placements"], ranks,
                                                       sweep["collectives"]):
        if coll not in SPECS:
            raise SweepError(f"collectives: {coll!r} is not supported (supported: {', '.join(SPECS)})")
        spec = SPECS[coll]
        ops = (list(OPS) if sweep["reduce_ops"] == ["all"] else sweep["reduce_ops"]) if spec.reduces else ["none"]
        dtypes = list(DTYPES) if sweep["dtypes"] == ["all"] else sweep["dtypes"]
        roots = sweep["roots"] if rooted(spec) else [-1]
        for dtype, op, root, algo, size in itertools.product(dtypes, ops, roots, sweep["algos"], sweep["sizes"]):
            case = Case(coll, size, dtype, op, root, algo, topo, place, nranks, sweep.get("algos_source", "algos"))
            try:
                case.validate()
            except ValueError as exc:
                raise SweepError(f"{coll} {dtype} {op} on {topo}: {exc}") from None
            cases.append(case)
    return cases
