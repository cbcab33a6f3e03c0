"""Gradient accumulation at scale (notebook 02, parts 6 and 7): DDP's no_sync, and memory.

With DistributedDataParallel every backward() all-reduces the gradients; inside
``ddp_model.no_sync()`` they only add up locally, so one accumulation step of k micro-batches
needs one all-reduce (per bucket) instead of k. Accumulation buys memory: only one
micro-batch's activations are alive at a time, so the saved activations scale with the
micro-batch size, not with the effective batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from labkit.accumulation.lesson import LossFn, _check_batch, _check_step, gradients, micro_batches
from labkit.core import bench
from labkit.core.errors import check_bool, check_int, check_model
from labkit.core.probes import exact_cpu_memory_accounting, saved_tensor_bytes

# --------------------------------------------------------------------------- DDP


def _accumulation_step_ddp(
    ddp_model: nn.Module,
    chunks: list[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn = nn.functional.cross_entropy,
) -> None:
    """One optimizer step of accumulation under DistributedDataParallel.

    The first k-1 backward passes run inside ``ddp_model.no_sync()``: gradients only add up
    locally; the last backward all-reduces the accumulated gradient once (1 all-reduce per
    bucket per step instead of k). Equal-size micro-batches: loss / k.
    """
    optimizer.zero_grad(set_to_none=True)
    k = len(chunks)
    for i, (xb, yb) in enumerate(chunks):
        ctx = ddp_model.no_sync() if i < k - 1 else contextlib.nullcontext()
        with ctx:
            (loss_fn(ddp_model(xb), yb) / k).backward()
    optimizer.step()


def count_allreduces(
    model: nn.Module, chunks: list[tuple[torch.Tensor, torch.Tensor]], use_no_sync: bool
) -> dict[str, Any]:
    """Wrap ``model`` in DDP (one gloo process) and count gradient all-reduces of one
    accumulation step over ``chunks``, with or without no_sync; also return the gradients.

    Taught in notebooks/02_gradient_accumulation.ipynb, "6. With DDP: all-reduce once, with `no_sync`".
    """
    _check_chunks(model, chunks, use_no_sync)
    from torch.nn.parallel import DistributedDataParallel as DDP

    calls = [0]

    def counting_hook(state, bucket):  # noqa: ANN001 (DDP checks these annotations itself)
        calls[0] += 1
        fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        fut.set_result(bucket.buffer())  # one process: the all-reduced sum is the buffer itself
        return fut

    with _single_process_group():
        ddp = DDP(model)
        ddp.register_comm_hook(None, counting_hook)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.0)
        if use_no_sync:
            _accumulation_step_ddp(ddp, chunks, opt)
        else:
            opt.zero_grad(set_to_none=True)
            for xb, yb in chunks:
                (nn.functional.cross_entropy(ddp(xb), yb) / len(chunks)).backward()
        grads = gradients(model)
    return {"allreduces": calls[0], "grads": grads}


# --------------------------------------------------------------------------- memory


def saved_activation_bytes(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = nn.functional.cross_entropy,
) -> int:
    """Bytes of the tensors autograd saves for backward during one forward on (x, y).

        saved = labkit.probes.saved_tensor_bytes(lambda: loss_fn(model(x), y), exclude=params)
    (unique memory: a tensor saved by two ops or through a view counts once, a slice of a larger
    batch only its rows; parameters excluded, they live anyway). This is the activation memory
    that accumulation shrinks: it scales with the micro-batch size.
    Taught in notebooks/02_gradient_accumulation.ipynb, "7. Memory: what accumulation buys".
    """
    _check_step(model, loss_fn, x, y)
    return saved_tensor_bytes(lambda: loss_fn(model(x), y), exclude=model.parameters())


def _accumulation_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, micro_batch_size: int
) -> None:
    """Accumulate into existing .grad buffers (no new gradient memory, no copies)."""
    model.zero_grad(set_to_none=False)
    for xb, yb in micro_batches(x, y, micro_batch_size):
        (nn.functional.cross_entropy(model(xb), yb) * (len(xb) / len(x))).backward()


def peak_memory_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    micro_batch_sizes: list[int],
) -> list[dict[str, Any]]:
    """Equal effective batch len(x), different micro-batch sizes: one accumulation step each.

    Rows {micro_batch, k, saved_activations_mib (exact), peak_mib (bench.peak_memory of one
    step whose gradient buffers already exist: CUDA allocator peak on a GPU, peak RSS growth
    on CPU, where labkit.probes.exact_cpu_memory_accounting() is applied first so freed memory
    is returned)}, in MiB (2**20 bytes). Measured smallest micro-batch first.
    Taught in notebooks/02_gradient_accumulation.ipynb, "7. Memory: what accumulation buys".
    """
    _check_sweep(model, x, y, micro_batch_sizes)
    if x.device.type == "cpu":
        exact_cpu_memory_accounting()
    _accumulation_step(model, x[:1], y[:1], 1)  # allocate the .grad buffers once
    rows = []
    for mb in sorted(micro_batch_sizes):
        saved = saved_activation_bytes(model, x[:mb], y[:mb])
        peak = bench.peak_memory(_accumulation_step, model, x, y, mb)
        rows.append(
            {
                "micro_batch": mb,
                "k": -(-len(x) // mb),
                "saved_activations_mib": saved / 2**20,
                "peak_mib": peak / 2**20,
            }
        )
    return rows


@contextlib.contextmanager
def _single_process_group() -> Iterator[None]:
    """A one-process gloo process group (in-memory store), so DDP runs on one CPU."""
    import torch.distributed as dist

    if dist.is_initialized():
        raise ValueError("a process group already exists; call this outside distributed code.")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_chunks(model, chunks, use_no_sync) -> None:
    check_model(model)
    if not isinstance(chunks, (list, tuple)) or not chunks:
        raise ValueError(
            "chunks is empty: pass accumulation.micro_batches(x, y, micro_batch_size)."
        )
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, (list, tuple)) or len(chunk) != 2:
            raise ValueError(f"chunks[{i}] must be an (x, y) pair, as micro_batches returns.")
        try:
            _check_batch(chunk[0], chunk[1], 1)
        except ValueError as exc:
            raise ValueError(f"chunks[{i}]: {exc}") from None
    check_bool(use_no_sync, "use_no_sync")


def _check_sweep(model, x, y, micro_batch_sizes) -> None:
    _check_step(model, nn.functional.cross_entropy, x, y)
    if not isinstance(micro_batch_sizes, (list, tuple)) or not micro_batch_sizes:
        raise ValueError("micro_batch_sizes is empty: pass a list such as [16, 64, 256].")
    for i, mb in enumerate(micro_batch_sizes):
        check_int(
            mb, f"micro_batch_sizes[{i}] (at most the effective batch len(x))", low=1, high=len(x)
        )
