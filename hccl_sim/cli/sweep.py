"""`hccl-sim sweep FILE`: a grid of cases from one YAML or TOML file, into one resumable results file.

    mpirun -n 8 hccl-sim sweep grid.yaml          # emulated: real data through the collectives
    hccl-sim sweep grid.yaml --predict            # no MPI: the predictor, any rank counts

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
last fastest). Each finished case is added to the results file at once, so a sweep that is interrupted
resumes after the last finished case when run again (``--restart`` starts over); the file then is
byte-for-byte the file an uninterrupted sweep writes. That holds because results files keep only what
is deterministic: host wall times of an emulated sweep go beside it instead, to the results file's name
with ``.wall.csv`` added (``results.csv.wall.csv`` for ``results.csv``).
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import time

from ..algorithms.selection import algo_source, default_algo
from ..topology.units import parse_size
from . import check_writable
from .cases import Case, case_row, predicted_row, rooted
from .report import FILE_COLUMNS, file_format, versions

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


# ---- the sweep file -------------------------------------------------------------------------------------
def load_sweep(path: str) -> dict:
    """Parse and validate a sweep file; every error names the file and the field."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise SweepError(f"sweep file {path!r}: {exc.strerror}") from None
    try:
        if path.lower().endswith(".toml"):
            import tomllib
            data = tomllib.loads(raw.decode())
        else:
            import yaml
            data = yaml.safe_load(raw) or {}
    except Exception as exc:  # the parsers' own errors say where
        raise SweepError(f"sweep file {path!r}: not valid {'TOML' if path.endswith('.toml') else 'YAML'}: {exc}") from None
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
            sizes, size = [], lo
            while size <= hi:
                sizes.append(size)
                nxt = int(size * factor) if factor else size + step
                if nxt <= size:
                    break
                size = nxt
        else:
            raise SweepError(f"{where}: expected a size, a list of sizes or {{min, max, factor|step}}, got {value!r}")
    except SweepError:
        raise
    except ValueError as exc:
        raise SweepError(f"{where}: {exc}") from None
    if not sizes:
        raise SweepError(f"{where}: no sizes")
    return sizes


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
    from ..collectives import SPECS
    from ..dtypes import DTYPES, OPS
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


def case_key(row: dict) -> tuple:
    """What identifies a finished case in the results file (compared as text, as CSV stores it)."""
    return tuple(str(row.get(c, "")) for c in ("mode", "collective", "topology", "placement", "ranks",
                                                "requested_algo", "dtype", "op", "root", "iters",
                                                "warmup_iters", "check", "seed", "count"))


# ---- the results file -------------------------------------------------------------------------------------
class ResultsFile:
    """Rows appended as cases finish; on reopening, the finished prefix of the grid is kept and checked."""

    def __init__(self, path: str):
        self.path = path
        self.format = file_format(path)
        self.rows: list[dict] = []

    def load(self, expected_keys: list[tuple]) -> int:
        """Read what an earlier run finished; returns how many leading cases are done."""
        if not os.path.exists(self.path):
            self._rewrite()
            return 0
        with open(self.path, newline="") as f:
            text = f.read()
        if self.format == "csv":
            if text and not text.endswith("\n"):  # cut off mid-row: that case was not finished
                text = text[: text.rfind("\n") + 1]
            reader = csv.DictReader(io.StringIO(text))
            if text and reader.fieldnames != FILE_COLUMNS:
                raise SweepError(f"results file {self.path!r}: its columns are not those of this hccl-sim "
                                 f"version's results; move it away or use --restart")
            rows = list(reader)
        else:
            try:
                rows = json.loads(text)["results"] if text.strip() else []
            except (ValueError, KeyError, TypeError):
                raise SweepError(f"results file {self.path!r}: not a results JSON file; move it away or use --restart") from None
        if len(rows) > len(expected_keys):
            raise SweepError(f"results file {self.path!r}: has {len(rows)} rows, the sweep only {len(expected_keys)} "
                             f"cases; use --restart or another output")
        for i, row in enumerate(rows):
            if case_key(row) != expected_keys[i]:
                raise SweepError(f"results file {self.path!r}: row {i + 1} ({row.get('collective')} "
                                 f"{row.get('requested_algo')} {row.get('size_bytes')} B on {row.get('topology')}) is "
                                 f"not case {i + 1} of this sweep; the sweep file changed - use --restart or another output")
        self.rows = [{c: row.get(c, "") for c in FILE_COLUMNS} for row in rows]
        self._rewrite()  # drops a partial last line
        return len(rows)

    def restart(self) -> None:
        self.rows = []
        self._rewrite()

    def append(self, row: dict) -> None:
        row = {c: row.get(c, "") for c in FILE_COLUMNS}
        self.rows.append(row)
        if self.format == "csv":
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=FILE_COLUMNS, lineterminator="\n").writerow(row)
                f.flush()
                os.fsync(f.fileno())
        else:
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            if self.format == "csv":
                writer = csv.DictWriter(f, fieldnames=FILE_COLUMNS, lineterminator="\n")
                writer.writeheader()
                writer.writerows(self.rows)
            else:
                json.dump({"results": self.rows}, f, indent=1)
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # atomic: an interrupted rewrite leaves the old file


class Progress:
    """A one-line progress bar on stderr (a line per case when stderr is not a terminal)."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.total, self.done, self.enabled = total, done, enabled
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.started_at = done

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        ran = self.done - self.started_at
        eta = (time.monotonic() - self.start) / ran * (self.total - self.done) if ran else 0.0
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label}  eta {eta:.0f}s"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line + ("\n" if self.done == self.total else ""))
        elif self.done == self.total or 10 * self.done // self.total != 10 * (self.done - 1) // self.total:
            sys.stderr.write(line + "\n")  # a log file gets a line per tenth
        sys.stderr.flush()


# ---- running -------------------------------------------------------------------------------------------------
def run(args) -> int:
    sweep = load_sweep(args.file)
    output = args.output or sweep["output"] or os.path.splitext(args.file)[0] + ".csv"
    if file_format(output, "--output" if args.output else f"sweep file {args.file!r}: output") == "nccl-json":  # a resumable sweep needs its configuration columns
        raise SweepError(f"output {output!r}: a sweep writes .csv or .json results, not nccl-tests' layout")
    if args.max_cases is not None and args.max_cases < 0:
        raise SweepError(f"--max-cases: must be >= 0, got {args.max_cases}")
    if args.predict:
        return _run(sweep, output, args, None)
    from mpi4py import MPI
    return _run(sweep, output, args, MPI.COMM_WORLD)


def _run(sweep, output, args, world) -> int:
    mode = "predicted" if world is None else "emulated"
    cases = expand(sweep, None if world is None else world.size)
    rank0 = world is None or world.rank == 0
    # a prediction has no iterations, checks or random data: those columns stay empty
    run_params = (sweep["iters"], sweep["warmup_iters"], sweep["check"], sweep["seed"]) if world is not None \
        else ("", "", "", None)
    rows = [case_row(c, mode, *run_params) for c in cases]
    for row, case in zip(rows, cases):
        row["count"] = case.count
    keys = [case_key(r) for r in rows]

    results, done, error = ResultsFile(output), 0, None
    if rank0:
        try:
            check_writable(output, "--output" if args.output else "output")
            if args.restart:
                results.restart()
                if os.path.exists(output + ".wall.csv"):
                    os.remove(output + ".wall.csv")
            else:
                done = results.load(keys)
        except ValueError as exc:
            error = str(exc)
        except OSError as exc:  # named by the user's path, not the temporary file beside it
            error = f"results file {output!r}: {exc.strerror or exc}"
    if world is not None:  # every rank learns where to start, or the same error
        done, error = world.bcast((done, error), root=0)
    if error:
        raise SweepError(error)
    stop = len(cases) if args.max_cases is None else min(len(cases), done + args.max_cases)
    meta = versions(with_mpi=world is not None) if rank0 else {}
    wall_path = output + ".wall.csv"
    progress = Progress(len(cases), done, args.progress and rank0)
    if rank0 and done:
        print(f"hccl-sim sweep: resuming {output} after {done} of {len(cases)} finished cases", file=sys.stderr)

    if world is not None and sweep["seed"] is not None:
        import torch
        torch.manual_seed(sweep["seed"])
    models: dict = {}
    comms: dict = {}
    notes: dict = {}
    try:
        for i in range(done, stop):
            case = cases[i]
            where = (case.topology, case.placement, case.ranks)
            if world is None:
                if where not in models:
                    from ..planning import NetworkModel
                    models.clear()
                    models[where] = NetworkModel(case.ranks, case.topology, case.placement)
                figures = predicted_row(case, models[where])
            else:
                from ..comm import Communicator
                from .bench import measured_row, mpi_placement
                if where not in comms:
                    for c in comms.values():
                        c.free()
                    comms.clear()
                    comms[where] = Communicator(world, topology=case.topology,
                                                placement=mpi_placement(case.placement, world, case.topology))
                figures = measured_row(comms[where], case, sweep["iters"], sweep["warmup_iters"], sweep["check"])
            if rank0:
                row = dict(rows[i], **figures, **meta)
                notes[row.pop("note", "")] = None
                wall = row.pop("wall_time_us", "")
                results.append(row)
                if wall != "":
                    _append_wall(wall_path, i, case, wall)
                progress.step(f"{case.collective} {case.algo} {case.size} B {case.topology} {case.placement} "
                              f"{case.ranks} ranks")
    finally:
        for c in comms.values():
            c.free()
    if rank0:
        for note in filter(None, notes):
            print(f"hccl-sim sweep: note: {note}", file=sys.stderr)
        left = len(cases) - stop
        print(f"hccl-sim sweep: {stop} of {len(cases)} cases in {output}"
              + (f"; {left} left, run again to continue" if left else ""), file=sys.stderr)
    return 0


def _append_wall(path: str, index: int, case: Case, wall: float) -> None:
    """Host wall times, apart from the deterministic results (they differ on every run)."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if new:
            writer.writerow(["case", "collective", "requested_algo", "size_bytes", "topology", "placement",
                             "wall_time_us"])
        writer.writerow([index + 1, case.collective, case.algo, case.size, case.topology, case.placement, wall])
