"""alltoall: block j of rank i's input becomes block i of rank j's output (p equal blocks)."""
from ..algorithms import BUF, SEND
from .base import Collective


class AllToAll(Collective):
    name = "alltoall"
    layout = "input and output of the same size, a multiple of {p}"

    def count_of(self, nranks, n_in, n_out):
        return n_in

    def sizes(self, nranks, rank, count):
        return (count // nranks * nranks,) * 2

    def working_buffers(self, rank, nranks, job, output, input):
        send, recv = job.alltoall_blocks(nranks)
        (so, n), (ro, _) = send[rank][rank], recv[rank][rank]
        output[ro:ro + n].copy_(input[so:so + n])
        return {BUF: output, SEND: input}

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        """``counts``: the p x p matrix of elements rank i sends rank j (default: equal blocks)."""
        import torch
        p = len(inputs)
        matrix = counts if counts is not None else [[inputs[0].numel() // p] * p for _ in range(p)]
        parts = [torch.split(inputs[i], list(matrix[i]))[rank].clone() for i in range(p)]  # not views of p inputs
        return torch.cat(parts)

    def call(self, comm, output, input, op, root, algo):
        return comm.alltoall(output, input, algo=algo)
