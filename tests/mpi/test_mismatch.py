"""Ranks that disagree get the same clear error on every rank, at once — never a hang or garbage."""
import time

import pytest
import torch

from hccl_sim import CollectiveError, Communicator

pytestmark = pytest.mark.mpi


def _call(world, comm, **per_rank):
    """allreduce where the last rank passes the odd argument; returns (error text, seconds)."""
    odd = world.rank == world.size - 1
    kwargs = {"op": "sum", "algo": "ring"}
    tensor = torch.ones(8)
    if "count" in per_rank and odd:
        tensor = torch.ones(9)
    if "dtype" in per_rank and odd:
        tensor = tensor.double()
    if "op" in per_rank and odd:
        kwargs["op"] = "max"
    if "algo" in per_rank and odd:
        kwargs["algo"] = "tree"
    start = time.monotonic()
    try:
        comm.allreduce(tensor, **kwargs)
        return None, time.monotonic() - start
    except CollectiveError as exc:
        return str(exc), time.monotonic() - start


@pytest.mark.parametrize("field,shown", [("count", "9"), ("dtype", "fp64"), ("op", "max"), ("algo", "tree")])
def test_each_mismatch_is_named_on_every_rank(world, field, shown):
    if world.size < 2:
        pytest.skip("a single rank cannot disagree with itself")
    comm = Communicator(world)
    message, seconds = _call(world, comm, **{field: True})
    everyone = world.allgather(message)
    last = world.size - 1
    assert message is not None and f"ranks disagree on {field}" in message
    assert f"rank {last}: {shown}" in message  # names the odd rank and its value
    assert len(set(everyone)) == 1  # the same error everywhere
    assert seconds < 5.0
    # the communicator stays usable after a refused call
    t = torch.ones(4)
    comm.allreduce(t, algo="ring")
    assert torch.equal(t, torch.full((4,), float(world.size)))


def test_check_can_be_turned_off_for_speed(world):
    comm = Communicator(world, check=False)
    t = torch.ones(16)
    comm.allreduce(t, algo="rhd")
    assert torch.equal(t, torch.full((16,), float(world.size)))


def test_invalid_input_on_one_rank_fails_everywhere(world):
    comm = Communicator(world)
    bad = world.rank == 0
    try:
        comm.allreduce("not a tensor" if bad else torch.ones(3))
        message = None
    except CollectiveError as exc:
        message = str(exc)
    assert message is not None and "rank 0: expected a torch.Tensor" in message
