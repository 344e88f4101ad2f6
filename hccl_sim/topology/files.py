"""Topology files (YAML, TOML or JSON): levels listed from the NPUs up.

    name: my-pod
    description: 4 servers of 8 NPUs
    reduce_bandwidth: 800GB/s        # optional; NPU reduce rate (HCCL's 1/g)
    npu_flops: 7.52e14               # optional; FLOP/s of one NPU (HCCL_SIM_COMPUTE=flops)
    levels:
      - {name: server, kind: mesh, size: 8, bandwidth: 56GB/s, latency: 0.5us,
         multipath: false}            # optional, mesh only: split transfers over two-hop paths too
      - {name: pod, kind: switch, size: 4, bandwidth: 400GB/s, latency: 2us, oversubscription: 2,
         efficiency: 0.8,             # optional: achieved fraction of line rate (default 1)
         overhead: 8us}               # optional: per call whose ranks span this level (default 0)
    costs:                            # optional cost terms (costs.py); neutral when left out
      overhead: 12us                  # per call
      overhead_by: {alltoall: 20us}   # per collective family
      regimes:                        # protocol regimes by call size, the last open-ended
        - {max_bytes: 64K, step_latency: 0.6us, bandwidth_factor: 0.3}
        - {step_latency: 2us, bandwidth_factor: 1}
      source: "fitted by hccl-sim calibrate to ..."
    placement: per-group:4            # optional default rank placement (linear, spread, per-group:K[@LEVEL],
                                      # or a list of NPU indices)
    faults: ["slow:pod:1=0.5"]        # optional, see faults.py

Every error names the field at fault, e.g. ``levels[1].bandwidth``.
"""
from __future__ import annotations

import json
import math
import os

from .core import Level, Topology, TopologyError
from .costs import CostError, check_fields, costs_from_dict, costs_to_dict
from .faults import apply_faults
from .placement import Placement
from .units import parse_bandwidth, parse_time

_LEVEL_KEYS = {"name", "kind", "size", "bandwidth", "latency", "oversubscription", "efficiency", "overhead", "multipath"}
_TOP_KEYS = {"name", "description", "levels", "reduce_bandwidth", "placement", "faults", "npu_flops", "costs"}


def read_document(path: str, what: str, error: type[Exception] = TopologyError):
    """The parsed content of a TOML (``.toml``), JSON (``.json``) or YAML (anything else) file; ``error``
    naming ``what`` and the path for a file that cannot be read or parsed (the parser's message says where)."""
    if not os.path.isfile(path):
        raise error(f"{what} {path!r}: no such file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise error(f"{what} {path!r}: {exc.strerror or exc}") from None
    kind = {".toml": "TOML", ".json": "JSON"}.get(os.path.splitext(path)[1].lower(), "YAML")
    try:
        if kind == "TOML":
            import tomllib
            return tomllib.loads(raw.decode())
        if kind == "JSON":
            return json.loads(raw)
        import yaml
        return yaml.safe_load(raw)
    except Exception as exc:  # each parser has its own error type; all mean the same to the user
        raise error(f"{what} {path!r}: not valid {kind}: {exc}") from None


def _read(path: str) -> dict:
    data = read_document(path, "topology file")
    if not isinstance(data, dict):
        raise TopologyError(f"topology file {path!r}: expected a mapping at the top level")
    return data


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _field(where, parse, value):
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise TopologyError(f"{where}: {exc}") from None


def topology_from_dict(data: dict, source: str = "topology") -> Topology:
    check_fields(data, source, _TOP_KEYS, TopologyError)
    levels = data.get("levels")
    if not isinstance(levels, list) or not levels:
        raise TopologyError(f"{source}: levels: expected a non-empty list of levels")
    built = []
    for i, lv in enumerate(levels):
        where = f"{source}: levels[{i}]"
        check_fields(lv, where, _LEVEL_KEYS, TopologyError)
        for key in ("size", "bandwidth", "latency"):
            if key not in lv:
                raise TopologyError(f"{where}.{key}: missing")
        size = lv["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise TopologyError(f"{where}.size: must be a positive integer, got {size!r}")
        over = _field(f"{where}.oversubscription", float, lv.get("oversubscription", 1.0))
        if not (math.isfinite(over) and over > 0):
            raise TopologyError(f"{where}.oversubscription: must be positive and finite, got {over!r}")
        built.append(Level(
            name=str(lv.get("name", f"level{i}")),
            size=size,
            kind=str(lv.get("kind", "switch")),
            bandwidth=_field(f"{where}.bandwidth", parse_bandwidth, lv["bandwidth"]),
            latency=_field(f"{where}.latency", parse_time, lv["latency"]),
            oversubscription=over,
            efficiency=_field(f"{where}.efficiency", float, lv.get("efficiency", 1.0)),
            overhead=_field(f"{where}.overhead", parse_time, lv.get("overhead", 0)),
            multipath=_field(f"{where}.multipath", _flag, lv.get("multipath", False)),
        ))
    reduce_bw = data.get("reduce_bandwidth")
    reduce_bw = math.inf if reduce_bw is None else _field(f"{source}: reduce_bandwidth", parse_bandwidth, reduce_bw)
    placement = data.get("placement")
    if isinstance(placement, list):
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in placement):
            raise TopologyError(f"{source}: placement: a list of NPU indices must hold integers only")
        placement = tuple(placement)
    elif placement is not None and not isinstance(placement, str):
        raise TopologyError(f"{source}: placement: expected a placement name or a list of NPU indices")
    faults = data.get("faults", [])
    if isinstance(faults, str):
        faults = [faults]
    if not isinstance(faults, list):
        raise TopologyError(f"{source}: faults: expected a list of faults such as 'down:npu0-npu1'")
    try:
        costs = costs_from_dict(data.get("costs", {}) or {}, "costs")
    except CostError as exc:
        raise TopologyError(f"{source}: {exc}") from None
    try:
        flops = data.get("npu_flops")
        flops = None if flops is None else _field(f"{source}: npu_flops", float, flops)
        topology = Topology(str(data.get("name", "custom")), tuple(built), reduce_bw, str(data.get("description", "")),
                            placement=placement, npu_flops=flops, costs=costs)
        if placement is not None:
            Placement.build(None, len(placement) if isinstance(placement, tuple) else 1, topology)
        return apply_faults(topology, faults) if faults else topology
    except TopologyError as exc:
        raise TopologyError(f"{source}: {exc}") from None


def load_topology_file(path: str) -> Topology:
    return topology_from_dict(_read(path), f"topology file {path!r}")


def topology_to_dict(topology: Topology) -> dict:
    """The file form of ``topology`` (levels, reduce rate, placement, costs), which topology_from_dict
    reads back to an equal topology. Faults are not written: give them with --faults."""
    if topology.faults:
        raise TopologyError(f"{topology.name}: a topology with faults cannot be written as a file; "
                            "write it without faults and add them with --faults")
    out: dict = {"name": topology.name, "description": topology.description, "levels": [
        {"name": lv.name, "kind": lv.kind, "size": int(lv.size), "bandwidth": lv.bandwidth, "latency": lv.latency,
         "oversubscription": lv.oversubscription, "efficiency": lv.efficiency, "overhead": lv.overhead,
         **({"multipath": True} if lv.multipath else {})}
        for lv in topology.levels]}
    if math.isfinite(topology.reduce_bandwidth):
        out["reduce_bandwidth"] = topology.reduce_bandwidth
    if topology.placement is not None:
        out["placement"] = topology.placement if isinstance(topology.placement, str) else list(topology.placement)
    if topology.npu_flops is not None:
        out["npu_flops"] = topology.npu_flops
    out["costs"] = costs_to_dict(topology.costs)
    return out
