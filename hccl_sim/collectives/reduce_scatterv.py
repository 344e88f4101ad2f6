"""reduce_scatterv: reduce_scatter with blocks of ``counts[r]`` elements (the same counts on every rank)."""
from .base import VariableBlocks
from .reduce_scatter import ReduceScatter


class ReduceScatterV(VariableBlocks, ReduceScatter):
    name = "reduce_scatterv"
    layout = "output = counts[rank], input = sum(counts)"

    def sizes(self, nranks, rank, count, counts):
        return sum(counts), counts[rank]

    def call(self, comm, output, input, op, root, algo, counts):
        return comm.reduce_scatterv(output, input, counts, op=op, algo=algo)
