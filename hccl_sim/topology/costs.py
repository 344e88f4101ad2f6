"""Cost terms beyond links: what a real collective library adds to the fluid model of the links.

Every term has a neutral default (no overhead, one regime with no extra latency and the links' full
achieved bandwidth), at which modeled times are exactly those of the plain fluid model; presets set
published figures and state their source, and ``hccl-sim calibrate`` fits them to measurements.

- ``overhead``: seconds per call before the first transfer is posted (kernel launch, HCCL's task
  dispatch), the same on every rank; ``overhead_by`` overrides it per collective family.
- ``slice_bytes``: slicing inside a step (NCCL's chunks, HCCL's slices): a call whose largest transfer
  exceeds it is cut into up to ``max_slices`` chunks that pipeline across steps, so chunk c of step
  s+1 goes once chunk c of step s is through; hierarchical phases are steps too, so they overlap chunk
  by chunk. 0 (the default) leaves steps whole.
- ``regimes``: protocol regimes by call size (NCCL's LL / LL128 / Simple, HCCL's AICPU / AIV / CCU
  expansion modes). A call of ``nbytes`` (count x itemsize, nccl-tests' size) uses the first regime
  with ``nbytes < max_bytes``; each transfer of the call then pays ``step_latency`` seconds on top of
  its route's latency and moves at ``bandwidth_factor`` times every link's achieved bandwidth.

Two terms live on each level (core.py): ``Level.efficiency``, the achieved bandwidth per link type
(the fraction of line rate a library reaches on that level's links with its best protocol), and
``Level.overhead``, seconds more per call whose ranks span up to that level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .units import format_time


class CostError(ValueError):
    """A cost term that cannot be used, naming the field."""


@dataclass(frozen=True)
class Regime:
    """Calls with ``nbytes < max_bytes`` (after the previous regime's bound) use this regime."""
    max_bytes: float = math.inf
    step_latency: float = 0.0  # seconds added to each transfer's route latency
    bandwidth_factor: float = 1.0  # multiplies the achieved bandwidth of every link

    def validate(self, where: str) -> None:
        if not (isinstance(self.max_bytes, (int, float)) and self.max_bytes > 0):
            raise CostError(f"{where}.max_bytes: must be a positive number of bytes, got {self.max_bytes!r}")
        if not (isinstance(self.step_latency, (int, float)) and math.isfinite(self.step_latency)
                and self.step_latency >= 0):
            raise CostError(f"{where}.step_latency: must be finite and >= 0 seconds, got {self.step_latency!r}")
        if not (isinstance(self.bandwidth_factor, (int, float)) and math.isfinite(self.bandwidth_factor)
                and self.bandwidth_factor > 0):
            raise CostError(f"{where}.bandwidth_factor: must be positive and finite, got {self.bandwidth_factor!r}")

    @property
    def neutral(self) -> bool:
        return self.step_latency == 0.0 and self.bandwidth_factor == 1.0


NEUTRAL_REGIME = Regime()


@dataclass(frozen=True)
class Costs:
    overhead: float = 0.0  # seconds per call
    overhead_by: tuple[tuple[str, float], ...] = ()  # (collective, seconds) overrides
    regimes: tuple[Regime, ...] = ()  # ordered by max_bytes; the last one's bound is ignored (open-ended)
    source: str = ""  # where the figures come from
    slice_bytes: float = 0.0  # bytes of one chunk of a step's transfer; 0: steps are not sliced
    max_slices: int = 8  # at most this many chunks per transfer

    def validate(self, where: str = "costs") -> None:
        for name, value in (("overhead", self.overhead),) + tuple((f"overhead_by.{k}", v) for k, v in self.overhead_by):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise CostError(f"{where}.{name}: must be finite and >= 0 seconds, got {value!r}")
        if not (isinstance(self.slice_bytes, (int, float)) and math.isfinite(self.slice_bytes) and self.slice_bytes >= 0):
            raise CostError(f"{where}.slice_bytes: must be a finite number of bytes >= 0, got {self.slice_bytes!r}")
        if isinstance(self.max_slices, bool) or not isinstance(self.max_slices, int) or self.max_slices < 1:
            raise CostError(f"{where}.max_slices: must be a positive integer, got {self.max_slices!r}")
        bound = 0.0
        for i, regime in enumerate(self.regimes):
            regime.validate(f"{where}.regimes[{i}]")
            if i < len(self.regimes) - 1 and not regime.max_bytes > bound:
                raise CostError(f"{where}.regimes[{i}].max_bytes: regimes must be listed by increasing max_bytes")
            bound = regime.max_bytes

    def call_overhead(self, collective: str) -> float:
        return dict(self.overhead_by).get(collective, self.overhead)

    def regime(self, nbytes: float) -> Regime:
        """The regime of a call moving ``nbytes`` (nccl-tests' size of the call)."""
        for regime in self.regimes[:-1]:
            if nbytes < regime.max_bytes:
                return regime
        return self.regimes[-1] if self.regimes else NEUTRAL_REGIME

    @property
    def neutral(self) -> bool:
        return not self.overhead and not any(v for _, v in self.overhead_by) and \
            all(r.neutral for r in self.regimes) and not self.slice_bytes

    def describe(self) -> str:
        parts = [f"overhead {format_time(self.overhead)} per call"]
        parts += [f"{k} {format_time(v)}" for k, v in self.overhead_by]
        low = 0.0
        for i, r in enumerate(self.regimes):
            high = "" if i == len(self.regimes) - 1 else f"<{r.max_bytes:.6g} B"
            span = f"{low:.6g} B.." + (high or "")
            parts.append(f"regime {span}: +{format_time(r.step_latency)}/step, x{r.bandwidth_factor:.4g} bandwidth")
            low = r.max_bytes
        if self.slice_bytes:
            parts.append(f"steps sliced in chunks of {self.slice_bytes:.6g} B (at most {self.max_slices})")
        return "; ".join(parts) + (f" (source: {self.source})" if self.source else "")


def check_fields(value, where: str, fields, error=CostError) -> dict:
    """``value`` as a mapping whose keys are among ``fields``; else ``error`` naming ``where``."""
    if not isinstance(value, dict):
        raise error(f"{where}: expected a mapping with {', '.join(sorted(fields))}")
    unknown = set(value) - set(fields)
    if unknown:
        raise error(f"{where}: unknown field {sorted(unknown)[0]!r} (fields: {', '.join(sorted(fields))})")
    return value


def costs_from_dict(data, where: str = "costs") -> Costs:
    """``{overhead: 12us, overhead_by: {alltoall: 20us}, regimes: [{max_bytes: 64K, step_latency: 0.6us,
    bandwidth_factor: 0.5}, ...], source: "..."}``; every error names the field."""
    from .units import parse_size, parse_time
    check_fields(data, where, ("overhead", "overhead_by", "regimes", "source", "slice_bytes", "max_slices"))

    def parse(field, fn, value):
        try:
            return fn(value)
        except (TypeError, ValueError) as exc:
            raise CostError(f"{where}.{field}: {exc}") from None

    overhead = parse("overhead", parse_time, data.get("overhead", 0))
    by = data.get("overhead_by", {}) or {}
    if not isinstance(by, dict):
        raise CostError(f"{where}.overhead_by: expected a mapping of collective to time")
    overhead_by = tuple((str(k), parse(f"overhead_by.{k}", parse_time, v)) for k, v in by.items())
    regimes_in = data.get("regimes", []) or []
    if not isinstance(regimes_in, list):
        raise CostError(f"{where}.regimes: expected a list of regimes")
    regimes = []
    for i, r in enumerate(regimes_in):
        at = f"regimes[{i}]"
        check_fields(r, f"{where}.{at}", ("max_bytes", "step_latency", "bandwidth_factor"))
        max_bytes = r.get("max_bytes", math.inf)
        if max_bytes in (None, "inf"):
            max_bytes = math.inf
        elif not isinstance(max_bytes, (int, float)):
            max_bytes = parse(f"{at}.max_bytes", parse_size, max_bytes)
        regimes.append(Regime(float(max_bytes), parse(f"{at}.step_latency", parse_time, r.get("step_latency", 0)),
                              parse(f"{at}.bandwidth_factor", float, r.get("bandwidth_factor", 1.0))))
    slice_bytes = data.get("slice_bytes", 0) or 0
    if not isinstance(slice_bytes, (int, float)):
        slice_bytes = parse("slice_bytes", parse_size, slice_bytes)
    max_slices = data.get("max_slices", 8)
    costs = Costs(overhead, overhead_by, tuple(regimes), str(data.get("source", "")), float(slice_bytes), max_slices)
    costs.validate(where)
    return costs


def costs_to_dict(costs: Costs) -> dict:
    """The file form of ``costs`` (seconds and bytes as plain numbers), read back by costs_from_dict."""
    out: dict = {"overhead": costs.overhead}
    if costs.overhead_by:
        out["overhead_by"] = dict(costs.overhead_by)
    if costs.regimes:
        out["regimes"] = [{"max_bytes": "inf" if math.isinf(r.max_bytes) else r.max_bytes,
                           "step_latency": r.step_latency, "bandwidth_factor": r.bandwidth_factor}
                          for r in costs.regimes]
    if costs.slice_bytes:
        out["slice_bytes"], out["max_slices"] = costs.slice_bytes, costs.max_slices
    if costs.source:
        out["source"] = costs.source
    return out

