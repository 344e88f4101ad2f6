"""Rendezvous from MPI: ``init_process_group("hccl_sim")`` under mpirun with no torch launch variables.

torch needs a key-value store shared by all ranks (new_group, DeviceMesh and others use it). Under an MPI
launcher without MASTER_ADDR, MASTER_PORT and RANK (cluster shells often export the first two only) we
take rank and world size from MPI, let rank 0 open a TCPStore on a free port, and broadcast its address
over MPI. With all of them set, or with no MPI launcher (torchrun, spawn), ``env://`` is torch's own.
"""
from __future__ import annotations

import importlib
import os
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import torch.distributed as dist

# the module, not the function torch.distributed re-exports under the same name
_rdzv = importlib.import_module("torch.distributed.rendezvous")

SCHEME = "hccl_sim"


def mpi_store(timeout: timedelta = timedelta(minutes=5), rank: int = -1, world_size: int = -1):
    """(store, rank, world_size) for this MPI job: a TCPStore served by MPI rank 0."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if rank not in (-1, world.rank) or world_size not in (-1, world.size):
        raise ValueError(f"hccl_sim rendezvous: rank {rank} / world_size {world_size} do not match the MPI job "
                         f"(rank {world.rank} of {world.size}); set MASTER_ADDR and MASTER_PORT to use "
                         f"torch's own rendezvous with other rank numbers")
    hosts = world.allgather(MPI.Get_processor_name())
    address = None
    store = None
    if world.rank == 0:
        host = "127.0.0.1" if len(set(hosts)) == 1 else socket.gethostname()
        # port 0: the OS picks a free port, so concurrent jobs on one host never collide
        store = dist.TCPStore(host, 0, world.size, is_master=True, timeout=timeout, wait_for_workers=False)
        address = (host, store.port)
    address = world.bcast(address, root=0)
    if world.rank != 0:
        store = dist.TCPStore(address[0], address[1], world.size, is_master=False, timeout=timeout)
    return store, world.rank, world.size


def _query_ints(url: str) -> tuple[int, int]:
    query = parse_qs(urlparse(url).query)
    return int(query.get("rank", ["-1"])[0]), int(query.get("world_size", ["-1"])[0])


def _mpi_handler(url: str, timeout: timedelta = timedelta(minutes=5), **kwargs):
    rank, world_size = _query_ints(url)
    yield mpi_store(timeout, rank, world_size)
    raise RuntimeError("hccl_sim rendezvous: re-rendezvous is not supported")


_torch_env_handler = _rdzv._rendezvous_handlers["env"]


def _env_or_mpi_handler(url: str, timeout: timedelta = timedelta(minutes=5), **kwargs):
    """torch's env:// when the launch variables are there (or there is no MPI launcher); MPI otherwise.

    Under mpirun with MASTER_ADDR/MASTER_PORT exported but no RANK (cluster shells), MPI's rendezvous."""
    from ..executors.transport import under_mpirun

    rank, world_size = _query_ints(url)
    has_rank = os.environ.get("RANK") or rank >= 0
    if not under_mpirun() or (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT") and has_rank):
        return _torch_env_handler(url, timeout=timeout, **kwargs)
    return _mpi_handler(url, timeout=timeout, **kwargs)


def install() -> None:
    """Register ``hccl_sim://`` and let ``env://`` fall back to MPI when MASTER_ADDR/PORT are unset."""
    handlers = _rdzv._rendezvous_handlers
    if SCHEME not in handlers:
        dist.register_rendezvous_handler(SCHEME, _mpi_handler)
    if handlers.get("env") is _torch_env_handler:
        handlers["env"] = _env_or_mpi_handler
