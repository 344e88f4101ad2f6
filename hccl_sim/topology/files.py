"""Topology files (YAML, TOML or JSON): levels listed from the NPUs up.

    name: my-pod
    description: 4 servers of 8 NPUs
    reduce_bandwidth: 800GB/s        # optional; NPU reduce rate (HCCL's 1/g)
    npu_flops: 7.52e14               # optional; FLOP/s of one NPU (HCCL_SIM_COMPUTE=flops)
    levels:
      - {name: server, kind: mesh, size: 8, bandwidth: 56GB/s, latency: 0.5us}
      - {name: pod, kind: switch, size: 4, bandwidth: 400GB/s, latency: 2us, oversubscription: 2}
    placement: per-group:4            # optional default rank placement (linear, spread, per-group:K[@LEVEL],
                                      # or a list of NPU indices)
    faults: ["slow:pod:1=0.5"]        # optional, see faults.py

Every error names the field at fault, e.g. ``levels[1].bandwidth``.
"""
from __future__ import annotations

import json
import math
import os

from .core import Level, Placement, Topology, TopologyError
from .faults import apply_faults
from .units import parse_bandwidth, parse_time

_LEVEL_KEYS = {"name", "kind", "size", "bandwidth", "latency", "oversubscription"}
_TOP_KEYS = {"name", "description", "levels", "reduce_bandwidth", "placement", "faults", "npu_flops"}


def _read(path: str) -> dict:
    if not os.path.isfile(path):
        raise TopologyError(f"topology file {path!r}: no such file")
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        if path.endswith(".toml"):
            import tomllib
            data = tomllib.loads(raw.decode())
        elif path.endswith(".json"):
            data = json.loads(raw)
        else:
            import yaml
            data = yaml.safe_load(raw)
    except Exception as exc:  # each parser has its own error type; all mean the same to the user
        raise TopologyError(f"topology file {path!r}: not valid {os.path.splitext(path)[1][1:] or 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise TopologyError(f"topology file {path!r}: expected a mapping at the top level")
    return data


def _field(where, parse, value):
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise TopologyError(f"{where}: {exc}") from None


def topology_from_dict(data: dict, source: str = "topology") -> Topology:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise TopologyError(f"{source}: unknown field {sorted(unknown)[0]!r} (fields: {', '.join(sorted(_TOP_KEYS))})")
    levels = data.get("levels")
    if not isinstance(levels, list) or not levels:
        raise TopologyError(f"{source}: levels: expected a non-empty list of levels")
    built = []
    for i, lv in enumerate(levels):
        where = f"{source}: levels[{i}]"
        if not isinstance(lv, dict):
            raise TopologyError(f"{where}: expected a mapping")
        unknown = set(lv) - _LEVEL_KEYS
        if unknown:
            raise TopologyError(f"{where}: unknown field {sorted(unknown)[0]!r} (fields: {', '.join(sorted(_LEVEL_KEYS))})")
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
        flops = data.get("npu_flops")
        flops = None if flops is None else _field(f"{source}: npu_flops", float, flops)
        topology = Topology(str(data.get("name", "custom")), tuple(built), reduce_bw, str(data.get("description", "")),
                            placement=placement, npu_flops=flops)
        if placement is not None:
            Placement.build(None, len(placement) if isinstance(placement, tuple) else 1, topology)
        return apply_faults(topology, faults) if faults else topology
    except TopologyError as exc:
        raise TopologyError(f"{source}: {exc}") from None


def load_topology_file(path: str) -> Topology:
    return topology_from_dict(_read(path), f"topology file {path!r}")
