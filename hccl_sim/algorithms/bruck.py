"""NB, the nonuniform Bruck algorithm: ceil(log2 p) steps for any p, no extra traffic.

Allgather: in step k (d = 2^k) rank i sends the m = min(d, p-d) blocks it holds, i..i+m-1, to rank
i-d. Reduce-scatter is its time-reversal with reductions (block b reaches each rank once in the
allgather, so reversing every transfer reduces each block onto its owner once). Barrier is the
dissemination pattern with empty messages.
Cost (n bytes, equal blocks): allgather and reduce-scatter ceil(log2 p) a + (p-1)/p n b
(+ (p-1)/p n g); allreduce 2 ceil(log2 p) a + 2(p-1)/p n b + (p-1)/p n g.
"""
from . import registry as reg
from .ring import segments_of
from .schedule import StepBuilder, add_segments, chunk_bounds, coalesce, reverse_steps


def _steps(p):
    return max(p - 1, 0).bit_length()


def allgather_blocks(ranks, blocks):
    p, steps = len(ranks), []
    for k in range(_steps(p)):
        d = 1 << k
        m = min(d, p - d)
        step = StepBuilder()
        for i in range(p):
            segs = coalesce(seg for b in range(i, i + m) for seg in blocks[b % p])
            add_segments(step, ranks[i], ranks[(i - d) % p], segs)
        steps.append(step.build())
    return steps


def reduce_scatter_blocks(ranks, blocks):
    return reverse_steps(allgather_blocks(ranks, blocks), reduce=True)


def allreduce(ranks, count, offset=0):
    blocks = segments_of(chunk_bounds(count, len(ranks)), offset)
    return reduce_scatter_blocks(ranks, blocks) + allgather_blocks(ranks, blocks)


def barrier(ranks):
    p, steps = len(ranks), []
    for k in range(_steps(p)):
        step = StepBuilder()
        for i in range(p):
            step.add(ranks[i], ranks[(i + (1 << k)) % p], 0, 0, 0)
        steps.append(step.build())
    return steps


_BUILDERS, _, _LEVEL = reg.pass_forms(allreduce, reduce_scatter_blocks, allgather_blocks)
reg.register(reg.Algorithm(
    "nb", "HCCL's nonuniform Bruck: ceil(log2 p) steps for any p, no extra traffic",
    builders={**_BUILDERS, "barrier": lambda ctx, job, variant: barrier(reg.ranks_of(ctx))},
    formulas={"allreduce": "2L a + 2(p-1)/p n b + (p-1)/p n g", "allgather": "L a + (p-1)/p n b",
              "reduce_scatter": "L a + (p-1)/p n (b + g)", "barrier": "L a (dissemination)"},
    hccl_names=("nb",), level=_LEVEL, order=40, order_in={"barrier": 15}))
