"""Wall time of one DDP training step on hccl_sim versus gloo: same host, same ranks, same run.

    mpirun -n 4 python benchmarks/ddp_step.py [--width 1024] [--layers 4] [--batch 32] [--steps 20]
    torchrun --nproc-per-node 4 benchmarks/ddp_step.py [--compute flops:2e12]

Both models are identical and see identical batches; steps alternate between the backends so that
background load hits both alike. A step's time is the slowest rank's; the table shows the median over
steps and the ratio hccl_sim / gloo (target: at most 1.3). It also gives the modeled step of the same
hccl_sim steps with overlap (DDP's bucket allreduces run on the communication stream during backward) and
without (compute + communication). ``--format json`` for a machine-readable line.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import hccl_sim.torch as hccl_torch


def make_model(width: int, layers: int) -> torch.nn.Module:
    torch.manual_seed(0)
    mods = []
    for _ in range(layers):
        mods += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods, torch.nn.Linear(width, 10))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32, help="samples per rank and step")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--compute", default=None, help="compute model: host[:FACTOR], flops[:RATE], none")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # ranks share the host's cores

    dist.init_process_group("hccl_sim")
    if args.compute:
        hccl_torch.configure(compute=args.compute)
    rank, world = dist.get_rank(), dist.get_world_size()
    gloo = dist.new_group(backend="gloo")
    models = {"hccl_sim": DDP(make_model(args.width, args.layers)),
              "gloo": DDP(make_model(args.width, args.layers), process_group=gloo)}
    optimizers = {k: torch.optim.SGD(m.parameters(), lr=0.01) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for step in range(args.warmup + args.steps):
        g = torch.Generator().manual_seed(step * 1000 + rank)
        x = torch.randn(args.batch, args.width, generator=g)
        y = torch.randint(0, 10, (args.batch,), generator=g)
        for name in (("hccl_sim", "gloo") if step % 2 == 0 else ("gloo", "hccl_sim")):
            model, optimizer = models[name], optimizers[name]
            dist.barrier(group=gloo)
            t0 = time.perf_counter()
            with hccl_torch.step() if name == "hccl_sim" else contextlib.nullcontext():
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            elapsed = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX, group=gloo)
            elapsed = elapsed.item()
            if step >= args.warmup:
                times[name].append(elapsed)
    # equal to float tolerance: the two backends sum in different orders
    diff = max((p - q).abs().max().item() for p, q in zip(models["hccl_sim"].parameters(), models["gloo"].parameters()))
    nparams = sum(p.numel() for p in models["gloo"].parameters())
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["hccl_sim"] / medians["gloo"]
    modeled = hccl_torch.report()["steps"][args.warmup:]
    overlapped = statistics.mean(s["time"] for s in modeled)
    serial = statistics.mean(s["compute"] + s["comm"] + s["wait"] for s in modeled)
    if rank == 0:
        row = dict(ranks=world, params=nparams, grad_bytes=nparams * 4, batch=args.batch, steps=args.steps,
                   hccl_sim_ms=medians["hccl_sim"] * 1e3, gloo_ms=medians["gloo"] * 1e3, ratio=ratio,
                   max_parameter_difference=diff,
                   modeled_comm_us_per_step=statistics.mean(s["comm"] for s in modeled) * 1e6,
                   modeled_wait_us_per_step=statistics.mean(s["wait"] for s in modeled) * 1e6,
                   modeled_step_us=overlapped * 1e6, modeled_step_no_overlap_us=serial * 1e6)
        if args.format == "json":
            print(json.dumps(row))
        else:
            print(f"DDP step, {world} ranks, {nparams / 1e6:.2f} M parameters ({nparams * 4 / 2**20:.1f} MiB of "
                  f"gradients), batch {args.batch}/rank, median of {args.steps} steps")
            print(f"{'backend':<10}{'step_ms':>10}")
            for k in ("gloo", "hccl_sim"):
                print(f"{k:<10}{medians[k] * 1e3:>10.2f}")
            print(f"ratio hccl_sim/gloo: {ratio:.2f} (target <= 1.3); max parameter difference: {diff:.2g}")
            print(f"modeled step (rank 0, mean): {overlapped * 1e6:.1f} us with overlap, {serial * 1e6:.1f} us "
                  f"without (compute {statistics.mean(s['compute'] for s in modeled) * 1e6:.1f} us + "
                  f"communication {statistics.mean(s['comm'] for s in modeled) * 1e6:.1f} us + waiting for other "
                  f"ranks {statistics.mean(s['wait'] for s in modeled) * 1e6:.1f} us)")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
