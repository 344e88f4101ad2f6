"""The torch backend launched as torch users launch it (torch.multiprocessing.spawn, file:// rendezvous,
no MPI: the gloo transport), against gloo on the same inputs, and overlap in modeled time.

One spawn of 2 ranks runs every check (a spawn costs seconds); a failing rank's assertion reaches pytest
through mp.spawn's ProcessRaisedException, with its traceback."""
import os
import sys

import pytest
import torch
import torch.multiprocessing as mp



def _enter_together(dist, hccl_torch):
    """Set every rank's compute clock and stream to the latest rank's (so the next call has no skew)."""
    tl = hccl_torch.timeline()
    hccl_torch.synchronize()
    sync = torch.tensor([max(tl.clock, tl.stream)], dtype=torch.float64)
    dist.all_reduce(sync, op=dist.ReduceOp.MAX, group=_overlap.gloo)
    tl.clock = tl.stream = sync.item()


def _overlap(dist, hccl_torch, hccl_sim):
    """Compute C with an async allreduce of duration A issued at its start: max(C, A); blocking: C + A."""
    hccl_torch.configure(compute="none")
    n = 1 << 16
    comm = hccl_torch.communicator()
    a = hccl_sim.predict("allreduce", count=n, nranks=dist.get_world_size(), topology=comm.topology,
                         algo=comm.algo).time
    for c in (a / 2, 3 * a):
        _enter_together(dist, hccl_torch)
        with hccl_torch.step("blocking") as blocking:
            dist.all_reduce(torch.ones(n))
            hccl_torch.advance(c)
        with hccl_torch.step("async") as overlapped:
            work = dist.all_reduce(torch.ones(n), async_op=True)
            hccl_torch.advance(c)
            work.wait()
        assert blocking.time == pytest.approx(c + a, rel=1e-9), (blocking, a, c)
        assert blocking.exposed == pytest.approx(a, rel=1e-9) and blocking.overlap_share == pytest.approx(0, abs=1e-9)
        assert overlapped.time == pytest.approx(max(c, a), rel=1e-9), (overlapped, a, c)
        assert overlapped.comm == pytest.approx(a, rel=1e-9)
        assert overlapped.exposed == pytest.approx(max(a - c, 0), abs=1e-12)
        assert overlapped.overlap_share == pytest.approx(min(c, a) / a, rel=1e-9)
    # two async calls queue on the one stream: the second starts when the first ends
    with hccl_torch.step("stream") as stream:
        works = [dist.all_reduce(torch.ones(n), async_op=True) for _ in range(2)]
        for w in works:
            w.wait()
    assert stream.time == pytest.approx(2 * a, rel=1e-6)


def _blocking_and_skew(dist, hccl_torch, hccl_sim):
    """A blocking call never overlaps (in every compute mode); waiting for a slower rank is reported as
    ``wait``, apart from the collective's own modeled time."""
    n, rank = 1 << 12, dist.get_rank()
    comm = hccl_torch.communicator()
    a = hccl_sim.predict("allreduce", count=n, nranks=dist.get_world_size(), topology=comm.topology,
                         algo=comm.algo).time
    for mode in ("host", "flops:1e12", "none"):
        hccl_torch.configure(compute=mode)
        with hccl_torch.step("blocking") as blocking:
            x = torch.ones(64, 64)
            x @ x
            dist.all_reduce(torch.ones(n))
            x @ x
        assert blocking.overlap_share == 0.0 and blocking.exposed == blocking.comm, (mode, blocking)
    hccl_torch.configure(compute="none")
    _enter_together(dist, hccl_torch)
    skew = 1e-3
    with hccl_torch.step("skewed") as skewed:
        hccl_torch.advance(skew if rank == 1 else 0.0)  # rank 1 is late by `skew`
        dist.all_reduce(torch.ones(n))
    assert skewed.kinds["allreduce"].wait == skewed.wait == hccl_torch.report()["steps"][-1]["wait"]
    assert skewed.wait == pytest.approx(skew if rank == 0 else 0.0, rel=1e-9, abs=1e-15), skewed
    assert skewed.comm == pytest.approx(a, rel=1e-9), (skewed, a)  # the collective's own time, skew or not
    assert skewed.time == pytest.approx(skew + a, rel=1e-9) and skewed.overlap_share == 0.0


def _same_as_gloo(dist, gloo):
    """Every dtype gloo takes through every op, results equal to gloo's."""
    rank, p = dist.get_rank(), dist.get_world_size()
    bad = []

    def data(dtype, n=6, seed=0):
        g = torch.Generator().manual_seed(100 * seed + rank)
        base = torch.randint(0, 3, (n,), generator=g)
        return torch.complex(base.float(), 1 - base.float()).to(dtype) if dtype.is_complex else base.to(dtype)

    def check(name, fn, *dtypes):
        for dtype in dtypes:
            got, want = fn(dtype, None), fn(dtype, gloo)
            for g, w in zip(got, want):
                if not torch.equal(g, w):
                    bad.append(f"{name} {dtype}: {g.tolist()} != {w.tolist()}")

    every = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int32,
             torch.int64, torch.bool, torch.complex64, torch.complex128]
    real = [d for d in every if not d.is_complex]

    def all_reduce(op):
        def fn(dtype, g):
            t = data(dtype)
            dist.all_reduce(t, op=op, group=g)
            return [t]
        return fn
    check("all_reduce sum", all_reduce(dist.ReduceOp.SUM), *every)
    check("all_reduce max", all_reduce(dist.ReduceOp.MAX), *real)
    check("all_reduce product", all_reduce(dist.ReduceOp.PRODUCT), *real)

    def reduce(dtype, g):
        t = data(dtype)
        dist.reduce(t, 0, group=g)
        return [t] if rank == 0 else []
    check("reduce", reduce, *every)

    def broadcast(dtype, g):
        t = data(dtype)
        dist.broadcast(t, p - 1, group=g)
        return [t]
    check("broadcast", broadcast, *every)

    def all_gather(dtype, g):
        out = [torch.empty(6, dtype=dtype) for _ in range(p)]
        dist.all_gather(out, data(dtype), group=g)
        return out
    check("all_gather", all_gather, *every)

    def reduce_scatter_tensor(dtype, g):
        out = torch.empty(3, dtype=dtype)
        dist.reduce_scatter_tensor(out, data(dtype, 3 * p), group=g)
        return [out]
    check("reduce_scatter_tensor", reduce_scatter_tensor, *every)

    def all_to_all(dtype, g):
        out = [torch.empty(2, dtype=dtype) for _ in range(p)]
        dist.all_to_all(out, list(data(dtype, 2 * p).split(2)), group=g)
        return out
    check("all_to_all", all_to_all, *every)

    def scatter_gather(dtype, g):
        out = torch.empty(2, dtype=dtype)
        dist.scatter(out, list(data(dtype, 2 * p).split(2)) if rank == 0 else None, 0, group=g)
        gathered = [torch.empty(2, dtype=dtype) for _ in range(p)] if rank == 0 else None
        dist.gather(out, gathered, 0, group=g)
        return [out] + (gathered or [])
    check("scatter/gather", scatter_gather, *real)  # gloo's gather has no complex kernel

    def send_recv(dtype, g):
        t = data(dtype)
        if rank == 0:
            dist.send(t, 1, group=g)
        elif rank == 1:
            dist.recv(t, 0, group=g)
        return [t]
    check("send/recv", send_recv, *every)

    def all_gather_coalesced(dtype, g):  # gloo's layout: outputs[r][i] is rank r's input i
        inputs = [data(dtype, 2, seed=1), data(dtype, 3, seed=2)]
        outputs = [[torch.empty(2, dtype=dtype), torch.empty(3, dtype=dtype)] for _ in range(p)]
        dist.all_gather_coalesced(outputs, inputs, group=g)
        return [t for o in outputs for t in o]
    check("all_gather_coalesced", all_gather_coalesced, torch.float32, torch.int64)
    assert not bad, "\n".join(bad)

    # int16: gloo has no kernel for it ("Invalid scalar type"); hccl_sim reduces it
    t = torch.full((4,), rank + 1, dtype=torch.int16)
    dist.all_reduce(t)
    assert t.tolist() == [p * (p + 1) // 2] * 4


def _edge_calls(dist):
    rank, p = dist.get_rank(), dist.get_world_size()
    pg = dist.distributed_c10d._get_default_group()
    t = torch.tensor([float(rank)])
    pg.allreduce(t).wait()  # no options
    assert t.item() == p * (p - 1) / 2
    t = torch.tensor([float(rank)])
    pg.allreduce([t], dist.ReduceOp.MAX).wait()  # a RedOpType, not options
    assert t.item() == p - 1
    param = torch.nn.Parameter(torch.full((3,), float(rank)))  # a leaf that requires grad
    dist.all_reduce(param)
    dist.reduce(param, 0)
    dist.all_reduce_coalesced([param])
    assert param.requires_grad
    if rank == 0:  # receive from any source
        got = torch.zeros(2)
        assert dist.recv(got) == 1 and got.tolist() == [5.0, 5.0]
    elif rank == 1:
        dist.send(torch.full((2,), 5.0), 0)
    with pytest.raises(ValueError, match="sparse tensors"):
        dist.all_reduce(torch.ones(2, 2).to_sparse())
    assert "mpi4py.MPI" not in sys.modules  # gloo transport: MPI never initialised


def _missing_rank(dist, hccl_torch):
    """Over gloo too, a rank that never comes is named within the timeout (last: it leaves a receive posted)."""
    group = dist.new_group(backend="hccl_sim", pg_options=hccl_torch.Options(timeout=2))
    if dist.get_rank() == 0:
        with pytest.raises(hccl_torch.DistCollectiveTimeout, match=r"timed out after 2 s waiting for rank\(s\) 1"):
            dist.all_reduce(torch.ones(4), group=group)


def _lost_peer(dist, hccl_torch, gloo):
    """A peer whose process died is reported at once as a lost connection naming it, not as a timeout."""
    import time

    group = dist.new_group(backend="hccl_sim", pg_options=hccl_torch.Options(timeout=60))
    dist.barrier(group=gloo)
    if dist.get_rank() == 1:
        os._exit(0)
    start = time.monotonic()
    with pytest.raises(hccl_torch.DistCollectiveError, match=r"lost the connection to rank\(s\) 1 \(gloo error") as info:
        dist.all_reduce(torch.ones(4), group=group)
    assert not isinstance(info.value, TimeoutError) and "timed out" not in str(info.value)
    assert time.monotonic() - start < 30


def _rank(rank, size, path):
    os.environ.pop("PMI_RANK", None)
    import torch.distributed as dist

    import hccl_sim
    import hccl_sim.torch as hccl_torch
    dist.init_process_group("hccl_sim", init_method=f"file://{path}", rank=rank, world_size=size)
    gloo = dist.new_group(backend="gloo")
    _overlap.gloo = gloo
    assert hccl_torch.communicator().mpi is None  # the gloo transport
    _edge_calls(dist)
    _same_as_gloo(dist, gloo)
    _overlap(dist, hccl_torch, hccl_sim)
    _blocking_and_skew(dist, hccl_torch, hccl_sim)
    _missing_rank(dist, hccl_torch)
    _lost_peer(dist, hccl_torch, gloo)  # rank 1 exits here
    os._exit(0)  # rank 0's timed-out receive is still posted in gloo


def test_spawned_ranks_over_gloo(tmp_path):
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID"):
        os.environ.pop(name, None)
    mp.spawn(_rank, args=(2, str(tmp_path / "store")), nprocs=2)


def test_flops_compute_from_the_topology():
    """HCCL_SIM_COMPUTE=flops without a rate: the preset's npu_flops times the efficiency."""
    from hccl_sim.topology import load_topology
    from hccl_sim.topology.files import topology_from_dict
    from hccl_sim.torch.timeline import ComputeModel, Timeline

    assert load_topology("cloudmatrix384").npu_flops == 7.52e14
    assert topology_from_dict({"levels": [{"size": 4, "bandwidth": "100GB/s", "latency": "1us"}],
                               "npu_flops": 1e15}).npu_flops == 1e15
    tl = Timeline(compute=ComputeModel.parse("flops:eff=0.25"))
    tl.npu_flops = load_topology("cloudmatrix384").npu_flops
    a, b = torch.ones(64, 128), torch.ones(128, 32)
    with tl.step() as step:
        a @ b
    assert step.compute == pytest.approx(2 * 64 * 128 * 32 / (7.52e14 * 0.25), rel=1e-12)
    bare = Timeline(compute=ComputeModel.parse("flops"))  # a topology without npu_flops: a clear error
    with pytest.raises(ValueError, match="no npu_flops"):
        with bare.step():
            pass
