"""`hccl-sim algos` and `hccl-sim topology list|show`."""
from __future__ import annotations

from ..algorithms import BUILDERS, FORMULAS
from ..topology import PRESETS, load_topology


def run_algos(args) -> int:
    print("Hockney model: a latency per step, b seconds per byte, g seconds per byte reduced; p ranks, n bytes")
    for collective, table in BUILDERS.items():
        print(f"{collective}:")
        for name in table:
            print(f"  {name:6} {FORMULAS.get((collective, name), '')}")
    return 0


def run_topology(args) -> int:
    if args.action == "list":
        from ..topology import presets  # noqa: F401
        for name in sorted(PRESETS):
            doc = (PRESETS[name].__module__ and __import__(PRESETS[name].__module__, fromlist=["_"]).__doc__) or ""
            print(f"{name:24} {doc.strip().splitlines()[0] if doc.strip() else ''}")
        return 0
    if not args.name:
        raise ValueError("topology show: give a preset name or a file")
    print(load_topology(args.name, args.ranks).describe())
    return 0
