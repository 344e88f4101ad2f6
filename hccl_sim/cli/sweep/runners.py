"""Running a sweep: the loop over the grid's cases (resuming after the finished ones) and the two runners
that give a case's figures, by the predictor (``--predict``, no MPI) or on the emulator under mpirun."""
from __future__ import annotations

import os
import sys

from .. import check_writable
from ..cases import Case, case_row, predicted_row
from ..report import file_format, versions
from .results import Progress, ResultsFile, append_wall, case_key
from .spec import SweepError, expand, load_sweep


class PredictRunner:
    """Figures from the predictor, one NetworkModel per (topology, placement, ranks) in turn."""
    mode = "predicted"
    run_params = ("", "", "", None)  # a prediction has no iterations, checks or random data

    def __init__(self):
        self._where, self._model = None, None

    def figures(self, case: Case) -> dict:
        from ...planning import NetworkModel
        where = (case.topology, case.placement, case.ranks)
        if where != self._where:
            self._where, self._model = where, NetworkModel(case.ranks, case.topology, case.placement)
        return predicted_row(case, self._model)

    def close(self) -> None:
        pass


class EmulateRunner:
    """Figures measured on the emulator by every rank of ``world``, one Communicator per (topology,
    placement) in turn; bench's -n, -w, -c and seed from the sweep file."""
    mode = "emulated"

    def __init__(self, world, sweep: dict):
        self.world, self.sweep = world, sweep
        self.run_params = (sweep["iters"], sweep["warmup_iters"], sweep["check"], sweep["seed"])
        self._where, self._comm = None, None
        if sweep["seed"] is not None:
            import torch
            torch.manual_seed(sweep["seed"])

    def figures(self, case: Case) -> dict:
        from ...comm import Communicator
        from ..bench import measured_row, mpi_placement
        where = (case.topology, case.placement, case.ranks)
        if where != self._where:
            self.close()
            self._where = where
            self._comm = Communicator(self.world, topology=case.topology,
                                      placement=mpi_placement(case.placement, self.world, case.topology))
        return measured_row(self._comm, case, self.sweep["iters"], self.sweep["warmup_iters"], self.sweep["check"])

    def close(self) -> None:
        if self._comm is not None:
            self._comm.free()
            self._where, self._comm = None, None


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


def _open_results(output: str, keys: list[tuple], args, world) -> tuple[ResultsFile, int]:
    """The results file, and how many cases an earlier run finished (rank 0 reads; every rank learns the
    same count, or raises the same error)."""
    results, done, error = ResultsFile(output), 0, None
    if world is None or world.rank == 0:
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
    if world is not None:
        done, error = world.bcast((done, error), root=0)
    if error:
        raise SweepError(error)
    return results, done


def _run(sweep, output, args, world) -> int:
    cases = expand(sweep, None if world is None else world.size)
    runner = PredictRunner() if world is None else EmulateRunner(world, sweep)
    rank0 = world is None or world.rank == 0
    rows = [dict(case_row(c, runner.mode, *runner.run_params), count=c.count) for c in cases]
    results, done = _open_results(output, [case_key(r) for r in rows], args, world)
    stop = len(cases) if args.max_cases is None else min(len(cases), done + args.max_cases)
    meta = versions(with_mpi=world is not None) if rank0 else {}
    progress = Progress(len(cases), done, args.progress and rank0)
    if rank0 and done:
        print(f"hccl-sim sweep: resuming {output} after {done} of {len(cases)} finished cases", file=sys.stderr)

    notes: dict = {}
    try:
        for i in range(done, stop):
            case = cases[i]
            figures = runner.figures(case)
            if rank0:
                row = dict(rows[i], **figures, **meta)
                notes[row.pop("note", "")] = None
                wall = row.pop("wall_time_us", "")
                results.append(row)
                if wall != "":
                    append_wall(output + ".wall.csv", i, case, wall)
                progress.step(f"{case.collective} {case.algo} {case.size} B {case.topology} {case.placement} "
                              f"{case.ranks} ranks")
    finally:
        runner.close()
    if rank0:
        for note in filter(None, notes):
            print(f"hccl-sim sweep: note: {note}", file=sys.stderr)
        left = len(cases) - stop
        print(f"hccl-sim sweep: {stop} of {len(cases)} cases in {output}"
              + (f"; {left} left, run again to continue" if left else ""), file=sys.stderr)
    return 0
