"""Named topologies: each preset is one small module in ``presets/`` that registers a builder.

A spec is ``NAME`` or ``NAME:key=value,key=value`` (parameters the builder names; every preset also takes ``clos_twin=1``, see clos.py, and
``multipath=1``: all-path routing in its full-mesh levels, see algorithms/multipath.py), or a path to a
topology file, optionally followed by ``|`` and faults (see faults.py). Builders take ``min_npus`` so that sized-to-fit presets (flat) hold every rank.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import replace
from typing import Callable

from .core import Topology, TopologyError

PRESETS: dict[str, Callable[..., Topology]] = {}
FILE_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def preset(name: str):
    def register(builder):
        PRESETS[name] = builder
        return builder
    return register


def _parse_params(text: str) -> dict[str, str]:
    params = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise TopologyError(f"topology parameter {item!r}: expected key=value")
        params[key.strip().replace("-", "_")] = value.strip()
    return params


def load_topology(spec: "str | Topology | None" = None, min_npus: int = 1) -> Topology:
    """Build a topology from a preset spec or a file path; ``None`` is the flat default."""
    from . import presets  # noqa: F401  (registers the presets)

    if isinstance(spec, str) and "|" in spec:
        from .faults import apply_faults
        base, _, faults = spec.partition("|")
        return apply_faults(load_topology(base.strip() or None, min_npus), faults)
    if isinstance(spec, Topology):
        topo = spec
    elif spec is not None and (spec.endswith(FILE_SUFFIXES) or os.path.isfile(spec)):
        from .files import load_topology_file
        topo = load_topology_file(spec)
    else:
        name, _, rest = (spec or "flat").partition(":")
        if name not in PRESETS:
            raise TopologyError(f"topology {name!r}: unknown; presets are {', '.join(sorted(PRESETS))}, or give a file path")
        builder = PRESETS[name]
        params = _parse_params(rest)
        twin, multipath = (params.pop(k, "0").lower() for k in ("clos_twin", "multipath"))
        for key, value in (("clos_twin", twin), ("multipath", multipath)):
            if value not in ("0", "1", "true", "false", "yes", "no"):
                raise TopologyError(f"topology {name}: {key} must be 0 or 1, got {value!r}")
        accepted = inspect.signature(builder).parameters
        for key in params:
            if key not in accepted or key == "min_npus":
                names = [k for k in accepted if k != "min_npus"]
                raise TopologyError(f"topology {name}: unknown parameter {key!r} (takes {', '.join(names) or 'none'})")
        try:
            sized = {"min_npus": min_npus} if "min_npus" in accepted else {}  # sized-to-fit presets take it
            topo = builder(**sized, **params)
        except ValueError as exc:
            if isinstance(exc, TopologyError):
                raise
            raise TopologyError(f"topology {name}: {exc}") from exc
        if twin in ("1", "true", "yes"):
            from .clos import clos_twin
            topo = clos_twin(topo)
        if multipath in ("1", "true", "yes"):  # every full-mesh level routes over all its paths
            topo = replace(topo, levels=tuple(replace(lv, multipath=lv.kind == "mesh") for lv in topo.levels),
                           _cache={})
    if topo.num_npus < min_npus:
        raise TopologyError(f"topology {topo.name}: {min_npus} ranks need more NPUs than it has ({topo.num_npus})")
    return topo
