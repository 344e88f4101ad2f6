"""`hccl-sim algos` and `hccl-sim topology list|show`."""
from __future__ import annotations

from ..algorithms import BUILDERS, FORMULAS, registry
from ..topology import PRESETS, load_topology
from ..topology.units import format_bandwidth


def run_algos(args) -> int:
    for algo in sorted(registry.REGISTRY.values(), key=lambda a: a.order):
        print(f"{algo.name:9} {algo.help}")
    print("Hockney model: a latency per step, b seconds per byte, g seconds per byte reduced; p ranks, n bytes")
    for collective, table in BUILDERS.items():
        print(f"{collective}:")
        for name in table:
            print(f"  {name:6} {FORMULAS.get((collective, name), '')}")
    return 0


def run_topology(args) -> int:
    if args.action == "list":
        from ..topology import presets  # noqa: F401
        print(f"{'name':24} {'NPUs':>9} {'per NPU':>12} {'bisection':>12}  description")
        for name in sorted(PRESETS):
            topo = load_topology(name, args.ranks)
            print(f"{name:24} {topo.num_npus:>9} {format_bandwidth(topo.injection_bandwidth()):>12} "
                  f"{format_bandwidth(topo.bisection_bandwidth()):>12}  {topo.description}")
        return 0
    if not args.name:
        raise ValueError("topology show: give a preset name or a file")
    topology = load_topology(args.name, args.ranks)
    print(topology.describe())
    if getattr(args, "clos_twin", False):
        from ..topology.clos import clos_twin
        print(clos_twin(topology).describe())
    return 0
