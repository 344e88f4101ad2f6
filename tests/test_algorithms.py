"""Every allreduce schedule, run in-process for 1..16 ranks, against a torch reference."""
import pytest
import torch

from hccl_sim.algorithms import Context, build_schedule
from hccl_sim.executors.local import run_local

ALGOS = ["ring", "tree", "rhd", "nhr"]


def _data(p, n, dtype):
    g = torch.Generator().manual_seed(1000 * p + n)
    return [torch.randint(-3, 4, (n,), generator=g).to(dtype) for _ in range(p)]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("p", range(1, 17))
def test_allreduce_schedules_sum_exactly(algo, p):
    for n in (0, 1, 2, p - 1, p, p + 1, 37, 1001):
        xs = _data(p, n, torch.int64)
        bufs = [{0: x.clone()} for x in xs]
        run_local(build_schedule("allreduce", algo, Context.flat(p), n), bufs)
        ref = torch.stack(xs).sum(0) if n else torch.zeros(0, dtype=torch.int64)
        for r in range(p):
            assert torch.equal(bufs[r][0], ref), (algo, p, n, r)


@pytest.mark.parametrize("inter", ["ring", "tree", "rhd", "nhr"])
@pytest.mark.parametrize("servers,per", [(2, 2), (3, 2), (2, 3), (3, 4), (5, 1 + 1)])
def test_hierarchical_allreduce(inter, servers, per):
    p = servers * per
    groups = tuple(tuple(range(s * per, (s + 1) * per)) for s in range(servers))
    ctx = Context(p, groups)
    for n in (1, 5, per * servers + 1, 999):
        xs = _data(p, n, torch.int64)
        bufs = [{0: x.clone()} for x in xs]
        run_local(build_schedule("allreduce", f"hier:ring/{inter}", ctx, n), bufs)
        ref = torch.stack(xs).sum(0)
        assert all(torch.equal(b[0], ref) for b in bufs), (inter, servers, per, n)


@pytest.mark.parametrize("op,fn", [("max", lambda s: s.max(0).values), ("min", lambda s: s.min(0).values),
                                   ("prod", lambda s: s.prod(0))])
def test_other_ops(op, fn):
    p, n = 5, 33
    xs = [torch.randint(1, 3, (n,), generator=torch.Generator().manual_seed(r)) for r in range(p)]
    for algo in ALGOS:
        bufs = [{0: x.clone()} for x in xs]
        run_local(build_schedule("allreduce", algo, Context.flat(p), n), bufs, op)
        assert all(torch.equal(b[0], fn(torch.stack(xs))) for b in bufs)


def test_unknown_algorithm_is_named():
    with pytest.raises(ValueError, match="'nope' is not one of"):
        build_schedule("allreduce", "nope", Context.flat(4), 10)
