"""DDP training of a small MLP on synthetic data over the hccl_sim backend, with the modeled step time.

    mpirun -n 4 python examples/ddp.py                       # train, print the modeled-time report
    mpirun -n 4 python examples/ddp.py --check               # ... and compare with gloo and one process
    HCCL_SIM_TOPOLOGY=two-level:server=2 mpirun -n 4 python examples/ddp.py --compute host:0.1

The two lines that differ from a gloo/NCCL script: ``import hccl_sim.torch`` and the backend name.
"""
from __future__ import annotations

import argparse
import copy

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import hccl_sim.torch as hccl_torch


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 8))


def batch(step: int, rank: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s batch of step ``step`` (any process can make any rank's batch)."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(size, 32, generator=g)
    return x, torch.sin(x[:, :8] * 2) + 0.1 * torch.randn(size, 8, generator=g)


def train(model, steps, rank, batch_size, profile=False):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(steps):
        x, y = batch(step, rank, batch_size)
        context = hccl_torch.step() if profile else _null()
        with context:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    return loss.item()


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16, help="samples per rank and step")
    parser.add_argument("--check", action="store_true",
                        help="also train with gloo and in one process on the concatenated batch; compare parameters")
    parser.add_argument("--compute", default=None, help="compute model: host[:FACTOR], flops[:RATE], none")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)

    dist.init_process_group("hccl_sim")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.compute:
        hccl_torch.configure(compute=args.compute)

    model = DDP(make_model())
    loss = train(model, args.steps, rank, args.batch, profile=True)
    status = 0
    if args.check:
        gloo = dist.new_group(backend="gloo")
        reference = DDP(make_model(), process_group=gloo)
        train(reference, args.steps, rank, args.batch)
        single = make_model()
        optimizer = torch.optim.SGD(single.parameters(), lr=0.05, momentum=0.9)
        for step in range(args.steps):
            xs, ys = zip(*(batch(step, r, args.batch) for r in range(world)))
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(single(torch.cat(xs)), torch.cat(ys)).backward()
            optimizer.step()
        vs_gloo = max_difference(model.module, reference.module)
        vs_single = max_difference(model.module, single)
        ok = vs_gloo <= args.tolerance and vs_single <= args.tolerance
        print(f"rank {rank}: max |hccl_sim - gloo| = {vs_gloo:.3g}, max |hccl_sim - single process| = "
              f"{vs_single:.3g}: {'OK' if ok else 'MISMATCH'}", flush=True)
        status = 0 if ok else 1
        # Free DDP's reducer while `gloo` still holds the group: the group's last reference then goes
        # through its Python object, whose destructor joins gloo's worker threads with the GIL released.
        # Freed last by the reducer it joins them holding the GIL, and a worker still finishing an
        # operation (it needs the GIL) deadlocks the exit (torch 2.13).
        del reference

    report = hccl_torch.report()
    steps = report["steps"]
    if rank == 0:
        mean = sum(s["time"] for s in steps) / len(steps)
        comm = sum(s["comm"] for s in steps) / len(steps)
        print(f"DDP on hccl_sim: {world} ranks, {args.steps} steps, final loss {loss:.4f}; modeled step "
              f"{mean * 1e6:.1f} us, communication {comm * 1e6:.1f} us ({comm / mean:.1%})", flush=True)
        print(hccl_torch.summary(), flush=True)
    dist.destroy_process_group()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
