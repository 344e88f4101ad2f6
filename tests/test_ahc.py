"""AHC (algorithms/ahc.py): HCCL's asymmetric hierarchical concatenate on servers of different sizes,
run in-process over many server shapes against a torch reference; its modeled time on unequal servers;
HCCL_ALGO's level1:AHC; and under mpirun, 12 ranks as servers of 8 + 4 and 6 as 4 + 2."""
import os
import subprocess
import sys

import pytest
import torch

import hccl_sim
from hccl_sim.algorithms import Context, build_schedule, selection
from hccl_sim.executors.local import run_local

SHAPES = [(4, 2), (8, 4), (2, 3), (3, 2, 1), (1, 1), (5,), (1, 4), (3, 3), (2, 5, 3), (7, 1, 2, 4)]


def _ctx(sizes):
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return Context(sum(sizes), tuple(tuple(range(s, s + m)) for s, m in zip(starts, sizes)))


def _data(p, n, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-5, 6, (n,), generator=g) for _ in range(p)]


def _blocks(n, p):
    base, extra = divmod(n, p)
    sizes = [base + (r < extra) for r in range(p)]
    return sizes, [sum(sizes[:r]) for r in range(p)]


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize("algo", ["ahc", "ahc:ring/rhd", "ahc:nhr/nb", "ahc:rhd/tree"])
def test_allreduce_reduce_scatter_allgather_are_exact(sizes, algo):
    ctx, p = _ctx(sizes), sum(sizes)
    for n in (1, p - 1, p + 3, 97):
        xs = _data(p, n, n * 31 + p)
        ref = torch.stack(xs).sum(0)
        bufs = [{0: x.clone()} for x in xs]
        run_local(build_schedule("allreduce", algo, ctx, n), bufs)
        assert all(torch.equal(b[0], ref) for b in bufs), (sizes, algo, n, "allreduce")

        counts, offs = _blocks(n, p)
        if n < p or "tree" in algo:  # tree: allreduce and broadcast forms only, no reduce-scatter form
            continue
        bufs = [{0: x.clone()} for x in xs]
        run_local(build_schedule("reduce_scatter", algo, ctx, n, blocks=tuple(counts)), bufs)
        for r in range(p):
            part = slice(offs[r], offs[r] + counts[r])
            assert torch.equal(bufs[r][0][part], ref[part]), (sizes, algo, n, "reduce_scatter", r)

        bufs = []
        for r in range(p):
            mine = torch.full((n,), -999, dtype=torch.int64)
            mine[offs[r]:offs[r] + counts[r]] = xs[0][offs[r]:offs[r] + counts[r]]
            bufs.append({0: mine})
        run_local(build_schedule("allgather", algo, ctx, n, blocks=tuple(counts)), bufs)
        assert all(torch.equal(b[0], xs[0]) for b in bufs), (sizes, algo, n, "allgather")


def test_uneven_blocks_of_the_v_variants():
    ctx = _ctx((4, 2))
    counts = (3, 0, 5, 1, 7, 2)
    n, offs = sum(counts), [sum(counts[:r]) for r in range(6)]
    xs = _data(6, n, 5)
    ref = torch.stack(xs).sum(0)
    bufs = [{0: x.clone()} for x in xs]
    run_local(build_schedule("reduce_scatterv", "ahc", ctx, n, blocks=counts), bufs)
    assert all(torch.equal(bufs[r][0][offs[r]:offs[r] + counts[r]], ref[offs[r]:offs[r] + counts[r]])
               for r in range(6))


def test_unequal_servers_run_ahc_where_hier_refuses():
    """6 ranks on servers of 4: servers of 4 and 2. hier names the sizes and points to ahc; ahc runs, and
    moves less between servers than a flat ring (its inter-server allreduce carries n/2 per rank pair,
    where every ring step crosses the slow link)."""
    topo = "two-level:server=4"
    with pytest.raises(ValueError, match=r"\[4, 2\].*use ahc"):
        hccl_sim.predict("allreduce", 1 << 20, 6, topology=topo, algo="hier")
    ahc = hccl_sim.predict("allreduce", 1 << 20, 6, topology=topo, algo="ahc")
    flat = [hccl_sim.predict("allreduce", 1 << 20, 6, topology=topo, algo=a).time for a in ("ring", "rhd", "nhr")]
    assert ahc.algo == "ahc" and 0 < ahc.time < min(flat)
    assert hccl_sim.predict("allreduce", 1 << 20, 6, topology=topo, algo="auto").algo != "ahc"  # explicit only


def test_equal_servers_ahc_moves_what_hier_moves():
    """On equal servers the cut is hier's (m shards, each allreduced among the same local index)."""
    ctx = _ctx((4, 4, 4))
    a, h = build_schedule("allreduce", "ahc", ctx, 1200), build_schedule("allreduce", "hier", ctx, 1200)
    assert a.bytes_sent(4) == h.bytes_sent(4) and len(a.steps) == len(h.steps)


def test_hccl_algo_level1_ahc_names_the_whole_hierarchy():
    assert selection.to_algo("allreduce", "level0:NA;level1:AHC", True, True) == "ahc"
    assert selection.to_algo("allgather", "level0:NA;level1:ahc_broke", False, False, "inter") == "ahc"
    assert selection.to_algo("allreduce", "level0:rhd;level1:AHC;level2:ring", True, True) == "ahc:rhd/ring"


def test_unknown_level_algorithm_is_named():
    with pytest.raises(ValueError, match="ahc: inter-group algorithm 'star' has no allreduce form"):
        build_schedule("allreduce", "ahc:ring/star", _ctx((4, 2)), 100)


def test_unequal_servers_under_mpirun_12_and_6_ranks():
    """Real data through MPI, every modeled time equal to the prediction (tests/scripts/ahc_mpi.py): 12 ranks
    as servers of 8 + 4, and ranks 0-5 of them as 4 + 2; allreduce (ahc and HCCL_ALGO level1:AHC),
    reduce-scatter and allgather."""
    script = os.path.join(os.path.dirname(__file__), "scripts", "ahc_mpi.py")
    proc = subprocess.run(["mpirun", "-n", "12", sys.executable, script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK 12 ranks") == 4 and proc.stdout.count("OK 6 ranks") == 4, proc.stdout
