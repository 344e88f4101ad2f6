"""Chrome trace (Trace Event Format) of one collective's modeled timeline: opens in chrome://tracing and
https://ui.perfetto.dev.

One process per rank (pid = rank, named after its NPU) with a "steps" thread (each schedule step as the
rank lived it: from finishing its previous step to finishing this one) and lanes of transfers: a send
lasts from its post to its arrival at the receiver, a receive from the post to the moment the data is in
(reduced, if it is a reduce). Transfers that overlap on one rank go to separate lanes, so every thread
holds properly nested slices. A "links" process carries one counter track per link that any transfer
crosses: the bandwidth in use (GB/s) and the utilisation, recomputed from the engine's own max-min fair
rates between the moments flows start and stop. Times are modeled microseconds.

    from hccl_sim.trace import write_trace
    write_trace("allreduce.json", model, "allreduce", "ring", count=1 << 20, itemsize=4)
    trace_last_call(comm, "last.json")   # under mpirun, the communicator's last call
"""
from __future__ import annotations

import json

import numpy as np

from .dtypes import dtype_from_name
from .timing import TimingResult, max_min_rates

_US = 1e6
STEP_TID, SEND_TID, RECV_TID = 0, 1, 1000  # send lanes 1.., receive lanes 1000..


def chrome_trace(model, collective: str, algo: str, count: int, itemsize: int, entry=None,
                 title: str | None = None) -> dict:
    """The trace of one call of ``collective`` with ``algo`` (resolved, not ``auto``) on ``model``."""
    if algo in (None, "auto"):
        algo = model.resolve(collective, algo, count, itemsize)
    timing = model.time(collective, algo, count, itemsize, entry, record=True)
    return timeline_events(timing, model.topology, model.placement.npus,
                           title or f"{collective} {algo} {count * itemsize} B on {model.nranks} ranks "
                                    f"({model.topology.name})")


def timeline_events(timing: TimingResult, topology, npus, title: str = "") -> dict:
    """Trace events from a TimingResult with per-transfer records (``TimingModel.run(..., record=True)``)."""
    if timing.transfers is None:
        raise ValueError("timing: per-transfer records are missing; run the timing model with record=True")
    rec = timing.transfers
    nranks = len(timing.entry)
    step, src, dst = rec.step, rec.src, rec.dst
    nbytes, post, out, arrive, done = rec.bytes, rec.post, rec.out, rec.arrive, rec.done
    npus = [int(n) for n in npus]
    events: list[dict] = [{"ph": "M", "name": "process_name", "pid": r, "tid": 0,
                           "args": {"name": f"rank {r} (npu {npus[r]})"}} for r in range(nranks)]
    events += [{"ph": "M", "name": "process_sort_index", "pid": r, "tid": 0, "args": {"sort_index": r}}
               for r in range(nranks)]
    lanes_used: dict[tuple[int, int], None] = {}

    # steps: a rank finishes a step when its last transfer of it completes (a sender when the data has
    # arrived, a receiver when it is in), and enters its next step then
    for r in range(nranks):
        mine = np.nonzero((src == r) | (dst == r))[0]
        t0 = float(timing.entry[r])
        ends: dict[int, float] = {}
        for t in mine.tolist():
            finish = arrive[t] if src[t] == r else done[t]
            ends[int(step[t])] = max(ends.get(int(step[t]), -np.inf), float(finish))
        for s in sorted(ends):
            end = max(t0, ends[s])
            events.append(_slice(f"step {s}", "step", r, STEP_TID, t0, end, {"step": s}))
            t0 = end
        if not ends:  # a rank with nothing to do still shows its (empty) part of the call
            events.append(_slice("idle", "step", r, STEP_TID, t0, float(timing.exit[r]), {}))

    # transfers, each in the first lane of its rank that is free by then
    for kind, who, peer, tid0, ends in (("send", src, dst, SEND_TID, arrive), ("recv", dst, src, RECV_TID, done)):
        free_at: dict[int, list[float]] = {}
        for t in np.lexsort((ends, post)).tolist():
            lanes = free_at.setdefault(int(who[t]), [])
            lane = next((i for i, f in enumerate(lanes) if f <= post[t]), len(lanes))
            if lane == len(lanes):
                lanes.append(0.0)
            lanes[lane] = float(ends[t])
            lanes_used[(int(who[t]), tid0 + lane)] = None
            arrow = "→" if kind == "send" else "←"
            events.append(_slice(f"{kind} {arrow} {int(peer[t])}", kind, int(who[t]), tid0 + lane, float(post[t]),
                                 float(ends[t]), {"step": int(step[t]), "src": int(src[t]), "dst": int(dst[t]),
                                                  "bytes": int(nbytes[t]), "post_us": float(post[t]) * _US,
                                                  "last_byte_out_us": float(out[t]) * _US,
                                                  "arrival_us": float(arrive[t]) * _US,
                                                  "done_us": float(done[t]) * _US}))
    for r in range(nranks):
        events.append({"ph": "M", "name": "thread_name", "pid": r, "tid": STEP_TID, "args": {"name": "steps"}})
    for r, tid in sorted(lanes_used):
        name = f"send lane {tid - SEND_TID}" if tid < RECV_TID else f"recv lane {tid - RECV_TID}"
        events.append({"ph": "M", "name": "thread_name", "pid": r, "tid": tid, "args": {"name": name}})

    events += link_counters(rec, topology, npus, pid=nranks)
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"title": title, "ranks": nranks, "time_us": float(timing.time) * _US,
                          "topology": topology.name, "npus": npus}}


def link_counters(rec: np.recarray, topology, npus, pid: int) -> list[dict]:
    """Per-link bandwidth in use over time, from the max-min fair rates of the flows active in each interval.

    A flow is active from its post to its last byte out (the interval the engine gives it bandwidth); the
    set of active flows, hence every rate, is constant between consecutive such moments.
    """
    npus = np.asarray(npus, dtype=np.int64)
    flowing = np.nonzero((rec.bytes > 0) & (rec.out > rec.post))[0]
    events = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "links"}},
              {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}}]
    if not len(flowing):
        return events
    src, dst = rec.src[flowing], rec.dst[flowing]
    routes = topology.routes(npus[src], npus[dst])
    capacity, _ = topology.link_arrays()
    start, stop = rec.post[flowing], rec.out[flowing]
    links = np.unique(routes[routes >= 0])
    names = {int(l): topology.link_name(int(l)) for l in links}
    times = np.unique(np.concatenate([start, stop]))
    last: dict[int, float] = {}
    for i, t in enumerate(times.tolist()):
        active = np.nonzero((start <= t) & (stop > t))[0] if i + 1 < len(times) else np.zeros(0, int)
        used = np.zeros(len(capacity))
        if len(active):
            rates = max_min_rates(routes[active], capacity)
            for row, rate in zip(routes[active], rates):
                used[row[row >= 0]] += rate
        for l in links.tolist():
            if last.get(l) != used[l]:
                last[l] = used[l]
                events.append({"ph": "C", "name": names[l], "pid": pid, "tid": 0, "ts": t * _US,
                               "args": {"GB/s": float(used[l]) / 1e9,
                                        "utilisation": float(used[l] / capacity[l])}})
    return events


def _slice(name, cat, pid, tid, start, end, args) -> dict:
    return {"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid, "ts": start * _US,
            "dur": max(end - start, 0.0) * _US, "args": args}


def write_trace(path: str, model, collective: str, algo: str, count: int, itemsize: int, entry=None) -> dict:
    """Write the trace of one call to ``path`` (JSON); returns the trace."""
    trace = chrome_trace(model, collective, algo, count, itemsize, entry)
    with open(path, "w") as f:
        json.dump(trace, f)
    return trace


def trace_last_call(comm, path: str | None = None) -> dict:
    """The trace of a Communicator's last call, with the ranks' real entry clocks; rank 0 writes ``path``."""
    if comm.last is None:
        raise ValueError("trace_last_call: the communicator has not run a collective yet")
    last = comm.last
    itemsize = dtype_from_name(last.dtype).itemsize
    trace = chrome_trace(comm.model, last.collective, last.algo, last.count, itemsize, comm.last_timing.entry)
    if path is not None and comm.rank == 0:
        with open(path, "w") as f:
            json.dump(trace, f)
    return trace
