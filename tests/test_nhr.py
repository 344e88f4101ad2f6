"""NHR (HCCL's nonuniform hierarchical ring): its data movement through the local executor against numpy
references for 1..9 ranks, and its step pattern against HCCL's GetStepInfo. No MPI.

Closed-form modeled times are in test_collectives.py (flat) and test_scale.py (compact schedules)."""
import numpy as np
import pytest
import torch

from hccl_sim.algorithms import Context, build_schedule, nhr
from hccl_sim.algorithms.ring import segments_of
from hccl_sim.algorithms.schedule import BUF
from hccl_sim.executors.local import run_local

RANKS = range(1, 10)
COUNTS = (0, 1, 2, 3, 7, 37, 101)  # 0, 1, odd, fewer and more than the ranks
REDUCE = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod}


def _inputs(p, n, seed, op="sum"):
    rng = np.random.default_rng(seed)
    values = np.array([-1, 1, 2]) if op == "prod" else np.arange(-5, 6)  # products stay exact and non-zero
    return [rng.choice(values, n) for _ in range(p)]


def _uneven(p, salt):
    """Per-rank block sizes with zeros among them."""
    return tuple((r * 3 + salt) % 5 if (r + salt) % 4 else 0 for r in range(p))


def _run(coll, p, count, bufs, op="sum", blocks=None):
    schedule = build_schedule(coll, "nhr", Context.flat(p), count, 0, blocks)
    tensors = [{BUF: torch.from_numpy(b.copy())} for b in bufs]
    run_local(schedule, tensors, op)
    return [t[BUF].numpy() for t in tensors]


@pytest.mark.parametrize("p", RANKS)
@pytest.mark.parametrize("op", list(REDUCE))
def test_allreduce(p, op):
    for n in COUNTS:
        xs = _inputs(p, n, p * 31 + n, op)
        expected = REDUCE[op](np.stack(xs), axis=0)
        for r, out in enumerate(_run("allreduce", p, n, xs, op)):
            assert np.array_equal(out, expected), (p, n, r)


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(int)


@pytest.mark.parametrize("p", RANKS)
@pytest.mark.parametrize("op", ["sum", "max", "prod"])
def test_reduce_scatter_and_v(p, op):
    cases = [("reduce_scatter", (blk,) * p) for blk in (0, 1, 3)] + \
            [("reduce_scatterv", _uneven(p, salt)) for salt in range(4)]
    for coll, sizes in cases:
        bounds = _offsets(sizes)
        xs = _inputs(p, int(bounds[-1]), p + sum(sizes), op)
        total = REDUCE[op](np.stack(xs), axis=0)
        blocks = sizes if coll == "reduce_scatterv" else None
        outs = _run(coll, p, int(bounds[-1]), xs, op, blocks)
        for r in range(p):
            assert np.array_equal(outs[r][bounds[r]:bounds[r + 1]], total[bounds[r]:bounds[r + 1]]), (coll, p, sizes, r)


@pytest.mark.parametrize("p", RANKS)
def test_allgather_and_v(p):
    cases = [("allgather", (blk,) * p) for blk in (0, 1, 3)] + \
            [("allgatherv", _uneven(p, salt)) for salt in range(4)]
    for coll, sizes in cases:
        bounds = _offsets(sizes)
        rng = np.random.default_rng(p)
        own = [rng.integers(-9, 10, s) for s in sizes]
        bufs = []
        for r in range(p):  # rank r's own block in place, the rest garbage
            buf = np.full(int(bounds[-1]), -99, dtype=np.int64)
            buf[bounds[r]:bounds[r + 1]] = own[r]
            bufs.append(buf)
        blocks = sizes if coll == "allgatherv" else None
        expected = np.concatenate(own) if own else np.zeros(0, dtype=np.int64)
        for r, out in enumerate(_run(coll, p, int(bounds[-1]), bufs, blocks=blocks)):
            assert np.array_equal(out, expected), (coll, p, sizes, r)


# ---- the step pattern is HCCL's -------------------------------------------------------------------------
def _hccl_step_info(step, nsteps, rank, p, reduce):
    """(peer to send to, virtual slices sent): HCCL's ReduceScatterNHR / AllGatherNHR::GetStepInfo."""
    if reduce:
        delta = 1 << step
        to = (rank + p - delta) % p
        n = (p - 1 + (1 << step)) // (1 << (step + 1))
        stride, first = 1 << (step + 1), to
    else:
        delta = 1 << (nsteps - 1 - step)
        to = (rank + delta) % p
        n = (p - 1 + (1 << (nsteps - 1 - step))) // (1 << (nsteps - step))
        stride, first = 1 << (nsteps - step), rank
    return to, [(first - i * stride) % p for i in range(n)]


@pytest.mark.parametrize("p", list(range(2, 18)) + [24, 31, 33])
def test_steps_follow_hccl_get_step_info(p):
    L = nhr.num_steps(p)
    assert L == int(np.ceil(np.log2(p)))
    blocks = segments_of(np.arange(p + 1) * 10)  # slice v is elements 10v .. 10v+9
    for reduce, fn in ((True, nhr.reduce_scatter_blocks), (False, nhr.allgather_blocks)):
        steps = fn(list(range(p)), blocks)
        assert len(steps) == L
        for s, step in enumerate(steps):
            sent = {}
            for src, dst, _, off, _, _, cnt, red in step:
                assert red == reduce
                sent.setdefault((src, dst), set()).update(range(off // 10, (off + cnt) // 10))
            for rank in range(p):
                to, slices = _hccl_step_info(s, L, rank, p, reduce)
                assert sent.pop((rank, to)) == set(slices), (p, reduce, s, rank)
            assert not sent
        # every rank sends p - 1 slices in all
        assert sum(int(st.count.sum()) for st in steps) == p * (p - 1) * 10


def test_slice_map_is_hccls_tree_reordering():
    assert nhr.slice_map(8) == [0, 4, 2, 6, 1, 5, 3, 7]  # bit reversal for powers of two
    assert nhr.slice_map(6) == [0, 3, 1, 4, 2, 5]
    assert nhr.slice_map(12) == [0, 6, 3, 9, 1, 7, 4, 10, 2, 8, 5, 11]
    assert nhr.slice_map(5) == [0, 3, 1, 4, 2]  # one round: parts of odd length end it
    for p in range(1, 70):
        assert sorted(nhr.slice_map(p)) == list(range(p))


@pytest.mark.parametrize("p", [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64])
def test_allreduce_slice_map_merges_each_step_into_one_transfer_per_rank(p):
    """HCCL reorders the allreduce's slices so that what a rank sends in a step is adjacent (MergeSlices)."""
    sched = build_schedule("allreduce", "nhr", Context.flat(p), p * 8)
    assert len(sched.steps) == 2 * nhr.num_steps(p)
    for step in sched.steps:
        assert len(step) == p and sorted(step.src.tolist()) == list(range(p))


def test_fast_path_equals_the_generic_one():
    """Blocks of one segment take a numpy path; the same blocks with extra empty segments take the
    generic Python loop: same transfers in the same order."""
    rng = np.random.default_rng(7)
    for p in range(1, 20):
        for trial in range(3):
            sizes = rng.choice([0, 0, 1, 2, 5], p)
            blocks = segments_of(_offsets(sizes), int(rng.integers(0, 4)))
            padded = [b + [(0, 0)] for b in blocks]
            for order in (None, nhr.slice_map(p)):
                for reduce in (True, False):
                    fast = nhr._pass(list(range(p)), blocks, reduce, order)
                    slow = nhr._pass(list(range(p)), padded, reduce, order)
                    assert [list(s) for s in fast] == [list(s) for s in slow], (p, sizes, reduce)
