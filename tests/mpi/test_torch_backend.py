"""The torch.distributed backend "hccl_sim" against gloo on the same inputs, inside every rank.

Each test runs all its cases (sync and async) and collects mismatches, then asserts after the last
collective call, so a failing rank never leaves the others waiting.
"""
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
from mpi4py import MPI

import hccl_sim
import hccl_sim.torch as hccl_torch

pytestmark = pytest.mark.mpi

R = dist.ReduceOp
DTYPES = [torch.float32, torch.float64, torch.int32, torch.int64]


@pytest.fixture(scope="module")
def groups():
    """(hccl_sim world group, gloo world group); hccl_sim is the default backend."""
    dist.init_process_group("hccl_sim")
    gloo = dist.new_group(backend="gloo")
    yield dist.group.WORLD, gloo
    dist.destroy_process_group()


def data(case, rank, n, dtype):
    """Rank ``rank``'s input of case ``case``: small integers, so sums and products are exact."""
    g = torch.Generator().manual_seed(7919 * case + rank)
    lo = 1 if dtype == torch.uint8 else -3
    return torch.randint(lo, 4, (n,), generator=g).to(dtype)


def run(fn, group, async_op):
    """Call ``fn(group, async_op)``; wait on its Work, then on its future, when async."""
    work = fn(group, async_op)
    if async_op:
        work.wait()
        work.get_future().wait()
    return work


def compare(name, hccl_fn, gloo_fn, groups, bad):
    """Run a case on both backends, sync and async; record any difference."""
    hccl, gloo = groups
    for async_op in (False, True):
        got, want = hccl_fn(hccl, async_op), gloo_fn(gloo, False)
        for g, w in zip(got, want):
            if g is None and w is None:
                continue
            if g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g, w):
                bad.append(f"{name} async={async_op}: {g.tolist()[:8]} != {w.tolist()[:8]}")


def test_all_reduce_and_reduce(groups):
    p, r = dist.get_world_size(), dist.get_rank()
    bad = []
    case = 0
    for dtype in DTYPES + [torch.bfloat16, torch.float16, torch.uint8, torch.int8]:
        for op in (R.SUM, R.PRODUCT, R.MIN, R.MAX):
            if dtype in (torch.float16, torch.bfloat16, torch.uint8, torch.int8) and op == R.PRODUCT:
                continue
            for n in ((0, 1, 13, 1000) if dtype == torch.float32 else (13,)):  # sizes: fp32; dtypes: n=13
                case += 1
                x = data(case, r, n, dtype if dtype != torch.uint8 else torch.int64).abs().to(dtype)

                def all_reduce(group, async_op, x=x, op=op):
                    t = x.clone()
                    run(lambda g, a: dist.all_reduce(t, op=op, group=g, async_op=a), group, async_op)
                    return [t]
                compare(f"all_reduce {dtype} {op} n={n}", all_reduce, all_reduce, groups, bad)
                for root in {0, p - 1}:
                    def reduce(group, async_op, x=x, op=op, root=root):
                        t = x.clone()
                        run(lambda g, a: dist.reduce(t, dst=root, op=op, group=g, async_op=a), group, async_op)
                        return [t if r == root else None]
                    compare(f"reduce {dtype} {op} n={n} root={root}", reduce, reduce, groups, bad)
    # AVG and PREMUL_SUM (gloo has neither): against a torch reference from every rank's input
    hccl = groups[0]
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for n in (1, 37):
            case += 1
            xs = [data(case, q, n, dtype) for q in range(p)]  # all_reduce inputs
            bigs = [data(case + 500, q, p * n, dtype) for q in range(p)]  # reduce_scatter inputs
            tol = {torch.float32: 1e-6, torch.float64: 1e-12, torch.bfloat16: 1e-2}[dtype]
            for op, factor in ((R.AVG, 1.0 / p), (R.PREMUL_SUM(0.5), 0.5),
                               (R.PREMUL_SUM(torch.tensor(0.25, dtype=dtype)), 0.25)):
                for async_op in (False, True):
                    t = xs[r].clone()
                    run(lambda g, a: dist.all_reduce(t, op=op, group=g, async_op=a), hccl, async_op)
                    want = torch.stack([x.double() for x in xs]).sum(0) * factor
                    if not torch.allclose(t.double(), want, atol=tol, rtol=tol):
                        bad.append(f"all_reduce {op} {dtype}: {t.tolist()[:4]} != {want.tolist()[:4]}")
                    out = torch.zeros(n, dtype=dtype)
                    big = bigs[r].clone()
                    run(lambda g, a: dist.reduce_scatter_tensor(out, big, op=op, group=g, async_op=a), hccl,
                        async_op)
                    want = torch.stack([b.double() for b in bigs]).sum(0)[r * n:(r + 1) * n] * factor
                    if not torch.allclose(out.double(), want, atol=tol, rtol=tol) or not torch.equal(big, bigs[r]):
                        bad.append(f"reduce_scatter_tensor {op} {dtype}: {out.tolist()[:4]} != {want.tolist()[:4]}")
    assert not bad, "\n".join(bad[:20])


def test_gathers_scatters_and_alltoall(groups):
    p, r = dist.get_world_size(), dist.get_rank()
    bad = []
    case = 100
    for dtype in DTYPES:
        for n in ((0, 1, 5, 301) if dtype == torch.float32 else (5,)):
            case += 1
            x = data(case, r, n, dtype)

            def all_gather(group, async_op):
                outs = [torch.full((n,), -1).to(dtype) for _ in range(p)]
                run(lambda g, a: dist.all_gather(outs, x, group=g, async_op=a), group, async_op)
                return outs
            compare(f"all_gather {dtype} n={n}", all_gather, all_gather, groups, bad)

            def all_gather_into_tensor(group, async_op):
                out = torch.empty(p * n, dtype=dtype)
                run(lambda g, a: dist.all_gather_into_tensor(out, x, group=g, async_op=a), group, async_op)
                return [out]
            compare(f"all_gather_into_tensor {dtype} n={n}", all_gather_into_tensor, all_gather_into_tensor,
                    groups, bad)

            big = data(case + 50, r, p * n, dtype)
            for op in (R.SUM, R.MAX, R.MIN):
                def reduce_scatter_tensor(group, async_op, op=op):
                    out = torch.empty(n, dtype=dtype)
                    run(lambda g, a: dist.reduce_scatter_tensor(out, big, op=op, group=g, async_op=a), group,
                        async_op)
                    return [out]
                compare(f"reduce_scatter_tensor {dtype} {op} n={n}", reduce_scatter_tensor, reduce_scatter_tensor,
                        groups, bad)

                def reduce_scatter(group, async_op, op=op):
                    out = torch.empty(n, dtype=dtype)
                    run(lambda g, a: dist.reduce_scatter(out, list(big.chunk(p)) if n else
                                                         [torch.empty(0, dtype=dtype)] * p, op=op, group=g,
                                                         async_op=a), group, async_op)
                    return [out]
                if dtype != torch.int32 or op == R.SUM:  # keep the count of cases moderate
                    compare(f"reduce_scatter {dtype} {op} n={n}", reduce_scatter, reduce_scatter, groups, bad)

            for root in sorted({0, p // 2, p - 1}):
                def broadcast(group, async_op, root=root):
                    t = x.clone()
                    run(lambda g, a: dist.broadcast(t, src=root, group=g, async_op=a), group, async_op)
                    return [t]
                compare(f"broadcast {dtype} n={n} root={root}", broadcast, broadcast, groups, bad)

                def gather(group, async_op, root=root):
                    outs = [torch.empty(n, dtype=dtype) for _ in range(p)] if r == root else None
                    run(lambda g, a: dist.gather(x, outs, dst=root, group=g, async_op=a), group, async_op)
                    return outs if r == root else [None]
                compare(f"gather {dtype} n={n} root={root}", gather, gather, groups, bad)

                def scatter(group, async_op, root=root):
                    out = torch.empty(n, dtype=dtype)
                    ins = [data(case + 7 * q, r, n, dtype) for q in range(p)] if r == root else None
                    run(lambda g, a: dist.scatter(out, ins, src=root, group=g, async_op=a), group, async_op)
                    return [out]
                compare(f"scatter {dtype} n={n} root={root}", scatter, scatter, groups, bad)

            def all_to_all_single(group, async_op):
                out = torch.empty(p * n, dtype=dtype)
                run(lambda g, a: dist.all_to_all_single(out, big, group=g, async_op=a), group, async_op)
                return [out]
            compare(f"all_to_all_single {dtype} n={n}", all_to_all_single, all_to_all_single, groups, bad)

            # uneven: rank i sends (i + j) % 3 + n rows of 2 elements to rank j
            sends = [(r + j) % 3 + n for j in range(p)]
            recvs = [(i + r) % 3 + n for i in range(p)]
            rows = data(case + 9, r, 2 * sum(sends), dtype).view(-1, 2)

            def all_to_all_uneven(group, async_op):
                out = torch.empty(sum(recvs), 2, dtype=dtype)
                run(lambda g, a: dist.all_to_all_single(out, rows, recvs, sends, group=g, async_op=a), group,
                    async_op)
                return [out]
            compare(f"all_to_all_single uneven {dtype} n={n}", all_to_all_uneven, all_to_all_uneven, groups, bad)

            def all_to_all(group, async_op):
                ins = list(rows.split(sends))
                outs = [torch.empty(c, 2, dtype=dtype) for c in recvs]
                run(lambda g, a: dist.all_to_all(outs, ins, group=g, async_op=a), group, async_op)
                return outs
            def all_to_all_reference(group, async_op):  # gloo's all_to_all needs equal sizes
                return list(all_to_all_uneven(group, async_op)[0].split(recvs))
            compare(f"all_to_all {dtype} n={n}", all_to_all, all_to_all_reference, groups, bad)

    # coalesced forms, uneven all_gather (gloo: one call per tensor / chunk as the reference)
    hccl, gloo = groups
    case += 1
    ins = [data(case, r, n, torch.float32) for n in (3, 0, 17)]
    for async_op in (False, True):
        outs = [torch.empty(p * t.numel()) for t in ins]
        with dist._coalescing_manager(group=hccl, async_ops=async_op) as cm:
            for o, i in zip(outs, ins):
                dist.all_gather_into_tensor(o, i, group=hccl)
        if async_op:
            cm.wait()
        want = []
        for i in ins:
            w = torch.empty(p * i.numel())
            dist.all_gather_into_tensor(w, i, group=gloo)
            want.append(w)
        bad += [f"coalesced all_gather_into_tensor {k}" for k, (o, w) in enumerate(zip(outs, want))
                if not torch.equal(o, w)]
        big = [data(case + 1, r, p * n, torch.float64) for n in (2, 5)]
        outs = [torch.empty(t.numel() // p, dtype=torch.float64) for t in big]
        with dist._coalescing_manager(group=hccl, async_ops=async_op) as cm:
            for o, i in zip(outs, big):
                dist.reduce_scatter_tensor(o, i, group=hccl)
        if async_op:
            cm.wait()
        for k, (o, i) in enumerate(zip(outs, big)):
            w = torch.empty_like(o)
            dist.reduce_scatter_tensor(w, i, group=gloo)
            if not torch.equal(o, w):
                bad.append(f"coalesced reduce_scatter_tensor {k}")
        tensors = [data(case + 2, r, n, torch.float32) for n in (4, 9)] + [data(case + 3, r, 6, torch.float32)]
        mine = [t.clone() for t in tensors]
        work = dist.all_reduce_coalesced(mine, group=hccl, async_op=async_op)
        if async_op:
            work.wait()
        for k, t in enumerate(tensors):
            w = t.clone()
            dist.all_reduce(w, group=gloo)
            if not torch.equal(mine[k], w):
                bad.append(f"all_reduce_coalesced {k}")
    uneven = data(case + 4, r, r + 1, torch.int64)
    outs = [torch.empty(q + 1, dtype=torch.int64) for q in range(p)]
    dist.all_gather(outs, uneven, group=hccl)
    if any(not torch.equal(outs[q], data(case + 4, q, q + 1, torch.int64)) for q in range(p)):
        bad.append("all_gather with uneven sizes")
    assert not bad, "\n".join(bad[:20])


def test_point_to_point_barrier_and_subgroups(groups):
    p, r = dist.get_world_size(), dist.get_rank()
    hccl, gloo = groups
    bad = []
    nxt, prv = (r + 1) % p, (r - 1) % p
    for n in (0, 1, 1000):
        mine = data(n, r, n, torch.float32)
        expected = data(n, prv, n, torch.float32)
        # batch_isend_irecv around the ring
        got = torch.full((n,), -1.0)
        works = dist.batch_isend_irecv([dist.P2POp(dist.isend, mine, nxt, group=hccl),
                                        dist.P2POp(dist.irecv, got, prv, group=hccl)])
        for w in works:
            w.wait()
        if not torch.equal(got, expected):
            bad.append(f"batch_isend_irecv n={n}")
        # irecv posted before isend, waited in the reverse order
        got2 = torch.full((n,), -1.0)
        rw = dist.irecv(got2, prv, group=hccl)
        sw = dist.isend(mine, nxt, group=hccl)
        rw.wait()
        sw.wait()
        if not torch.equal(got2, expected) or rw.get_future().value()[0] is not got2:
            bad.append(f"isend/irecv n={n}")
        # blocking send/recv between pairs (even ranks send first), and the same on gloo
        for group, got3 in ((hccl, torch.full((n,), -1.0)), (gloo, torch.full((n,), -2.0))):
            if p > 1:
                partner = r ^ 1
                if partner < p:
                    if r % 2 == 0:
                        dist.send(mine, partner, group=group)
                        dist.recv(got3, partner, group=group)
                    else:
                        dist.recv(got3, partner, group=group)
                        dist.send(mine, partner, group=group)
                    if not torch.equal(got3, data(n, partner, n, torch.float32)):
                        bad.append(f"send/recv n={n} on {group}")
    dist.barrier(group=hccl)
    w = dist.barrier(group=hccl, async_op=True)
    w.wait()

    # subgroups: even ranks, and the last two ranks in reverse order
    evens = list(range(0, p, 2))
    tail = [p - 1, p - 2] if p > 1 else [0]
    for ranks in (evens, tail):
        sub = dist.new_group(ranks)
        sub_gloo = dist.new_group(ranks, backend="gloo")
        if r in ranks:
            x = data(len(ranks), r, 11, torch.int64)
            a, b = x.clone(), x.clone()
            dist.all_reduce(a, group=sub)
            dist.all_reduce(b, group=sub_gloo)
            outs_a = [torch.empty(11, dtype=torch.int64) for _ in ranks]
            outs_b = [torch.empty(11, dtype=torch.int64) for _ in ranks]
            dist.all_gather(outs_a, x, group=sub)
            dist.all_gather(outs_b, x, group=sub_gloo)
            c, d = x.clone(), x.clone()
            dist.broadcast(c, src=ranks[-1], group=sub)  # a global rank, translated to the group's
            dist.broadcast(d, src=ranks[-1], group=sub_gloo)
            if not torch.equal(a, b) or any(not torch.equal(u, v) for u, v in zip(outs_a, outs_b)) \
                    or not torch.equal(c, d):
                bad.append(f"subgroup {ranks}")
            if dist.get_group_rank(sub, r) != sorted(ranks).index(r):  # torch sorts a group's ranks
                bad.append(f"subgroup {ranks}: group rank of {r}")
            if len(ranks) > 1:  # point to point inside the subgroup, by global rank
                first, second = ranks[0], ranks[1]
                y = torch.full((3,), -1.0)
                if r == first:
                    dist.send(torch.arange(3.0) + r, second, group=sub)
                elif r == second:
                    dist.recv(y, first, group=sub)
                    if not torch.equal(y, torch.arange(3.0) + first):
                        bad.append(f"subgroup {ranks}: send/recv")
    assert not bad, "\n".join(bad[:20])


def test_bad_input_raises_everywhere(groups):
    hccl, _ = groups
    p, r = dist.get_world_size(), dist.get_rank()
    errors = []
    try:  # wrong output size on every rank
        dist.all_gather_into_tensor(torch.empty(p * 3 + 1), torch.ones(3), group=hccl)
    except Exception as exc:
        errors.append(str(exc))
    try:
        dist.all_reduce(torch.ones(2), op=R.BAND, group=hccl)
    except Exception as exc:
        errors.append(str(exc))
    mismatch = None
    try:  # only rank 0 passes a wrong size: every rank must raise, none may hang
        dist.all_reduce(torch.ones(5 if r == 0 else 4), group=hccl)
    except Exception as exc:
        errors.append(str(exc))
        mismatch = exc
    ok = torch.ones(3)
    dist.all_reduce(ok, group=hccl)  # the group still works afterwards
    assert len(errors) == (3 if p > 1 else 2), errors
    assert "elements" in errors[0] and "BAND" in errors[1]
    assert torch.equal(ok, torch.full((3,), float(p)))
    if p > 1:  # torch's backend error, as gloo and nccl raise, and still hccl_sim's
        assert isinstance(mismatch, dist.DistBackendError) and isinstance(mismatch, hccl_sim.CollectiveError)


def test_missing_rank_times_out_as_torchs_backend_error(groups):
    """The last rank never joins an all_reduce on a group with a 2 s timeout: every other rank raises
    torch's DistBackendError (a TimeoutError too) naming it, within the bound."""
    p, r = dist.get_world_size(), dist.get_rank()
    if p == 1:
        pytest.skip("needs a rank to go missing")
    group = dist.new_group(list(range(p)), timeout=timedelta(seconds=2))
    error, start = None, time.monotonic()
    if r != p - 1:
        try:
            dist.all_reduce(torch.ones(4), group=group)
        except Exception as exc:
            error = exc
    elapsed = time.monotonic() - start
    MPI.COMM_WORLD.Barrier()  # the missing rank waits here, so the group is left alone afterwards
    if r != p - 1:
        assert isinstance(error, dist.DistBackendError) and isinstance(error, TimeoutError), repr(error)
        assert isinstance(error, hccl_torch.DistCollectiveTimeout) and error.missing == [p - 1]
        assert f"timed out after 2 s waiting for rank(s) {p - 1}" in str(error)
        assert 2.0 <= elapsed < 10.0


def test_modeled_time_report(groups):
    hccl, _ = groups
    p = dist.get_world_size()
    timeline = hccl_torch.timeline()
    saved = timeline.compute_model
    hccl_torch.configure(compute="none")
    # align the clocks so that every rank enters together (compute "none": nothing moves them after)
    timeline.clock = MPI.COMM_WORLD.allreduce(timeline.clock, op=MPI.MAX)
    n = 1 << 14
    with hccl_torch.step("allreduce") as step:
        hccl_torch.advance(1e-3)
        dist.all_reduce(torch.ones(n), group=hccl)
    want = hccl_sim.predict("allreduce", count=n, nranks=p, topology=hccl_torch.communicator().topology,
                            algo=hccl_torch.communicator().algo).time
    with hccl_torch.step("host compute"):
        hccl_torch.configure(compute="host:2.0")
        sum(range(200000))  # some host work, modeled at twice its wall time
    hccl_torch.configure(compute=saved)
    report = hccl_torch.report()
    last = report["steps"][-2]
    assert last["name"] == "allreduce" and step.compute == pytest.approx(1e-3)
    assert last["comm"] == pytest.approx(want, rel=1e-9) if p > 1 else last["comm"] == pytest.approx(want, abs=1e-12)
    assert last["time"] == pytest.approx(1e-3 + want, rel=1e-9)
    assert report["kinds"]["allreduce"]["calls"] >= 1
    assert report["steps"][-1]["compute"] > 0 and report["steps"][-1]["comm"] == 0
    assert "allreduce" in hccl_torch.summary()
