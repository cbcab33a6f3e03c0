"""The torchrun worker of notebook 12: DDP, no_sync, ZeroRedundancyOptimizer, FSDP, a two-stage
pipeline (send/recv) and a tensor-parallel Megatron MLP (all-reduce) on CPU.

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
from labkit.distributed.parallel import megatron_mlp_partials, pipeline_schedule

MICROBATCHES = 4  # the pipeline cuts each global batch of 32 into 4 micro-batches of 8
SPLIT = 2  # stage 0 = make_model()[:2] (Linear, ReLU), stage 1 = the rest


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


def run_pipeline(rank: int, world: int) -> dict[str, object]:
    """A real pipeline over ``world`` = 2 processes: activations forward with send, their
    gradients backward with recv, in the order pipeline_schedule gives (GPipe and 1F1B).

    The loss of micro-batch j is CE_j / m, so the summed gradients are those of the mean loss
    over the whole batch: the same SGD steps as one process.
    """
    out: dict[str, object] = {}
    for kind in ("gpipe", "1f1b"):
        torch.manual_seed(0)
        full = make_model(0)
        stage = full[:SPLIT] if rank == 0 else full[SPLIT:]
        opt = torch.optim.SGD(stage.parameters(), lr=LR)
        programme = [row[rank] for row in pipeline_schedule(kind, world, MICROBATCHES)]
        losses, peak, first_grads = [], 0, {}
        for step, (x, y) in enumerate(global_batches(STEPS, GLOBAL_BATCH)):
            xs, ys = x.chunk(MICROBATCHES), y.chunk(MICROBATCHES)  # (8, 64), (8,)
            kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # j -> (input, output)
            pending, loss_sum = [], 0.0
            opt.zero_grad()
            for op in programme:
                if op is None:
                    continue
                if op[0] == "F":
                    loss_sum += _stage_forward(rank, stage, op[1], xs, ys, kept, pending)
                else:
                    _stage_backward(rank, op[1], kept, pending)
                peak = max(peak, len(kept))
            for handle in pending:
                handle.wait()
            opt.step()
            losses.append(loss_sum)
            if step == 0:
                first_grads = {n: p.grad.clone() for n, p in stage.named_parameters()}
        parts: list[dict[str, object] | None] = [None] * world
        state = {k: v.detach().clone() for k, v in stage.state_dict().items()}
        mine = {"losses": losses, "state": state, "grads": first_grads, "peak": peak}
        dist.all_gather_object(parts, mine)
        out[f"pp_{kind}_losses"] = parts[world - 1]["losses"]  # the last stage computes the loss
        out[f"pp_{kind}_state"] = {k: v for p in parts for k, v in p["state"].items()}
        out[f"pp_{kind}_grads"] = {k: v for p in parts for k, v in p["grads"].items()}
        out[f"pp_{kind}_peak_kept"] = [p["peak"] for p in parts]
    return out


def _stage_forward(rank, stage, j, xs, ys, kept, pending) -> float:
    """F of micro-batch j: stage 0 sends its output; the last stage computes the loss."""
    if rank == 0:
        a = stage(xs[j])  # (8, 64)
        pending.append(dist.isend(a.detach(), dst=1))
        kept[j] = (xs[j], a)
        return 0.0
    a = torch.empty(xs[j].shape[0], 64)
    dist.recv(a, src=0)
    a.requires_grad_(True)
    loss = F.cross_entropy(stage(a), ys[j]) / len(xs)
    kept[j] = (a, loss)
    return loss.item()


def _stage_backward(rank, j, kept, pending) -> None:
    """B of micro-batch j: the last stage starts from its loss and sends d(loss)/d(input);
    stage 0 receives that gradient and finishes backward."""
    a_in, a_out = kept.pop(j)
    if rank == 1:
        a_out.backward()
        pending.append(dist.isend(a_in.grad, dst=0))
        return
    grad = torch.empty_like(a_out)
    dist.recv(grad, src=1)
    a_out.backward(grad)


class _CopyToTensorParallel(torch.autograd.Function):
    """Megatron's f: identity in forward, all-reduce of the input gradient in backward."""

    calls = {"forward": 0, "backward": 0}
    reduce_backward = True

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        if not _CopyToTensorParallel.reduce_backward:
            return grad
        grad = grad.clone()
        dist.all_reduce(grad)
        _CopyToTensorParallel.calls["backward"] += 1
        return grad


class _ReduceFromTensorParallel(torch.autograd.Function):
    """Megatron's g: all-reduce of the partial sums in forward, identity in backward."""

    @staticmethod
    def forward(ctx, partial):
        total = partial.clone()
        dist.all_reduce(total)
        _CopyToTensorParallel.calls["forward"] += 1
        return total

    @staticmethod
    def backward(ctx, grad):
        return grad


def run_tensor_parallel(rank: int, world: int) -> dict[str, object]:
    """make_model()'s layers 2 and 4 as a Megatron MLP over the ranks: Linear 2 column-parallel
    (rows of its weight split), Linear 4 row-parallel (columns split), Linear 0 replicated.
    One forward and backward on the first global batch, with and without the backward
    all-reduce; counts the all-reduces and gathers every gradient on rank 0."""
    x, y = global_batches(1, GLOBAL_BATCH)[0]  # (32, 64), (32,)
    out: dict[str, object] = {}
    for reduce_backward in (True, False):
        model = make_model(0)
        first, col, row = model[0], model[2], model[4]
        w1 = col.weight.detach().chunk(world, 0)[rank].clone().requires_grad_(True)  # (32, 64)
        b1 = col.bias.detach().chunk(world, 0)[rank].clone().requires_grad_(True)  # (32,)
        w2 = row.weight.detach().chunk(world, 1)[rank].clone().requires_grad_(True)  # (10, 32)
        b2 = row.bias.detach().clone().requires_grad_(True)  # (10,): added after the all-reduce
        _CopyToTensorParallel.calls.update(forward=0, backward=0)
        _CopyToTensorParallel.reduce_backward = reduce_backward
        h0 = F.relu(first(x))  # (32, 64), the same on every rank
        h = _CopyToTensorParallel.apply(h0)
        partial = F.relu(h @ w1.T + b1) @ w2.T  # (32, 10): this rank's partial sum
        logits = _ReduceFromTensorParallel.apply(partial) + b2
        loss = F.cross_entropy(logits, y)
        loss.backward()
        weights = (col.weight.detach(), col.bias.detach(), row.weight.detach())
        lesson = megatron_mlp_partials(h0.detach(), *weights, world)[rank]
        mine = {
            "grads": {"0.weight": first.weight.grad, "0.bias": first.bias.grad,
                      "2.weight": w1.grad, "2.bias": b1.grad, "4.weight": w2.grad, "4.bias": b2.grad},
            "calls": dict(_CopyToTensorParallel.calls),
            "partial_vs_lesson": (partial - lesson).abs().max().item(),
        }  # fmt: skip
        parts: list[dict[str, object] | None] = [None] * world
        dist.all_gather_object(parts, mine)
        tag = "tp" if reduce_backward else "tp_no_backward_allreduce"
        out[f"{tag}_logits"] = logits.detach().clone()
        out[f"{tag}_loss"] = loss.item()
        out[f"{tag}_grads"] = _gather_shards([p["grads"] for p in parts])
        out[f"{tag}_replicated_grads"] = [p["grads"]["0.weight"] for p in parts]
        out[f"{tag}_allreduce_calls"] = parts[0]["calls"]
        out[f"{tag}_partial_vs_lesson"] = max(p["partial_vs_lesson"] for p in parts)
    return out


def _gather_shards(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Whole-model gradients from the ranks' shards: column shards stack along rows (dim 0),
    row shards along columns (dim 1); replicated tensors come from rank 0."""
    return {
        "0.weight": parts[0]["0.weight"],
        "0.bias": parts[0]["0.bias"],
        "2.weight": torch.cat([p["2.weight"] for p in parts], 0),
        "2.bias": torch.cat([p["2.bias"] for p in parts], 0),
        "4.weight": torch.cat([p["4.weight"] for p in parts], 1),
        "4.bias": parts[0]["4.bias"],
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
        ("pipeline", run_pipeline, results),
        ("tensor parallel", run_tensor_parallel, results),
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
