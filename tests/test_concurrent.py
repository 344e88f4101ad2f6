"""Several collectives at once on one topology (``hccl_sim.predict_many``, ``TimingModel.run_many``)."""
import numpy as np
import pytest

import hccl_sim
from hccl_sim import Call, predict_many
from hccl_sim.algorithms import Schedule, StepBuilder
from hccl_sim.timing import TimingModel
from hccl_sim.topology import load_topology

SPEC = "two-level:server=4,servers=2,intra_bw=400GB/s,inter_bw=100GB/s,intra_lat=1us,inter_lat=2us"


def one_transfer(p, src, dst, nbytes, collective):
    sched = Schedule(collective, "custom", p, nbytes)
    sched.append(StepBuilder().add(src, dst, 0, 0, nbytes))
    return sched


def test_two_flows_of_different_collectives_on_one_link_each_get_half():
    # job A's rank 0 (npu 0) sends to npu 4, job B's rank 0 (npu 1) to npu 5: both cross server 0's uplink
    topo = load_topology(SPEC)
    n = 1 << 20
    a, b = one_transfer(2, 0, 1, n, "send"), one_transfer(2, 0, 1, n, "recv")
    model = TimingModel(topo, np.arange(8))
    alone = TimingModel(topo, [0, 4]).run(a, 1).time
    latency = 2 * 1e-6 + 2 * 2e-6
    assert alone == pytest.approx(latency + n / 100e9, rel=1e-12)
    both = model.run_many([(a, 1, [0, 4], None), (b, 1, [1, 5], None)])
    for result in both:  # each had half of the uplink all along
        assert result.time == pytest.approx(latency + n / 50e9, rel=1e-12)
    # B posted when A is half done: A gets half for its second half, B half, then B alone
    later = model.run_many([(a, 1, [0, 4], None), (b, 1, [1, 5], n / 2 / 100e9)])
    assert later[0].time == pytest.approx(latency + n / 2 / 100e9 + n / 2 / 50e9, rel=1e-12)
    assert later[1].time == pytest.approx(latency + n / 2 / 50e9 + n / 2 / 100e9, rel=1e-12)


@pytest.mark.parametrize("algo", ["ring", "rhd", "hier"])
def test_a_collective_alone_in_the_list_gives_exactly_its_single_schedule_time(algo):
    topo = "two-level:server=8"
    alone = hccl_sim.predict("allreduce", 1 << 20, 32, topology=topo, algo=algo)
    many = predict_many([Call("allreduce", 1 << 20, range(32), algo)], topology=topo)
    assert many[0].time == alone.time and many[0].alone == alone.time and many[0].algo == algo


def test_tensor_parallel_and_data_parallel_groups_slow_each_other_where_they_share_links():
    # 64 NPUs in servers of 8: TP groups of 8 (one server), DP groups of 8 across the servers; both use the
    # NPUs' links to their server switch
    topo = "two-level:server=8"
    tp = [Call("allreduce", 16 << 20, range(g * 8, g * 8 + 8), "ring") for g in range(8)]
    dp = [Call("reduce_scatter", 64 << 20, range(i, 64, 8), "ring") for i in range(8)]
    both = predict_many(tp + dp, topology=topo)
    tp_only, dp_only = predict_many(tp, topology=topo), predict_many(dp, topology=topo)
    for together, apart in zip(both, tp_only + dp_only):
        assert together.time >= apart.time * (1 - 1e-12)
    assert max(p.time for p in both[:8]) > max(p.time for p in tp_only) * 1.01  # TP waits for shared links
    assert all(p.end == pytest.approx(p.start + p.time) for p in both)


def test_bad_calls_are_named():
    with pytest.raises(ValueError, match="call 1 .*ranks must be distinct"):
        predict_many([Call("allreduce", 1024, [0, 1]), Call("allreduce", 1024, [2, 2])], topology="flat")
    with pytest.raises(ValueError, match="has 2 ranks but 3 NPUs"):
        TimingModel(load_topology(SPEC), np.arange(8)).run_many([(one_transfer(2, 0, 1, 8, "x"), 1, [0, 1, 2], None)])


def test_readme_example_tensor_and_data_parallel_on_a_superpod():
    """The figures README "Timing" shows."""
    tp = [Call("allreduce", 32 << 20, range(b * 8, b * 8 + 8)) for b in range(64)]
    dp = [Call("reduce_scatter", 256 << 20, range(i, 512, 8)) for i in range(8)]
    both = predict_many(tp + dp, topology="atlas950-superpod")
    assert round(both[0].time * 1e3, 3) == round(both[0].alone * 1e3, 3) == 0.525
    assert (round(both[-1].time * 1e3, 3), round(both[-1].alone * 1e3, 3)) == (7.341, 0.919)


def test_table_transforms_apply_per_transfer_cost_terms():
    """A cost term applied by transforming the transfer table: here 80% of line rate (bytes / 0.8)."""
    topo = load_topology(SPEC)
    sched = one_transfer(2, 0, 1, 1 << 20, "send")
    model = TimingModel(topo, [0, 4])
    model.table_transforms.append(lambda t: t.replace(bytes=t.bytes / 0.8))
    assert model.run(sched, 1).time == pytest.approx(2e-6 + 4e-6 + (1 << 20) / 0.8 / 100e9, rel=1e-12)
