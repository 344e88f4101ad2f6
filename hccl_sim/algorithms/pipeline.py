"""Pipelined trees: the data is cut into K chunks that flow through a tree one step behind each other.

A node of height h (leaves 0) sends chunk c up in step c + h, after its children sent it theirs; a node
of depth e sends chunk c down in step c + e. ``pipeline`` is the chain (a tree of one branch): with
K chunks over p ranks, broadcast and reduce cost (K + p - 2)(a + n/K b) (+ n/K g per step for reduce).
"""
from . import registry as reg
from .schedule import StepBuilder, chunk_bounds

DEFAULT_CHUNK = 16384  # elements per chunk when no K is given, at most MAX_CHUNKS chunks
MAX_CHUNKS = 16


def chunks_for(count: int, variant: str = "") -> int:
    """K from the algorithm variant ("pipeline:8") or from the size."""
    if variant:
        if not variant.isdigit() or int(variant) < 1:
            raise ValueError(f"pipeline: chunk count {variant!r} must be a positive integer")
        return max(1, min(int(variant), max(count, 1)))
    return max(1, min(MAX_CHUNKS, count // DEFAULT_CHUNK))


def _shape(parent):
    children: dict = {}
    root = None
    for node, up in parent.items():
        if up is None:
            root = node
        else:
            children.setdefault(up, []).append(node)
    height, depth, order = {}, {root: 0}, []
    stack = [root]
    while stack:  # depth first, parents before children; no recursion (a chain of 10^4 ranks)
        node = stack.pop()
        order.append(node)
        for c in children.get(node, ()):
            depth[c] = depth[node] + 1
            stack.append(c)
    for node in reversed(order):
        height[node] = 1 + max((height[c] for c in children.get(node, ())), default=-1)
    return height, depth


def _collect(rows):
    steps = []
    for t in sorted(rows):
        step = StepBuilder()
        for row in rows[t]:
            step.add(*row)
        steps.append(step.build())
    return steps


def _tree_pass(parent, count, chunks, offset, reduce):
    """Chunk c crosses the edge of ``node`` in step c + height(node) going up (reduce) or c + depth(parent)
    going down (broadcast)."""
    height, depth = _shape(parent)
    bounds = chunk_bounds(count, chunks) + offset
    rows: dict = {}
    for node, up in parent.items():
        if up is None:
            continue
        for c in range(chunks):
            lo, n = int(bounds[c]), int(bounds[c + 1] - bounds[c])
            if reduce:
                rows.setdefault(c + height[node], []).append((node, up, lo, lo, n, True))
            else:
                rows.setdefault(c + depth[up], []).append((up, node, lo, lo, n, False))
    return _collect(rows)


def tree_reduce(parent, count, chunks, offset=0):
    return _tree_pass(parent, count, chunks, offset, True)


def tree_broadcast(parent, count, chunks, offset=0):
    return _tree_pass(parent, count, chunks, offset, False)


def chain(ranks, root_pos=0):
    p = len(ranks)
    order = [ranks[(root_pos + i) % p] for i in range(p)]
    return {r: (order[i - 1] if i else None) for i, r in enumerate(order)}


def broadcast(ranks, count, offset=0, root_pos=0, variant=""):
    return tree_broadcast(chain(ranks, root_pos), count, chunks_for(count, variant), offset)


def reduce(ranks, count, offset=0, root_pos=0, variant=""):
    return tree_reduce(chain(ranks, root_pos), count, chunks_for(count, variant), offset)


def allreduce(ranks, count, offset=0, variant=""):
    return reduce(ranks, count, offset, 0, variant) + broadcast(ranks, count, offset, 0, variant)


reg.register(reg.Algorithm(
    "pipeline", "a chain in K chunks (pipeline:K), each a step behind the other",
    builders={"allreduce": lambda ctx, job, variant: allreduce(reg.ranks_of(ctx), job.count, 0, variant),
              "broadcast": lambda ctx, job, variant: broadcast(reg.ranks_of(ctx), job.count, 0, job.root, variant),
              "reduce": lambda ctx, job, variant: reduce(reg.ranks_of(ctx), job.count, 0, job.root, variant)},
    formulas={"allreduce": "chain reduce + chain broadcast in K chunks: 2(K+p-2)(a + n/K b) + (K+p-2) n/K g",
              "broadcast": "(K+p-2)(a + n/K b)", "reduce": "(K+p-2)(a + n/K b + n/K g)"},
    hccl_names=("pipeline",),
    level=reg.Level(broadcast=broadcast),
    order=100))
