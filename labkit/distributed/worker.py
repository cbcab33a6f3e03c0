"""The torchrun worker of notebook 12: DDP, no_sync, ZeroRedundancyOptimizer and FSDP on CPU.

    torchrun --standalone --nproc_per_node=2 -m labkit.distributed.worker --out results.pt

torchrun starts one process per rank with RANK, WORLD_SIZE, MASTER_ADDR/PORT in the
environment; ``init_process_group("gloo")`` reads them. Rank 0 saves every measurement
(tensors, floats, ints) to ``--out`` for ``labkit.distributed.launch`` to read.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from labkit.distributed.lesson import (
    GLOBAL_BATCH,
    LR,
    STEPS,
    global_batches,
    make_model,
    optimizer_state_bytes,
    tensor_bytes,
)


def shard(x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (first dimension)."""
    per = x.shape[0] // world
    return x[rank * per : (rank + 1) * per]


def run_ddp(rank: int, world: int) -> dict[str, object]:
    """DDP + SGD on the global batches: each rank sees 1/world of every batch."""
    model = DDP(make_model(0))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    for x, y in global_batches(STEPS, GLOBAL_BATCH):
        loss = F.cross_entropy(model(shard(x, rank, world)), shard(y, rank, world))
        opt.zero_grad()
        loss.backward()  # DDP all-reduces (averages) the gradients during backward
        opt.step()
        global_loss = loss.detach().clone()
        dist.all_reduce(global_loss)
        losses.append(global_loss.item() / world)
    state = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    return {"ddp_losses": losses, "ddp_state": state}


def run_no_sync(rank: int, world: int, accum: int = 2) -> dict[str, object]:
    """Gradient accumulation over ``accum`` micro-batches; only the last one all-reduces."""
    calls = {"n": 0}

    def counting_allreduce(state, bucket):  # no annotations: DDP checks them literally
        calls["n"] += 1
        buf = bucket.buffer().div_(world)
        return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])

    out: dict[str, object] = {}
    for use_no_sync in (True, False):
        model = DDP(make_model(0))
        model.register_comm_hook(None, counting_allreduce)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        calls["n"] = 0
        for x, y in global_batches(STEPS, GLOBAL_BATCH * accum):
            xs, ys = shard(x, rank, world).chunk(accum), shard(y, rank, world).chunk(accum)
            opt.zero_grad()
            for i in range(accum):
                last = i == accum - 1
                if use_no_sync and not last:
                    with model.no_sync():  # gradients accumulate locally, no communication
                        (F.cross_entropy(model(xs[i]), ys[i]) / accum).backward()
                else:
                    (F.cross_entropy(model(xs[i]), ys[i]) / accum).backward()
            opt.step()
        tag = "no_sync" if use_no_sync else "sync_every"
        out[f"{tag}_allreduce_calls"] = calls["n"]
        out[f"{tag}_state"] = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    return out


def zero_model() -> nn.Sequential:
    """Four equal Linear(256, 256) layers: ZeRO-1 can split them evenly over 2 ranks."""
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(256, 256), nn.ReLU()) for _ in range(4)])


def run_zero(rank: int, world: int) -> dict[str, object]:
    """Optimizer-state bytes per rank: plain Adam vs ZeroRedundancyOptimizer (ZeRO-1)."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    x = torch.randn(16, 256, generator=torch.Generator().manual_seed(rank))
    out: dict[str, object] = {}
    for name in ("adam", "zero1"):
        model = DDP(zero_model())
        if name == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            local = opt
        else:  # each rank keeps Adam state only for its own share of the parameters
            opt = ZeroRedundancyOptimizer(
                model.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3
            )
            local = opt.optim
        model(x).pow(2).mean().backward()
        opt.step()  # ZeRO-1: step the local shard, then broadcast the updated parameters
        out[f"{name}_state_bytes"] = optimizer_state_bytes(local)
        out[f"{name}_param_bytes"] = tensor_bytes(list(model.parameters()))
        out[f"{name}_weight"] = model.module[0][0].weight.detach().clone()
    return out


def run_fsdp(rank: int, world: int) -> dict[str, object]:
    """FSDP2 (fully_shard, ZeRO-3) on CPU: parameter, gradient and Adam-state bytes per rank."""
    from torch.distributed.fsdp import fully_shard

    model = zero_model()
    for layer in model:
        fully_shard(layer)
    fully_shard(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(16, 256, generator=torch.Generator().manual_seed(rank))
    model(x).pow(2).mean().backward()
    grad_bytes = tensor_bytes([p.grad for p in model.parameters()])
    opt.step()
    return {
        "fsdp_param_bytes": tensor_bytes(list(model.parameters())),
        "fsdp_grad_bytes": grad_bytes,
        "fsdp_state_bytes": optimizer_state_bytes(opt),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="where rank 0 saves the results (.pt)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    results: dict[str, object] = {"world_size": world}
    # wall clock since launch() started torchrun: process start-up, imports, rendezvous
    launched = float(os.environ.get("LABKIT_LAUNCH_TIME", time.time()))
    seconds: dict[str, float] = {"start-up": time.time() - launched}
    per_rank: dict[str, object] = {}
    for name, run, into in [
        ("DDP", run_ddp, results),
        ("no_sync", run_no_sync, results),
        ("ZeRO-1", run_zero, per_rank),
        ("FSDP", run_fsdp, per_rank),
    ]:
        t0 = time.perf_counter()
        into.update(run(rank, world))
        seconds[name] = time.perf_counter() - t0
    results["worker_seconds"] = seconds
    gathered: list[dict[str, object] | None] = [None] * world
    dist.all_gather_object(gathered, {k: v for k, v in per_rank.items() if isinstance(v, int)})
    results["per_rank"] = gathered
    results.update({k: v for k, v in per_rank.items() if isinstance(v, torch.Tensor)})
    dist.barrier()
    if rank == 0:
        torch.save(results, args.out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
