"""Point to point: send, recv, batch_send_recv and recv_any, in modeled time.

Over its own duplicate of the transport, so user tags never meet collective steps. Each user tag t uses
two wire tags: 2t carries a header (modeled arrival time, bytes, dtype), 2t + 1 the data. Phase 1 posts
the headers both ways and the sends' data; phase 2 receives each message's data after checking its
header against the receiving tensor, so a mismatch is an error naming both sides, not a truncation.
"""
from __future__ import annotations

import numpy as np
import torch

from ..algorithms import Schedule, StepBuilder
from ..dtypes import DTYPE_CODES, DTYPE_NAMES, check_dtype
from ..errors import CollectiveError
from ..executors.mpi import as_bytes, copy_back, flat_view
from .clock import Clock
from .record import CallRecord

_HEAD = 3  # header floats: arrival time, bytes, dtype code


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class PointToPoint:
    def __init__(self, transport, clock: Clock, timing, timeout: float, notices):
        """``transport``: a duplicate for this traffic alone; ``timing``: the timing engine of the
        communicator's model; ``clock``: the clock the calls read and advance."""
        self.transport, self.clock, self.timing, self.timeout, self.notices = transport, clock, timing, timeout, notices
        self.rank, self.size = transport.rank, transport.size
        self._tag_ub = min(transport.tag_ub, 1 << 30)

    def batch_send_recv(self, ops, head=None) -> CallRecord:
        """``ops``: ("send" | "recv", tensor, peer[, tag]) items, all posted, then all waited for.

        This rank's sends are timed together (they share its links) from its clock; each receive
        completes at the arrival time its sender computed. The clock ends at the latest of them.
        ``head``: the header of a single receive, already received (``recv_any``)."""
        ops = [tuple(o) + (0,) * (4 - len(o)) for o in ops]
        for kind, tensor, peer, tag in ops:
            self._check(kind, tensor, peer, tag)
        start = self.clock.now
        sends = [(t, peer, tag) for kind, t, peer, tag in ops if kind == "send"]
        recvs = [(t, peer, tag) for kind, t, peer, tag in ops if kind == "recv"]
        arrivals = self._send_arrivals([(peer, _nbytes(t)) for t, peer, _ in sends])
        # phase 1: headers (arrival time, bytes, dtype) both ways, and the data of the sends
        out_heads = [np.array([a, _nbytes(t), DTYPE_CODES[t.dtype]], dtype=np.float64)
                     for a, (t, _, _) in zip(arrivals, sends)]
        in_heads = [np.zeros(_HEAD) for _ in recvs] if head is None else [head]
        flats = [flat_view(t) for t, _, _ in sends]  # held until the sends complete
        head_reqs = [] if head is not None else [
            self.transport.irecv(h, peer, 2 * tag) for h, (_, peer, tag) in zip(in_heads, recvs)]
        send_reqs = [self.transport.isend(h, peer, 2 * tag) for h, (_, peer, tag) in zip(out_heads, sends)]
        send_reqs += [self.transport.isend(as_bytes(f), peer, 2 * tag + 1) for f, (_, peer, tag) in zip(flats, sends)]
        send_peers = [peer for _, peer, _ in sends] * 2
        self.transport.wait_all(head_reqs, [peer for _, peer, _ in recvs], self.timeout, "recv", self.notices)
        # phase 2: the data of the receives, each checked against its header
        problems, data_reqs, targets = [], [], []
        for h, (t, peer, tag) in zip(in_heads, recvs):
            flat = flat_view(t)
            if int(h[1]) != _nbytes(t) or int(h[2]) != DTYPE_CODES[t.dtype]:
                problems.append(f"recv from rank {peer} (tag {tag}): the message has {int(h[1])} bytes of "
                                f"{list(DTYPE_CODES)[int(h[2])]}, the tensor {_nbytes(t)} bytes of {t.dtype}")
                flat = torch.empty(int(h[1]), dtype=torch.uint8)  # drain it so the sender completes
            targets.append((t, flat))
            data_reqs.append(self.transport.irecv(as_bytes(flat), peer, 2 * tag + 1))
        self.transport.wait_all(data_reqs + send_reqs, [p for _, p, _ in recvs] + send_peers, self.timeout,
                                "batch_send_recv", self.notices)
        if problems:
            raise CollectiveError("; ".join(problems))
        for t, flat in targets:
            copy_back(t, flat)
        self.clock.now = max([self.clock.now] + list(arrivals) + [float(h[0]) for h in in_heads])
        return self._record(ops, start)

    def recv_any(self, tensor: torch.Tensor, tag: int = 0) -> tuple[CallRecord, int]:
        """Receive into ``tensor`` from whichever rank sends to this one with ``tag``; (record, source)."""
        check_dtype(tensor.dtype)
        head = np.zeros(_HEAD)
        source = self.transport.recv_any(head, 2 * tag, self.timeout, "recv from any source")
        return self.batch_send_recv([("recv", tensor, source, tag)], head=head), source

    def _check(self, kind, tensor, peer, tag) -> None:
        if kind not in ("send", "recv"):
            raise ValueError(f"batch_send_recv: kind {kind!r} is not 'send' or 'recv'")
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{kind}: expected a torch.Tensor, got {type(tensor).__name__}")
        check_dtype(tensor.dtype)
        if not (isinstance(peer, int) and 0 <= peer < self.size):
            raise ValueError(f"{kind}: peer {peer!r} is not a rank of {self.size}")
        if not (isinstance(tag, int) and 0 <= 2 * tag + 1 <= self._tag_ub):
            raise ValueError(f"{kind}: tag {tag!r} must be an integer in 0..{(self._tag_ub - 1) // 2}")

    def _send_arrivals(self, sends) -> list[float]:
        """Modeled arrival time of each of this rank's concurrent sends, posted at its clock."""
        if not sends:
            return []
        now = self.clock.now
        step = StepBuilder()
        for peer, nbytes in sends:
            if peer != self.rank:
                step.add(self.rank, peer, 0, 0, nbytes)
        schedule = Schedule("send", "p2p", self.size, max(n for _, n in sends))
        schedule.append(step)
        result = self.timing.run(schedule, 1, np.full(self.size, now), record=True)
        arrive = iter(result.transfers.arrive.tolist() if result.transfers is not None else [])
        return [now if peer == self.rank else next(arrive) for peer, _ in sends]

    def _record(self, ops, start: float) -> CallRecord:
        dtypes = {t.dtype for _, t, _, _ in ops}
        dtype = "mixed" if len(dtypes) > 1 else DTYPE_NAMES.get(ops[0][1].dtype, "none") if ops else "none"
        name = ops[0][0] if len(ops) == 1 else "batch_send_recv"
        return CallRecord(name, "p2p", sum(t.numel() for _, t, _, _ in ops), dtype, "none",
                          sum(_nbytes(t) for _, t, _, _ in ops), start, self.clock.now, self.clock.now - start)
