"""FSDP training (FSDP2 ``fully_shard``, or FSDP1 with ``--fsdp1``) of a small MLP over the hccl_sim backend.

    mpirun -n 4 python examples/fsdp.py                  # FSDP2: all-gather / reduce-scatter (AVG)
    mpirun -n 4 python examples/fsdp.py --fsdp1 --check  # FSDP1; compare with gloo and one process

``--check`` trains the same model with FSDP on a gloo group, and in one process on the concatenated batch of
all ranks, and compares the full (unsharded) parameters at the end.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hccl_sim.torch as hccl_torch  # noqa: E402
from ddp import batch, make_model  # noqa: E402  (the same model and synthetic data as the DDP example)


def train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def shard(model, fsdp1: bool, group=None, prefetch: bool = False):
    """FSDP1 around the whole model, or FSDP2 on every Linear and the root; on ``group`` (default: world).

    ``prefetch`` (FSDP2): each layer's all-gather issued async by the layer before it (forward) or after it
    (backward), so in modeled time it overlaps that layer's compute. On CPU FSDP2 has no separate streams,
    so without this its all-gathers are blocking calls and nothing overlaps."""
    if fsdp1:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import ShardingStrategy
        return FSDP(model, sharding_strategy=ShardingStrategy.FULL_SHARD, use_orig_params=True, process_group=group,
                    device_id=torch.device("cpu"))  # FSDP1 assumes an accelerator unless told
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.fsdp import fully_shard
    mesh = DeviceMesh.from_group(group, "cpu") if group is not None else None
    layers = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    if prefetch:
        for i, layer in enumerate(layers):
            layer._set_unshard_async_op(True)
            layer.set_modules_to_forward_prefetch(layers[i + 1:i + 2])
            layer.set_modules_to_backward_prefetch(layers[i - 1:i] if i else [])
    return model


def full_parameters(model, fsdp1: bool) -> list[torch.Tensor]:
    """Every parameter unsharded, in model order (a collective: all ranks call it)."""
    if fsdp1:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        with FSDP.summon_full_params(model):
            return [p.detach().clone() for p in model.parameters()]
    return [p.full_tensor().detach().clone() for p in model.parameters()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16, help="samples per rank and step")
    parser.add_argument("--fsdp1", action="store_true", help="FullyShardedDataParallel instead of fully_shard")
    parser.add_argument("--check", action="store_true", help="compare with one process on the concatenated batch")
    parser.add_argument("--prefetch", action="store_true", help="FSDP2: async all-gathers prefetched a layer ahead")
    parser.add_argument("--compute", default=None, help="compute model: host[:FACTOR], flops[:RATE], none")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)

    dist.init_process_group("hccl_sim")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.compute:
        hccl_torch.configure(compute=args.compute)

    model = shard(make_model(), args.fsdp1, prefetch=args.prefetch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(args.steps):
        x, y = batch(step, rank, args.batch)
        with hccl_torch.step():
            loss = train_step(model, optimizer, x, y)

    status = 0
    if args.check:
        params = full_parameters(model, args.fsdp1)
        single = make_model()
        single_opt = torch.optim.SGD(single.parameters(), lr=0.05, momentum=0.9)
        for step in range(args.steps):
            xs, ys = zip(*(batch(step, r, args.batch) for r in range(world)))
            train_step(single, single_opt, torch.cat(xs), torch.cat(ys))
        diff = max((p - q.detach()).abs().max().item() for p, q in zip(params, single.parameters()))
        # the same FSDP training on a gloo group
        gloo = dist.new_group(backend="gloo")
        reference = shard(make_model(), args.fsdp1, gloo)
        reference_opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
        for step in range(args.steps):
            train_step(reference, reference_opt, *batch(step, rank, args.batch))
        vs_gloo = max((p - q).abs().max().item() for p, q in zip(params, full_parameters(reference, args.fsdp1)))
        ok = diff <= args.tolerance and vs_gloo <= args.tolerance
        print(f"rank {rank}: {'FSDP1' if args.fsdp1 else 'FSDP2'} max |hccl_sim - gloo| = {vs_gloo:.3g}, "
              f"max |hccl_sim - single process| = {diff:.3g}: {'OK' if ok else 'MISMATCH'}", flush=True)
        status = 0 if ok else 1

    if rank == 0:
        steps = hccl_torch.report()["steps"]
        mean = sum(s["time"] for s in steps) / len(steps)
        comm = sum(s["comm"] for s in steps) / len(steps)
        print(f"{'FSDP1' if args.fsdp1 else 'FSDP2'} on hccl_sim: {world} ranks, {args.steps} steps, final loss "
              f"{loss:.4f}; modeled step {mean * 1e6:.1f} us, communication {comm * 1e6:.1f} us ({comm / mean:.1%})",
              flush=True)
        print(hccl_torch.summary(), flush=True)
    dist.destroy_process_group()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
