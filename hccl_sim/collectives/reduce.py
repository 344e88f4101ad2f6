"""reduce: the root's tensor gets the reduction of all ranks' tensors; the others keep theirs."""
from ..algorithms import BUF
from ..dtypes import average
from .base import InPlace
from .data import reference


class Reduce(InPlace):
    name = "reduce"
    reduces = True
    rooted = True

    def working_buffers(self, rank, nranks, job, output, input):
        return {BUF: output if rank == job.root else output.clone()}  # a tree's partial sums go to a copy

    def finish(self, rank, nranks, job, buffers, output, op):
        if op == "avg" and rank == job.root:
            average(output, nranks)

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        return reference(op, inputs) if rank == root else inputs[rank].clone()

    def call(self, comm, output, input, op, root, algo):
        return comm.reduce(output, root=root, op=op, algo=algo)
