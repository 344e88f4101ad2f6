"""`hccl-sim replay`: a recorded training run (``HCCL_SIM_RECORD``) timed on other topologies and scales."""
from __future__ import annotations

import json
import sys

from ..workload.format import ROLES, WorkloadError, load
from ..workload.replay import ScaleError, check_from_step, parse_scale, replay, write_trace

TABLE_FIELDS = (("step_us", "step time (us)"), ("compute_us", "compute (us)"), ("comm_us", "communication (us)"),
                ("exposed_us", "exposed comm (us)"))


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help="time a recorded workload (HCCL_SIM_RECORD) on any topology and scale")
    p.add_argument("workload", nargs="+", help="workload file(s); run.json also finds run.rank0.json, ...")
    p.add_argument("--topology", default=None,
                   help="preset(s), comma-separated for a side-by-side table (default: the recorded one)")
    p.add_argument("--scale", default=None, help="group sizes by role, e.g. dp=1024,tp=8 (default: as recorded)")
    p.add_argument("--placement", default=None, help="ranks onto NPUs: linear, spread, per-group:K, list:0,1,...")
    p.add_argument("--roles", default=None, help=f"roles of recorded groups, e.g. world=fsdp ({', '.join(ROLES)})")
    p.add_argument("--algo", default=None,
                   help="algorithm for collectives recorded as auto (default: auto again at the new scale)")
    p.add_argument("--from-step", type=int, default=0, help="replay from this recorded step (default 0)")
    p.add_argument("--setup", action="store_true", help="also replay what ran before the first step")
    p.add_argument("--flop-rate", type=float, default=None,
                   help="FLOP/s per NPU: compute spans with recorded FLOPs take FLOPs / rate (else recorded seconds)")
    p.add_argument("--trace", default=None, help="Chrome/Perfetto trace (JSON) of the replay (first topology)")
    p.add_argument("--plot", default=None, help="PNG of step time against scale over --scales")
    p.add_argument("--scales", nargs="+", default=None,
                   help="scales for the table and --plot, e.g. dp=512 dp=2048 dp=8192 (with --scale: both)")
    p.add_argument("--format", choices=("table", "json"), default="table")


def summary(result) -> dict:
    """One result as the table's fields (microseconds, mean over the replayed steps)."""
    us = 1e6
    row = {"topology": result.topology, "npus": result.nranks,
           "scale": ",".join(f"{k}={v}" for k, v in result.scale.items()),
           "step_us": result.step_time * us, "compute_us": result.mean("compute") * us,
           "comm_us": result.mean("comm") * us, "exposed_us": result.mean("exposed") * us}
    for role, t in result.mean_by_role("exposed_by_role").items():
        row[f"exposed_{role}_us"] = t * us
    row["notes"] = result.notes
    return row


def render(rows: list[dict]) -> str:
    """Topologies side by side: one column per result."""
    fields = list(TABLE_FIELDS)
    roles = sorted({k for r in rows for k in r if k.startswith("exposed_") and k.endswith("_us") and k != "exposed_us"})
    fields += [(k, f"  exposed {k[8:-3]} (us)") for k in roles]
    head = [("npus", "NPUs"), ("scale", "scale")]
    width = max(12, *(len(r["topology"]) + 2 for r in rows))
    lines = [f"{'':<22}" + "".join(f"{r['topology']:>{width}}" for r in rows)]
    for key, label in head:
        lines.append(f"{label:<22}" + "".join(f"{r.get(key, 'error'):>{width},}" if isinstance(r.get(key), int) else
                                             f"{r.get(key, 'error'):>{width}}" for r in rows))
    for key, label in fields:
        lines.append(f"{label:<22}" + "".join(f"{'-':>{width}}" if "error" in r else f"{r.get(key, 0.0):>{width}.2f}"
                                             for r in rows))
    for r in rows:
        if "error" in r:
            lines.append(f"error ({r['topology']}, {r['scale']}): {r['error']}")
        for note in r.get("notes", ()):
            lines.append(f"note ({r['topology']}): {note}")
    return "\n".join(lines)


def run(args) -> int:
    """The table (and JSON) has one column per topology and scale: ``--scale`` and the ``--scales`` plotted.
    A topology or scale that fails is reported in its column (exit status 1); the others still run."""
    workload = load(*args.workload)
    if args.roles:
        for gid, role in parse_roles(args.roles, workload).items():
            workload.groups[gid].role = role
    check_from_step(workload, args.from_step)
    topologies = args.topology.split(",") if args.topology else [None]
    scales = args.scales or [args.scale]
    if args.scale and args.scale not in scales:
        scales = [args.scale, *scales]
    traced = args.scale if args.scale in scales else scales[0]
    rows, results = [], []
    for text in scales:
        scale = parse_scale(text)
        for topology in topologies:
            trace = bool(args.trace) and not any(r.trace for r in results) and text == traced
            try:
                result = replay(workload, topology, scale, args.placement, args.flop_rate, trace=trace,
                                from_step=args.from_step, algo=args.algo, setup=args.setup)
            except (ScaleError, WorkloadError, ValueError) as exc:
                rows.append({"topology": topology or workload.topology or "flat", "scale": text or "as recorded",
                             "error": str(exc)})
                continue
            results.append(result)
            rows.append(summary(result))
    traced_result = next((r for r in results if r.trace), None)
    if traced_result is not None:
        write_trace(traced_result, args.trace)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        print(render(rows))
    if args.plot and results:
        plot_scaling(results, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.format == "json" else sys.stdout)
    for wanted, done in ((args.plot, results), (args.trace, traced_result)):
        if wanted and not done:
            print(f"hccl-sim: {wanted} not written: no replay succeeded", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


def parse_roles(text: str, workload) -> dict[int, str]:
    """``world=fsdp,NAME=tp``: "world" means the groups of every rank, else a group's name or id."""
    out = {}
    for item in text.split(","):
        name, _, role = item.partition("=")
        if role not in ROLES:
            raise ValueError(f"--roles: {item!r}: role must be one of {', '.join(ROLES)}")
        found = [g.id for g in workload.groups.values()
                 if (name == "world" and len(g.ranks) == workload.world_size) or g.name == name or str(g.id) == name]
        if not found:
            raise ValueError(f"--roles: {name!r} names no recorded group (names: "
                             f"{', '.join(g.name for g in workload.groups.values())})")
        out.update({g: role for g in found})
    return out


def plot_scaling(results, path) -> None:
    """Step time (us) against NPUs, one line per topology (matplotlib), from the table's results."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for topology in dict.fromkeys(r.topology for r in results):
        points = sorted((r.nranks, r.step_time * 1e6, r.mean("exposed") * 1e6) for r in results
                        if r.topology == topology)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{topology}: step")
        ax.plot([p[0] for p in points], [p[2] for p in points], marker="x", linestyle="--",
                label=f"{topology}: exposed communication")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("NPUs")
    ax.set_ylabel("us per step (mean)")
    ax.set_title("replayed step time against scale")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
