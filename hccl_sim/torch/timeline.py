"""This rank's modeled time under torch.distributed: a compute clock and a communication stream shared
by all hccl_sim process groups, and a report per collective kind and per training step.

Compute is modeled from what the host did between two calls into the backend: its wall time times a
factor (``host``), the FLOPs torch counted times 1/rate (``flops``; counted inside ``step()`` only), or
nothing (``none``). The backend's own wall time is never counted as compute.

Overlap: an operation starts on the communication stream at the later of the compute clock at its issue
and the time the stream is free, and occupies the stream until its modeled end; the compute clock goes
on. A blocking call (torch's front end sets ``asyncOp=False`` in its options) joins the compute clock to
its end before it returns; for an async one ``Work.wait()`` does. Work that C++ waits for through its
future (DDP's reducer) is joined before any optimizer step and at the end of ``step()``.

An operation's time on the stream has two parts: waiting for the last rank to enter (the ranks' skew:
under ``host`` the hosts' speeds, which differ between runs) and the collective's own modeled time
(``comm``). The time the compute clock spends in joins is split the same way: ``wait`` (for slower
ranks) and ``exposed`` (the collective's own time). A blocking call is all exposed (overlap exactly 0 in
every compute mode); an async one issued before compute C hides min(C, A).
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from ..comm.clock import Clock
from . import recorder as _rec  # workload recording hooks (HCCL_SIM_RECORD)


@dataclass
class ComputeModel:
    """How host activity between collectives becomes modeled compute time."""
    mode: str = "host"  # host | flops | none
    factor: float = 1.0  # host: modeled seconds per host second
    flop_rate: float | None = None  # flops: FLOP/s achieved; None: the topology's npu_flops x efficiency
    efficiency: float = 0.5  # flops without a rate: share of the NPU's peak achieved (an assumption; set it)

    def __post_init__(self):
        if self.mode not in ("host", "flops", "none"):
            raise ValueError(f"compute mode: {self.mode!r} is not host, flops or none")
        if not self.factor >= 0:
            raise ValueError(f"compute factor: must be >= 0, got {self.factor!r}")
        if self.flop_rate is not None and not self.flop_rate > 0:
            raise ValueError(f"compute flop_rate: must be > 0 FLOP/s, got {self.flop_rate!r}")
        if not 0 < self.efficiency <= 1:
            raise ValueError(f"compute efficiency: must be in (0, 1], got {self.efficiency!r}")

    @classmethod
    def parse(cls, spec: str | None) -> "ComputeModel":
        """``host``, ``host:0.5``, ``flops:2e14`` (FLOP/s), ``flops`` or ``flops:eff=0.4`` (the topology's
        ``npu_flops`` times an efficiency, default 0.5), ``none`` (the HCCL_SIM_COMPUTE variable)."""
        if not spec:
            return cls()
        mode, _, value = spec.partition(":")
        try:
            if mode == "host":
                return cls("host", float(value) if value else 1.0)
            if mode == "flops" and value.startswith("eff="):
                return cls("flops", efficiency=float(value[4:]))
            if mode == "flops":
                return cls("flops", flop_rate=float(value) if value else None)
        except ValueError as exc:
            raise ValueError(f"HCCL_SIM_COMPUTE: {spec!r} needs a number after the colon") from exc
        return cls(mode)  # validated in __post_init__


@dataclass
class KindTotals:
    calls: int = 0
    time: float = 0.0  # the calls' own modeled seconds (waiting for late ranks not included)
    nbytes: int = 0
    wait: float = 0.0  # modeled seconds the calls waited for the last rank to enter

    def add(self, seconds: float, nbytes: int, wait: float = 0.0) -> None:
        self.calls += 1
        self.time += seconds
        self.nbytes += nbytes
        self.wait += wait


@dataclass
class StepReport:
    index: int
    name: str
    start: float  # modeled clock at the start of the step
    end: float
    compute: float = 0.0
    comm: float = 0.0  # the collectives' own modeled seconds on the communication stream
    exposed: float = 0.0  # modeled seconds the compute clock waited for the collectives' own time
    wait: float = 0.0  # modeled seconds the compute clock waited for slower ranks to enter (skew)
    kinds: dict[str, KindTotals] = field(default_factory=dict)

    @property
    def time(self) -> float:
        return self.end - self.start

    @property
    def comm_share(self) -> float:
        return self.comm / self.time if self.time > 0 else 0.0

    @property
    def overlap_share(self) -> float:
        """The share of communication hidden behind compute."""
        return 1.0 - self.exposed / self.comm if self.comm > 0 else 0.0


class Timeline:
    """The modeled clock of this process and what it was spent on."""

    def __init__(self, rank: int = 0, compute: ComputeModel | None = None):
        self.rank = rank
        self.compute_model = compute or ComputeModel.parse(os.environ.get("HCCL_SIM_COMPUTE"))
        self.clock = 0.0  # the compute clock
        self.stream = 0.0  # when the communication stream is free
        self.comm_clock = Clock()  # every process group's Communicator holds it: an operation's start, then end
        self.compute = 0.0
        self.comm = 0.0
        self.exposed = 0.0
        self.wait = 0.0
        self._skews: list[tuple[float, float, float]] = []  # (from, to, seconds) the stream waited for ranks
        self.kinds: dict[str, KindTotals] = {}
        self.steps: list[StepReport] = []
        self._step: StepReport | None = None
        self.npu_flops: float | None = None  # the world group topology's, for flops without a rate
        self._flops = None  # a FlopCounterMode while a step counts FLOPs
        self._flops_seen = 0
        self._host_mark = time.perf_counter()

    # ---- the backend calls these around every operation ---------------------------------------
    def enter(self, start: float | None = None) -> float:
        """Account the compute since the last call; returns when an operation issued now (not before
        ``start``) starts, and sets the communicators' shared clock to it."""
        self._account_compute()
        begin = max(self.clock, self.stream)
        self.comm_clock.now = begin if start is None else max(start, begin)
        return self.comm_clock.now

    def leave(self, kind: str, start: float, end: float, nbytes: int, wait: float = 0.0) -> None:
        """An operation of ``kind`` occupied the communication stream from ``start`` to ``end``, the first
        ``wait`` seconds of it waiting for the last rank to enter."""
        span = max(end - start, 0.0)
        wait = min(max(wait, 0.0), span)
        seconds = span - wait
        self.stream = max(self.stream, end)
        self._skews = [s for s in self._skews if s[1] > self.clock]
        if wait > 0:
            self._skews.append((start, start + wait, wait))
        self.comm += seconds
        self.kinds.setdefault(kind, KindTotals()).add(seconds, nbytes, wait)
        if self._step is not None:
            self._step.comm += seconds
            self._step.kinds.setdefault(kind, KindTotals()).add(seconds, nbytes, wait)
        self._host_mark = time.perf_counter()

    def join(self, end: float | None = None, account: bool = True) -> float:
        """The compute clock waits for communication ending at ``end`` (all issued so far if None).
        ``account=False``: the host time since the last call is the backend's own (not compute)."""
        if account:
            self._account_compute()
        if _rec.active is not None:
            _rec.active.join(end)
        end = self.stream if end is None else end
        if end > self.clock:
            skew = sum(w if self.clock <= a and b <= end else max(min(b, end) - max(a, self.clock), 0.0)
                       for a, b, w in self._skews)
            self.wait += skew
            self.exposed += end - self.clock - skew
            if self._step is not None:
                self._step.wait += skew
                self._step.exposed += end - self.clock - skew
            self.clock = end
        self._host_mark = time.perf_counter()
        return self.clock

    def advance(self, seconds: float) -> float:
        """Explicit modeled compute (on top of what the compute model counts)."""
        if not seconds >= 0:
            raise ValueError(f"advance: seconds must be >= 0, got {seconds!r}")
        self._add_compute(float(seconds))
        return self.clock

    def _account_compute(self) -> None:
        now = time.perf_counter()
        model = self.compute_model
        if model.mode == "host":
            self._add_compute((now - self._host_mark) * model.factor)
        elif model.mode == "flops" and self._flops is not None:
            total = self._flops.get_total_flops()
            self._add_compute((total - self._flops_seen) / self.flop_rate())
            self._flops_seen = total
        self._host_mark = now

    def flop_rate(self) -> float:
        """FLOP/s of the flops compute model: the given rate, else the topology's npu_flops x efficiency."""
        model = self.compute_model
        if model.flop_rate is not None:
            return model.flop_rate
        if self.npu_flops is None:
            raise ValueError("HCCL_SIM_COMPUTE=flops: the topology has no npu_flops (presets cloudmatrix384, "
                             "atlas950-superpod, dgx-h100 have); give a rate, e.g. flops:2e14")
        return self.npu_flops * model.efficiency

    def _add_compute(self, seconds: float) -> None:
        if _rec.active is not None:
            _rec.active.compute(seconds, seconds * self.compute_model.flop_rate if self.compute_model.mode == "flops" else None)
        self.clock += seconds
        self.compute += seconds
        if self._step is not None:
            self._step.compute += seconds

    # ---- steps --------------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str | None = None):
        """Everything inside is one training step of the report."""
        if self._step is not None:
            raise RuntimeError("hccl_sim.torch.step: steps do not nest")
        if self.compute_model.mode == "flops":
            self.flop_rate()  # a missing rate is an error now, not after the step
        self._host_mark = time.perf_counter()  # time between steps (data loading, logging) is not compute
        index = len(self.steps)
        self._step = StepReport(index, name or f"step{index}", self.clock, self.clock)
        counter = None
        if self.compute_model.mode == "flops":
            from torch.utils.flop_counter import FlopCounterMode
            counter = FlopCounterMode(display=False)
            counter.__enter__()
            self._flops, self._flops_seen = counter, 0
        if _rec.active is not None:
            _rec.active.step(self._step.name, end=False)
        try:
            yield self._step
        finally:
            self.join()  # a step ends when its communication has
            if counter is not None:
                counter.__exit__(None, None, None)
                self._flops = None
            self._step.end = self.clock
            if _rec.active is not None:
                _rec.active.step(self._step.name, end=True, time=self._step.time)
            self.steps.append(self._step)
            self._step = None

    # ---- report -------------------------------------------------------------------------------
    def report(self) -> dict:
        steps = [dict(index=s.index, name=s.name, start=s.start, end=s.end, time=s.time, compute=s.compute,
                      comm=s.comm, exposed=s.exposed, wait=s.wait, comm_share=s.comm_share, overlap_share=s.overlap_share,
                      kinds={k: asdict(v) for k, v in s.kinds.items()}) for s in self.steps]
        return dict(rank=self.rank, clock=self.clock, compute=self.compute, comm=self.comm, exposed=self.exposed,
                    wait=self.wait,
                    compute_model=asdict(self.compute_model),
                    kinds={k: asdict(v) for k, v in sorted(self.kinds.items())}, steps=steps)

    def summary(self) -> str:
        """A short human-readable report of this rank (times in microseconds)."""
        us = 1e6
        lines = [f"[hccl_sim rank {self.rank}] modeled clock {self.clock * us:.1f} us: compute "
                 f"{self.compute * us:.1f} us, communication {self.comm * us:.1f} us, exposed "
                 f"{self.exposed * us:.1f} us, waiting for other ranks {self.wait * us:.1f} us "
                 f"(compute model: {self.compute_model.mode})"]
        lines.append(f"[hccl_sim rank {self.rank}]   {'collective':<18}{'calls':>7}{'time_us':>14}{'wait_us':>14}"
                     f"{'bytes':>14}")
        for kind, t in sorted(self.kinds.items()):
            lines.append(f"[hccl_sim rank {self.rank}]   {kind:<18}{t.calls:>7}{t.time * us:>14.1f}"
                         f"{t.wait * us:>14.1f}{t.nbytes:>14}")
        if self.steps:
            times = [s.time for s in self.steps]
            comm = sum(s.comm for s in self.steps)
            exposed = sum(s.exposed for s in self.steps)
            wait = sum(s.wait for s in self.steps)
            lines.append(f"[hccl_sim rank {self.rank}]   {len(self.steps)} steps: mean step "
                         f"{sum(times) / len(times) * us:.1f} us (min {min(times) * us:.1f}, max "
                         f"{max(times) * us:.1f}), communication share {comm / max(sum(times), 1e-300):.1%}, "
                         f"overlapped {1 - exposed / comm if comm > 0 else 0.0:.1%} of it, waiting for other "
                         f"ranks {wait / max(sum(times), 1e-300):.1%}")
        return "\n".join(lines)

    def emit(self, where: str) -> None:
        """``where``: "1"/"print" writes the summary to stdout; anything else is a JSON file path,
        ``{rank}`` in it replaced by the rank."""
        if where.lower() in ("1", "true", "yes", "print", "stdout"):
            sys.stdout.write(self.summary() + "\n")
            sys.stdout.flush()
        else:
            with open(where.replace("{rank}", str(self.rank)), "w") as f:
                json.dump(self.report(), f, indent=1)


_timeline: Timeline | None = None
_report_at_exit: str | None = None


def timeline() -> Timeline:
    """The process's Timeline (made on first use)."""
    global _timeline
    if _timeline is None:
        _timeline = Timeline()
    return _timeline


def set_rank(rank: int) -> None:
    timeline().rank = rank


def _join_before_optimizer_step(optimizer, args, kwargs) -> None:
    """Gradients reduced by C++ (DDP's reducer waits on futures) are needed by the optimizer step."""
    if _timeline is not None:
        _timeline.join()


def install_optimizer_hook() -> None:
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    global _optimizer_hook
    if _optimizer_hook is None:
        _optimizer_hook = register_optimizer_step_pre_hook(_join_before_optimizer_step)


_optimizer_hook = None


def report_at_exit(where: str | None = "1") -> None:
    """Print (or write) this rank's summary when the process exits; None turns it off."""
    global _report_at_exit
    if _report_at_exit is None and where:
        atexit.register(_emit_at_exit)
    _report_at_exit = where


def _emit_at_exit() -> None:
    if _report_at_exit and _timeline is not None:
        _timeline.emit(_report_at_exit)
