"""Output formats: rows of results as an aligned table, CSV, JSON, the nccl-tests and hccl_test layouts,
and result files that carry every figure with the configuration that produced it.

A *row* is one measured or predicted case: configuration columns (collective, topology, placement, ranks,
requested algorithm, dtype, op, root, iterations) plus figures (modeled time, algbw, busbw, wrong, wall
time). Files repeat the configuration on every row so that any row can be reproduced on its own.
"""
from __future__ import annotations

import csv
import io
import json
import math
import platform
import sys

# what identifies a case and how it was run; with VERSION_COLUMNS, enough to reproduce the row
CONFIG_COLUMNS = ["mode", "collective", "topology", "placement", "ranks", "requested_algo", "dtype", "op", "root",
                  "iters", "warmup_iters", "check", "seed"]
# the figures; modeled ones are deterministic, ``wall_time_us`` is the host's and varies run to run
FIGURE_COLUMNS = ["size_bytes", "count", "algo", "modeled_time_us", "algbw_GBps", "busbw_GBps", "wrong", "status"]
WALL_COLUMNS = ["wall_time_us"]
VERSION_COLUMNS = ["hccl_sim_version", "torch_version", "mpi4py_version", "mpi_library", "python_version"]
FILE_COLUMNS = CONFIG_COLUMNS + FIGURE_COLUMNS + WALL_COLUMNS + VERSION_COLUMNS
NUMERIC_COLUMNS = {"ranks", "root", "iters", "warmup_iters", "check", "seed", "size_bytes", "count",
                   "modeled_time_us", "algbw_GBps", "busbw_GBps", "wrong", "wall_time_us"}


def versions(with_mpi: bool = True) -> dict:
    """Versions of everything that shapes a result. ``with_mpi=False`` leaves MPI uninitialised."""
    import torch

    from .. import __version__
    out = {"hccl_sim_version": __version__, "torch_version": torch.__version__,
           "python_version": platform.python_version()}
    try:
        import mpi4py
        out["mpi4py_version"] = mpi4py.__version__
    except ImportError:
        out["mpi4py_version"] = ""
    out["mpi_library"] = ""
    if with_mpi and "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI
        out["mpi_library"] = " ".join(MPI.Get_library_version().split()[:3])
    return out


def render(rows: list[dict], fmt: str, columns: list[str] | None = None) -> str:
    """Rows as ``json``, ``csv`` or an aligned ``table`` of ``columns``."""
    columns = columns or (list(rows[0]) if rows else [])
    if fmt == "nccl-json":
        return json.dumps(nccl_tests_json(rows))
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def nccl_tests_json(rows: list[dict], config: dict | None = None) -> dict:
    """nccl-tests' ``-J`` layout (src/util.cu, version 2): a ``results`` list of {size, count, type,
    redop, root, out_of_place: {time (us), alg_bw, bus_bw, nwrong}, in_place: null}; times modeled."""
    ranks = next((r["ranks"] for r in rows if r.get("ranks")), 0)
    results = [{"size": r["size_bytes"], "count": r["count"], "type": r.get("dtype", ""),
                "redop": r.get("op", "none"), "root": r.get("root", -1),
                "out_of_place": {"time": r["modeled_time_us"], "alg_bw": r["algbw_GBps"], "bus_bw": r["busbw_GBps"],
                                 "nwrong": None if r.get("wrong") in (None, "") else float(r["wrong"])},
                "in_place": None, "algo": r.get("algo", "")}
               for r in rows if r.get("status", "ok") == "ok"]
    busbw = [x["out_of_place"]["bus_bw"] for x in results]
    return {"version": 2, "args": sys.argv, "config": {"devices": [{"rank": i} for i in range(int(ranks))],
                                                       "hccl_sim": config or {}},
            "results": results,
            "average_bus_bandwidth": {"bandwidth": sum(busbw) / len(busbw) if busbw else 0.0, "okay": "unchecked"}}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) >= 0.001 or value == 0 else f"{value:.3g}"
    return "" if value is None else str(value)


# ---- the layouts of the tools users know -------------------------------------------------------------
_NCCL = [  # column, header, unit, width, format
    ("size_bytes", "size", "(B)", 12, "{}"),
    ("count", "count", "(elements)", 12, "{}"),
    ("dtype", "type", "", 6, "{}"),
    ("op", "redop", "", 6, "{}"),
    ("root", "root", "", 5, "{}"),
    ("algo", "algo", "", 10, "{}"),
    ("modeled_time_us", "time", "(us)", 10, "{:.2f}"),
    ("algbw_GBps", "algbw", "(GB/s)", 8, "{:.2f}"),
    ("busbw_GBps", "busbw", "(GB/s)", 8, "{:.2f}"),
    ("wrong", "#wrong", "", 7, "{}"),
    ("wall_time_us", "wall", "(us)", 10, "{:.1f}"),
]


def nccl_tests_table(rows: list[dict], header: str) -> str:
    """The nccl-tests layout: a commented header, one line per size, the average bus bandwidth.

    ``time``, ``algbw`` and ``busbw`` are modeled; ``wall`` is the host's wall time of one call. A case
    that could not run shows its reason in place of the figures, and the summary then says FAILED.
    """
    cells = []
    for r in rows:
        values = []
        for col, _, _, _, fmt in _NCCL:
            v = r.get(col)
            if col == "algo" and r.get("requested_algo") not in (None, "", v):
                v = f"{r['requested_algo']}({v})"  # what was asked for, and what ran
            values.append("" if v is None or v == "" else fmt.format(v))
            if col == "algo" and not_ok(r):
                break
        cells.append(values)
    # nccl-tests' widths, widened to the longest value (long algorithm names, HCCL_ALGO strings)
    widths = [max([w, len(h), len(u)] + [len(v[i]) for v in cells if i < len(v)])
              for i, (_, h, u, w, _) in enumerate(_NCCL)]

    def line(values, prefix):
        return prefix + " ".join(str(v).rjust(w) for v, w in zip(values, widths))
    out = [f"# {header}", "#", line([h for _, h, _, _, _ in _NCCL], "#"), line([u for _, _, u, _, _ in _NCCL], "#")]
    for r, values in zip(rows, cells):
        out.append(line(values, " ") + (f"  {r['status']}" if not_ok(r) else ""))
    wrong = sum(int(r["wrong"]) for r in rows if r.get("wrong") not in (None, ""))
    failed = sum(map(not_ok, rows))
    out.append(f"# Out of bounds values : {wrong} {'OK' if wrong == 0 and not failed else 'FAILED'}")
    if failed:
        out.append(f"# Cases not run        : {failed} of {len(rows)} (the reason is on each row)")
    for algo, avg in average_busbw(rows).items():
        out.append(f"# Avg bus bandwidth    : {avg:.4f}  (modeled, {algo})")
    return "\n".join(out)


def not_ok(row: dict) -> bool:
    """Whether a row is a case that could not run (its ``status`` says why)."""
    return row.get("status", "ok") != "ok"


def average_busbw(rows: list[dict]) -> dict[str, float]:
    """nccl-tests' "Avg bus bandwidth": the mean busbw over sizes, per requested algorithm."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get("status", "ok") == "ok":
            groups.setdefault(r.get("requested_algo") or r["algo"], []).append(float(r["busbw_GBps"]))
    return {a: sum(v) / len(v) for a, v in groups.items()}


def hccl_test_table(rows: list[dict], minbytes: int, maxbytes: int, iters: int | None, warmup: int | None) -> str:
    """The hccl_test layout; ``aveg_time`` is the modeled time, ``check_result`` NULL when not checked.
    ``iters`` None: a prediction, which runs no iterations (the first line says so)."""
    runs = f"iters is {iters}, warmup_iters is {warmup}" if iters is not None else "predicted (no iterations run)"
    out = [f"the minbytes is {minbytes}, maxbytes is {maxbytes}, {runs}"]
    algos = list(dict.fromkeys(r.get("requested_algo") or r["algo"] for r in rows))
    for algo in algos:
        if len(algos) > 1:
            out.append(f"# algo {algo}")
        out.append(f"{'data_size(Bytes):':<20}| {'aveg_time(us):':<16}| {'alg_bandwidth(GB/s):':<22}| check_result:")
        for r in rows:
            if (r.get("requested_algo") or r["algo"]) != algo:
                continue
            if r.get("status", "ok") != "ok":
                out.append(f"{r['size_bytes']:<20}  {'-':<16}  {'-':<22}  {r['status']}")
                continue
            check = "NULL" if r.get("wrong") in (None, "") else ("success" if int(r["wrong"]) == 0 else "failed")
            out.append(f"{r['size_bytes']:<20}  {r['modeled_time_us']:<16.2f}  {r['algbw_GBps']:<22.5f}  {check}")
    return "\n".join(out)


# ---- files -----------------------------------------------------------------------------------------------
def file_format(path: str, what: str = "--output") -> str:
    """``csv``, ``nccl-json`` (``.nccl.json``: nccl-tests' -J layout) or ``json`` from the file name;
    anything else is an error naming ``what`` (the argument the name came from) and the path."""
    lower = path.lower()
    if lower.endswith(".nccl.json"):
        return "nccl-json"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".json"):
        return "json"
    raise ValueError(f"{what} {path!r}: the name must end in .csv, .json or .nccl.json")


def write_results(path: str, rows: list[dict], config: dict) -> None:
    """Every row with every column; JSON also keeps ``config`` (command line, topology description)."""
    with open(path, "w", newline="") as f:
        dump_results(f, file_format(path), rows, config)


def dump_results(f, fmt: str, rows: list[dict], config: dict | None = None) -> None:
    """``rows`` to the open text file ``f`` as ``fmt`` (file_format's names), every column of FILE_COLUMNS;
    JSON keeps ``config`` beside the rows when given."""
    if fmt == "nccl-json":
        json.dump(nccl_tests_json(rows, config), f, indent=1)
    elif fmt == "csv":
        writer = csv.DictWriter(f, fieldnames=FILE_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        json.dump({**({"config": config} if config is not None else {}),
                   "results": [{c: r.get(c, "") for c in FILE_COLUMNS} for r in rows]}, f, indent=2)
        f.write("\n")


def read_results(path: str, text: str | None = None) -> list[dict]:
    """Rows from a CSV or JSON results file (or from ``text``, its content), numbers as numbers (what
    ``plot``, ``sweep`` resuming and tests read). Raises ValueError naming the file."""
    fmt = file_format(path, "results file")
    if fmt == "nccl-json":
        raise ValueError(f"{path}: nccl-tests' -J layout holds no configuration columns; "
                         "read it with `hccl-sim calibrate`, or write .csv/.json results to plot")
    if text is None:
        with open(path, newline="") as f:
            text = f.read()
    try:
        if fmt == "json":
            data = json.loads(text)
            rows = data["results"] if isinstance(data, dict) else data
        else:
            rows = list(csv.DictReader(io.StringIO(text)))
    except (json.JSONDecodeError, KeyError, csv.Error) as exc:
        raise ValueError(f"results file {path!r}: not a results {fmt} file ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"results file {path!r}: expected a list of rows")
    return [{k: _number(k, v) for k, v in r.items()} for r in rows]


def _number(column: str, value):
    if column not in NUMERIC_COLUMNS or value in (None, "") or isinstance(value, (int, float)):
        return value
    number = float(value)
    return int(number) if number.is_integer() and math.isfinite(number) and "." not in value \
        and "e" not in value.lower() else number
