"""Attention without the N x N matrix: naive, online softmax, tiled (FlashAttention), SDPA backends.

Shapes: q (..., N, d), k and v (..., M, d); the leading dims (batch, heads) broadcast as in
torch.nn.functional.scaled_dot_product_attention. Output (..., N, d_v).

    S = q kᵀ · scale   (N x M),   P = softmax(S) row-wise,   O = P v

The naive form materialises S and P: O(N·M) memory. FlashAttention streams K/V in blocks and
keeps, per query row, a running max m, a running sum l and an unnormalised output o, so only a
(B_r x B_c) tile of S exists at a time: O(N·d) memory, the same result up to float rounding.

Loop order: ``tiled_attention`` runs FlashAttention-2's order (Dao 2023): outer loop over query
blocks, inner loop over K/V blocks, o / l divided once at the end. The first FlashAttention paper
(Dao et al. 2022, Algorithm 1) has the loops the other way round: outer over K/V blocks, inner over
Q blocks, reading and rescaling each query block's O, l, m in HBM at every step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from labkit import bench, models
from labkit.core.errors import (
    MissingDependency,
    check_positive,
    check_tensor,
    require,
    require_cuda,
)
from labkit.core.probes import OpRecorder

# ---------------------------------------------------------------- memory guard

MAX_BYTES = 4 * 2**30  # refuse to allocate more than this (4 GiB) for one tensor


def _refuse_huge(nbytes: int, what: str, fix: str) -> None:
    """Raise a ValueError before allocating ``nbytes`` > MAX_BYTES for ``what``."""
    if nbytes > MAX_BYTES:
        raise ValueError(
            f"{what} would need {nbytes / 2**30:,.1f} GiB of memory (this lab refuses more than "
            f"{MAX_BYTES / 2**30:.0f} GiB at once): {fix}"
        )


# ---------------------------------------------------------------- reference attention


def _check_qkv(q: Any, k: Any, v: Any) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(t, name)
        if t.ndim < 2:
            raise ValueError(
                f"{name} must have shape (..., seq_len, head_dim), got {tuple(t.shape)}."
            )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same head dim, got {q.shape[-1]} and {k.shape[-1]}.")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v need the same sequence length, got {k.shape[-2]} and {v.shape[-2]}."
        )


def causal_mask(n: int, m: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (n, m) mask, True where query i may attend key j: j <= i (top-left aligned,
    as SDPA's is_causal; labkit.models.causal_mask with offset 0). n·m bytes: refused above
    MAX_BYTES.

    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    check_positive(n, "n")
    check_positive(m, "m")
    _refuse_huge(
        int(n) * int(m),
        f"causal_mask(n={n:,}, m={m:,}) (one byte per query-key pair)",
        "do not build the mask; pass causal=True to attention.tiled_attention or is_causal=True "
        "to F.scaled_dot_product_attention, which mask tile by tile.",
    )
    return models.causal_mask(int(n), int(m), offset=0, device=device)


def naive_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) v with the full (..., N, M) score matrix in memory.

    scale defaults to 1/√d. causal masks keys j > i with −∞ before the softmax (top-left
    aligned, as SDPA's is_causal). The computation is labkit.models.attention (offset 0);
    this adds the checks and the memory guard.
    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    _check_qkv(q, k, v)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    n_scores = math.prod(lead) * q.shape[-2] * k.shape[-2]
    _refuse_huge(
        2 * n_scores * q.element_size(),
        f"naive_attention at N={q.shape[-2]:,}, M={k.shape[-2]:,} (the score matrix S and "
        f"P = softmax(S), {n_scores:,} {q.dtype} values each)",
        "use attention.tiled_attention or F.scaled_dot_product_attention (no N x M matrix), "
        "or shorten the sequence.",
    )
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return models.attention(q, k, v, causal=causal, offset=0, scale=scale)  # (..., N, d_v)


def safe_softmax(x: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim, computed as exp(x − max) / Σ exp(x − max) (no overflow).

    Taught in notebooks/08_flash_attention.ipynb, "2. Safe softmax and online softmax".
    """
    check_tensor(x, "x")
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def online_softmax(x: torch.Tensor, block_size: int = 1) -> torch.Tensor:
    """Softmax over the last dim in one streaming pass for the statistics (Milakov & Gimelshein).

    Walk the last dim in blocks x_b, keeping the running max m and the running sum l of
    exp(x − m); when the max grows, the old sum is rescaled:
        m_new = max(m, max(x_b)),   l = l · exp(m − m_new) + Σ exp(x_b − m_new)
    then softmax(x) = exp(x − m) / l. Same result as torch.softmax; never forms exp(x) unshifted.
    The worked solution of the exercise (solutions/n08_flash_attention.py) is a deliberate copy,
    checked against this function.
    Taught in notebooks/08_flash_attention.ipynb, "2. Safe softmax and online softmax".
    """
    check_tensor(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension (softmax runs over the last one).")
    check_positive(block_size, "block_size")
    shape = x.shape[:-1]
    m = torch.full(shape, float("-inf"), dtype=x.dtype, device=x.device)
    l = torch.zeros(shape, dtype=x.dtype, device=x.device)  # noqa: E741 (the paper's name)
    for start in range(0, x.shape[-1], int(block_size)):
        block = x[..., start : start + int(block_size)]
        m_new = torch.maximum(m, block.amax(dim=-1))
        m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        l = l * torch.exp(m - m_safe) + torch.exp(block - m_safe.unsqueeze(-1)).sum(dim=-1)  # noqa: E741
        m = m_new
    m_safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    return torch.exp(x - m_safe.unsqueeze(-1)) / l.unsqueeze(-1)


# ---------------------------------------------------------------- FlashAttention forward


def tile_update(
    o: torch.Tensor,
    m: torch.Tensor,
    l: torch.Tensor,  # noqa: E741 (the paper's name)
    s: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One inner step of FlashAttention: fold a score tile into the running accumulators.

    o (..., B_r, d) unnormalised output, m (..., B_r) running max, l (..., B_r) running sum,
    s (..., B_r, B_c) this tile of scaled scores (−∞ where masked), v (..., B_c, d) its values.
        m_new = max(m, rowmax(s));  α = exp(m − m_new);  p = exp(s − m_new)
        l_new = α·l + rowsum(p);    o_new = α·o + p v
    The final output is o / l. Rows whose scores are all −∞ so far keep m = −∞, l = 0, o = 0.
    The worked solution of the exercise (solutions/n08_flash_attention.py) is a deliberate copy,
    checked against this function.
    Taught in notebooks/08_flash_attention.ipynb, "3. Tiled attention: FlashAttention's forward pass".
    """
    m_new = torch.maximum(m, s.amax(dim=-1))
    m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
    alpha = torch.exp(m - m_safe)
    p = torch.exp(s - m_safe.unsqueeze(-1))
    l_new = alpha * l + p.sum(dim=-1)
    o_new = alpha.unsqueeze(-1) * o + p @ v
    return o_new, m_new, l_new


def tiled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int = 128,
    causal: bool = False,
    scale: float | None = None,
    block_q: int | None = None,
) -> torch.Tensor:
    """FlashAttention's forward algorithm in PyTorch, in FlashAttention-2's loop order.

    Outer loop over query blocks, inner loop over K/V blocks (FlashAttention-2, Dao 2023; the
    first paper's Algorithm 1 swaps the loops and rescales O in HBM at every step).
    For each query block Q_i (B_r = block_q rows, default block_size) start with o = 0,
    m = −∞, l = 0, then for each key block K_j, V_j (B_c = block_size rows):
        S_ij = Q_i K_jᵀ · scale (masked with −∞ above the diagonal when causal)
        (o, m, l) = tile_update(o, m, l, S_ij, V_j)
    and write O_i = o / l. Only a (B_r x B_c) tile of scores exists at once. Any N (the last
    block is simply shorter); causal skips key blocks entirely right of the diagonal.
    Equal to F.scaled_dot_product_attention within float rounding.
    Taught in notebooks/08_flash_attention.ipynb, "3. Tiled attention: FlashAttention's forward pass".
    """
    _check_qkv(q, k, v)
    bc = int(check_positive(block_size, "block_size"))
    br = bc if block_q is None else int(check_positive(block_q, "block_q"))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    n, m_len = q.shape[-2], k.shape[-2]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    _refuse_huge(
        math.prod(lead) * min(br, n) * min(bc, m_len) * q.element_size(),
        f"one score tile of tiled_attention (block_q={br:,} x block_size={bc:,})",
        "use smaller blocks (64-256 rows).",
    )
    out = q.new_empty(*lead, n, v.shape[-1])
    for i0 in range(0, n, br):
        qi = q[..., i0 : i0 + br, :] * scale
        rows = qi.shape[-2]
        o = q.new_zeros(*lead, rows, v.shape[-1])
        mi = q.new_full((*lead, rows), float("-inf"))
        li = q.new_zeros(*lead, rows)
        for j0 in range(0, m_len, bc):
            if causal and j0 > i0 + rows - 1:
                break  # every key in this block (and later ones) is in the future
            s = qi @ k[..., j0 : j0 + bc, :].transpose(-2, -1)
            if causal and j0 + s.shape[-1] - 1 > i0:  # the block crosses the diagonal
                qpos = torch.arange(i0, i0 + rows, device=q.device).unsqueeze(-1)
                kpos = torch.arange(j0, j0 + s.shape[-1], device=q.device)
                s = s.masked_fill(kpos > qpos, float("-inf"))
            o, mi, li = tile_update(o, mi, li, s, v[..., j0 : j0 + bc, :])
        out[..., i0 : i0 + rows, :] = o / li.unsqueeze(-1)
    return out


# ---------------------------------------------------------------- IO complexity

SRAM_BYTES_PER_SM = {
    # on-chip shared memory + L1 per streaming multiprocessor (NVIDIA whitepapers)
    "A100": 192 * 1024,
    "H100": 256 * 1024,
}


def io_complexity(n: int, d: int, sram_bytes: int, dtype_bytes: int = 2) -> dict[str, float]:
    """HBM accesses (in elements, constants dropped) of standard vs FlashAttention.

    FlashAttention paper (Dao et al. 2022, Theorem 2), M = SRAM size in elements, d <= M <= N·d:
        standard attention:  Θ(N·d + N²)
        FlashAttention:      Θ(N²·d² / M)
    The ratio (N·d + N²)·M / (N²·d²) ≈ M / d² for N ≫ d: how many times fewer HBM accesses.
    Taught in notebooks/08_flash_attention.ipynb, "5. IO complexity (FlashAttention paper, Theorem 2)".
    """
    for name, val in (("n", n), ("d", d), ("sram_bytes", sram_bytes), ("dtype_bytes", dtype_bytes)):
        check_positive(val, name)
    m_elems = sram_bytes / dtype_bytes
    standard = float(n * d + n * n)
    flash = float(n * n * d * d / m_elems)
    return {"M_elements": m_elems, "standard": standard, "flash": flash, "ratio": standard / flash}


def score_matrix_bytes(
    n: int, m: int | None = None, batch_heads: int = 1, dtype_bytes: int = 4
) -> int:
    """Bytes of one (batch·heads, N, M) score matrix: the memory naive attention must hold (twice:
    S and P = softmax(S)).

        bytes = batch_heads · N · M · dtype_bytes   (M = N by default)
    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    for name, val in (("n", n), ("batch_heads", batch_heads), ("dtype_bytes", dtype_bytes)):
        check_positive(val, name)
    if m is not None:
        check_positive(m, "m")
    return batch_heads * n * (n if m is None else m) * dtype_bytes


def memory_and_time(
    fns: dict[str, Any],
    ns: tuple[int, ...] = (512, 1024, 2048, 4096),
    d: int = 64,
    batch_heads: int = 1,
    rounds: int = 3,
    seed: int = 0,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """For each N and each attention function fn(q, k, v) on q, k, v of shape (batch_heads, N, d):
    peak extra memory (MiB, after one warm-up call) and time, all functions of one N timed in one
    interleaved labkit.bench.compare (``rounds`` rounds of one call each, ``threads`` threads)
    against the first function: median ms, speed-up t(first) / t(fn), its IQR and the verdict.

    Taught in notebooks/08_flash_attention.ipynb, "1. Naive attention stores an N x N matrix".
    """
    if len(fns) < 2:
        raise ValueError(f"memory_and_time compares 2+ functions, got {list(fns)}.")
    check_positive(d, "d")
    check_positive(batch_heads, "batch_heads")
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n in ns:
        check_positive(n, "N")
        q, k, v = (torch.randn(batch_heads, n, d, generator=gen) for _ in range(3))
        mems = {}
        for name, fn in fns.items():
            fn(q, k, v)
            mems[name] = bench.peak_memory(fn, q, k, v)
        calls = {name: (lambda f=fn, a=(q, k, v): f(*a)) for name, fn in fns.items()}
        cmp = bench.compare(calls, rounds=rounds, repeats=1, warmup=0, threads=threads)
        for name in fns:
            rows.append(
                {
                    "N": n,
                    "method": name,
                    "peak_MiB": mems[name] / 2**20,
                    "time_ms": cmp.median_ms[name],
                    "speedup": cmp.speedup[name],
                    "iqr": cmp.spread[name],
                    "verdict": "baseline" if name == cmp.baseline else cmp.verdict(name),
                }
            )
    return rows


# ---------------------------------------------------------------- SDPA backends


KERNEL_NAMES = {
    "_scaled_dot_product_flash_attention_for_cpu": "FLASH_ATTENTION (CPU kernel)",
    "_scaled_dot_product_flash_attention": "FLASH_ATTENTION",
    "_scaled_dot_product_efficient_attention": "EFFICIENT_ATTENTION",
    "_scaled_dot_product_cudnn_attention": "CUDNN_ATTENTION",
    "_scaled_dot_product_attention_math": "MATH",
    "_scaled_dot_product_fused_attention_overrideable": "OVERRIDEABLE",
}


def sdpa_kernel_used(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> str:
    """Which SDPA backend F.scaled_dot_product_attention dispatches to for these inputs.

    Runs it once under labkit.probes.OpRecorder (a dispatch mode: it sees the aten kernel SDPA
    picked, below the Python-level function) and names the first kernel of KERNEL_NAMES it ran;
    when none ran, SDPA took the MATH path and decomposed into plain ops (listed).
    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    _check_qkv(q, k, v)
    with OpRecorder() as rec:
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    ops = [c.name for c in rec.ops]
    for op in ops:
        if op in KERNEL_NAMES:
            return KERNEL_NAMES[op]
    return "MATH (decomposed: " + ", ".join(dict.fromkeys(ops)) + ")"


def sdpa_backends() -> dict[str, Any]:
    """The backends SDPA can be forced to with torch.nn.attention.sdpa_kernel, by short name.

    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    from torch.nn.attention import SDPBackend

    return {
        "flash": SDPBackend.FLASH_ATTENTION,
        "mem_efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "math": SDPBackend.MATH,
    }


@contextlib.contextmanager
def forced_backend(name: str) -> Iterator[None]:
    """Context manager: SDPA may use only backend ``name`` (see sdpa_backends).

    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    from torch.nn.attention import sdpa_kernel

    backends = sdpa_backends()
    if name not in backends:
        raise ValueError(f"backend must be one of {sorted(backends)}, got {name!r}.")
    with sdpa_kernel(backends[name]):
        yield


def time_backends(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    names: tuple[str, ...] = ("flash", "mem_efficient", "cudnn", "math"),
    causal: bool = False,
    repeats: int = 5,
    rounds: int = 5,
) -> list[dict[str, Any]]:
    """SDPA with each backend forced in turn: the kernel it runs, and the backends that run timed
    in one interleaved labkit.bench.compare against ``math`` (or the last one that runs):
    median ms, speed-up and verdict. A backend that refuses these inputs (dtype, head dim, GPU
    generation, CPU) is reported with the reason, not raised.

    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    _check_qkv(q, k, v)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            with forced_backend(name):
                used = sdpa_kernel_used(q, k, v, is_causal=causal)
            rows[name] = {"backend": name, "kernel": used, "median_ms": float("nan"), "note": ""}
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0][:100]
            rows[name] = {"backend": name, "kernel": "-", "median_ms": float("nan"), "note": reason}
    runs = [n for n in names if rows[n]["kernel"] != "-"]

    def call(name: str) -> Any:
        def run() -> Any:
            with forced_backend(name):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        return run

    if len(runs) >= 2:
        base = "math" if "math" in runs else runs[-1]
        cmp = bench.compare(
            {n: call(n) for n in runs}, baseline=base, rounds=rounds, repeats=repeats
        )
        for n in runs:
            rows[n]["median_ms"] = cmp.median_ms[n]
            rows[n]["note"] = "baseline" if n == base else cmp.verdict(n)
    elif runs:
        rows[runs[0]]["median_ms"] = bench.latency(call(runs[0]), repeats=repeats).median_ms
    return [rows[n] for n in names]


def time_cuda_backends(
    n: int = 4096, d: int = 64, heads: int = 16, batch: int = 1, causal: bool = False
) -> list[dict[str, Any]]:
    """On a CUDA GPU: fp16 q, k, v of shape (batch, heads, n, d) and every SDPA backend forced
    in turn and timed. Raises MissingDependency without a GPU.

    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    dev = require_cuda("Timing the CUDA SDPA backends")
    q, k, v = (torch.randn(batch, heads, n, d, device=dev, dtype=torch.float16) for _ in range(3))
    return time_backends(q, k, v, causal=causal)


# ---------------------------------------------------------------- flash-attn and xFormers


def flash_attn_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
) -> torch.Tensor:
    """Tri Dao's flash_attn.flash_attn_func on (B, H, N, d) fp16/bf16 CUDA tensors.

    flash_attn_func wants (batch, seqlen, heads, head_dim), so we transpose in and out.
    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    flash_attn = require("flash_attn", "flash-attn", why="the FlashAttention-2 CUDA kernels")
    require_cuda("flash_attn")
    out = flash_attn.flash_attn_func(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p=0.0, causal=causal
    )  # (B, N, H, d)
    return out.transpose(1, 2)  # (B, H, N, d)


def xformers_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
) -> torch.Tensor:
    """xformers.ops.memory_efficient_attention on (B, H, N, d) tensors ([B, M, H, K] inside).

    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    require("xformers", why="xFormers memory-efficient attention")
    xops = require("xformers.ops", "xformers")
    bias = xops.LowerTriangularMask() if causal else None
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias
    )  # (B, N, H, d)
    return out.transpose(1, 2)  # (B, H, N, d)


def optional_kernel_notice(name: str) -> str | None:
    """None when ``name`` ('flash_attn' or 'xformers') can run here, else a one-line notice.

    Taught in notebooks/08_flash_attention.ipynb, "6. SDPA backends".
    """
    module = {"flash_attn": "flash_attn", "xformers": "xformers.ops"}[name]
    try:
        require(module, name.replace("_", "-"))
    except MissingDependency:
        pip = name.replace("_", "-")
        return f"{name} is not installed (`pip install {pip}`, needs a CUDA GPU): skipping it."
    if not torch.cuda.is_available():
        return f"{name} is installed but there is no CUDA GPU here: skipping it."
    return None
