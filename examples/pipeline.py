"""Two-stage pipeline training (GPipe schedule, microbatches) with send/recv over the hccl_sim backend.

    mpirun -n 2 python examples/pipeline.py             # rank 0: first half of the model, rank 1: second
    mpirun -n 2 python examples/pipeline.py --check     # compare with one process training the whole model
    mpirun -n 2 python examples/pipeline.py --torch     # the same with torch.distributed.pipelining

Activations go forward with isend/irecv, their gradients come back the same way; the modeled time
report shows the send/recv time of each step.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hccl_sim.torch as hccl_torch  # noqa: E402
from ddp import batch, make_model  # noqa: E402

SPLIT = 2  # layers [0, SPLIT) on stage 0, the rest on stage 1
HIDDEN = 64


def stage_module(stage: int) -> torch.nn.Sequential:
    layers = list(make_model())
    return torch.nn.Sequential(*(layers[:SPLIT] if stage == 0 else layers[SPLIT:]))


def gpipe_step(module, optimizer, stage, x, y, micro):
    """One step: every microbatch forward, then every microbatch backward (loss = mean over the batch)."""
    optimizer.zero_grad()
    inputs, outputs = [], []
    for xm in x.chunk(micro):
        if stage == 0:
            out = module(xm)
            dist.send(out.detach(), 1)
            outputs.append(out)
        else:
            act = torch.empty(xm.shape[0], HIDDEN).requires_grad_()
            dist.recv(act, 0)
            inputs.append(act)
            outputs.append(module(act))
    loss_total = 0.0
    if stage == 1:
        grads = []
        for out, ym, act in zip(outputs, y.chunk(micro), inputs):
            loss = torch.nn.functional.mse_loss(out, ym) * ym.shape[0] / y.shape[0]
            loss.backward()
            loss_total += loss.item()
            grads.append(dist.isend(act.grad, 0))
        for work in grads:
            work.wait()
    else:
        works, grads = [], []
        for out in outputs:
            g = torch.empty_like(out)
            works.append(dist.irecv(g, 1))
            grads.append(g)
        for work, out, g in zip(works, outputs, grads):
            work.wait()
            out.backward(g)
    optimizer.step()
    return loss_total


def torch_pipelining_step(schedule, stage, x, y, optimizer):
    optimizer.zero_grad()
    if stage == 0:
        schedule.step(x)
        loss = 0.0
    else:
        losses = []
        schedule.step(target=y, losses=losses)
        loss = sum(v.item() for v in losses) / len(losses)
    optimizer.step()
    return loss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--micro", type=int, default=4, help="microbatches per step")
    parser.add_argument("--torch", action="store_true", help="use torch.distributed.pipelining (ScheduleGPipe)")
    parser.add_argument("--check", action="store_true", help="compare with one process training the whole model")
    parser.add_argument("--compute", default=None, help="compute model: host[:FACTOR], flops[:RATE], none")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)

    dist.init_process_group("hccl_sim")
    stage, world = dist.get_rank(), dist.get_world_size()
    if world != 2:
        raise SystemExit(f"pipeline.py: two stages need exactly 2 ranks (mpirun -n 2), got {world}")
    if args.batch % args.micro:
        raise SystemExit(f"pipeline.py: --batch {args.batch} is not a multiple of --micro {args.micro}")
    if args.compute:
        hccl_torch.configure(compute=args.compute)

    module = stage_module(stage)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    schedule = None
    if args.torch:
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        def mean_loss(out, target):  # per microbatch; the schedule averages over microbatches
            return torch.nn.functional.mse_loss(out, target)
        pipe_stage = PipelineStage(module, stage, 2, torch.device("cpu"))
        schedule = ScheduleGPipe(pipe_stage, args.micro, loss_fn=mean_loss)
    for step in range(args.steps):
        x, y = batch(step, 0, args.batch)  # the pipeline trains on one batch per step
        with hccl_torch.step():
            if schedule is not None:
                loss = torch_pipelining_step(schedule, stage, x, y, optimizer)
            else:
                loss = gpipe_step(module, optimizer, stage, x, y, args.micro)

    status = 0
    if args.check:
        single = make_model()
        single_opt = torch.optim.SGD(single.parameters(), lr=0.05, momentum=0.9)
        for step in range(args.steps):
            x, y = batch(step, 0, args.batch)
            single_opt.zero_grad()
            torch.nn.functional.mse_loss(single(x), y).backward()
            single_opt.step()
        reference = list(single)[:SPLIT] if stage == 0 else list(single)[SPLIT:]
        diff = max((p - q).abs().max().item() for p, q in
                   zip(module.parameters(), torch.nn.Sequential(*reference).parameters()))
        ok = diff <= args.tolerance
        print(f"stage {stage}: max |pipeline - single process| = {diff:.3g}: {'OK' if ok else 'MISMATCH'}", flush=True)
        status = 0 if ok else 1

    steps = hccl_torch.report()["steps"]
    if stage == 1:
        mean = sum(s["time"] for s in steps) / len(steps)
        comm = sum(s["comm"] for s in steps) / len(steps)
        print(f"pipeline on hccl_sim: 2 stages, {args.micro} microbatches, {args.steps} steps, final loss {loss:.4f}; "
              f"modeled step {mean * 1e6:.1f} us, send/recv {comm * 1e6:.1f} us ({comm / mean:.1%})", flush=True)
        print(hccl_torch.summary(), flush=True)
    dist.destroy_process_group()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
