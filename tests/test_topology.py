"""Topologies, routes, placements and the errors bad input gets."""
import re

import numpy as np
import pytest

from hccl_sim.topology import Level, Placement, Topology, TopologyError, load_topology
from hccl_sim.topology.units import parse_bandwidth, parse_size, parse_time


def test_flat_routes_are_two_links_through_the_switch():
    topo = load_topology("flat", 4)
    routes = topo.routes([0, 3], [1, 0])
    assert [topo.link_name(l) for l in routes[0] if l >= 0] == ["switch uplink of unit 0", "switch downlink of unit 1"]
    assert topo.route_latency(routes).tolist() == pytest.approx([1.2e-6, 1.2e-6])


def test_two_level_routes_climb_only_as_far_as_needed():
    topo = load_topology("two-level:server=4,servers=2")
    inside, across = topo.routes([0, 0], [1, 5])
    assert [topo.link_name(l) for l in inside if l >= 0] == ["server uplink of unit 0", "server downlink of unit 1"]
    assert [topo.link_name(l) for l in across if l >= 0] == [
        "server uplink of unit 0", "server downlink of unit 5", "top uplink of unit 0", "top downlink of unit 1"]


def test_mesh_levels_hop_dimension_by_dimension():
    # a 2D full mesh of 4x4 under a switch: (0,0) -> (2,3) goes along dim 0 then dim 1
    topo = Topology("m", (Level("board", 4, "mesh", 50e9, 1e-7), Level("rack", 4, "mesh", 50e9, 1e-7),
                          Level("pod", 2, "switch", 400e9, 1e-6)))
    route = topo.routes([0], [2 + 4 * 3])[0]
    assert [topo.link_name(l) for l in route if l >= 0] == ["board mesh link npu0>npu2", "rack mesh link npu2>npu14"]
    across = topo.routes([0], [16])[0]
    assert [topo.link_name(l) for l in across if l >= 0] == ["pod uplink of unit 0", "pod downlink of unit 1"]
    # every directed mesh link exists once: 32 NPUs x 3 peers x 2 mesh levels, plus 2 x 2 pod links
    assert topo.num_links == 32 * 3 * 2 + 4


def test_oversubscription_divides_bandwidth():
    topo = load_topology("two-level:server=2,servers=2,inter_bw=100GB/s,oversub=4")
    bw, _ = topo.link_arrays()
    assert bw[-1] == 25e9


@pytest.mark.parametrize("level,field", [
    (Level("x", 0), "size"), (Level("x", 2, bandwidth=-1.0), "bandwidth"),
    (Level("x", 2, bandwidth=float("nan")), "bandwidth"), (Level("x", 2, latency=-1e-6), "latency"),
    (Level("x", 2, kind="torus"), "kind"), (Level("x", 2, oversubscription=0.0), "oversubscription"),
])
def test_bad_levels_name_the_field(level, field):
    with pytest.raises(TopologyError, match=rf"levels\[0\]\.{field}"):
        Topology("t", (level,))


def test_mesh_above_switch_is_refused():
    with pytest.raises(TopologyError, match="mesh levels must lie below"):
        Topology("t", (Level("a", 2), Level("b", 2, "mesh")))


@pytest.mark.parametrize("spec,message", [
    ("linear", "need more NPUs"), ("list:0,0,1", "same NPU"), ("list:0,1,99", "outside"),
    ("per-group:9", "per-group"), ("diagonal", "unknown placement"),
])
def test_impossible_placements(spec, message):
    topo = load_topology("two-level:server=4,servers=2")
    nranks = 9 if spec == "linear" else 3
    with pytest.raises(TopologyError, match=message):
        Placement.build(spec, nranks, topo)


def test_placements():
    topo = load_topology("two-level:server=4,servers=2")
    assert Placement.build("spread", 4, topo).npus == (0, 4, 1, 5)
    assert Placement.build("per-group:2", 4, topo).npus == (0, 1, 4, 5)


def test_placement_policies_come_from_one_registry():
    from hccl_sim.topology.placement import POLICIES, host_placement
    topo = load_topology("two-level:server=4,servers=2")
    for bad in ("linear:2", "list", "bogus"):  # an argument where none is taken, none where one is needed
        with pytest.raises(TopologyError, match="unknown placement .*" + re.escape(", ".join(
                p.usage for p in POLICIES.values()))):
            Placement.build(bad, 3, topo)
    assert Placement.build(host_placement("hosts", ["a", "b", "a"], topo), 3, topo).npus == (0, 4, 1)


def test_topology_file_round_trip_and_errors(tmp_path):
    good = tmp_path / "pod.yaml"
    good.write_text("name: pod\nlevels:\n  - {name: server, size: 4, bandwidth: 100GB/s, latency: 1us}\n"
                    "  - {name: top, size: 2, bandwidth: 50GB/s, latency: 2us, oversubscription: 2}\n")
    topo = load_topology(str(good), 8)
    assert topo.num_npus == 8 and topo.levels[1].link_bandwidth == 25e9
    bad = tmp_path / "bad.yaml"
    bad.write_text("levels:\n  - {size: 4, bandwidth: fast, latency: 1us}\n")
    with pytest.raises(TopologyError, match=r"levels\[0\]\.bandwidth"):
        load_topology(str(bad))
    bad.write_text("levels:\n  - {size: 4, latency: 1us}\n")
    with pytest.raises(TopologyError, match=r"levels\[0\]\.bandwidth: missing"):
        load_topology(str(bad))
    bad.write_text("levels: [\n")
    with pytest.raises(TopologyError, match="not valid"):
        load_topology(str(bad))
    with pytest.raises(TopologyError, match="no such file"):
        load_topology(str(tmp_path / "missing.yaml"))


def test_units():
    assert parse_size("8K") == 8192 and parse_size("64M") == 64 << 20
    assert parse_bandwidth("392GB/s") == 392e9 and parse_bandwidth("400Gb/s") == 50e9
    assert parse_time("1.2us") == pytest.approx(1.2e-6)
    with pytest.raises(ValueError):
        parse_size("lots")


def test_unknown_preset_parameter_is_named():
    with pytest.raises(TopologyError, match="unknown parameter 'speed'"):
        load_topology("flat:speed=3")
