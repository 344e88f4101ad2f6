"""One benchmark case (collective, size, dtype, op, root, algorithm, topology, placement, ranks) and the
row that reports it. MPI-free: ``predicted_row`` runs the shared timing engine through hccl_sim.predict;
the emulated ``measured_row`` is in bench.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..algorithms import algorithms_for, selection
from ..collectives import lookup
from ..dtypes import check_op, dtype_from_name, element_type
from ..planning import NetworkModel
from ..executors.predictor import predict


@dataclass(frozen=True)
class Case:
    collective: str
    size: int  # bytes, as -b/-e give them
    dtype: str
    op: str
    root: int
    algo: str  # as requested: a name, "hier:A/B" or "auto"
    topology: str
    placement: str
    ranks: int
    algo_source: str = "--algo"  # where ``algo`` came from (selection.algo_source), for messages and fallback

    @property
    def spec(self):
        return lookup(self.collective)

    @property
    def torch_dtype(self):
        return dtype_from_name(self.dtype)

    @property
    def count(self) -> int:
        return self.size // element_type(self.dtype).itemsize  # no torch: predict needs none

    def validate(self) -> None:
        """Raise ValueError naming the field for a case that can never run: a wrong argument (an unknown
        algorithm name, dtype or op). A known algorithm that does not apply to the collective is not one:
        that case becomes a row saying why (``run_algo``)."""
        if self.spec.reduces:
            check_op(self.op, element_type(self.dtype))
        else:
            element_type(self.dtype)  # validates the name
        selection.validate(self.algo, self.algo_source)
        if self.size < 0:
            raise ValueError(f"size: must be >= 0, got {self.size}")
        if self.ranks < 1:
            raise ValueError(f"ranks: must be >= 1, got {self.ranks}")
        if self.spec.rooted and not 0 <= self.root < self.ranks:
            raise ValueError(f"root: {self.root} is not a rank of {self.ranks}")


def run_algo(case: Case, model: NetworkModel) -> tuple[str, str]:
    """(the algorithm to run ``case`` with, a note). A requested algorithm that does not apply to the
    collective raises ValueError with the reason (the case's row says it), unless it came from the
    environment (HCCL_ALGO, HCCL_SIM_ALGO): a global setting that does not fit an operator leaves it to
    the default, as HCCL does, so the case runs ``auto`` and the note says so."""
    requested = model.requested(case.collective, case.algo)  # HCCL_ALGO syntax -> this collective's name
    reason = selection.applies(case.collective, requested, algorithms_for(case.collective))
    if reason is None:
        return case.algo, ""
    if case.algo_source.endswith(selection.FROM_ENVIRONMENT):
        return "auto", (f"{case.algo_source} names {requested.partition(':')[0]!r}, which does not apply to "
                        f"{case.collective}: auto instead (HCCL's default for an operator the setting does not fit)")
    raise ValueError(reason)


def notes_of(rows: list[dict]) -> list[str]:
    """The distinct notes of rows (e.g. an environment's algorithm replaced by auto), in order."""
    return list(dict.fromkeys(r["note"] for r in rows if r.get("note")))


def rooted(spec) -> bool:
    """Whether the collective has a root (broadcast, reduce, scatter, gather); nccl-tests prints -1 otherwise."""
    return spec.rooted


def effective_op(spec, op: str) -> str:
    return op if spec.reduces else "none"


def effective_root(spec, root: int) -> int:
    return root if spec.rooted else -1


def case_row(case: Case, mode: str, iters: int, warmup: int, check: int, seed) -> dict:
    """The configuration columns of a row (see report.CONFIG_COLUMNS)."""
    return {"mode": mode, "collective": case.collective, "topology": case.topology, "placement": case.placement,
            "ranks": case.ranks, "requested_algo": case.algo, "dtype": case.dtype,
            "op": effective_op(case.spec, case.op), "root": effective_root(case.spec, case.root),
            "iters": iters, "warmup_iters": warmup, "check": check, "seed": "" if seed is None else seed}


def figures(spec, size: int, count: int, algo: str, ranks: int, seconds: float) -> dict:
    """nccl-tests' definitions: algbw = bytes / time (GB = 1e9), busbw = algbw * the collective's factor."""
    algbw = size / seconds / 1e9 if seconds > 0 else 0.0
    return {"size_bytes": size, "count": count, "algo": algo, "modeled_time_us": seconds * 1e6,
            "algbw_GBps": algbw, "busbw_GBps": spec.busbw(algbw, ranks), "status": "ok"}


def failed_row(case: Case, message: str) -> dict:
    """A case the model cannot run (e.g. ``hier`` on one server): kept in the results, with the reason."""
    return {"size_bytes": case.size, "count": case.count, "algo": case.algo, "modeled_time_us": "",
            "algbw_GBps": "", "busbw_GBps": "", "wrong": "", "status": f"n/a: {message}"}


def predicted_row(case: Case, model: NetworkModel | None = None) -> dict:
    """The modeled figures of one case with no MPI: the same numbers an emulated run gives."""
    spec, dtype = case.spec, element_type(case.dtype)
    model = model or NetworkModel(case.ranks, case.topology, case.placement)
    count = spec.work_count(case.count, case.ranks)  # as bench runs it
    try:
        algo, note = run_algo(case, model)
        p = predict(case.collective, count, case.ranks, algo=algo, dtype=dtype, model=model,
                    root=case.root if spec.rooted else 0)
    except ValueError as exc:  # an algorithm that does not apply to this collective or communicator
        return failed_row(case, str(exc))
    row = figures(spec, count * dtype.itemsize, count, p.algo, case.ranks, p.time)
    row.update(wrong="", note=note)
    return row

