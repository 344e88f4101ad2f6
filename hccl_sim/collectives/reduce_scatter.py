"""reduce_scatter: the reduction of every rank's input (p x output elements); rank r gets block r."""
from ..algorithms import BUF
from ..dtypes import average
from .base import Collective, own_block
from .data import reference


class ReduceScatter(Collective):
    name = "reduce_scatter"
    reduces = True
    blocked = True
    layout = "input = {p} x output"

    def count_of(self, nranks, n_in, n_out):
        return n_out * nranks

    def sizes(self, nranks, rank, count):
        return count, count // nranks

    def working_buffers(self, rank, nranks, job, output, input):
        return {BUF: input.clone()}

    def finish(self, rank, nranks, job, buffers, output, op):
        output.copy_(buffers[BUF][own_block(job, rank, nranks)])
        if op == "avg":
            average(output, nranks)

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        import torch
        p = len(inputs)
        sizes = counts if counts is not None else [inputs[0].numel() // p] * p
        return torch.split(reference(op, inputs), list(sizes))[rank].clone()

    def call(self, comm, output, input, op, root, algo):
        return comm.reduce_scatter(output, input, op=op, algo=algo)
