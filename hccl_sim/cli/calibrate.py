"""`hccl-sim calibrate FILE... --topology PRESET`: fit the topology's cost terms to measured times.

Reads nccl-tests text or -J JSON output, hccl_test output or CSV (calibration/parsers.py), fits
overhead, link latency, and per protocol regime a step latency and bandwidth factor
(calibration/fit.py), prints measured against modeled per size with the error's geometric mean,
mean and max, and with ``--output`` writes a topology file that every command accepts.
"""
from __future__ import annotations

import os
import sys

from ..calibration.fit import TERMS, calibrate, errors, summary
from ..calibration.parsers import read_measurements
from ..topology import load_topology
from ..topology.units import format_time

TOPOLOGY_SUFFIXES = (".yaml", ".yml", ".json")


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the topology's cost terms to measured collective times")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="nccl-tests output (text or -J JSON), hccl_test output, or CSV (size_bytes with time_us or "
                        "busbw_GBps); several files are fitted together")
    p.add_argument("--topology", required=True, help="preset or topology file the measurements ran on")
    p.add_argument("--ranks", type=int, default=None, help="ranks of the measurements when the files do not say")
    p.add_argument("--collective", default=None, help="collective when the files do not say (e.g. allreduce)")
    p.add_argument("--algo", default=None,
                   help="algorithm the library ran (ring, mesh, ...); default: what auto picks on the topology")
    p.add_argument("--placement", default=None, help="placement of the ranks (see bench --placement)")
    p.add_argument("--place", choices=("out", "in"), default="out", help="nccl-tests columns: out-of-place or in-place")
    p.add_argument("--regimes", type=int, default=None,
                   help="protocol regimes to fit (default: 1..3 chosen by BIC)")
    p.add_argument("--fit", default=",".join(TERMS),
                   help="terms to fit, comma-separated among overhead, bandwidth, latency (default all)")
    p.add_argument("--output", default=None, metavar="FILE.yaml|FILE.json",
                   help="write the calibrated topology as a topology file (accepted by --topology everywhere)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw measured against modeled time")


def run(args) -> int:
    terms = tuple(t.strip() for t in args.fit.split(",") if t.strip())
    bad = [t for t in terms if t not in TERMS]
    if bad or not terms:
        raise ValueError(f"--fit: {bad[0] if bad else '(empty)'!r} is not a term (terms: {', '.join(TERMS)})")
    if args.ranks is not None and args.ranks < 1:
        raise ValueError(f"--ranks must be >= 1, got {args.ranks}")
    if args.output and not args.output.lower().endswith(TOPOLOGY_SUFFIXES):
        raise ValueError(f"--output {args.output!r}: the name must end in {', '.join(TOPOLOGY_SUFFIXES)}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib (pip install 'hccl_sim[plot]')") from None
    measurements, sources = [], []
    for path in args.files:
        rows, source = read_measurements(path, args.ranks, args.collective, args.place)
        said = sorted({m.ranks for m in rows if m.ranks != args.ranks}) if args.ranks is not None else []
        if said:  # the file's own rank count wins; say so rather than fit quietly on another count
            print(f"hccl-sim calibrate: {path}: the file gives {', '.join(map(str, said))} rank(s), which is "
                  f"used instead of --ranks {args.ranks}", file=sys.stderr)
        measurements += rows
        sources.append(source)
    topology = load_topology(args.topology, max(m.ranks or 1 for m in measurements))
    source = f"fitted by hccl-sim calibrate to {', '.join(os.path.basename(f) for f in args.files)}"
    result = calibrate(measurements, topology, args.algo, args.placement, args.regimes, terms, source)
    measured = [m.time for m in measurements]
    print(f"# hccl-sim calibrate: {len(measurements)} measurements from {len(args.files)} file(s) on {topology.name}")
    for s in sources:
        print(f"#   {s}")
    print(f"# fitted: {', '.join(result.fitted) or 'nothing'}")
    print(f"# held at defaults (the data cannot determine them): {', '.join(result.held) or 'none'}")
    for note in result.notes:
        print(f"# {note}")
    print(f"# {result.topology.costs.describe()}")
    scale = result.topology.levels[0].latency / topology.levels[0].latency if topology.levels[0].latency else 1.0
    print(f"# link latencies x{scale:.4g}: " + ", ".join(f"{lv.name} {format_time(lv.latency)}"
                                                       for lv in result.topology.levels))
    print(f"# {'size':>12} {'ranks':>6} {'label':>12} {'algo':>9} {'measured':>11} {'modeled':>11} {'error':>7} "
          f"{'default':>11} {'error':>7}")
    print(f"# {'(B)':>12} {'':>6} {'':>12} {'':>9} {'(us)':>11} {'(us)':>11} {'(%)':>7} {'(us)':>11} {'(%)':>7}")
    after, before = errors(result.modeled, measured), errors(result.before, measured)
    for p, t, b, ea, eb in zip(result.points, result.modeled, result.before, after, before):
        print(f"  {p.m.size:>12} {p.ranks:>6} {p.m.label[:12]:>12} {p.algo[:9]:>9} {p.m.time * 1e6:>11.2f} "
              f"{t * 1e6:>11.2f} {ea * 100:>7.1f} {b * 1e6:>11.2f} {eb * 100:>7.1f}")
    for name, err in (("calibrated", after), ("default", before)):
        gm, mean, worst = summary(err)
        print(f"# error {name:>10}: geometric mean {gm * 100:.2f}%, mean {mean * 100:.2f}%, max {worst * 100:.2f}%")
    if args.output:
        write_topology(args.output, result.topology)
        print(f"# wrote {args.output} (use it as --topology {args.output})")
    if args.plot:
        plot(args.plot, result, measured)
        print(f"# wrote {args.plot}")
    return 0


def write_topology(path: str, topology) -> None:
    """The calibrated topology in the format of its suffix (.yaml/.yml or .json)."""
    import json

    from ..topology.files import topology_to_dict
    data = topology_to_dict(topology)
    lower = path.lower()
    with open(path, "w") as fh:
        if lower.endswith(".json"):
            json.dump(data, fh, indent=2)
            fh.write("\n")
        elif lower.endswith((".yaml", ".yml")):
            import yaml
            yaml.safe_dump(data, fh, sort_keys=False)
        else:
            raise ValueError(f"--output {path!r}: the name must end in {', '.join(TOPOLOGY_SUFFIXES)}")


def plot(path: str, result, measured) -> None:
    """Measured and modeled time against size (log-log), one series per label and rank count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_size = len({p.m.size for p in result.points}) > len({(p.m.label, p.ranks) for p in result.points})
    series: dict = {}
    for i, p in enumerate(result.points):
        series.setdefault((p.m.label, p.ranks) if by_size else (p.m.label,), []).append(i)
    for key, idx in series.items():
        x = [result.points[i].m.size if by_size else result.points[i].ranks for i in idx]
        name = " ".join(str(k) for k in key if k != "") + (" ranks" if by_size else "")
        line, = ax.plot(x, [measured[i] * 1e6 for i in idx], "o", label=f"measured {name}")
        ax.plot(x, [result.modeled[i] * 1e6 for i in idx], "-", color=line.get_color(), label=f"modeled {name}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("size (bytes)" if by_size else "ranks")
    ax.set_ylabel("time per call (us)")
    ax.set_title(f"hccl-sim calibrate on {result.topology.name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
