"""Chrome traces of a modeled call: valid Trace Event Format, every rank covered, and faithful to the engine."""
import json
from collections import defaultdict

import numpy as np
import pytest

from hccl_sim import NetworkModel
from hccl_sim.trace import chrome_trace, timeline_events, write_trace


def _check_format(trace, nranks):
    """The parts of the Trace Event Format the viewers rely on."""
    assert isinstance(trace["traceEvents"], list)
    for e in trace["traceEvents"]:
        assert e["ph"] in ("X", "M", "C") and isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0 and isinstance(e["name"], str)
        if e["ph"] == "C":
            assert all(isinstance(v, float) for v in e["args"].values())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in slices} == set(range(nranks))
    # every thread holds slices that do not partially overlap (viewers need proper nesting)
    lanes = defaultdict(list)
    for e in slices:
        lanes[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in lanes.values():
        spans.sort()
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert b0 >= a1 - 1e-9 * max(1.0, a1), (a0, a1, b0, b1)


@pytest.mark.parametrize("topology,nranks,algo", [("two-level:server=2", 4, "ring"), ("flat", 5, "rhd"),
                                                  ("two-level:server=4", 8, "hier:ring/rhd"), ("flat", 3, "tree")])
def test_trace_is_valid_and_matches_the_engine(tmp_path, topology, nranks, algo):
    model = NetworkModel(nranks, topology)
    count, itemsize = 3 << 14, 4
    path = tmp_path / "t.json"
    write_trace(str(path), model, "allreduce", algo, count, itemsize)
    trace = json.loads(path.read_text())
    _check_format(trace, nranks)
    timing = model.time("allreduce", algo, count, itemsize, record=True)
    assert trace["otherData"]["time_us"] == pytest.approx(timing.time * 1e6, rel=1e-12)

    # each rank's steps end where the engine says its call ends
    steps = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "step"]
    for r in range(nranks):
        end = max(e["ts"] + e["dur"] for e in steps if e["pid"] == r)
        assert end == pytest.approx(timing.exit[r] * 1e6, rel=1e-9)
    # one send and one receive slice per transfer of the schedule
    rec = timing.transfers
    sends = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "send"]
    recvs = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "recv"]
    assert len(sends) == len(recvs) == len(rec)

    # link counters: never above capacity, and the bandwidth they show integrates to the bytes routed
    counters = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "C":
            assert e["pid"] == nranks
            assert 0 <= e["args"]["utilisation"] <= 1 + 1e-9
            counters[e["name"]].append((e["ts"] * 1e-6, e["args"]["GB/s"] * 1e9))
    routed = defaultdict(float)
    topo, npus = model.topology, np.array(model.placement.npus)
    routes = topo.routes(npus[rec.src], npus[rec.dst])
    for row, nbytes in zip(routes, rec.bytes):
        for link in row[row >= 0]:
            routed[topo.link_name(int(link))] += nbytes
    assert set(counters) == {k for k, v in routed.items() if v > 0}
    for name, points in counters.items():
        points.sort()
        carried = sum(rate * (t1 - t0) for (t0, rate), (t1, _) in zip(points, points[1:]))
        assert points[-1][1] == 0.0
        assert carried == pytest.approx(routed[name], rel=1e-6)


def test_shared_uplink_shows_in_the_counters():
    """RHD's cross-server step sends two flows out of each server at once: each gets half the uplink, so the
    counter shows the uplink full (not double), and the send slices of that step overlap on the server."""
    model = NetworkModel(4, "two-level:server=2")
    trace = chrome_trace(model, "allreduce", "rhd", 1 << 16, 4)
    ups = [e for e in trace["traceEvents"] if e["ph"] == "C" and e["name"] == "server uplink of unit 0"]
    assert ups and max(e["args"]["utilisation"] for e in ups) == pytest.approx(1.0)
    cross = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "send" and e["pid"] in (0, 1)
             and e["args"]["dst"] in (2, 3)]
    assert len(cross) >= 2 and cross[0]["ts"] == cross[1]["ts"]


def test_trace_needs_records():
    model = NetworkModel(2)
    timing = model.time("allreduce", "ring", 8, 4)
    with pytest.raises(ValueError, match="record=True"):
        timeline_events(timing, model.topology, model.placement.npus)
