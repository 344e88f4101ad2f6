"""allgatherv: allgather with ``counts[r]`` elements from rank r (the same counts on every rank)."""
from .allgather import AllGather
from .base import VariableBlocks


class AllGatherV(VariableBlocks, AllGather):
    name = "allgatherv"
    layout = "input = counts[rank], output = sum(counts)"

    def sizes(self, nranks, rank, count, counts):
        return counts[rank], sum(counts)

    def call(self, comm, output, input, op, root, algo, counts):
        return comm.allgatherv(output, input, counts, algo=algo)
