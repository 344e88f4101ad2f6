"""allgather: every rank's output (p x input elements) gets every rank's input, in rank order."""
from ..algorithms import BUF
from .base import Collective, own_block


class AllGather(Collective):
    name = "allgather"
    blocked = True
    layout = "output = {p} x input"

    def count_of(self, nranks, n_in, n_out):
        return n_in * nranks

    def sizes(self, nranks, rank, count):
        return count // nranks, count

    def working_buffers(self, rank, nranks, job, output, input):
        output[own_block(job, rank, nranks)].copy_(input)
        return {BUF: output}

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        import torch
        return torch.cat(list(inputs))

    def call(self, comm, output, input, op, root, algo):
        return comm.allgather(output, input, algo=algo)
