"""Notebook 08, part 8: a fused FlashAttention that is actually fast.

The Python tile loop of flash_forward launches ~8 kernels per tile, each writing its result to
memory and reading it back. Two ways to fuse:

- CPU (and GPU): ``torch.compile`` of FA-2's inner loop. ``parallel_flash_forward`` takes a whole
  block of query rows as one tensor op and loops over the key blocks only; compiled, each key
  step is two matrix products (library calls) around a few fused C++ loops (max, exp, sum,
  rescaling). ``compiled_flash_forward`` runs it for each query block (FA-2's outer loop: the
  blocks are independent, a GPU would run them in parallel), so every score tile is
  (block_q x B_c) and stays in the CPU's cache.
- GPU: a Triton kernel (labkit/attention/triton_kernels.py, imported only when called): one
  program per (query block, batch·head) keeps its tile of S in registers/SRAM; the backward pass
  is two kernels (dK, dV per key block; dQ per query block).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from labkit import fusion
from labkit.attention.flash import _check_flash
from labkit.attention.lesson import (
    _check_causal,
    _check_qkv,
    _heap_reuse,
    naive_attention,
    tile_update,
)
from labkit.core import bench
from labkit.core.errors import MissingDependency, check_int, check_tensor, require

_COMPILED: dict[str, Callable[..., Any]] = {}  # torch.compile'd functions, made once per process


def parallel_flash_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    block_size: int = 512,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """flash_forward with all query rows at once: (o, lse), one loop over key blocks.

        for each key block K_j, V_j:  S = Q K_jᵀ · scale  (..., N, B_c);  (o, m, l) = tile_update(...)
        o = o / l,   lse = m + log l
    The query-block loop of FA-2 has no dependencies, so it can become a batch dimension; the
    key loop carries (o, m, l). Memory O(N·B_c), not O(N·M). causal masks each (N, B_c) slab.
    Taught in notebooks/08_flash_attention.ipynb, "8. A fused version: torch.compile on CPU, Triton on GPU".
    """
    _check_flash(q, k, v, block_size, scale, causal)
    return _parallel_forward(q, k, v, causal, block_size, scale)


def _parallel_forward(
    q: Any, k: Any, v: Any, causal: bool, block_size: int, scale: Any, rows: Any = None
) -> Any:
    """The loop of parallel_flash_forward without the checks (what torch.compile traces); rows:
    the positions of q's rows in the sequence (a tensor, so one compiled graph serves all)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    qs = q * scale  # (..., N, d)
    n = q.shape[-2]
    rows = torch.arange(n, device=q.device) if rows is None else rows  # (N,) query positions
    acc = q.new_zeros(*lead, n, v.shape[-1])  # (..., N, d_v)
    m = q.new_full((*lead, n), -math.inf)  # (..., N)
    l = q.new_zeros(*lead, n)  # noqa: E741 (the paper's name)
    for j0 in range(0, k.shape[-2], block_size):
        s = qs @ k[..., j0 : j0 + block_size, :].transpose(-2, -1)  # (..., N, B_c)
        if causal:
            keys = torch.arange(j0, j0 + s.shape[-1], device=q.device)  # (B_c,)
            s = s.masked_fill(keys > rows.unsqueeze(-1), -math.inf)
        acc, m, l = tile_update(acc, m, l, s, v[..., j0 : j0 + block_size, :])  # noqa: E741
    return acc / l.unsqueeze(-1), m + torch.log(l)


def compiled_flash_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    block_size: int = 512,
    scale: float | None = None,
    block_q: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FlashAttention-2 with a fused inner loop: the same (o, lse) as flash_forward.

        for each query block Q_i (block_q rows; independent programs on a GPU):
            (O_i, lse_i) = torch.compile(parallel_flash_forward)(Q_i, K, V)   # loop over key blocks
    Every (block_q x B_c) score tile stays small enough for the CPU's cache, and each key step
    is two matrix products around fused C++ loops. Compiled once per process with
    labkit.fusion.compile_timed (the first call compiles: seconds; a shorter last query block
    compiles once more); the query positions are a tensor input, so one graph serves all blocks.
    Used by time_fused_forward (labkit/attention/fused.py).
    """
    _check_compiled(q, k, v, block_size, scale, block_q, causal)
    n = q.shape[-2]
    outs = []
    for i0 in range(0, n, block_q):
        qi, rows = (
            q[..., i0 : i0 + block_q, :],
            torch.arange(i0, min(i0 + block_q, n), device=q.device),
        )
        if "forward" not in _COMPILED:  # notebook 07's helper: quiet, and safe under a forced ISA
            _COMPILED["forward"], _ = fusion.compile_timed(
                _parallel_forward, qi, k, v, causal, block_size, scale, rows
            )
        outs.append(_COMPILED["forward"](qi, k, v, causal, block_size, scale, rows))
    return torch.cat([o for o, _ in outs], -2), torch.cat([lse for _, lse in outs], -1)


def time_fused_forward(
    n: int = 4096,
    d: int = 64,
    block_size: int = 512,
    rounds: int = 3,
    seed: int = 0,
    block_q: int = 1024,
) -> dict[str, Any]:
    """Compile compiled_flash_forward at (1, n, d) and time it in two interleaved comparisons.

    Returns compile_s (the first call, compile included), max_err (vs SDPA), vs_naive =
    labkit.bench.compare of naive vs compiled (baseline naive) and vs_sdpa = compare of SDPA vs
    compiled (baseline SDPA), each ``rounds`` rounds of one call, on the current threads, with
    freed memory reused while timing.
    Taught in notebooks/08_flash_attention.ipynb, "8. A fused version: torch.compile on CPU, Triton on GPU".
    """
    _check_time_fused(n, d, block_size, block_q, rounds, seed)
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, n, d, generator=gen) for _ in range(3))  # (1, N, d)
    t0 = time.perf_counter()
    out, _ = compiled_flash_forward(q, k, v, block_size=block_size, block_q=block_q)
    compile_s = time.perf_counter() - t0
    fns = {
        "naive": lambda: naive_attention(q, k, v),
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "compiled": lambda: compiled_flash_forward(q, k, v, block_size=block_size, block_q=block_q),
    }
    pick = lambda *names: {x: fns[x] for x in names}  # noqa: E731
    with _heap_reuse():  # time with freed memory reused (see labkit/attention/lesson.py)
        vs_naive = bench.compare(pick("naive", "compiled"), rounds=rounds, repeats=1, warmup=1)
        vs_sdpa = bench.compare(pick("sdpa", "compiled"), rounds=rounds, repeats=1, warmup=1)
    err = (out - F.scaled_dot_product_attention(q, k, v)).abs().max().item()
    return {"compile_s": compile_s, "max_err": err, "vs_naive": vs_naive, "vs_sdpa": vs_sdpa}


# ---------------------------------------------------------------- Triton on a GPU


def triton_flash_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FlashAttention-2's forward as one Triton kernel: (o, lse) for CUDA tensors (..., N, d),
    fp16 / bf16 / fp32 (fp32 accumulators; lse in fp32, natural log).

    Each program owns one query block of one (batch, head); grid (⌈N / B_r⌉, batch·heads).
    Raises MissingDependency without Triton or a GPU (TRITON_INTERPRET=1 runs it on the CPU).
    Taught in notebooks/08_flash_attention.ipynb, "8. A fused version: torch.compile on CPU, Triton on GPU".
    """
    _check_triton_call(q, k, v, causal, scale)
    return _triton("flash_forward")._forward(q, k, v, causal, scale)


def triton_flash_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    do: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FlashAttention-2's backward in Triton: (dq, dk, dv) from the saved o and lse.

    D = rowsum(dO ∘ O) in PyTorch, then one kernel per key block (dK_j, dV_j on chip, looping
    over query blocks) and one per query block (dQ_i, looping over key blocks): no atomics.
    Taught in notebooks/08_flash_attention.ipynb, "8. A fused version: torch.compile on CPU, Triton on GPU".
    """
    _check_triton_call(q, k, v, causal, scale, o, lse, do)
    return _triton("flash_backward")._backward(q, k, v, o, lse, do, causal, scale)


def triton_notice() -> str | None:
    """None when the Triton kernels can run here, else the one-line reason they cannot.

    Taught in notebooks/08_flash_attention.ipynb, "8. A fused version: torch.compile on CPU, Triton on GPU".
    """
    try:
        require("triton", "triton", why="the Triton FlashAttention kernels")
    except MissingDependency:
        return "Triton is not installed (`pip install triton`, needs a CUDA GPU): skipping the Triton kernels."
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        return (
            "No CUDA GPU here: skipping the Triton FlashAttention kernels (forward and backward)."
        )
    return None


def _triton(what: str) -> Any:
    """The Triton kernels module, imported on first use (Triton is a GPU extra)."""
    notice = triton_notice()
    if notice:
        raise MissingDependency(f"{what} in Triton cannot run here: {notice}")
    from labkit.attention import triton_kernels

    return triton_kernels


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_compiled(
    q: Any, k: Any, v: Any, block_size: Any, scale: Any, block_q: Any, causal: Any
) -> None:
    _check_flash(q, k, v, block_size, scale, causal)
    check_int(block_q, "block_q", low=1)


def _check_time_fused(
    n: Any, d: Any, block_size: Any, block_q: Any, rounds: Any, seed: Any
) -> None:
    check_int(n, "n", low=1, high=16384)
    check_int(d, "d", low=1, high=1024)
    check_int(block_size, "block_size", low=1)
    check_int(block_q, "block_q", low=1)
    check_int(rounds, "rounds", low=3)  # labkit.bench.compare's minimum, checked before compiling
    check_int(seed, "seed")


def _check_triton_call(q: Any, k: Any, v: Any, causal: Any, scale: Any, *saved: Any) -> None:
    """Bad q, k, v (and o, lse, do) get their own message before any GPU or Triton is needed."""
    _check_qkv(q, k, v, scale)
    _check_causal(causal)
    if saved:
        want = {"o": tuple(q.shape), "lse": tuple(q.shape[:-1]), "do": tuple(q.shape)}
        for name, t in zip(("o", "lse", "do"), saved, strict=True):
            if tuple(check_tensor(t, name).shape) != want[name]:
                raise ValueError(
                    f"{name} must have shape {want[name]} (from q), got {tuple(t.shape)}: pass "
                    "the o and lse triton_flash_forward returned, and dO shaped like o."
                )
