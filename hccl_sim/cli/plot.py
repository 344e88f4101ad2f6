"""`hccl-sim plot RESULTS`: figures from what bench, predict and sweep write as csv or json (their
``--output`` files and their ``--format csv|json`` output alike; matplotlib, Agg).

- per case family (collective, topology, placement, ranks, dtype, and op, root, ... where the file holds
  several): busbw and modeled time against size, one line per algorithm, the ``auto`` choice overlaid and labelled with the algorithm it picked;
- scaling: busbw and modeled time against the rank count per algorithm, at the largest size, where the
  results hold more than one rank count;
- topology comparison: busbw against size per topology (``auto``'s choice, or else the fastest algorithm
  at each size), where the results hold more than one topology.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict

from ..topology.units import format_size
from . import MissingExtra
from .report import read_results

# what a row must have to be drawn; the configuration columns may be missing (a default stands in)
NEEDED = ("size_bytes", "busbw_GBps", "modeled_time_us")
DEFAULTS = {"collective": "", "topology": "", "placement": "", "ranks": "", "dtype": "", "op": "", "mode": "",
            "root": "", "iters": "", "warmup_iters": "", "check": "", "seed": ""}
# every configuration column that can tell rows apart (requested_algo is a line of its own); a figure
# holds rows alike in all of them but its axis, and those that vary in the file are in its name and title
FAMILY = ("collective", "topology", "placement", "ranks", "dtype", "op", "root", "mode", "iters", "warmup_iters",
          "check", "seed")


def _slug(*parts) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.=+-]+", "-", str(p)).strip("-") for p in parts)


def _families(rows, axis: str, named: tuple[str, ...]):
    """(fields, key, rows, extras) per figure: rows grouped by every FAMILY field but ``axis``; ``extras``
    are the (field, value) pairs that vary in the file and are not among ``named`` (already in the
    figure's name), so that no two figures share a name."""
    fields = tuple(f for f in FAMILY if f != axis)
    varying = {f for f in fields if len({str(r[f]) for r in rows}) > 1}
    for key, group in sorted(_group(rows, fields).items(), key=lambda kv: str(kv[0])):
        extras = [(f, v) for f, v in zip(fields, key)
                  if f in varying and f not in named and v not in ("", "none", -1)]  # none, -1: does not apply
        yield dict(zip(fields, key)), group, extras


def _extra_parts(extras) -> list[str]:
    return [f"{field}={value}" for field, value in extras]


def _extra_title(extras) -> str:
    return "".join(f", {field} {value}" for field, value in extras)


def _group(rows, keys):
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    return groups


def _save(fig, outdir, name, formats, written):
    for fmt in formats:
        path = os.path.join(outdir, f"{name}.{fmt}")
        fig.savefig(path, bbox_inches="tight")
        written.append(path)


def _size_axis(ax):
    from matplotlib.ticker import FuncFormatter
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_size(int(x)) if x >= 1 else ""))
    ax.set_xlabel("size (bytes)")
    ax.grid(True, which="both", alpha=0.3)


def size_figures(rows, outdir, stem, formats, plt) -> list[str]:
    written: list[str] = []
    named = ("collective", "topology", "placement", "ranks", "dtype")
    for key, group, extras in _families(rows, "size_bytes", named):
        coll, topo, place, ranks, dtype, op, root, mode = (key[f] for f in named + ("op", "root", "mode"))
        fig, (bw_ax, t_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
        for algo, pts in _group(group, ("requested_algo",)).items():
            pts = sorted(pts, key=lambda r: r["size_bytes"])
            x = [r["size_bytes"] for r in pts]
            auto = algo[0] == "auto"
            style = dict(color="black", linestyle="--", linewidth=2.5, alpha=0.6, marker="*", markersize=10) \
                if auto else dict(marker="o", linewidth=1.5)
            label = "auto (chosen)" if auto else algo[0]
            bw_ax.plot(x, [r["busbw_GBps"] for r in pts], label=label, **style)
            t_ax.plot(x, [r["modeled_time_us"] for r in pts], label=label, **style)
            if auto:
                for r in pts:
                    bw_ax.annotate(r["algo"], (r["size_bytes"], r["busbw_GBps"]), textcoords="offset points",
                                   xytext=(0, 8), ha="center", fontsize=7)
        for ax in (bw_ax, t_ax):
            _size_axis(ax)
        bw_ax.set_ylabel("busbw (GB/s, modeled)")
        t_ax.set_ylabel("time (us, modeled)")
        t_ax.set_yscale("log")
        bw_ax.legend(fontsize=8)
        fig.suptitle(f"{coll} on {topo}, {ranks} ranks, placement {place}, {dtype}"
                     + (f", {op}" if op not in ("", "none") else "") + (f", root {root}" if root not in ("", -1) else "")
                     + _extra_title((f, v) for f, v in extras if f not in ("op", "root", "mode")) + f" ({mode})")
        _save(fig, outdir, _slug(stem, coll, topo, place, f"{ranks}r", dtype, *_extra_parts(extras), "size"),
              formats, written)
        plt.close(fig)
    return written


def scaling_figures(rows, outdir, stem, formats, plt) -> list[str]:
    written: list[str] = []
    named = ("collective", "topology", "placement", "dtype")
    for key, group, extras in _families(rows, "ranks", named):
        if len({r["ranks"] for r in group}) < 2:
            continue
        coll, topo, place, dtype, mode = (key[f] for f in named + ("mode",))
        size = max(r["size_bytes"] for r in group)
        fig, (bw_ax, t_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
        for algo, pts in _group([r for r in group if r["size_bytes"] == size], ("requested_algo",)).items():
            pts = sorted(pts, key=lambda r: r["ranks"])
            style = dict(color="black", linestyle="--", alpha=0.6, marker="*") if algo[0] == "auto" else dict(marker="o")
            bw_ax.plot([r["ranks"] for r in pts], [r["busbw_GBps"] for r in pts], label=algo[0], **style)
            t_ax.plot([r["ranks"] for r in pts], [r["modeled_time_us"] for r in pts], label=algo[0], **style)
        for ax in (bw_ax, t_ax):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("ranks")
            ax.grid(True, which="both", alpha=0.3)
        bw_ax.set_ylabel("busbw (GB/s, modeled)")
        t_ax.set_ylabel("time (us, modeled)")
        bw_ax.legend(fontsize=8)
        fig.suptitle(f"{coll} scaling on {topo}, {size} B, placement {place}, {dtype}{_extra_title(extras)} ({mode})")
        _save(fig, outdir, _slug(stem, coll, topo, place, dtype, *_extra_parts(extras), "scaling"), formats, written)
        plt.close(fig)
    return written


def topology_figures(rows, outdir, stem, formats, plt) -> list[str]:
    written: list[str] = []
    named = ("collective", "placement", "ranks", "dtype")
    for key, group, extras in _families(rows, "topology", named):
        topologies = sorted({r["topology"] for r in group})
        if len(topologies) < 2:
            continue
        coll, place, ranks, dtype, mode = (key[f] for f in named + ("mode",))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for topo in topologies:
            mine = [r for r in group if r["topology"] == topo]
            best = {}
            auto = [r for r in mine if r["requested_algo"] == "auto"]
            for r in auto or mine:  # auto's choice, or else the fastest algorithm per size
                s = r["size_bytes"]
                if s not in best or r["modeled_time_us"] < best[s]["modeled_time_us"]:
                    best[s] = r
            xs = sorted(best)
            ax.plot(xs, [best[s]["busbw_GBps"] for s in xs], marker="o", label=topo)
        _size_axis(ax)
        ax.set_ylabel("busbw (GB/s, modeled, best algorithm)")
        ax.legend(fontsize=8)
        fig.suptitle(f"{coll}: topologies compared, {ranks} ranks, placement {place}, {dtype}{_extra_title(extras)} "
                     f"({mode})")
        _save(fig, outdir, _slug(stem, coll, place, f"{ranks}r", dtype, *_extra_parts(extras), "topologies"),
              formats, written)
        plt.close(fig)
    return written


def plot_results(path: str, outdir: str | None = None, formats=("png", "svg")) -> list[str]:
    """Write every figure the results support; returns the paths written.

    Raises MissingExtra (naming the extra to install) without matplotlib, ValueError for a file that
    is not results."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtra(f"plot needs matplotlib ({exc}); install it with: pip install 'hccl_sim[plot]'") from None

    for fmt in formats:
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"--formats: {fmt!r} is not one of png, svg, pdf")
    if not os.path.exists(path):
        raise ValueError(f"results file {path!r}: no such file")
    rows = read_results(path)
    missing = [c for c in NEEDED if c not in (rows[0] if rows else ())]
    if rows and missing:
        raise ValueError(f"results file {path!r}: missing column {missing[0]!r}; is it what bench, predict or "
                         "sweep write as csv or json?")
    rows = [{**DEFAULTS, "requested_algo": r.get("algo", ""), **r} for r in rows if r.get("status", "ok") == "ok"]
    if not rows:
        raise ValueError(f"results file {path!r}: no finished cases to plot")
    outdir = outdir or os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--outdir {outdir!r}: cannot create it ({exc.strerror})") from None
    if not os.access(outdir, os.W_OK):
        raise ValueError(f"--outdir {outdir!r}: not writable")
    stem = os.path.splitext(os.path.basename(path))[0]
    written = []
    for make in (size_figures, scaling_figures, topology_figures):
        written += make(rows, outdir, stem, list(formats), plt)
    return written


def run(args) -> int:
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    for path in plot_results(args.results, args.outdir, formats):
        print(path)
    return 0
