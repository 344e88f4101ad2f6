"""gather: the root's output (p x input elements) gets every rank's input; other ranks pass no output."""
from ..algorithms import BUF
from .base import Collective, own_block


class Gather(Collective):
    name = "gather"
    rooted = True
    blocked = True
    layout = "the root's output = {p} x input"

    def holds(self, rank, root):
        return True, rank == root

    def count_of(self, nranks, n_in, n_out):
        return n_in * nranks

    def sizes(self, nranks, rank, count):
        return count // nranks, count

    def working_buffers(self, rank, nranks, job, output, input):
        import torch
        work = output if rank == job.root else torch.empty(job.count, dtype=input.dtype)
        work[own_block(job, rank, nranks)].copy_(input)
        return {BUF: work}

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        import torch
        return torch.cat(list(inputs)) if rank == root else None

    def call(self, comm, output, input, op, root, algo):
        return comm.gather(output, input, root=root, algo=algo)
