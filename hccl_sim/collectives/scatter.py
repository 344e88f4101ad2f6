"""scatter: rank r's output gets block r of the root's input (p x output elements, root only)."""
from ..algorithms import BUF
from .base import Collective, own_block


class Scatter(Collective):
    name = "scatter"
    rooted = True
    blocked = True
    layout = "the root's input = {p} x output"

    def holds(self, rank, root):
        return rank == root, True

    def count_of(self, nranks, n_in, n_out):
        return n_out * nranks

    def sizes(self, nranks, rank, count):
        return count, count // nranks

    def working_buffers(self, rank, nranks, job, output, input):
        import torch
        # the root's input is only read
        return {BUF: input if rank == job.root else torch.empty(job.count, dtype=output.dtype)}

    def finish(self, rank, nranks, job, buffers, output, op):
        output.copy_(buffers[BUF][own_block(job, rank, nranks)])

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        import torch
        p = len(inputs)
        return torch.split(inputs[root], [inputs[root].numel() // p] * p)[rank].clone()

    def call(self, comm, output, input, op, root, algo):
        return comm.scatter(output, input, root=root, algo=algo)
