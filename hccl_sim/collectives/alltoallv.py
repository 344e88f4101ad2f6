"""alltoallv: rank i sends ``send_counts[j]`` elements to rank j and receives ``recv_counts[j]`` from it."""
from ..algorithms import Job
from ..errors import CollectiveError
from .alltoall import AllToAll


class AllToAllV(AllToAll):
    name = "alltoallv"
    count_args = ("send_counts", "recv_counts")
    layout = "input = sum(send_counts), output = sum(recv_counts)"

    def count_of(self, nranks, n_in, n_out):
        return 0

    def sizes(self, nranks, rank, count, send_counts, recv_counts):
        return sum(send_counts), sum(recv_counts)

    def job(self, count, root=0, counts=None):
        """``counts``: the p x p matrix of elements rank i sends rank j."""
        if counts is None:
            return Job(count, root)
        matrix = tuple(tuple(int(x) for x in row) for row in counts)
        return Job(sum(map(sum, matrix)), root, None, matrix)

    def equal_counts(self, nranks, block):
        return [[block] * nranks for _ in range(nranks)]

    def rank_args(self, rank, job):
        return list(job.matrix[rank]), [row[rank] for row in job.matrix]

    def agreed_job(self, rows, root):
        p = len(rows)
        send, recv = rows[:, :p], rows[:, p:]
        bad = [(i, j) for i in range(p) for j in range(p) if send[i, j] != recv[j, i]]
        if bad:
            i, j = bad[0]
            raise CollectiveError(f"alltoallv: rank {i} sends {send[i, j]} elements to rank {j}, which "
                                  f"expects {recv[j, i]} ({len(bad)} disagreeing pair(s))")
        return self.job(0, root, send.tolist())

    def call(self, comm, output, input, op, root, algo, send_counts, recv_counts):
        return comm.alltoallv(output, input, send_counts, recv_counts, algo=algo)
