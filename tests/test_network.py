"""The UB network model: presets, bisection, topology files with placements, contention and faults.

Hand calculations use a = latency of a route, x = bytes / link bandwidth.
"""
import importlib
import subprocess
import sys

import numpy as np
import pytest

from hccl_sim.algorithms import Schedule, StepBuilder
from hccl_sim.cli import main as cli
from hccl_sim.planning import NetworkModel
from hccl_sim.timing import TimingModel
from hccl_sim.topology import PRESETS, Level, Placement, Topology, TopologyError, load_topology
from hccl_sim.topology.faults import apply_faults

BW, LAT = 100e9, 1e-6

PRESET_NPUS = {
    "cloudmatrix384": 384, "atlas950-superpod": 8192, "atlas960-superpod": 15488,
    "atlas950-supercluster": 64 * 8192, "atlas960-supercluster": 65 * 15488, "ubmesh-pod": 1024,
    "nvl72": 72, "nvl144": 144, "dgx-h100": 256,
}


# ---- presets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESET_NPUS))
def test_presets_have_their_published_sizes_and_state_their_sources(name):
    topo = load_topology(name)
    assert topo.num_npus == PRESET_NPUS[name]
    doc = importlib.import_module(PRESETS[name].__module__).__doc__
    assert "Source" in doc and "ssumption" in doc  # each preset says where its figures come from


def test_supercluster_presets_reach_their_scales():
    assert load_topology("atlas950-supercluster").num_npus == 524_288
    assert load_topology("atlas960-supercluster").num_npus > 1_000_000
    # an Atlas 950 NPU: 7 + 7 mesh links of 64 GB/s and 128 GB/s to the Clos = 1,024 GB/s a direction
    assert load_topology("atlas950-superpod").injection_bandwidth() == pytest.approx(1024e9)


def test_sized_to_fit_presets_grow_with_the_ranks():
    assert load_topology("nvl72", 200).num_npus == 216  # three racks
    assert load_topology("nvl144:racks=4").num_npus == 576
    assert load_topology("dgx-h100", 8).num_npus == 256  # one scalable unit at least


def test_bisection_hand_calculations():
    # a switch of 8: the cut carries 4 NPUs' up links
    assert load_topology("flat:npus=8,bw=100GB/s").bisection_bandwidth() == pytest.approx(4 * 100e9)
    # 4 servers on a top switch of 50 GB/s ports: 2 server uplinks cross the cut
    two = load_topology("two-level:server=8,servers=4,inter_bw=50GB/s")
    assert two.bisection_bandwidth() == pytest.approx(2 * 50e9)
    # a 2 x 4 mesh: the top dimension (4) splits 2|2, four crossing links in each of 2 rows
    mesh = Topology("m", (Level("a", 2, "mesh", BW, LAT), Level("b", 4, "mesh", BW, LAT)))
    assert mesh.bisection_bandwidth() == pytest.approx(2 * 2 * 2 * BW)
    # Atlas 950 SuperPoD: 64 of 128 cabinets' 64 x 128 GB/s uplinks
    assert load_topology("atlas950-superpod").bisection_bandwidth() == pytest.approx(64 * 64 * 128e9)


def test_topology_list_and_show_describe_every_preset(capsys):
    assert cli(["topology", "list"]) == 0
    out = capsys.readouterr().out
    for name in PRESET_NPUS:
        assert name in out
    assert "bisection" in out
    assert cli(["topology", "show", "atlas950-superpod"]) == 0
    out = capsys.readouterr().out
    assert "8192 NPUs" in out and "mesh of 8" in out and "bisection 524.288 TB/s" in out


# ---- topology files: levels, placement, faults ----------------------------------------------------
def test_topology_file_with_mesh_levels_placement_and_faults(tmp_path):
    path = tmp_path / "pod.yaml"
    path.write_text(
        "name: pod\n"
        "levels:\n"
        "  - {name: board, kind: mesh, size: 4, bandwidth: 100GB/s, latency: 1us}\n"
        "  - {name: top, kind: switch, size: 4, bandwidth: 50GB/s, latency: 2us}\n"
        "placement: per-group:2@board\n"
        "faults: ['down:npu0-npu1', 'late:npu4=3us']\n")
    topo = load_topology(str(path))
    assert topo.num_npus == 16
    # 8 ranks as 4 boards x 2 NPUs
    assert Placement.build(None, 8, topo).npus == (0, 1, 4, 5, 8, 9, 12, 13)
    assert topo.faults.late_npus == ((4, 3e-6),)
    assert len(topo.faults.links_down) == 2
    toml = tmp_path / "pod.toml"
    toml.write_text('name = "pod"\nplacement = [3, 2, 1, 0]\n[[levels]]\nname = "board"\nkind = "mesh"\n'
                    'size = 4\nbandwidth = "100GB/s"\nlatency = "1us"\n')
    assert Placement.build(None, 4, load_topology(str(toml))).npus == (3, 2, 1, 0)


@pytest.mark.parametrize("text, message", [
    ("placement: 7", r"placement: expected a placement name"),
    ("placement: [0, x]", r"placement: a list of NPU indices"),
    ("placement: [0, 9]", r"NPU 9 is outside"),
    ("placement: per-group:2@rack", r"has no level 'rack'"),
    ("faults: [bogus:1]", r"unknown fault 'bogus'"),
    ("faults: 3", r"faults: expected a list"),
])
def test_topology_file_errors_name_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text("levels:\n  - {name: board, kind: mesh, size: 4, bandwidth: 100GB/s, latency: 1us}\n" + text + "\n")
    with pytest.raises(TopologyError, match=message):
        load_topology(str(path))


# ---- contention ----------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [1, 2, 4])
def test_oversubscribed_level_slows_a_cross_level_ring_by_r(r):
    # 4 servers, one rank each: every ring hop climbs to the top level, whose ports carry one flow at
    # link_bandwidth = 50 GB/s / r (the intra-server links are far faster). Per step a + (n/p) r / 50e9.
    p, n = 4, 4 * 4 * 1000
    topo = load_topology(f"two-level:server=2,servers={p},intra_bw=10TB/s,inter_bw=50GB/s,intra_lat=0,"
                         f"inter_lat=1us,oversub={r}")
    model = NetworkModel(p, topo, "per-group:1")
    a = 2e-6
    expected = 2 * (p - 1) * (a + n / p * r / 50e9)
    assert model.time("allreduce", "ring", n // 4, 4).time == pytest.approx(expected, rel=1e-12)


# ---- faults --------------------------------------------------------------------------------------
def _mesh(p, faults=""):
    topo = Topology("m", (Level("board", p, "mesh", BW, LAT),))
    return apply_faults(topo, faults) if faults else topo


def test_degraded_link_halves_its_bandwidth():
    # ring allgather over 2 NPUs of a mesh: 0->1 at half bandwidth sets the pace: a + (n/2) / (BW/2)
    n = 8000
    model = NetworkModel(2, _mesh(2, "slow:npu0>npu1=0.5"))
    assert model.time("allgather", "ring", n // 4, 4).time == pytest.approx(LAT + (n / 2) / (BW / 2), rel=1e-12)


def test_down_mesh_link_detours_through_another_member():
    # ring allgather over a 3-mesh with 0>1 down: 0 -> 2 -> 1 (2a + x) while 1->2 and 2->0 take a + x;
    # rank 1 starts its second step at 2a + x, so the call ends at 2(2a + x).
    n = 3 * 4000
    x = n / 3 / BW
    healthy = NetworkModel(3, _mesh(3)).time("allgather", "ring", n // 4, 4).time
    assert healthy == pytest.approx(2 * (LAT + x), rel=1e-12)
    topo = _mesh(3, "down:npu0>npu1")
    routes = topo.routes(np.array([0]), np.array([1]))
    assert sorted(routes[routes >= 0].tolist()) == sorted([topo.mesh_link(0, 0, 2), topo.mesh_link(0, 2, 1)])
    assert NetworkModel(3, topo).time("allgather", "ring", n // 4, 4).time == pytest.approx(2 * (2 * LAT + x), rel=1e-12)


def test_down_link_without_a_detour_is_a_clear_error():
    topo = _mesh(3, "down:npu0>npu1;down:npu0>npu2")
    with pytest.raises(TopologyError, match=r"board mesh link npu0>npu1 is down and m offers no other path from npu0 to npu1"):
        NetworkModel(3, topo).time("allgather", "ring", 300, 4)
    topo = load_topology("two-level:server=2,servers=2|down:top:1:down")
    with pytest.raises(TopologyError, match=r"top downlink of unit 1 is down .* no other path from npu[01] to npu[23]"):
        NetworkModel(4, topo).time("allreduce", "ring", 1000, 4)


def test_straggler_slows_its_links_and_its_reduces():
    n = 8000
    # its own links at half speed: ring allgather of 2 is a + (n/2) / (BW/2)
    model = NetworkModel(2, _mesh(2, "straggler:npu1=2"))
    assert model.time("allgather", "ring", n // 4, 4).time == pytest.approx(LAT + n / BW, rel=1e-12)
    # reduce rate 400 GB/s, the straggler's 200 GB/s: ring reduce-scatter of 2 ends with its reduce
    topo = Topology("m", (Level("board", 2, "mesh", 1e15, 0.0),), reduce_bandwidth=400e9)
    slow = NetworkModel(2, apply_faults(topo, "straggler:1=2;slow:npu1>npu0=1e-3;slow:npu0>npu1=2"))
    t = slow.time("reduce_scatter", "ring", n // 4, 4, record=True).transfers
    reduce_time = t.done - t.arrive
    assert reduce_time.tolist() == pytest.approx([(n / 2) / 200e9, (n / 2) / 400e9], rel=1e-12)


def test_late_npu_enters_late():
    n = 4 * 4000
    late = NetworkModel(4, _mesh(4, "late:npu2=5us"))
    healthy = NetworkModel(4, _mesh(4))
    got = late.time("allreduce", "ring", n // 4, 4)
    want = healthy.time("allreduce", "ring", n // 4, 4, entry=[0, 0, 5e-6, 0])
    assert got.exit.tolist() == want.exit.tolist()


def test_latency_jitter_is_seeded_and_reproducible():
    base = load_topology("flat:npus=4096,lat=1us")
    a = load_topology("flat:npus=4096,lat=1us|jitter=0.5us;seed=7").link_arrays()[1]
    b = load_topology("flat:npus=4096,lat=1us|jitter=0.5us;seed=7").link_arrays()[1]
    c = load_topology("flat:npus=4096,lat=1us|jitter=0.5us;seed=8").link_arrays()[1]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    extra = a - base.link_arrays()[1]
    assert (extra >= 0).all() and extra.mean() == pytest.approx(0.5e-6, rel=0.05)  # exponential, mean 0.5 us
    t1 = NetworkModel(8, "flat|jitter=0.5us;seed=7").time("allreduce", "ring", 1000, 4).time
    t2 = NetworkModel(8, "flat|jitter=0.5us;seed=7").time("allreduce", "ring", 1000, 4).time
    assert t1 == t2 > NetworkModel(8, "flat").time("allreduce", "ring", 1000, 4).time


@pytest.mark.parametrize("spec, message", [
    ("flat|melt:npu0", r"unknown fault 'melt'"),
    ("flat:npus=4|straggler:npu9=2", r"NPU 9 is outside flat"),
    ("flat:npus=4|straggler:npu1=0", r"straggler factor for 1 must be positive"),
    ("flat:npus=4|slow:npu0-npu1=0.5", r"npu0 and npu1 are not joined by a mesh link"),
    ("flat:npus=4|slow:switch:7=0.5", r"unit '7' is not one of level switch's units"),
    ("flat:npus=4|down:spine:0", r"has no level 'spine'"),
    ("flat:npus=4|slow:switch:1=fast", r"'fast' is not a number"),
    ("flat:npus=4|late:npu1=-1us", r"must be finite and >= 0"),
    ("flat:npus=4|down:#99", r"'#99' is not a link id"),
])
def test_fault_errors_name_the_problem(spec, message):
    with pytest.raises(TopologyError, match=message):
        load_topology(spec)


def test_cli_faults_change_the_prediction_and_errors_exit_cleanly(capsys):
    args = ["predict", "allreduce", "--size", "1M", "--ranks", "8", "--topology", "atlas950-superpod",
            "--algo", "ring", "--format", "json"]
    assert cli(args) == 0
    healthy = capsys.readouterr().out
    assert cli(args + ["--faults", "slow:npu0>npu1=0.25"]) == 0
    degraded = capsys.readouterr().out
    import json
    t0, t1 = json.loads(healthy)[0]["modeled_time_us"], json.loads(degraded)[0]["modeled_time_us"]
    assert t1 > t0
    # a case that cannot run is reported on its row, with the reason, and the command fails
    assert cli(["predict", "allreduce", "--ranks", "16", "--topology", "two-level", "--faults", "down:top:1"]) == 1
    assert "no other path" in capsys.readouterr().out


def test_faulted_topology_predicts_at_superpod_scale():
    # a degraded cabinet uplink in the full Atlas 950 SuperPoD: the ring is as slow as its slowest hop
    healthy = NetworkModel(8192, "atlas950-superpod").time("allreduce", "ring", 1 << 22, 4).time
    slow = NetworkModel(8192, "atlas950-superpod|slow:superpod:5=0.01").time("allreduce", "ring", 1 << 22, 4).time
    assert slow > healthy
