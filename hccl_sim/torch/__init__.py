"""torch.distributed backend "hccl_sim": training loops whose collectives run through the emulator.

    import hccl_sim.torch                     # registers the backend
    dist.init_process_group("hccl_sim")       # under mpirun; no MASTER_ADDR/MASTER_PORT needed
    for batch in data:
        with hccl_sim.torch.step():           # one training step of the modeled-time report
            ...
    print(hccl_sim.torch.summary())           # or HCCL_SIM_REPORT=1 to print it at exit

Launch under mpirun (MPI moves the data) or with any torch rendezvous: torchrun,
``torch.multiprocessing.spawn``, ``env://``, ``tcp://``, ``file://`` (torch's gloo moves it).
Options: ``pg_options=hccl_sim.torch.Options(topology=..., placement=..., algo=..., transport=...)`` or the
variables HCCL_SIM_TOPOLOGY, HCCL_SIM_PLACEMENT, HCCL_SIM_ALGO, HCCL_SIM_TRANSPORT; compute model HCCL_SIM_COMPUTE (``host:FACTOR``,
``flops:RATE``, ``none``) or ``configure(compute=...)``.
"""
from __future__ import annotations

import os

from . import rendezvous as _rendezvous
from . import teardown as _teardown
from . import recorder as _recorder
from . import timeline as _timeline_module
from .recorder import record
from .backend import (BACKEND_NAME, DistCollectiveError, DistCollectiveTimeout, Options, ProcessGroupHcclSim,
                      flush_p2p, register)
from .timeline import ComputeModel, StepReport, Timeline, install_optimizer_hook, report_at_exit, timeline

register()
_rendezvous.install()
_teardown.install()  # first, so it runs after the atexit handlers below and the script's
install_optimizer_hook()
_recorder.record_from_environment()
if os.environ.get("HCCL_SIM_REPORT"):
    report_at_exit(os.environ["HCCL_SIM_REPORT"])


def configure(compute: ComputeModel | str | None = None, report: str | None = None) -> Timeline:
    """Set the compute model (a ComputeModel or "host:FACTOR" / "flops:RATE" / "none") and where the
    summary goes at exit ("1" prints it; a path writes JSON, ``{rank}`` replaced)."""
    tl = timeline()
    if compute is not None:
        tl.compute_model = compute if isinstance(compute, ComputeModel) else ComputeModel.parse(compute)
    if report is not None:
        report_at_exit(report)
    return tl


def step(name: str | None = None):
    """Context manager: the code inside is one training step of the modeled-time report."""
    return timeline().step(name)


def advance(seconds: float) -> float:
    """Add explicit modeled compute time to this rank's clock."""
    return timeline().advance(seconds)


def synchronize() -> float:
    """Join this rank's compute clock to all communication issued so far (as a device synchronize)."""
    return timeline().join()


def clock() -> float:
    """This rank's modeled clock in seconds."""
    return timeline().clock


def report() -> dict:
    """This rank's modeled-time report: totals, per collective kind, per step."""
    return timeline().report()


def summary() -> str:
    return timeline().summary()


def communicator(group=None):
    """The hccl_sim Communicator behind a process group (the default group if None)."""
    import torch.distributed as dist

    pg = group if group is not None else dist.distributed_c10d._get_default_group()
    if not isinstance(pg, ProcessGroupHcclSim):
        raise TypeError(f"not an hccl_sim process group: {pg!r}")
    return pg.comm


__all__ = ["BACKEND_NAME", "DistCollectiveError", "DistCollectiveTimeout", "Options", "ProcessGroupHcclSim", "ComputeModel", "StepReport", "Timeline", "configure",
           "step", "advance", "synchronize", "clock", "report", "summary", "communicator", "timeline", "report_at_exit",
           "flush_p2p", "record"]
