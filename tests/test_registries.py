"""The registries a contributor extends (README: "Adding a collective / an algorithm / a preset")."""
import pytest

from hccl_sim import NetworkModel
from hccl_sim.algorithms import registry
from hccl_sim.collectives import _every_built_collective_described
from hccl_sim.topology import Level, Topology, load_topology
from hccl_sim.topology.registry import PRESETS


def test_an_algorithm_building_a_collective_without_descriptor_is_named():
    registry.REGISTRY["typo"] = registry.Algorithm("typo", "a test", builders={"allreduse": lambda ctx, job, v: []})
    try:
        with pytest.raises(ValueError, match=r"typo build collective 'allreduse', which has no descriptor"):
            _every_built_collective_described()
    finally:
        del registry.REGISTRY["typo"]
    _every_built_collective_described()


def test_a_preset_without_min_npus_loads():
    PRESETS["fixed-test"] = lambda bw="100": Topology("fixed-test", (Level("board", 4, "mesh", float(bw) * 1e9, 1e-6),))
    try:
        topo = load_topology("fixed-test:bw=50", min_npus=4)
        assert topo.num_npus == 4 and topo.levels[0].bandwidth == 50e9
    finally:
        del PRESETS["fixed-test"]


@pytest.mark.parametrize("ranks,mesh_in_auto", [(1024, True), (2048, False)])
def test_auto_leaves_out_algorithms_whose_registered_step_flows_are_too_many(ranks, mesh_in_auto):
    model = NetworkModel(ranks)
    assert ("mesh" in model.applicable("alltoall")) is mesh_in_auto  # p(p-1) against 2 M transfers a step
    assert "ring" in model.applicable("allreduce")
