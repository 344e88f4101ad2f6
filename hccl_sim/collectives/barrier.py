"""barrier: every rank waits for all; no tensors (in modeled time: the latency of zero-byte messages)."""
from ..algorithms import BUF
from .base import Collective


class Barrier(Collective):
    name = "barrier"

    def busbw_factor(self, nranks):
        return 0.0

    def holds(self, rank, root):
        return False, False

    def count_of(self, nranks, n_in, n_out):
        return 0

    def sizes(self, nranks, rank, count):
        return 0, 0

    def work_count(self, count, nranks):
        return 0

    def working_buffers(self, rank, nranks, job, output, input):
        import torch
        return {BUF: torch.empty(0)}

    def expected_output(self, rank, inputs, op="sum", root=0, counts=None):
        return None

    def call(self, comm, output, input, op, root, algo):
        return comm.barrier(algo=algo)
